"""Federated learning on Flower: federated K-means and FedAvg logistic regression over client
splits of the training rows (bank branches that never send raw records to the server).

One file per role, as in Flower's baselines: :mod:`.client_app` (``app``), :mod:`.server_app`
(``app``), :mod:`.strategy` (K-means strategy, k-FED seeding, DP accountant), :mod:`.partition`;
:mod:`.simulation` runs them in Flower's simulation engine and :mod:`.method` wraps that as a
method and as estimators.
"""

import importlib

#: name -> the module it comes from, imported on first use: a ClientApp or ServerApp process imports
#: this package for its app module and needs neither the estimators nor scikit-learn, SciPy and
#: pandas behind them
_EXPORTS = {
    **dict.fromkeys(["FedAvgLogisticRegression", "FederatedKMeans", "FederatedMethod"],
                    "methods.federated.method"),
    **dict.fromkeys(["dirichlet", "iid", "make_partition", "natural", "onehot_groups"],
                    "methods.federated.partition"),
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(_EXPORTS[name]), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_EXPORTS])
