"""``backend="ray"``: the HE workers as Ray actors give the local pool's labels, centroids, op
counts and bytes, on a Ray node started for the run or on a running two-node cluster; no Ray
process of the job outlives it; bad settings are refused before anything starts."""

from __future__ import annotations

import os
import shutil
import signal
import tempfile
import time
import uuid
from pathlib import Path

import numpy as np
import psutil
import pytest
from omegaconf import OmegaConf

from benchmarks import config_check as CC
from benchmarks.config import ConfigError
from methods.he import HEKMeans
from methods.he.ray_pool import RAY_ENV, RAY_NODE_ENV, ray_start_args, start_node, stop_node
from methods.lifeline import Watchdog, alive, tagged_processes
from methods.plaintext import reference_init

REPO = Path(__file__).resolve().parents[3]


@pytest.fixture(scope="module")
def two_chunks(seg_X):
    rng = np.random.default_rng(0)
    X = np.vstack([seg_X, seg_X + rng.normal(0, 0.05, seg_X.shape), seg_X[:900]])  # 4,100 rows: 2 chunks
    return X, reference_init(X, 3, 0)


@pytest.fixture(scope="module")
def local_fit(two_chunks):
    X, init = two_chunks
    return HEKMeans(3, init=init, max_iter=2, tol=0.0, random_state=0, workers=2).fit(X)


def _same_results(a: HEKMeans, b: HEKMeans) -> None:
    """Same labels, op counts, rounds and messages. Centroids agree to CKKS's fresh encryption noise
    (SEAL draws it from the system's randomness: two local fits differ by about 1e-9 too), and bytes
    to the compression of that noise (seeded ciphertexts are zstd-compressed)."""
    np.testing.assert_array_equal(a.labels_, b.labels_)
    np.testing.assert_allclose(a.cluster_centers_, b.cluster_centers_, rtol=0, atol=1e-6)
    assert a.ops_ == b.ops_ and a.costs_.rounds == b.costs_.rounds
    assert a.costs_.bytes_total == pytest.approx(b.costs_.bytes_total, rel=1e-3)
    stages_a, stages_b = a.costs_.extra["channel_stages"], b.costs_.extra["channel_stages"]
    assert stages_a.keys() == stages_b.keys()
    for stage in stages_a:
        assert stages_a[stage]["rounds"] == stages_b[stage]["rounds"]
        assert stages_a[stage]["bytes"] == pytest.approx(stages_b[stage]["bytes"], rel=1e-2)


def _our_node_processes() -> set[int]:
    """Processes of a Ray node started by this test process for a run."""
    out = set()
    for proc in psutil.process_iter():
        try:
            if proc.environ().get(RAY_NODE_ENV, "").startswith(f"{os.getpid()}-") and alive(proc.pid):
                out.add(proc.pid)
        except psutil.Error:
            continue
    return out


def _gone(pids, within_s: float = 20.0) -> bool:
    deadline = time.monotonic() + within_s
    while time.monotonic() < deadline and any(alive(p) for p in pids):
        time.sleep(0.2)
    return not any(alive(p) for p in pids)


@pytest.mark.parametrize(
    "params, message",
    [
        ({"backend": "spark"}, r"backend='spark'; expected one of \['local', 'ray'\]"),
        ({"ray_address": "127.0.0.1:6379"}, r"ray_address='127.0.0.1:6379' needs backend='ray'"),
        ({"backend": "ray", "ray_address": "head"}, r"ray_address='head'; expected HOST:PORT"),
        ({"backend": "ray", "ray_address": "10.0.0.1:0"}, r"ray_address='10.0.0.1:0'; expected HOST:PORT"),
        ({"backend": "ray", "transport": "grpc"}, r"backend='ray' with transport='grpc'"),
    ],
)
def test_bad_backend_settings_are_refused_before_any_work(params, message):
    with pytest.raises(ValueError, match=message):
        HEKMeans(3, **params)._check_params()


@pytest.mark.parametrize(
    "override, message",
    [
        ("method.backend=spark", r"^method\.backend='spark'; expected one of \['local', 'ray'\]"),
        ("method.ray_address=127.0.0.1:6379", r"^method\.ray_address='127.0.0.1:6379' needs backend='ray'"),
        ("method.ray_address=nowhere", r"^method\.ray_address='nowhere'"),
    ],
)
def test_the_config_check_refuses_them_naming_the_key(override, message):
    from hydra import compose, initialize_config_dir

    with initialize_config_dir(config_dir=str(REPO / "conf"), version_base="1.3"):
        cfg = compose(
            "config",
            overrides=["method=he", override, *(["method.backend=ray"] if "nowhere" in override else [])],
        )
    with pytest.raises(ConfigError, match=message):
        CC.check(OmegaConf.create(OmegaConf.to_container(cfg)))


@pytest.mark.slow  # Ray's start-up alone takes 20-40 s on this machine, minutes when it is busy
def test_actors_on_a_node_started_for_the_run_give_the_local_pools_results(two_chunks, local_fit):
    X, init = two_chunks
    on_ray = HEKMeans(3, init=init, max_iter=2, tol=0.0, random_state=0, workers=2, backend="ray").fit(X)
    _same_results(local_fit, on_ray)
    info = on_ray.costs_.extra["ray"]
    pids = [pid for _, pid in info["placement"]]
    assert len(set(pids)) == 2 and os.getpid() not in pids  # two actors, in processes of their own
    assert on_ray.costs_.phases["startup"] > 0 and "startup" not in local_fit.costs_.phases
    assert _gone(pids) and _gone(_our_node_processes(), 30.0), "a Ray process outlived the run"


# ---------------------------------------------------------------------------- a two-node cluster
@pytest.mark.slow  # two Ray nodes start in 40-120 s on this machine
def test_actors_on_both_nodes_of_a_running_cluster_give_the_local_pools_results(two_chunks, local_fit):
    tag = f"test-{uuid.uuid4().hex[:12]}"
    env = {
        **os.environ,
        **RAY_ENV,
        RAY_NODE_ENV: tag,
        "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]),
    }
    temp = tempfile.mkdtemp(prefix="pmray-", dir="/tmp")  # short: Ray's socket paths have a length limit
    watchdog = Watchdog(RAY_NODE_ENV, tag)  # the cluster dies with this test, whatever kills it
    nodes = []
    try:
        head, address = start_node(lambda: ray_start_args(1, resources={"node_a": 1}, temp_dir=temp), env)
        nodes.append(head)
        nodes.append(start_node(lambda: ray_start_args(1, address, resources={"node_b": 1}), env)[0])
        X, init = two_chunks
        on_ray = HEKMeans(
            3, init=init, max_iter=2, tol=0.0, random_state=0, workers=2, backend="ray", ray_address=address
        ).fit(X)
        _same_results(local_fit, on_ray)
        info = on_ray.costs_.extra["ray"]
        assert info["nodes"] == 2, info  # one actor on each node (each has one CPU)
        actors = [pid for _, pid in info["placement"]]
        assert _gone(actors), "the job's actors outlived it"
        assert all(n.poll() is None for n in nodes)  # the cluster is the user's: it stays up
    finally:
        for n in reversed(nodes):
            stop_node(n)
        leftover = tagged_processes(RAY_NODE_ENV, tag)
        clean = _gone(leftover, 30.0)
        for pid in leftover:  # leave nothing behind even when the test fails
            if alive(pid):
                os.kill(pid, signal.SIGKILL)
        watchdog.stop()
        shutil.rmtree(temp, ignore_errors=True)
    assert clean, f"Ray processes {sorted(p for p in leftover if alive(p))} outlived `ray start --block`"
