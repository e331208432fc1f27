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
from benchmarks.run import ConfigError, run_job, validate

REPO = Path(__file__).resolve().parents[2]
CONTRACT = {
    "metrics": {"precision", "recall", "f1", "auc", "pr_auc", "accuracy", "weighted_precision",
                "weighted_recall", "threshold"},
    "segmentation": {"inertia", "silhouette", "ari_vs_plaintext", "sizes", "conversion_rates", "lift"},
    "costs": {"wall_s", "cpu_s", "peak_rss_mb", "phases", "parties", "bytes_total", "rounds"},
    "privacy": {"threat_model", "epsilon", "delta", "revealed", "leakage"},
    "provenance": {"git_commit", "git_dirty", "versions", "python", "platform", "started_at", "finished_at",
                   "machine"},
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
        ("k=1", r"^k=1; expected k >= 2 segments \(an integer\)$"),
        ("threshold=1.5", r"^threshold=1\.5; expected a probability in \(0, 1\)$"),
        ("method.name=quantum", r"method='quantum' is unknown"),
        ("+method.colour=blue", r"^method\.colour is not a parameter of method=plaintext; expected one of \["),
        ("+bogus=1", r"^bogus is not a config key; expected one of \[.*'threshold'\]$"),
        ("seed=4294967296", r"seed=4294967296; expected an integer between 0 and 4,294,967,295"),
        ("split_seed=-1", r"split_seed=-1; expected an integer between 0"),
        ("silhouette_sample=-1", r"silhouette_sample=-1; expected an integer >= 2"),
        ("dataset.test_size=1.5", r"^dataset\.test_size=1\.5; expected a fraction in \(0, 1\)$"),
        ("leakage.lira.n_shadows=1", r"^leakage\.lira\.n_shadows=1; expected >= 2 shadow models$"),
    ],
)
def test_invalid_config_is_refused_naming_the_key(override, message):
    with pytest.raises(ConfigError, match=message):
        validate(_cfg(override))


def test_run_job_given_a_bad_config_records_the_refusal(tmp_path):
    with pytest.raises(ConfigError, match=r"^k=1; expected k >= 2"):
        run_job(_cfg("k=1"), tmp_path)
    saved = json.loads((tmp_path / "record.json").read_text())
    assert saved["status"] == "failed" and "ConfigError: k=1" in saved["error"]


@pytest.mark.parametrize(
    "override, key",
    [
        ("k=2.5", "k"),
        ("threshold=abc", "threshold"),
        ("silhouette_sample=abc", "silhouette_sample"),
        ("dataset.subsample=abc", "dataset.subsample"),
        ("method.colour=blue", "method.colour"),  # (with +, Hydra adds it; the check refuses it)
        ("method.max_iter=many", "method.max_iter"),
        ("leakage.alpha=high", "leakage.alpha"),
    ],
)
def test_a_wrong_key_or_type_is_refused_while_composing(override, key):
    from hydra.errors import ConfigCompositionException

    with pytest.raises(ConfigCompositionException) as info:
        _cfg(override)
    assert f"full_key: {key}" in str(info.value.__cause__)


def test_a_refusal_that_needs_the_data_writes_a_failed_record(tmp_path):
    with pytest.raises(ValueError, match=r"dataset\.subsample=999999; expected between 22 and 45,211"):
        run_job(_cfg("dataset.subsample=999999"), tmp_path)
    saved = json.loads((tmp_path / "record.json").read_text())
    assert saved["status"] == "failed" and "dataset.subsample=999999" in saved["error"]
    assert saved["metrics"] == {} and saved["provenance"]["finished_at"]


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
    assert len(lines) == 1 and "AUC 0." in lines[0] and lines[0].endswith(f"{tmp_path.name}/ok")
    assert len(lines[0]) <= 160 and " 0 B" in lines[0]  # human units: plaintext sends nothing
    # the console says what the job does as it starts each part (the job log has it all too)
    console = out.stdout.splitlines()
    assert "privmark: starting" in console[0]
    for said in ("job plaintext bank_full k=2", "loading bank_full", "phase segmentation",
                 "phase prediction", "measuring leakage"):
        assert any(said in line for line in console), said
    assert json.loads((tmp_path / "ok" / "record.json").read_text())["status"] == "ok"


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


