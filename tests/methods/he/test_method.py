"""method=he in the harness: config keys are constructor parameters; a job writes a full record."""

from pathlib import Path

import pytest
from omegaconf import OmegaConf

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
