"""The server's randomness streams: one id per purpose, and draws of two purposes independent."""

import numpy as np
import pytest
from scipy import stats

from methods.he.blinding import FINAL_ROUND, Stream, blinding_rng, cluster_factors, zero_sum_vector
from methods.he.crypto import resolve_params


def test_stream_ids_are_distinct():
    ids = [int(s) for s in Stream]
    assert len(ids) == len(set(ids)) == len(Stream.__members__)


def test_masks_of_two_purposes_are_independent():
    # the same seed and index under two streams: different draws, uncorrelated
    p = resolve_params("ckks")
    for a in Stream:
        for b in Stream:
            if a is b:
                continue
            x = zero_sum_vector(p, blinding_rng(7, a, 2, 3))
            y = zero_sum_vector(p, blinding_rng(7, b, 2, 3))
            assert not np.allclose(x, y)
            assert abs(stats.spearmanr(x, y).statistic) < 0.05


def test_draws_depend_on_the_index_only_through_the_stream():
    # same stream and index: the same draw (what makes the run independent of the worker split)
    a = blinding_rng(3, Stream.SCORES, 4, 1).random(8)
    np.testing.assert_array_equal(a, blinding_rng(3, Stream.SCORES, 4, 1).random(8))
    assert not np.array_equal(a, blinding_rng(3, Stream.SCORES, 4, 2).random(8))
    assert not np.array_equal(cluster_factors(3, 0, 4, True), cluster_factors(3, 1, 4, True))


def test_the_final_round_is_beyond_every_lloyd_iteration():
    from methods.he import HEKMeans

    assert FINAL_ROUND > 300  # the default max_iter
    with pytest.raises(ValueError, match="max_iter"):
        HEKMeans(2, max_iter=FINAL_ROUND)._check_params()
    HEKMeans(2, max_iter=FINAL_ROUND - 1)._check_params()
