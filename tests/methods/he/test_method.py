"""method=he in the harness: config keys are constructor parameters; a job writes a full record."""

from pathlib import Path

import numpy as np
import pytest
from omegaconf import OmegaConf
from sklearn.linear_model import LogisticRegression

from benchmarks.run import run_job
from methods import build
from methods.he import HEMethod

REPO = Path(__file__).resolve().parents[3]


def test_every_config_key_is_a_parameter():
    cfg = OmegaConf.load(REPO / "conf" / "method" / "he.yaml")
    method = build(cfg, n_clusters=3, random_state=0)
    assert isinstance(method, HEMethod) and method.dataset_overrides == {}
    assert HEMethod(scheme="bfv").dataset_overrides == {"clip": True}


def test_unknown_predictor_is_refused(small_split):
    tr = small_split.train
    with pytest.raises(ValueError, match="predictor='plaintext'"):
        HEMethod(n_clusters=2, predictor="plaintext").fit(tr.X, tr.y, tr.X_segment)


def test_one_segment_leaves_the_constant_one_hot_out(small_split):
    """n_clusters=1: the owner predictor is scikit-learn's logistic regression on the model
    features alone (a one-segment one-hot would be a second intercept), in fit and in predict."""
    tr, te = small_split.train, small_split.test
    method = HEMethod(n_clusters=1, predictor="owner", random_state=0).fit(tr.X, tr.y, tr.X_segment)
    reference = LogisticRegression(max_iter=1000).fit(tr.X, tr.y)
    assert method.model_.coef_.shape == (1, tr.X.shape[1])
    np.testing.assert_allclose(method.predict_proba(te.X, te.X_segment), reference.predict_proba(te.X),
                               atol=1e-9)
    assert method.costs_.bytes_total == 0


def test_harness_job_writes_a_full_record(tmp_path, make_dataset_config):
    cfg = OmegaConf.create({
        "dataset": make_dataset_config("bank_full", subsample=400),
        "method": {**OmegaConf.to_container(OmegaConf.load(REPO / "conf" / "method" / "he.yaml")),
                   "init": "k-means++", "max_iter": 8, "lr_n_iter": 3},
        "k": 3, "seed": 0, "split_seed": 0, "threshold": 0.5, "silhouette_sample": 100,
    })
    record = run_job(cfg, tmp_path)
    assert record["status"] == "ok"
    assert record["segmentation"]["ari_vs_plaintext"] >= 0.99  # same initial centers as plaintext
    costs = record["costs"]
    assert {"server", "keyholder", "owner"} <= set(costs["parties"])
    assert costs["rounds"] > 0 and costs["bytes_total"] > 0 and costs["parties"]["server"]["cpu_s"] > 0
    assert costs["he_params"]["poly_modulus_degree"] == 8192 and costs["ckks_max_error"] < 1e-6
    assert set(record["privacy"]["revealed"]) == {"server", "keyholder", "owner"}
    assert 0.5 < record["metrics"]["auc"] <= 1.0
    # the runner's scoring of the test split is charged to the scoring stage
    assert costs["scoring_rows"] == record["data"]["n_test"]
    assert costs["phases"]["scoring"] == costs["stages"]["scoring"]["wall_s"] > 0