def test_cli_failure_exits_nonzero_with_failed_record(tmp_path):
    out = _cli(tmp_path / "bad", "k=2000")  # k=2000 > the 800 training rows: known once the data is read
    assert out.returncode != 0
    record = json.loads((tmp_path / "bad" / "record.json").read_text())
    assert record["status"] == "failed" and "k=2000 is larger than the training set" in record["error"]


def _refused(cwd: Path, *args: str) -> str:
    """Run the CLI in ``cwd`` on a config it must refuse; returns its output, having checked that
    nothing was written: no results/ (run or sweep dir), no record."""
    out = subprocess.run([sys.executable, "-m", "benchmarks.run", "dataset.subsample=600", *args],
                         cwd=cwd, capture_output=True, text=True, timeout=300,
                         env={**os.environ, "PYTHONPATH": str(REPO), "HYDRA_FULL_ERROR": "0"})
    assert out.returncode == 1, out.stdout + out.stderr
    assert not (cwd / "results").exists() and not list(cwd.rglob("record.json"))
    assert "Traceback" not in out.stderr
    return out.stderr


@pytest.mark.parametrize(
    "group, args, message",
    [
        ("top level", ["k=1"], "config refused: k=1; expected k >= 2 segments (an integer)"),
        ("top level", ["threshold=abc"], "full_key: threshold"),
        ("dataset", ["dataset.subsample=abc"], "full_key: dataset.subsample"),
        ("dataset", ["dataset.source=web"], "config refused: dataset.source='web'; expected one of"),
        ("plaintext", ["+method.colour=blue"],
         "config refused: method.colour is not a parameter of method=plaintext; expected one of ["),
        ("plaintext", ["method.tol=small"], "full_key: method.tol"),
        ("he", ["method=he", "method.workers=two"], "full_key: method.workers"),
        ("he", ["method=he", "method.workers=0"], "config refused: method.workers=0; expected an integer >= 1"),
        ("he", ["method=he", "method.tol=-1"], "config refused: method.tol=-1.0; expected a finite number >= 0"),
        ("he", ["method=he", "method.max_iter=1000000"], "config refused: method.max_iter=1000000; expected an "),
        ("he", ["method=he", "method.scheme=paillier"], "config refused: method.scheme='paillier'; expected"),
        ("he", ["method=he", "method.poly_modulus_degree=1024"],
         "config refused: method.poly_modulus_degree=1024 with coeff_mod_bit_sizes="),
        ("he", ["method=he", "method.lr_learning_rate=-2"],
         "config refused: method.lr_learning_rate=-2.0; expected a positive number"),
        ("federated", ["method=federated", "method.learning_rate=inf"],
         "config refused: method.learning_rate=inf; expected a finite number > 0"),
        ("dp", ["method=dp", "method.epsilon=-1"], "config refused: method.epsilon=-1.0; expected epsilon > 0"),
        ("leakage", ["leakage.alpha=2"], "config refused: leakage.alpha=2.0; expected a probability in (0, 1)"),
        ("per_method", ["+per_method.plaintext.colour=blue"],
         "config refused: per_method.plaintext.colour is not a parameter of method=plaintext; expected one of"),
        ("per_method", ["+per_method.he.max_iter=many"], "config refused: per_method.he.max_iter: Value 'many'"),
        ("per_method", ["+per_method.hee.max_iter=3"], "config refused: per_method.hee: unknown method"),
        ("per_dataset", ["+per_dataset.bank_full.subsample=abc"], "config refused: per_dataset.bank_full.subsample:"),
    ],
)
def test_cli_refuses_bad_config_before_any_run_dir(tmp_path, group, args, message):
    assert message in _refused(tmp_path, *args), group


def test_a_renamed_dataset_is_refused_and_stays_inside_results(tmp_path):
    err = _refused(tmp_path, "dataset.name=x/../../../escape")
    assert "dataset.name='x/../../../escape' does not match the chosen dataset config 'bank_full'" in err
    assert not list(tmp_path.rglob("*")) and not (tmp_path.parent / "escape_k4_s0").exists()
