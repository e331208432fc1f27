"""Federated learning on Flower: federated K-means and FedAvg logistic regression over client
splits of the training rows (bank branches that never send raw records to the server).

One file per role, as in Flower's baselines: :mod:`.client_app` (``app``), :mod:`.server_app`
(``app``), :mod:`.strategy` (K-means strategy, k-FED seeding, DP accountant), :mod:`.partition`;
:mod:`.simulation` runs them in Flower's simulation engine and :mod:`.method` wraps that as a
method and as estimators.
"""

from methods.federated.method import FedAvgLogisticRegression, FederatedKMeans, FederatedMethod
from methods.federated.partition import dirichlet, iid, make_partition, natural, onehot_groups

__all__ = ["FedAvgLogisticRegression", "FederatedKMeans", "FederatedMethod", "dirichlet", "iid",
           "make_partition", "natural", "onehot_groups"]
