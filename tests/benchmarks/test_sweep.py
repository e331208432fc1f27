"""Sweeps: experiments compose for every method, resume after a kill, failures and parallel flags."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from benchmarks.collect import collect
from benchmarks.config import ConfigError
from benchmarks.config_check import apply_per_choice
from benchmarks.record import config_hash, read_record
from methods import METHODS

from .conftest import REPO, run_env, runner

CONF = REPO / "conf"
EXPERIMENTS = ["paper_table", "k_sweep", "scaling", "smoke", "quickstart"]


def _compose(*overrides: str):
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        return compose(config_name="config", overrides=list(overrides), return_hydra_config=True)


@pytest.mark.parametrize("name", EXPERIMENTS)
def test_experiment_composes_and_lists_the_methods(name):
    cfg = _compose(f"+experiment={name}")
    params = cfg.hydra.sweeper.params
    methods = params["method"].split(",")
    expected = list(METHODS)
    assert sorted(methods) == sorted(expected)
    # per-method options name known methods only, and never reach another method's config
    assert set(cfg.per_method) <= set(METHODS)
    assert set(cfg.per_dataset) <= {p.stem for p in (CONF / "dataset").glob("*.yaml")}
    with_hydra = OmegaConf.to_container(cfg, resolve=False)
    with_hydra.pop("hydra")
    merged = apply_per_choice(OmegaConf.create(with_hydra))
    assert "per_method" not in merged and "per_dataset" not in merged
    assert OmegaConf.to_container(merged.method) == OmegaConf.to_container(cfg.method)  # plaintext: untouched


def test_scaling_sweeps_synthetic_sizes_and_drops_the_encrypted_predictor_above_300k():
    cfg = _compose("+experiment=scaling")
    assert cfg.dataset.name == "synthetic" and cfg.leakage.enabled is False
    sizes = [int(n) for n in cfg.hydra.sweeper.params["dataset.n_rows"].split(",")]
    assert sizes == [10_000, 36_168, 100_000, 300_000, 1_000_000]
    for n, predictor in ((300_000, "encrypted"), (1_000_000, "owner")):
        plain = OmegaConf.to_container(_compose("+experiment=scaling", "method=he", f"dataset.n_rows={n}"),
                                       resolve=False)
        plain.pop("hydra")
        job = apply_per_choice(OmegaConf.create(plain))
        assert job.method.predictor == predictor and job.method.workers == 2


def test_paper_table_settings():
    cfg = _compose("+experiment=paper_table")
    assert cfg.k == 4
    assert cfg.hydra.sweeper.params["seed"] == "0,1,2,3,4"
    assert sorted(cfg.hydra.sweeper.params["dataset"].split(",")) == ["bank_additional", "bank_full", "cdnow"]
    plain = OmegaConf.to_container(cfg, resolve=False)
    plain.pop("hydra")
    full = apply_per_choice(OmegaConf.create(plain))
    assert full.dataset.name == "bank_full" and full.dataset.include_duration is False
    additional = _compose("+experiment=paper_table", "dataset=bank_additional")
    plain = OmegaConf.to_container(additional, resolve=False)
    plain.pop("hydra")
    assert apply_per_choice(OmegaConf.create(plain)).dataset.include_duration is True
    cdnow = OmegaConf.to_container(_compose("+experiment=paper_table", "dataset=cdnow"), resolve=False)
    cdnow.pop("hydra")
    assert apply_per_choice(OmegaConf.create(cdnow)).dataset.include_duration is None  # no duration column


def test_per_method_options_apply_to_their_method_only():
    cfg = OmegaConf.create({"method": {"name": "plaintext", "max_iter": 300},
                            "dataset": {"name": "bank_full"},
                            "per_method": {"plaintext": {"max_iter": 7}, "he": {"poly_modulus_degree": 4096}},
                            "per_dataset": {}})
    out = apply_per_choice(cfg)
    assert out.method.max_iter == 7 and "poly_modulus_degree" not in out.method
    with pytest.raises(ConfigError, match="per_method.hee"):
        apply_per_choice(OmegaConf.merge(cfg, {"per_method": {"hee": {"x": 1}}}))
    with pytest.raises(ConfigError, match="per_dataset.bank"):
        apply_per_choice(OmegaConf.merge(cfg, {"per_dataset": {"bank": {"subsample": 10}}}))


@pytest.mark.parametrize("launcher", [[], ["hydra/launcher=local"]], ids=["basic", "joblib"])
def test_a_sweep_with_one_bad_job_is_refused_before_the_sweep_dir(tmp_path, launcher):
    out = subprocess.run([sys.executable, "-m", "benchmarks.run", "-m", "method=plaintext,dp", "k=2,3",
                          "+per_method.dp.epsilon=-2", "dataset.subsample=600", *launcher],
                         cwd=tmp_path, capture_output=True, text=True, timeout=300,
                         env={**os.environ, "PYTHONPATH": str(REPO), "HYDRA_FULL_ERROR": "0"})
    assert out.returncode == 1, out.stdout + out.stderr
    assert "config refused: sweep job method=dp k=2 " in out.stderr
    assert "method.epsilon=-2.0; expected epsilon > 0" in out.stderr
    assert not list(tmp_path.rglob("*"))  # no sweep dir, no job dir, no record


def test_a_sweep_job_of_the_wrong_type_is_refused_before_the_sweep_dir(tmp_path):
    out = subprocess.run([sys.executable, "-m", "benchmarks.run", "-m", "k=2,two", "dataset.subsample=600"],
                         cwd=tmp_path, capture_output=True, text=True, timeout=300,
                         env={**os.environ, "PYTHONPATH": str(REPO), "HYDRA_FULL_ERROR": "0"})
    assert out.returncode == 1, out.stdout + out.stderr
    assert "config refused: sweep job k=two" in out.stderr and "full_key: k" in out.stderr
    assert not list(tmp_path.rglob("*"))


def test_every_experiment_passes_the_config_check():
    from benchmarks.config_check import CheckBeforeRunDir

    for name in [*EXPERIMENTS, "epsilon_sweep", "leakage"]:
        with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
            cfg = compose(config_name="config", overrides=[f"+experiment={name}"], return_hydra_config=True)
            CheckBeforeRunDir().on_multirun_start(cfg)  # every job of the sweep, as Hydra will launch it


def test_launcher_presets():
    cfg = _compose("hydra/launcher=local")
    assert "joblib" in cfg.hydra.launcher._target_.lower() and cfg.hydra.launcher.n_jobs == 2
    slurm = (CONF / "hydra" / "launcher" / "slurm.yaml").read_text()
    assert "submitit_slurm" in yaml.safe_load(slurm)["defaults"]
    assert "uv run --with 'hydra-submitit-launcher" in slurm  # how to add the optional plugin


def _ok_hashes(root: Path) -> set[str]:
    return {r["config_hash"] for r in map(read_record, root.rglob("record.json")) if r["status"] == "ok"}


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_killed_sweep_resumes_only_missing_jobs(tmp_path):
    env = run_env(tmp_path / "cache")
    # k=1700 fails once the data is read (1,600 training rows: a failed record, the sweep goes on);
    # k=2..6 are real jobs
    sweep = ["-m", "method=plaintext", "k=1700,2,3,4,5,6", "seed=0", "dataset.subsample=2000",
             f"results_dir={tmp_path}"]
    first = tmp_path / "first"
    proc = subprocess.Popen([sys.executable, "-m", "benchmarks.run", *sweep, f"hydra.sweep.dir={first}"],
                            cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    deadline = time.monotonic() + 300
    try:
        while len(_ok_hashes(first)) < 2:
            assert proc.poll() is None, "the sweep ended before it could be killed"
            assert time.monotonic() < deadline, "no job finished in time"
            time.sleep(0.2)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)  # the sweep's own process group, started above
        proc.wait()
    done = _ok_hashes(first)
    assert 2 <= len(done) < 5, "kill the sweep part-way"
    before = {p: _digest(p) for p in first.rglob("record.json")}

    second = tmp_path / "second"
    runner(*sweep, f"hydra.sweep.dir={second}", env=env)
    ran = [read_record(p) for p in second.rglob("record.json")]
    skipped = [json.loads(p.read_text()) for p in second.rglob("skipped.json")]
    assert {s["config_hash"] for s in skipped} == done  # finished jobs were not run again
    ran_ok = {r["config_hash"] for r in ran if r["status"] == "ok"}
    assert not ran_ok & done and len(ran_ok) == 5 - len(done)  # only the missing ones ran
    assert [r["k"] for r in ran if r["status"] == "failed"] == [1700]  # a failed job is retried, not skipped
    assert {p: _digest(p) for p in first.rglob("record.json")} == before  # finished results untouched
    table = collect([second])
    assert sorted(table.loc[table["status"] == "ok", "k"]) == [2, 3, 4, 5, 6]


def test_resume_false_runs_again_and_parallel_jobs_are_flagged(tmp_path):
    env = run_env(tmp_path / "cache")
    common = ["method=plaintext", "seed=0", "dataset.subsample=600", f"results_dir={tmp_path}"]
    runner("-m", "k=2,3", *common, "hydra/launcher=local", f"hydra.sweep.dir={tmp_path / 'par'}", env=env)
    par = [read_record(p) for p in (tmp_path / "par").rglob("record.json")]
    assert len(par) == 2 and all(r["status"] == "ok" for r in par)
    assert all(r["costs"]["parallel"] and r["execution"]["n_jobs"] == 2 for r in par)
    assert all("Joblib" in r["execution"]["launcher"] for r in par)
    digest = {r["k"]: r["config_hash"] for r in par}

    runner("k=2", *common, "resume=false", f"hydra.run.dir={tmp_path / 'forced'}", env=env)
    forced = read_record(tmp_path / "forced" / "record.json")
    assert forced["status"] == "ok" and forced["config_hash"] == digest[2]
    assert forced["costs"]["parallel"] is False
    # resume/results_dir are not part of the hash; the data file is
    assert config_hash(forced["config"], forced["data"]["sha256"]) == digest[2]


def test_a_killed_parallel_sweep_leaves_no_worker(tmp_path):
    """``kill -9`` of a joblib sweep: its loky workers (each running an HE job) and their children are
    gone within seconds, not left to finish the jobs on their own."""
    from methods.lifeline import alive, descendants

    sweep = tmp_path / "par"
    cmd = [sys.executable, "-m", "benchmarks.run", "-m", "method=he", "k=2,3", "dataset.subsample=3000",
           "hydra/launcher=local", f"hydra.sweep.dir={sweep}", f"results_dir={tmp_path}"]
    job = subprocess.Popen(cmd, cwd=REPO, env=run_env(tmp_path / "cache"), stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline and len(list(sweep.glob("*/run.log"))) < 2:
            time.sleep(0.5)  # both jobs started in their workers
        assert job.poll() is None and len(list(sweep.glob("*/run.log"))) == 2
        seen = set(descendants(job.pid))
        assert len(seen) >= 2
        os.kill(job.pid, signal.SIGKILL)
        job.wait()
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and any(alive(p) for p in seen):
            time.sleep(0.1)
        assert not [p for p in seen if alive(p)], "workers outlived the killed sweep"
    finally:
        if job.poll() is None:
            job.kill()
    assert not list(sweep.rglob("record.json"))  # the jobs died with the sweep, they did not finish
