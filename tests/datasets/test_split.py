"""Split determinism and stratification; preprocessing fitted on the training split only."""

from __future__ import annotations

import numpy as np
import pytest

import datasets
from datasets import ConfigError


@pytest.fixture(scope="module")
def full(make_dataset_config):
    return datasets.load(make_dataset_config("bank_full"), split_seed=0)


def test_split_sizes_and_stratification(full):
    n_train, n_test = len(full.train), len(full.test)
    assert n_train + n_test == 45211
    assert n_test == pytest.approx(0.2 * 45211, abs=1)
    overall = 5289 / 45211
    assert full.train.y.mean() == pytest.approx(overall, abs=2e-4)
    assert full.test.y.mean() == pytest.approx(overall, abs=5e-4)


def test_split_is_deterministic_and_seed_dependent(make_dataset_config, full):
    again = datasets.load(make_dataset_config("bank_full"), split_seed=0)
    np.testing.assert_array_equal(again.train.X, full.train.X)
    other = datasets.load(make_dataset_config("bank_full"), split_seed=1)
    assert not np.array_equal(other.train.X[:100], full.train.X[:100])


def test_train_and_test_are_disjoint(make_dataset_config):
    cfg = make_dataset_config("bank_full", subsample=3000, include_duration=True)
    split = datasets.load(cfg, split_seed=3)
    cols = list(split.train.frame.columns)
    train = {tuple(r) for r in split.train.frame[cols].itertuples(index=False)}
    test = {tuple(r) for r in split.test.frame[cols].itertuples(index=False)}
    # the UCI file holds a handful of identical rows; a row on both sides would need one
    assert len(train & test) <= 2


def test_standardisation_is_fitted_on_train_only(full):
    names = full.feature_names
    j = names.index("age")
    train_age = full.train.frame["age"].to_numpy()
    assert full.train.X[:, j].mean() == pytest.approx(0.0, abs=1e-9)
    assert full.train.X[:, j].std() == pytest.approx(1.0, abs=1e-9)
    expected = (full.test.frame["age"].to_numpy() - train_age.mean()) / train_age.std()
    np.testing.assert_allclose(full.test.X[:, j], expected)
    assert full.test.X[:, j].mean() != pytest.approx(0.0, abs=1e-6)


def test_duration_is_excluded_by_default_and_configurable(make_dataset_config, full):
    assert "duration" not in full.feature_names
    with_duration = datasets.load(make_dataset_config("bank_full", include_duration=True))
    assert "duration" in with_duration.feature_names
    assert with_duration.train.X.shape[1] == full.train.X.shape[1] + 1


def test_features_one_hot_and_never_contacted_indicator(full):
    names = full.feature_names
    jobs = [i for i, n in enumerate(names) if n.startswith("job=")]
    assert len(jobs) == 12
    np.testing.assert_array_equal(full.train.X[:, jobs].sum(axis=1), 1.0)
    never = full.train.X[:, names.index("pdays_never")]
    np.testing.assert_array_equal(never, (full.train.frame["pdays"] == -1).to_numpy())


def test_segment_features_and_their_public_bounds(make_dataset_config):
    split = datasets.load(make_dataset_config("bank_full", clip=True, subsample=2000))
    assert split.segment_names == ["age", "balance", "campaign", "pdays", "previous"]
    assert split.train.X_segment.shape == (len(split.train), 5)
    lo, hi = split.segment_bounds.T
    assert (split.train.X_segment >= lo - 1e-9).all() and (split.train.X_segment <= hi + 1e-9).all()
    assert (split.test.X_segment >= lo - 1e-9).all() and (split.test.X_segment <= hi + 1e-9).all()


def test_public_scaling_reads_nothing_from_the_data(make_dataset_config):
    a = datasets.load(make_dataset_config("bank_full", scaling="public", clip=True, subsample=2000))
    b = datasets.load(make_dataset_config("bank_full", scaling="public", clip=True, subsample=4000))
    np.testing.assert_array_equal(a.preprocessor.mean_, b.preprocessor.mean_)
    np.testing.assert_array_equal(a.preprocessor.scale_, b.preprocessor.scale_)
    assert a.train.X.min() >= 0.0 and a.train.X.max() <= 1.0
    np.testing.assert_array_equal(a.bounds, np.tile([0.0, 1.0], (len(a.feature_names), 1)))


def test_subsample_is_stratified_and_sized(make_dataset_config):
    split = datasets.load(make_dataset_config("bank_full", subsample=2000), split_seed=0)
    assert len(split.train) + len(split.test) == 2000
    assert np.concatenate([split.train.y, split.test.y]).mean() == pytest.approx(5289 / 45211, abs=1e-3)


@pytest.mark.parametrize(
    "overrides, message",
    [
        ({"segment_features": ["job"]}, r"dataset\.segment_features has \['job'\]"),
        ({"segment_features": []}, r"segment_features is empty"),
        ({"scaling": "minmax"}, r"dataset\.scaling='minmax'"),
        ({"test_size": 1.5}, r"dataset\.test_size=1\.5"),
        ({"numeric.age": [50, 20]}, r"dataset\.numeric\.age=\[50, 20\]"),
    ],
)
def test_bad_dataset_settings_are_refused(make_dataset_config, overrides, message):
    with pytest.raises(ConfigError, match=message):
        datasets.load(make_dataset_config("bank_full", subsample=500, **overrides))
