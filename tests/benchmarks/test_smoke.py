"""The smoke experiment end to end: all four methods x k in {2, 4}, then collect -> figures -> report."""

from __future__ import annotations

import json
import re

import pytest

from benchmarks import collect as C
from benchmarks import figures as F
from benchmarks import report as R

from .conftest import run_env, runner

METHODS = {"plaintext", "he", "federated", "dp"}


@pytest.fixture(scope="module")
def smoke_all(tmp_path_factory):
    root = tmp_path_factory.mktemp("smoke_all")
    runner("-m", "+experiment=smoke", f"hydra.sweep.dir={root / 'sweep'}", f"results_dir={root}",
           env=run_env(root / "cache"), timeout=1500)
    return root


def test_every_method_and_k_has_an_ok_record(smoke_all):
    records = [json.loads(p.read_text()) for p in sorted((smoke_all / "sweep").glob("*/record.json"))]
    assert {(r["method"], r["k"]) for r in records} == {(m, k) for m in METHODS for k in (2, 4)}
    failed = [f"{r['method']} k={r['k']}: {r['error']}" for r in records if r["status"] != "ok"]
    assert not failed, failed
    for r in records:
        assert r["privacy"]["leakage"]["mia_auc"] is not None
        assert r["config"]["dataset"]["subsample"] == 2000
    by_method = {r["method"]: r for r in records if r["k"] == 4}
    assert by_method["plaintext"]["costs"]["bytes_total"] == 0
    for name in ("he", "federated"):
        assert by_method[name]["costs"]["bytes_total"] > 0 and by_method[name]["costs"]["rounds"] > 0
    assert by_method["dp"]["privacy"]["epsilon"] == pytest.approx(1.0)
    assert by_method["he"]["config"]["method"]["max_iter"] == 10  # per_method applied to he only
    assert "max_iter" not in by_method["dp"]["config"]["method"] or \
        by_method["dp"]["config"]["method"].get("max_iter") != 10


def test_long_loops_log_their_progress_to_the_job_log(smoke_all):
    logs = {p.parent.name: p.read_text() for p in (smoke_all / "sweep").glob("*/run.log")}
    he = next(t for name, t in logs.items() if "_he_" in name and "_k4" in name)
    assert re.search(r"HE K-means: Lloyd iteration \(max 10\) 1 shift=", he)
    assert re.search(r"HE logistic regression: iteration 4/4", he)  # smoke: lr_n_iter 4
    fl = next(t for name, t in logs.items() if "_federated_" in name and "_k4" in name)
    assert re.search(r"federated logistic regression: round \d+/\d+ auc=0\.\d+ loss=", fl)


def test_collect_figures_report_from_the_smoke_records(smoke_all, tmp_path):
    table = C.collect([smoke_all / "sweep"])
    assert len(table) == 8 and set(table["method"]) == METHODS and (table["status"] == "ok").all()
    for col in ("auc", "precision", "recall", "silhouette", "wall_s", "bytes_total", "rounds", "epsilon",
                "leakage.mia_auc", "git_commit", "config_hash"):
        assert col in table.columns, col
    figs = F.make_all(table, tmp_path / "figures")
    kinds = {f.kind for f in figs}
    assert {"k_sweep", "comparison", "costs", "leakage"} <= kinds, kinds
    for f in figs:
        for path in (f.pdf, f.png):
            assert (tmp_path / "figures" / path.split("/")[-1]).stat().st_size > 1000
    paths = R.build(table, tmp_path / "report", source="smoke")
    html = paths["html"].read_text()
    names = re.findall(r'<figure id="([^"]+)"', html)
    assert len(names) >= 4
    for name in names:  # inline, as written beside the PDF and PNG
        assert (tmp_path / "report" / "figures" / f"{name}.svg").read_text() in html
    md = paths["md"].read_text()
    for label in ("Plaintext", "HE", "Federated", "DP", "Measured privacy leakage", "Loss MIA AUC"):
        assert label in md, label
