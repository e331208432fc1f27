"""The K-means server's blinding randomness: named streams, factors, offsets and masks.

Every random draw of the server comes from :func:`blinding_rng` ``(seed, stream, *index)``: a
stream names one purpose, the index (iteration, chunk, vector, ...) one use of it, so the draws do
not depend on how chunks are split across worker shards. Two purposes sharing a stream id would
draw the *same* numbers and silently correlate their masks, hence the ids live only here, in
:class:`Stream` (distinct, tested).
"""

from __future__ import annotations

from enum import IntEnum

import numpy as np

from methods.he.crypto import BLIND_FACTOR, CKKS_MASK, CKKS_OFFSET, HEParams


class Stream(IntEnum):
    """Stream ids of the server's randomness (the numbers are those of every earlier run)."""

    #: per (iteration, chunk): the score factors r_i, the offsets o_i and the permutation
    SCORES = 0
    #: per iteration: the per-cluster factors rho_j
    CLUSTER_FACTORS = 1
    #: once: the seeding's common distance factor sigma
    SEEDING_FACTOR = 3
    #: reserved (the random base of earlier runs' score offsets; scores are now sent as differences)
    OFFSET_BASE = 4
    #: per (iteration, vector): the zero-sum masks of the cluster sums and counts
    SUM_MASKS = 5
    #: per (extraction, vector): the zero-sum masks of extracted coordinates
    EXTRACTION_MASKS = 6


#: Iteration index of the final assignment round (stream SCORES): above any
#: Lloyd iteration (``max_iter`` is kept below it), so that round never reuses an iteration's draws.
FINAL_ROUND = 1_000_000


def blinding_rng(seed: int, stream: Stream, *index: int) -> np.random.Generator:
    """Server randomness for one use of one purpose: independent of the worker split."""
    return np.random.default_rng(np.random.SeedSequence([seed, int(stream), *index]))


def blinding_factors(rng: np.random.Generator, size, ckks: bool) -> np.ndarray:
    """Positive factors: log-uniform reals in [1, R] (CKKS) or integers in [1, R] (BFV)."""
    if ckks:
        return np.exp(rng.uniform(0.0, np.log(BLIND_FACTOR), size))
    return rng.integers(1, int(BLIND_FACTOR) + 1, size)


def blinding_offsets(rng: np.random.Generator, size) -> np.ndarray:
    """CKKS per-point offsets, uniform in [-O, O] (BFV offsets are drawn mod t by the shard)."""
    return rng.uniform(-CKKS_OFFSET, CKKS_OFFSET, size)


def cluster_factors(seed: int, iteration: int, k: int, ckks: bool) -> np.ndarray:
    """Per-cluster factors rho_j of one iteration (shared by all server shards)."""
    return blinding_factors(blinding_rng(seed, Stream.CLUSTER_FACTORS, iteration), k, ckks)


def quantize_rho(rho: float) -> float:
    """rho_j rounded to RHO_FRAC_BITS fractional bits: a constant CKKS encodes exactly at the
    scales it multiplies the cluster sums and counts with, so it cancels exactly in their ratio."""
    from methods.he.levels import RHO_FRAC_BITS

    return float(np.round(float(rho) * 2.0**RHO_FRAC_BITS) / 2.0**RHO_FRAC_BITS)


def seeding_factor(seed: int, ckks: bool):
    """The seeding's secret common factor sigma (a float in CKKS, an int in BFV)."""
    sigma = blinding_factors(blinding_rng(seed, Stream.SEEDING_FACTOR), 1, ckks)[0]
    return float(sigma) if ckks else int(sigma)


def zero_sum_vector(params: HEParams, rng: np.random.Generator) -> np.ndarray:
    """Uniform random slots summing to zero: reals in [-M, M] (CKKS) or residues mod t (BFV)."""
    S = params.slots
    if params.scheme == "ckks":
        v = rng.uniform(-CKKS_MASK, CKKS_MASK, S)
        v[-1] = -v[:-1].sum()
        return v
    t = params.plain_modulus
    v = rng.integers(0, t, S, dtype=np.int64)
    v[-1] = (-int(sum(int(a) for a in v[:-1]))) % t
    return np.where(v > t // 2, v - t, v)
