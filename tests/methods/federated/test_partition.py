"""Client splits: sizes, disjointness, determinism, label skew, the natural split by job."""

import numpy as np
import pytest

from methods.federated.partition import dirichlet, iid, make_partition, natural, onehot_groups


def _check_cover(parts, n):
    rows = np.concatenate(parts)
    assert len(rows) == n and len(np.unique(rows)) == n  # disjoint and covering
    assert all(np.all(np.diff(p) > 0) for p in parts)


def test_iid_sizes_disjoint_deterministic():
    parts = iid(1003, 10, seed=3)
    _check_cover(parts, 1003)
    sizes = [len(p) for p in parts]
    assert max(sizes) - min(sizes) <= 1 and sum(sizes) == 1003
    assert all(np.array_equal(a, b) for a, b in zip(parts, iid(1003, 10, seed=3), strict=True))
    assert not all(np.array_equal(a, b) for a, b in zip(parts, iid(1003, 10, seed=4), strict=True))


def _positive_rates(parts, y):
    return np.array([y[p].mean() for p in parts])


def test_dirichlet_disjoint_deterministic_and_skewed():
    y = (np.random.default_rng(0).random(5000) < 0.12).astype(int)
    skewed = dirichlet(y, 5, alpha=0.2, seed=0)
    _check_cover(skewed, len(y))
    assert min(len(p) for p in skewed) >= 10
    assert all(np.array_equal(a, b) for a, b in zip(skewed, dirichlet(y, 5, 0.2, 0), strict=True))
    near_iid = dirichlet(y, 5, alpha=1000.0, seed=0)
    _check_cover(near_iid, len(y))
    # Small alpha: clients' positive rates spread far apart; large alpha: all close to the base rate.
    assert _positive_rates(skewed, y).std() > 5 * _positive_rates(near_iid, y).std()
    assert np.abs(_positive_rates(near_iid, y) - y.mean()).max() < 0.03


def test_natural_by_job_matches_the_raw_column(small_split):
    train = small_split.train
    codes, names = onehot_groups(train.X, small_split.feature_names, "job")
    assert np.array_equal(np.array(names)[codes], train.frame["job"].to_numpy())
    parts = natural(codes)
    _check_cover(parts, len(train))
    counts = train.frame["job"].value_counts()
    assert [len(p) for p in parts] == [int(counts[n]) for n in names]
    assert len(make_partition("natural", train.y, None, 0, groups=codes)) == len(names)


def test_partition_errors_name_the_parameter(small_split):
    y = small_split.train.y
    with pytest.raises(ValueError, match="method.partition='bogus'"):
        make_partition("bogus", y, 4, 0)
    with pytest.raises(ValueError, match="method.num_clients=1"):
        make_partition("iid", y, 1, 0)
    with pytest.raises(ValueError, match="method.alpha=0"):
        make_partition("dirichlet", y, 4, 0, alpha=0)
    with pytest.raises(ValueError, match="method.num_clients=3 but the natural partition has"):
        make_partition("natural", y, 3, 0, groups=np.arange(len(y)) % 5)
    with pytest.raises(ValueError, match="method.partition_column='branch'"):
        onehot_groups(small_split.train.X, small_split.feature_names, "branch")
