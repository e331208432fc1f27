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

from methods.he.crypto import HEParams, logreg_params, resolve_params
from methods.he.kmeans import HEKMeans, quantized_lloyd
from methods.he.kmeans_keyholder import KeyHolder
from methods.he.kmeans_protocol import KMeansProtocol
from methods.he.logreg import HELogisticRegression, LRKeyHolder
from methods.he.method import HEMethod
from methods.he.transport import Channel, Pool

__all__ = ["Channel", "HEKMeans", "HELogisticRegression", "HEMethod", "HEParams", "KMeansProtocol",
           "KeyHolder", "LRKeyHolder", "Pool", "logreg_params", "quantized_lloyd", "resolve_params"]
