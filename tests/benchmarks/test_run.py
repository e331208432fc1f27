"""The runner: complete records, refusals before work, failure records, the CLI's exit status."""

from __future__ import annotations

import json
import lzma
import os
import subprocess
import sys
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir

from benchmarks.record import SCHEMA, config_hash
from benchmarks.run import ConfigError, run_job

REPO = Path(__file__).resolve().parents[2]
CONTRACT = {
    "metrics": {"precision", "recall", "f1", "auc", "pr_auc", "accuracy", "weighted_precision",
                "weighted_recall", "threshold"},
    "segmentation": {"inertia", "silhouette", "ari_vs_plaintext", "sizes", "conversion_rates", "lift"},
    "costs": {"wall_s", "cpu_s", "peak_rss_mb", "phases", "parties", "bytes_total", "rounds"},
    "privacy": {"threat_model", "epsilon", "delta", "revealed", "leakage"},
    "provenance": {"git_commit", "git_dirty", "versions", "python", "platform", "started_at", "finished_at"},
}


def _cfg(*overrides):
    with initialize_config_dir(config_dir=str(REPO / "conf"), version_base="1.3"):
        return compose("config", overrides=["dataset.subsample=2000", *overrides])


def test_plaintext_record_is_complete(tmp_path):
    record = run_job(_cfg("k=3", "seed=1"), tmp_path)
    saved = json.loads((tmp_path / "record.json").read_text())
    assert saved == json.loads(json.dumps(saved))  # plain JSON, nothing lost
    assert saved["status"] == "ok" and saved["error"] is None and saved["schema"] == SCHEMA
    assert (saved["method"], saved["dataset"], saved["k"], saved["seed"], saved["split_seed"]) == (
        "plaintext", "bank_full", 3, 1, 0)
    for section, keys in CONTRACT.items():
        assert keys <= set(saved[section]), section
    assert saved["config"]["dataset"]["subsample"] == 2000
    assert saved["config_hash"] == config_hash(saved["config"], saved["data"]["sha256"])
    assert saved["segmentation"]["ari_vs_plaintext"] == pytest.approx(1.0)
    assert len(saved["segmentation"]["sizes"]) == 3
    assert 0.5 < saved["metrics"]["auc"] <= 1.0
    assert record["metrics"] == saved["metrics"]


def test_config_hash_ignores_where_the_data_lives():
    a = _cfg("dataset.data_dir=/somewhere")
    b = _cfg("dataset.data_dir=/elsewhere")
    c = _cfg("k=5")
    from omegaconf import OmegaConf

    hashes = [config_hash(OmegaConf.to_container(x, resolve=True)) for x in (a, b, c)]
    assert hashes[0] == hashes[1] != hashes[2]


@pytest.mark.parametrize(
    "override, message",
    [
        ("k=1", r"k=1; expected k >= 2"),
        ("threshold=1.5", r"threshold=1\.5"),
        ("+method.colour=blue", r"method\.colour is not a parameter of method=plaintext"),
        ("method.name=quantum", r"method='quantum' is unknown"),
        ("+bogus=1", r"unknown config key 'bogus'"),
        ("dataset.subsample=999999", r"dataset\.subsample=999999"),
        ("threshold=abc", r"threshold='abc'; expected a probability"),
        ("seed=4294967296", r"seed=4294967296; expected an integer between 0 and 4,294,967,295"),
        ("split_seed=-1", r"split_seed=-1; expected an integer between 0"),
        ("k=2.5", r"k=2\.5; expected k >= 2 segments \(an integer\)"),
        ("silhouette_sample=-1", r"silhouette_sample=-1; expected an integer >= 2"),
        ("silhouette_sample=abc", r"silhouette_sample='abc'; expected an integer >= 2"),
    ],
)
def test_invalid_config_writes_a_failed_record(tmp_path, override, message):
    with pytest.raises(ValueError, match=message):
        run_job(_cfg(override), tmp_path)
    saved = json.loads((tmp_path / "record.json").read_text())
    assert saved["status"] == "failed"
    assert saved["metrics"] == {} and saved["provenance"]["finished_at"]
    assert any(word in saved["error"] for word in ("Error", "Exception"))


