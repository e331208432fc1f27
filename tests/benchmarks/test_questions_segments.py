"""``method.segments_in_predictor=false`` really takes the segment one-hots out of every predictor."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from omegaconf import OmegaConf

from benchmarks.attacks._hook import _model_features
from benchmarks.config import METHOD_SCHEMAS
from methods.dp import DPMethod
from methods.federated import FederatedMethod
from methods.he import HEMethod
from methods.plaintext import PlaintextMethod

REPO = Path(__file__).resolve().parents[2]
K = 3


@pytest.mark.parametrize("name", sorted(METHOD_SCHEMAS))
def test_every_method_config_has_the_option(name):
    cfg = OmegaConf.load(REPO / "conf" / "method" / f"{name}.yaml")
    assert cfg.segments_in_predictor is True
    assert METHOD_SCHEMAS[name]().segments_in_predictor is True


@pytest.mark.parametrize("include", [True, False])
def test_plaintext_feature_count(small_split, include):
    tr, te = small_split.train, small_split.test
    m = PlaintextMethod(n_clusters=K, segments_in_predictor=include).fit(tr.X, tr.y, tr.X_segment)
    assert m.model_.coef_.shape == (1, tr.X.shape[1] + (K if include else 0))
    assert m.predict_proba(te.X, te.X_segment).shape == (len(te.y), 2)
    assert _model_features(m)(te.X, te.X_segment).shape[1] == tr.X.shape[1] + (K if include else 0)


def test_without_segments_the_plaintext_model_ignores_them(small_split):
    tr, te = small_split.train, small_split.test
    from sklearn.linear_model import LogisticRegression

    m = PlaintextMethod(n_clusters=K, segments_in_predictor=False).fit(tr.X, tr.y, tr.X_segment)
    alone = LogisticRegression(max_iter=1000).fit(tr.X, tr.y).predict_proba(te.X)[:, 1]
    np.testing.assert_allclose(m.predict_proba(te.X, te.X_segment)[:, 1], alone)


@pytest.mark.parametrize("include", [True, False])
def test_dp_feature_count_and_row_norm_bound(make_dataset_config, include):
    import datasets

    split = datasets.load(make_dataset_config("bank_full", subsample=1000, scaling="public", clip=True),
                          split_seed=0)
    tr = split.train
    m = DPMethod(n_clusters=K, epsilon=1.0, segments_in_predictor=include).fit(tr.X, tr.y, tr.X_segment)
    d = tr.X.shape[1]
    assert np.asarray(m.model_.coef_).shape[-1] == d + (K if include else 0)
    # the one-hot adds exactly 1 to a row's squared norm: only when it is there
    assert m.row_norm_bound(d) ** 2 == pytest.approx(d + (1 if include else 0))


@pytest.mark.parametrize("include", [True, False])
def test_he_feature_count(small_split, include):
    tr = small_split.train
    m = HEMethod(n_clusters=2, init="k-means++", max_iter=1, predictor="owner",
                 segments_in_predictor=include).fit(tr.X, tr.y, tr.X_segment)
    assert m.model_.coef_.shape == (1, tr.X.shape[1] + (2 if include else 0))
    # the encrypted predictor's scoring columns, on the same fitted segmentation
    m.predictor, m.mean_, m.scale_ = "encrypted", tr.X.mean(0), tr.X.std(0) + 1.0
    assert m.model_features(tr.X, tr.X_segment).shape[1] == tr.X.shape[1] + (2 if include else 0)


@pytest.mark.parametrize("include", [True, False])
def test_federated_scoring_and_run_spec(small_split, tmp_path, include):
    tr = small_split.train
    m = FederatedMethod(n_clusters=K, segments_in_predictor=include)
    m.cluster_centers_ = tr.X_segment[:K]
    m.coef_, m.intercept_ = np.zeros(tr.X.shape[1] + (K if include else 0)), 0.0
    m.n_features_in_, m.n_segment_features_in_ = tr.X.shape[1], tr.X_segment.shape[1]
    m.classes_ = np.array([0, 1])
    assert m.decision_function(tr.X, tr.X_segment).shape == (len(tr.y),)
    m._prepare(tmp_path, tr.X, tr.y, tr.X_segment, None, None, None)
    assert json.loads((tmp_path / "run.json").read_text())["segments_in_predictor"] is include
