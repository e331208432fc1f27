"""The public log1p map of heavy-tailed columns: off by default, bounds mapped with the data."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import datasets
from datasets import ConfigError, Preprocessor

NUMERIC = {"age": (18, 100), "balance": (-10000, 110000), "campaign": (1, 70)}


def frame(rows):
    return pd.DataFrame(rows, columns=list(NUMERIC))


def make(**kw) -> Preprocessor:
    return Preprocessor(numeric=NUMERIC, categorical={}, segment_features=["age", "balance"], **kw)


def test_default_is_unchanged():
    f = frame([[30, 450, 2], [60, -200, 10]])
    plain = make(scaling="public", clip=True).fit(f)
    assert plain.log1p == []
    X, _ = plain.transform(f)
    np.testing.assert_allclose(X[:, 1], (np.array([450, -200]) + 10000) / 120000)


def test_signed_log1p_with_public_bounds_in_unit_box():
    f = frame([[30, 450, 2], [60, -200, 10], [99, 5e6, 500]])  # the last row is beyond the bounds
    pre = make(scaling="public", clip=True, log1p=["balance", "campaign"]).fit(f)
    lo, hi = np.log1p(10000), np.log1p(110000)
    np.testing.assert_allclose(pre.public_bounds[1], [-lo, hi])
    np.testing.assert_allclose(pre.raw_bounds[1], [-10000, 110000])
    X, X_seg = pre.transform(f)
    np.testing.assert_allclose(X[0, 1], (np.log1p(450) + lo) / (lo + hi))
    np.testing.assert_allclose(X[1, 1], (-np.log1p(200) + lo) / (lo + hi))
    assert X[2, 1] == pytest.approx(1.0) and X[2, 2] == pytest.approx(1.0)  # clipped, then mapped
    assert X.min() >= 0 and X.max() <= 1
    np.testing.assert_allclose(pre.bounds()[0][:3], [[0, 1]] * 3)
    # the map is monotone: the order of the rows is kept
    assert np.argsort(X[:, 1]).tolist() == np.argsort(f["balance"]).tolist()
    np.testing.assert_array_equal(X_seg, X[:, :2])


def test_unknown_log1p_column_is_refused():
    with pytest.raises(ConfigError, match="log1p"):
        make(log1p=["salary"])


def test_loader_switch_and_heavy_tailed_list(make_dataset_config):
    cfg = make_dataset_config("bank_full", subsample=600, scaling="public", clip=True, log_heavy_tailed=True)
    split = datasets.load(cfg, split_seed=0)
    # duration is dropped in the realistic setting, so it is not mapped either
    assert split.preprocessor.log1p == ["balance", "campaign", "pdays", "previous"]
    assert split.train.X.min() >= 0 and split.train.X.max() <= 1
    bad = make_dataset_config("bank_full", subsample=600, heavy_tailed=["balance", "income"])
    with pytest.raises(ConfigError, match="heavy_tailed"):
        datasets.load(bad, split_seed=0)
    off = datasets.load(make_dataset_config("bank_full", subsample=600), split_seed=0)
    assert off.preprocessor.log1p == []