def test_k_larger_than_training_set_is_refused(tmp_path):
    with pytest.raises(ConfigError, match=r"k=40 is larger than the training set \(32 rows\)"):
        run_job(_cfg("dataset.subsample=40", "k=40"), tmp_path)


def _cli(tmp_path, *args):
    env = {**os.environ, "HYDRA_FULL_ERROR": "0"}
    return subprocess.run(
        [sys.executable, "-m", "benchmarks.run", "dataset.subsample=1000", f"hydra.run.dir={tmp_path}", *args],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=300,
    )


def test_cli_success_prints_one_summary_line(tmp_path):
    out = _cli(tmp_path / "ok", "method=plaintext", "k=2")
    assert out.returncode == 0, out.stderr
    lines = [line for line in out.stdout.splitlines() if line.startswith("plaintext bank_full k=2")]
    assert len(lines) == 1 and "auc=" in lines[0] and "record.json" in lines[0]
    assert json.loads((tmp_path / "ok" / "record.json").read_text())["status"] == "ok"


def test_cli_failure_exits_nonzero_with_failed_record(tmp_path):
    out = _cli(tmp_path / "bad", "k=0")
    assert out.returncode != 0
    record = json.loads((tmp_path / "bad" / "record.json").read_text())
    assert record["status"] == "failed" and "k=0" in record["error"]


def test_a_long_error_is_clipped_in_the_record(tmp_path, monkeypatch):
    import benchmarks.run as R

    def boom(cfg):
        raise RuntimeError("x" * 5_000_000)

    monkeypatch.setattr(R, "execute", boom)
    with pytest.raises(RuntimeError):
        run_job(_cfg(), tmp_path)
    saved = json.loads((tmp_path / "record.json").read_text())
    assert len(saved["error"]) < 1200 and "chars)" in saved["error"]
    assert len(saved["traceback"]) < 25_000
    assert (tmp_path / "record.json").stat().st_size < 100_000


def test_the_data_file_is_part_of_the_config_hash(tmp_path):
    """Same config, other data (checksums off): a different hash, so resume does not reuse the record."""
    mine = tmp_path / "mine"
    mine.mkdir()
    lines = lzma.decompress((REPO / "datasets" / "data" / "bank-full.csv.xz").read_bytes()).split(b"\n")
    (mine / "bank-full.csv").write_bytes(b"\n".join(lines[:1] + lines[1:][::-1]))  # rows reversed
    store = tmp_path / "store"
    common = ("dataset.verify_checksum=false", f"results_dir={store}", "leakage.enabled=false")
    first = run_job(_cfg(*common), store / "a", resume=True)
    again = run_job(_cfg(*common), store / "b", resume=True)
    assert again is None and (store / "b" / "skipped.json").exists()  # same data: resumed
    other = run_job(_cfg(*common, f"dataset.data_dir={mine}"), store / "c", resume=True)
    assert other is not None and other["config_hash"] != first["config_hash"]
    assert other["data"]["sha256"] != first["data"]["sha256"]


def test_a_renamed_dataset_is_refused_and_stays_inside_results(tmp_path):
    out = subprocess.run([sys.executable, "-m", "benchmarks.run", "dataset.name=x/../../../escape",
                          "dataset.subsample=600"], cwd=tmp_path, capture_output=True, text=True,
                         env={**os.environ, "PYTHONPATH": str(REPO)}, timeout=300)
    assert out.returncode != 0
    assert "dataset.name='x/../../../escape' does not match the chosen dataset config 'bank_full'" in out.stdout
    made = [p for p in tmp_path.rglob("*") if p.is_dir()]
    assert made and all(p.is_relative_to(tmp_path / "results") or p == tmp_path / "results" for p in made)
    assert not (tmp_path.parent / "escape_k4_s0").exists()
