"""The Deployment Engine end to end on a subsample: a SuperLink and one SuperNode per client on
127.0.0.1 (the warm runtime: short polls, ClientApp tasks forked from a warm launcher), each
SuperNode holding only its client's rows and dialing the SuperLink through a shaped link (the lan
profile); the same result as the simulation engine from the same config and seed; no Flower
process left."""

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from methods.federated import FederatedMethod
from methods.federated.schema import SUMS, unpack_sums
from methods.federated.simulation import RUN_DIR_PREFIX, run_processes, stop_shared_ray_node
from methods.kmeans_core import nearest_center
from methods.lifeline import tagged_processes

CLIENTS, K, ROUNDS, MAX_ITER = 2, 3, 1, 2
LAN = {"name": "lan", "bandwidth_mbit": 1000.0, "rtt_ms": 0.5}
PARAMS = dict(n_clusters=K, random_state=0, num_clients=CLIENTS, init="reference", rounds=ROUNDS,
              max_iter=MAX_ITER)


@pytest.fixture(scope="module")
def split(small_split):
    return small_split


def _fit(split, work, **params):
    tr, te = split.train, split.test
    method = FederatedMethod(**PARAMS, work_dir=str(work), **params)
    return method.fit(tr.X, tr.y, tr.X_segment, feature_names=split.feature_names,
                      eval_set=(te.X, te.y, te.X_segment))


@pytest.fixture(scope="module")
def deployed(split, tmp_path_factory):
    work = tmp_path_factory.mktemp("deployment")
    return _fit(split, work, engine="deployment", network=LAN), work


def test_deployment_runs_the_protocol_and_records_its_costs(deployed, split):
    method, _ = deployed
    costs = method.costs_.to_dict()
    fed = costs["federated"]
    assert fed["engine"] == "deployment" and fed["num_clients"] == CLIENTS
    assert [r["phase"] for r in method.history_["rounds"]] == (["seeding"] + ["kmeans"] * method.n_iter_
                                                                + ["fedavg"] * ROUNDS)
    assert costs["startup_s"] > 0 and costs["train_s"] > 0 and costs["phases"]["engine_stop"] > 0
    assert costs["bytes_total"] > 0 and all(r["bytes_up"] > 0 for r in method.history_["rounds"])
    traffic = fed["superlink_traffic"]  # the SuperLink's own count of the same messages
    assert traffic is not None and traffic["total-bytes"] > 0
    auc = roc_auc_score(split.test.y, method.predict_proba(split.test.X, split.test.X_segment)[:, 1])
    assert 0.5 < auc <= 1.0


def test_each_supernode_link_is_shaped_and_counted(deployed):
    method, _ = deployed
    costs = method.costs_.to_dict()
    wire = costs["wire"]
    assert wire["measured"] and wire["network"] == LAN and costs["federated"]["supernode"] == "warm"
    assert sorted(wire["links"]) == [f"supernode-{i}" for i in range(CLIENTS)]
    down = sum(r["bytes_down"] for r in method.history_["rounds"])
    up = sum(r["bytes_up"] for r in method.history_["rounds"])
    # the sockets carry every message plus HTTP, Flower's polls and the FAB
    assert wire["bytes_down"] > down and wire["bytes_up"] > up
    assert all(c["up"] > 0 and c["down"] > 0 for c in wire["links"].values())


def test_each_supernode_computes_on_its_own_rows_only(deployed, split):
    method, _ = deployed
    X = split.train.X_segment
    for ex in (ex for ex in method.server_view_ if ex["phase"] == "kmeans"):
        labels = nearest_center(X, ex["sent"]["centers"])
        got = {e["client"]: e for e in ex["received"]}
        assert sorted(got) == list(range(CLIENTS))  # client ids: the node configs' partition-id
        for i, rows in enumerate(method.partitions_):
            counts = np.bincount(labels[rows], minlength=K)
            sums = np.stack([X[rows][labels[rows] == c].sum(0) for c in range(K)])
            got_sums, got_counts = unpack_sums(got[i]["arrays"][SUMS])
            assert np.array_equal(got_counts, counts)
            np.testing.assert_allclose(got_sums, sums, rtol=0, atol=1e-9)
            assert got[i]["metrics"]["num-examples"] == len(rows)


def test_same_result_as_the_simulation_engine(deployed, split, tmp_path):
    method, _ = deployed
    simulated = _fit(split, tmp_path, engine="simulation", ray_reuse=False)
    te = split.test
    assert np.array_equal(method.segment(te.X_segment), simulated.segment(te.X_segment))
    np.testing.assert_array_equal(method.cluster_centers_, simulated.cluster_centers_)
    auc_d = roc_auc_score(te.y, method.predict_proba(te.X, te.X_segment)[:, 1])
    auc_s = roc_auc_score(te.y, simulated.predict_proba(te.X, te.X_segment)[:, 1])
    assert abs(auc_d - auc_s) <= 1e-6
    np.testing.assert_allclose(method.coef_, simulated.coef_, rtol=0, atol=1e-12)
    assert not run_processes(simulated.last_run_dir_)
    stop_shared_ray_node()


def test_nothing_left_running_or_on_disk(deployed):
    method, work = deployed
    run_dir = str(method.last_run_dir_)
    assert not run_processes(method.last_run_dir_)
    assert not tagged_processes("FLWR_HOME", f"{run_dir}/flwr-home")
    assert not list(work.glob(f"{RUN_DIR_PREFIX}*"))


def test_secure_needs_the_deployment_engine(split):
    from methods import ConfigError

    with pytest.raises(ConfigError, match="method.secure=true needs method.engine=deployment"):
        FederatedMethod(**PARAMS, secure=True).fit(split.train.X, split.train.y, split.train.X_segment)
    with pytest.raises(ConfigError, match="method.engine='ray'; expected one of"):
        FederatedMethod(**PARAMS, engine="ray").fit(split.train.X, split.train.y, split.train.X_segment)


def test_only_a_shaped_profile_puts_a_relay_on_the_links(tmp_path):
    from methods.federated.deployment import Deployment

    loopback = Deployment(tmp_path / "a", CLIENTS, network={"name": "loopback", "bandwidth_mbit": None,
                                                            "rtt_ms": 0.0})
    assert loopback.network is None and loopback.wire() is None
    assert Deployment(tmp_path / "b", CLIENTS, network=LAN).network == LAN
    with pytest.raises(ValueError, match="runtime='cold'; expected one of"):
        Deployment(tmp_path / "c", CLIENTS, runtime="cold")


def test_supernode_option_is_checked(split):
    from methods import ConfigError

    with pytest.raises(ConfigError, match="method.supernode='cold'; expected one of"):
        FederatedMethod(**PARAMS, engine="deployment", supernode="cold").fit(
            split.train.X, split.train.y, split.train.X_segment)
