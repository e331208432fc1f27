"""The federated method end to end, in one Flower simulation shared by the module (Ray's start-up is
the expensive part), plus the errors raised before any simulation starts."""

import math
import os
from pathlib import Path

import numpy as np
import pytest
from omegaconf import OmegaConf
from sklearn.metrics import adjusted_rand_score

from methods import ConfigError, build
from methods.federated import FederatedKMeans, FederatedMethod, simulation
from methods.federated.schema import MODEL, SUMS, unpack_sums
from methods.federated.simulation import RAY_NODE_ENV, RUN_DIR_PREFIX, run_processes, stop_shared_ray_node
from methods.federated.strategy import gaussian_rdp_epsilon
from methods.kmeans_core import nearest_center
from methods.lifeline import tagged_processes
from methods.plaintext import reference_kmeans

REPO = Path(__file__).resolve().parents[3]
ROUNDS, CLIENTS, K, Z, CLIP = 3, 4, 3, 0.8, 1.0
RAY_MARKERS = ("ClientAppActor", "ray/core/src/ray/raylet", "ray/core/src/ray/gcs", "default_worker.py",
               "dashboard/agent.py", "runtime_env/agent")


def _ray_processes() -> set[int]:
    """Ray processes of this clone's runs: the node's daemons and agents run in the clone (the
    machine may run other Ray sessions beside)."""
    out = set()
    for cmd in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            text = cmd.read_bytes().replace(b"\0", b" ").decode(errors="replace")
            state = (cmd.parent / "stat").read_text().rsplit(")", 1)[1].split()[0]
            cwd = Path(os.readlink(cmd.parent / "cwd"))
        except OSError:
            continue
        if state != "Z" and any(m in text for m in RAY_MARKERS) and cwd.is_relative_to(REPO):
            out.add(int(cmd.parent.name))
    return out


@pytest.fixture(scope="module")
def fitted(small_split, tmp_path_factory):
    before = _ray_processes()
    work = tmp_path_factory.mktemp("federated")
    tr, te = small_split.train, small_split.test
    method = FederatedMethod(n_clusters=K, random_state=0, num_clients=CLIENTS, init="reference",
                             rounds=ROUNDS, dp={"noise_multiplier": Z, "clipping_norm": CLIP, "delta": 1e-5},
                             work_dir=str(work))
    method.fit(tr.X, tr.y, tr.X_segment, feature_names=small_split.feature_names,
               eval_set=(te.X, te.y, te.X_segment))
    return method, small_split, before, work


def test_kmeans_equals_centralised_lloyd(fitted):
    method, split, _, _ = fitted
    ref = reference_kmeans(split.train.X_segment, K, 0)
    assert adjusted_rand_score(ref.labels_, method.labels_) == 1.0
    np.testing.assert_allclose(method.cluster_centers_, ref.cluster_centers_, atol=1e-8)
    assert method.n_iter_ == ref.n_iter_


def test_bytes_accounted_per_party_and_round(fitted):
    method, split, _, _ = fitted
    costs = method.costs_
    clients = [p for name, p in costs.parties.items() if name.startswith("client-")]
    server = costs.parties["server"]
    assert len(clients) == CLIENTS
    assert server.bytes_sent == sum(c.bytes_received for c in clients) > 0
    assert server.bytes_received == sum(c.bytes_sent for c in clients) > 0
    assert costs.bytes_total == server.bytes_sent + server.bytes_received
    rounds = method.history_["rounds"]
    assert [r["phase"] for r in rounds] == ["seeding"] + ["kmeans"] * method.n_iter_ + ["fedavg"] * ROUNDS
    assert costs.rounds == len(rounds)
    n_params = split.train.X.shape[1] + K + 1
    for r in rounds:
        assert r["bytes_down"] > 0 and r["bytes_up"] > 0
        if r["phase"] == "fedavg":  # every client sends and receives the whole model as float64
            assert r["bytes_up"] >= CLIENTS * 8 * n_params and r["bytes_down"] >= CLIENTS * 8 * n_params
    assert all(c.cpu_s > 0 for c in clients) and server.cpu_s > 0
    assert {"startup", "federation", "federation.kmeans", "federation.fedavg"} <= set(costs.phases)
    c = costs.to_dict()  # start-up apart from training: the keys every method records
    assert c["startup_s"] == costs.phases["startup"] > 0 and c["train_s"] > costs.phases["federation"] > 0


def test_server_view_holds_what_the_server_received(fitted):
    method, split, _, _ = fitted
    view = method.server_view_
    kmeans = [ex for ex in view if ex["phase"] == "kmeans"]
    for ex in kmeans:
        assert sorted(e["client"] for e in ex["received"]) == list(range(CLIENTS))
        assert sum(unpack_sums(e["arrays"][SUMS])[1].sum() for e in ex["received"]) == len(split.train)
        assert all(e["arrays"][SUMS].shape == (K, split.train.X_segment.shape[1] + 1) for e in ex["received"])
    # Per-client counts of a round are that client's rows per segment of the centers it was sent.
    last = {e["client"]: unpack_sums(e["arrays"][SUMS])[1] for e in kmeans[-1]["received"]}
    labels = nearest_center(split.train.X_segment, kmeans[-1]["sent"]["centers"])
    for i, rows in enumerate(method.partitions_):
        assert np.array_equal(last[i], np.bincount(labels[rows], minlength=K))
    for ex in (ex for ex in view if ex["phase"] == "fedavg"):
        assert set(ex["sent"]) == {MODEL} and ex["sent"][MODEL].shape == (split.train.X.shape[1] + K + 1,)
        for e in ex["received"]:  # client-side clipping: no update is longer than the norm
            update = e["arrays"][MODEL] - ex["sent"][MODEL]
            assert np.linalg.norm(update) <= CLIP + 1e-9


