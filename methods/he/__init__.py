"""Homomorphic encryption (TenSEAL): K-means on ciphertexts and the ``he`` method.

Public surface: :class:`HEKMeans` (estimator), :class:`HEMethod` (harness method), the parties
(:class:`KeyHolder`, :class:`ComputeServer`, shards in :mod:`methods.he.parties`), the protocol
driver :class:`KMeansProtocol`, :class:`~methods.he.channel.Channel` and :class:`Pool`.
"""

from methods.he.channel import Channel
from methods.he.kmeans import ComputeServer, HEKMeans, KeyHolder, KMeansProtocol, quantized_lloyd
from methods.he.method import HEMethod
from methods.he.pool import Pool
from methods.he.schemes import HEParams, resolve_params

__all__ = ["Channel", "ComputeServer", "HEKMeans", "HEMethod", "HEParams", "KMeansProtocol", "KeyHolder",
           "Pool", "quantized_lloyd", "resolve_params"]
