"""Homomorphic encryption (TenSEAL): K-means and logistic regression on ciphertexts, and the ``he`` method.

Public surface: :class:`HEKMeans` and :class:`HELogisticRegression` (estimators), :class:`HEMethod`
(harness method), the parties
(:class:`KeyHolder`, :class:`ComputeServer`, shards in :mod:`methods.he.parties`), the protocol
driver :class:`KMeansProtocol`, :class:`~methods.he.channel.Channel` and :class:`Pool`.
"""

from methods.he.channel import Channel
from methods.he.kmeans import ComputeServer, HEKMeans, KeyHolder, KMeansProtocol, quantized_lloyd
from methods.he.logreg import HELogisticRegression, LRKeyHolder, LRParams
from methods.he.method import HEMethod
from methods.he.pool import Pool
from methods.he.schemes import HEParams, resolve_params

__all__ = ["Channel", "ComputeServer", "HEKMeans", "HELogisticRegression", "HEMethod", "HEParams",
           "KMeansProtocol", "KeyHolder", "LRKeyHolder", "LRParams", "Pool", "quantized_lloyd",
           "resolve_params"]