def test_dp_epsilon_and_per_round_curve(fitted):
    method, _, _, _ = fitted
    # Flower's RdpAccountant (dp-accounting), checked against the closed form
    assert math.isclose(method.privacy_.epsilon, gaussian_rdp_epsilon(Z, ROUNDS, 1e-5)[0], rel_tol=0.01)
    assert method.privacy_.delta == 1e-5
    curve = method.history_["fedavg"]
    assert [r["round"] for r in curve] == list(range(ROUNDS + 1))
    assert all(0.0 <= r["auc"] <= 1.0 for r in curve[1:])
    assert "per-cluster sums and counts" in method.privacy_.revealed["server"]


def test_nothing_left_running_or_on_disk(fitted):
    method, _, before, work = fitted
    assert not run_processes(method.last_run_dir_)
    # the process's Ray node outlives the run (the next federated job reuses it) until stopped
    assert method.costs_.extra["federated"]["ray_connect_s"] > 0
    node = simulation._NODE
    assert node is not None
    stop_shared_ray_node()
    assert not tagged_processes(RAY_NODE_ENV, node.tag)
    assert not (_ray_processes() - before)
    assert not list(work.glob(f"{RUN_DIR_PREFIX}*"))  # data shards and FLWR_HOME removed with the run dir


def test_errors_name_the_parameter_before_any_simulation(small_split):
    tr = small_split.train
    cases = [
        (dict(partition="bogus"), "method.partition='bogus'"),
        (dict(dp={"noise": 1.0}), "method.dp.noise is unknown"),
        (dict(dp={"noise_multiplier": 1.0, "clipping_norm": 1.0, "delta": 2}), "method.dp.delta=2"),
        (dict(rounds=0), "method.rounds=0"),
        (dict(init=np.zeros((2, 2))), "method.init has shape"),
        (dict(partition="natural", num_clients=None), "needs fit\\(..., feature_names"),
    ]
    for params, message in cases:
        with pytest.raises(ValueError, match=message):
            FederatedMethod(n_clusters=3, **params).fit(tr.X, tr.y, tr.X_segment)
    for name, bad, expected in [
        ("learning_rate", math.inf, "a finite number > 0"), ("learning_rate", math.nan, "a finite number > 0"),
        ("learning_rate", 0.0, "a finite number > 0"), ("learning_rate", -0.1, "a finite number > 0"),
        ("C", math.inf, "a finite number > 0"), ("C", 0, "a finite number > 0"),
        ("alpha", math.nan, "a finite number > 0"), ("tol", math.inf, "a finite number >= 0"),
        ("tol", -1e-3, "a finite number >= 0"), ("tol", math.nan, "a finite number >= 0"),
        ("rounds", 1.5, "an integer >= 1"), ("local_epochs", 0, "an integer >= 1"),
        ("batch_size", -4, "an integer >= 1"), ("num_clients", 1, "an integer >= 2"),
        ("max_iter", math.inf, "an integer >= 1"), ("max_iter", True, "an integer >= 1"),
    ]:
        with pytest.raises(ConfigError, match=f"^method.{name}={bad!r}; expected {expected}"):
            FederatedMethod(n_clusters=3, **{name: bad}).fit(tr.X, tr.y, tr.X_segment)
    dp = {"noise_multiplier": 1.0, "clipping_norm": 1.0, "delta": 1e-5}
    for key, bad, expected in [("noise_multiplier", math.inf, "a finite number > 0"),
                               ("noise_multiplier", -1.0, "a finite number > 0"),
                               ("clipping_norm", math.nan, "a finite number > 0"),
                               ("clipping_norm", 0.0, "a finite number > 0"),
                               ("delta", 0.0, "a probability > 0 and < 1"),
                               ("delta", math.nan, "a probability > 0 and < 1")]:
        with pytest.raises(ConfigError, match=f"^method.dp.{key}={bad!r}; expected {expected}"):
            FederatedMethod(n_clusters=3, dp={**dp, key: bad}).fit(tr.X, tr.y, tr.X_segment)
    with pytest.raises(ValueError, match="groups were given but method.partition='iid'"):
        FederatedKMeans(n_clusters=3).fit(tr.X_segment, groups=np.zeros(len(tr.y)))


def test_every_config_key_is_a_parameter():
    cfg = OmegaConf.load(REPO / "conf" / "method" / "federated.yaml")
    method = build(cfg, n_clusters=4, random_state=0)
    assert isinstance(method, FederatedMethod) and method.partition == cfg.partition
