"""Homomorphic encryption (TenSEAL): K-means and logistic regression on ciphertexts, and the ``he`` method.

One crypto core and two protocols of the same shape:

- :mod:`~methods.he.crypto`: parameters (:class:`HEParams`, presets, the 128-bit table), contexts,
  codec, chunking, one-hots; :mod:`~methods.he.transport`: :class:`Channel` and :class:`Pool`.
- K-means: :mod:`~methods.he.kmeans_keyholder`, :mod:`~methods.he.kmeans_server`,
  :mod:`~methods.he.kmeans_owner` (each party's code),
  :mod:`~methods.he.kmeans_protocol` (:class:`KMeansProtocol`), :mod:`~methods.he.kmeans`
  (:class:`HEKMeans`); the server's randomness in :mod:`~methods.he.blinding`.
- Logistic regression: :mod:`~methods.he.logreg_keyholder` (:class:`LRKeyHolder`),
  :mod:`~methods.he.logreg_server` (``LRServer``),
  :mod:`~methods.he.logreg_protocol`, :mod:`~methods.he.logreg` (:class:`HELogisticRegression`);
  the descent both it and its plaintext twin run in :mod:`~methods.he.logreg_math`.
- :mod:`~methods.he.method`: :class:`HEMethod`, the harness method.
"""

from __future__ import annotations

import importlib

#: public name -> module (imported on first use: a service process needs only its party's code)
_EXPORTS = {
    "HEParams": "crypto", "logreg_params": "crypto", "resolve_params": "crypto",
    "HEKMeans": "kmeans", "quantized_lloyd": "kmeans", "KeyHolder": "kmeans_keyholder",
    "KMeansProtocol": "kmeans_protocol", "HELogisticRegression": "logreg", "LRKeyHolder": "logreg",
    "HEMethod": "method", "Channel": "transport", "Pool": "transport",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name not in _EXPORTS:
        raise AttributeError(f"module 'methods.he' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"methods.he.{_EXPORTS[name]}"), name)
    globals()[name] = value
    return value
