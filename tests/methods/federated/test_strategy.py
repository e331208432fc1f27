"""The server's arithmetic without Flower's engine: exact K-means aggregation, the strategy on
hand-built messages, k-FED seeding, the DP accountant, message sizes."""

import math
import time
import uuid

import numpy as np
import pytest
from flwr.app import Array, ArrayRecord, ConfigRecord, Message, MetricRecord, RecordDict
from flwr.serverapp import GaussianPrivacyEvent, NeighboringRelation, PrivacyConfig, SamplingMethod
from flwr.supercore.inflatable.inflatable_object import get_all_nested_objects
from sklearn.metrics import adjusted_rand_score

from methods.federated.client_app import local_kmeans, sgd_logreg
from methods.federated.partition import dirichlet
from methods.federated.schema import SUMS, pack_sums
from methods.federated.server_app import message_bytes
from methods.federated.strategy import (
    KMeansStrategy,
    aggregate_kmeans,
    gaussian_rdp_epsilon,
    kfed_init,
    local_sums,
)
from methods.plaintext import reference_init, reference_kmeans


@pytest.fixture(autouse=True)
def _message_identity(monkeypatch):
    """Messages take their run and node ids from Flower's task identity, set by a running app."""
    from flwr.supercore.task_identity import TaskIdentity

    for attr in ("_task_id", "_run_id", "_node_id"):
        monkeypatch.setattr(TaskIdentity, attr, 1)


def _reply(arrays: dict, metrics: dict) -> Message:
    records = ArrayRecord({k: Array(np.ascontiguousarray(v)) for k, v in arrays.items()})
    content = RecordDict({"arrays": records,
                          "metrics": MetricRecord(metrics)})
    return Message(content=content, dst_node_id=0, message_type="train")


def test_aggregation_is_one_lloyd_step_on_the_union():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(600, 3))
    centers = X[:4].copy()
    parts = np.array_split(rng.permutation(600), 7)
    replies = [local_sums(X[p], centers) for p in parts]
    new, counts = aggregate_kmeans(centers, [r[0] for r in replies], [r[1] for r in replies])
    labels = ((X[:, None] - centers[None]) ** 2).sum(-1).argmin(1)
    central = np.array([X[labels == c].mean(0) for c in range(4)])
    np.testing.assert_allclose(new, central, rtol=0, atol=1e-12)
    assert np.array_equal(counts, np.bincount(labels, minlength=4))
    assert math.isclose(sum(r[2] for r in replies), ((X - centers[labels]) ** 2).sum(), rel_tol=1e-9)


def test_empty_cluster_keeps_its_center():
    X = np.zeros((5, 2))
    centers = np.array([[0.0, 0.0], [100.0, 100.0]])
    new, counts = aggregate_kmeans(centers, [local_sums(X, centers)[0]], [local_sums(X, centers)[1]])
    assert counts.tolist() == [5, 0] and new[1].tolist() == [100.0, 100.0]


def test_strategy_rounds_equal_centralised_lloyd(small_split):
    """The strategy fed with clients' replies over a label-skewed split reaches scikit-learn's
    Lloyd from the same initial centers: same labels, same centers."""
    X, y = small_split.train.X_segment, small_split.train.y
    parts = dirichlet(y, 5, alpha=0.3, seed=1)
    init = reference_init(X, 4, 0)
    strategy = KMeansStrategy(4, num_clients=5, seed=0, tol=1e-4)
    seed_replies = [_reply({"c": X[p][:1], "s": np.ones(1), "sum": X[p].sum(0), "sumsq": (X[p] ** 2).sum(0)},
                           {"num-examples": len(p)}) for p in parts]
    assert np.array_equal(strategy.aggregate_seed(seed_replies, init=init), init)
    assert math.isclose(strategy.tol_abs_, 1e-4 * X.var(0).mean(), rel_tol=1e-9)
    arrays = strategy.start_from(init)
    for r in range(1, 301):
        replies = []
        for p in parts:
            sums, counts, inertia = local_sums(X[p], arrays["centers"].numpy())
            replies.append(_reply({SUMS: pack_sums(sums, counts)},
                                  {"inertia": inertia, "num-examples": len(p)}))
        arrays, metrics = strategy.aggregate_train(r, replies)
        if strategy.converged:
            break
    ref = reference_kmeans(X, 4, 0, init=init)
    centers = arrays["centers"].numpy()
    labels = ((X[:, None] - centers[None]) ** 2).sum(-1).argmin(1)
    assert adjusted_rand_score(ref.labels_, labels) == 1.0
    np.testing.assert_allclose(centers, ref.cluster_centers_, atol=1e-9)
    assert r == ref.n_iter_
    assert strategy.counts_.sum() == len(X)


def test_strategy_refuses_failed_rounds():
    strategy = KMeansStrategy(2, num_clients=1)
    strategy.start_from(np.zeros((2, 1)))
    with pytest.raises(RuntimeError, match="no client replied"):
        strategy.aggregate_train(1, [])


def test_kfed_seeding_is_deterministic_and_spread(small_split):
    X = small_split.train.X_segment
    rng = np.random.default_rng(0)
    props = [local_kmeans(X[p], 4, rng, 10) for p in np.array_split(np.arange(len(X)), 5)]
    cands = np.vstack([c for c, _ in props])
    sizes = np.concatenate([s for _, s in props])
    assert sizes.sum() == len(X)
    a, b = kfed_init(cands, sizes, 4, seed=0), kfed_init(cands, sizes, 4, seed=0)
    assert np.array_equal(a, b) and len(np.unique(a.round(9), axis=0)) == 4
    # Good seeds: Lloyd from them is no worse than from k-means++ on all rows by much.
    fed = reference_kmeans(X, 4, 0, init=a).inertia_
    assert fed <= 1.2 * reference_kmeans(X, 4, 0).inertia_
    with pytest.raises(ValueError, match="seeding candidates"):
        kfed_init(cands[:2], sizes[:2], 4, seed=0)


def test_rdp_epsilon_closed_form():
    # More noise or fewer releases: less epsilon; within the zCDP bound rho + 2 sqrt(rho log 1/delta).
    e1, _ = gaussian_rdp_epsilon(1.0, 20, 1e-5)
    assert gaussian_rdp_epsilon(2.0, 20, 1e-5)[0] < e1 < gaussian_rdp_epsilon(1.0, 40, 1e-5)[0]
    rho = 20 / 2.0
    assert e1 <= rho + 2 * math.sqrt(rho * math.log(1e5))
    assert e1 > rho  # the privacy loss is at least its mean
    # One Gaussian release at z = 1, delta = 1e-5: about 4.3 to 5 under RDP accounting.
    assert 4.0 < gaussian_rdp_epsilon(1.0, 1, 1e-5)[0] < 5.0


@pytest.mark.parametrize("z,releases", [(0.8, 3), (1.0, 20), (1.5, 5), (3.0, 100)])
def test_flowers_rdp_accountant_agrees_with_the_closed_form(z, releases):
    from flwr.serverapp import RdpAccountant

    cfg = PrivacyConfig(target_delta=1e-5, population_size=10,
                        neighboring_relation=NeighboringRelation.ADD_OR_REMOVE_ONE,
                        sampling_method=SamplingMethod.NO_AMPLIFICATION, max_epsilon=1e6)
    acc = RdpAccountant(cfg)
    event = GaussianPrivacyEvent(noise_multiplier=z, sample_size=10, population_size=10)
    acc.compose(event, releases)
    spent = acc.get_privacy_spent()
    assert spent.num_releases == releases
    assert math.isclose(spent.epsilon, gaussian_rdp_epsilon(z, releases, 1e-5)[0], rel_tol=0.01)


def test_message_bytes_count_the_payload():
    n = 10_000
    content = RecordDict({"arrays": ArrayRecord({"w": Array(np.zeros(n))}), "config": ConfigRecord({"a": 1})})
    msg = Message(content, dst_node_id=1, message_type="train")
    assert 8 * n <= message_bytes(msg) < 8 * n + 2_000


def _varint_width(value: int) -> int:
    return max(1, -(-value.bit_length() // 7))


def _exchange(monkeypatch, run_id: int, node_id: int, created_at: float, error: bool = False):
    """An instruction to ``node_id`` in run ``run_id`` and its reply (content or error), the same
    content every time; the instruction as the SuperLink delivers it, with a random message id."""
    from flwr.app import Error, Metadata
    from flwr.app.message.message import make_message
    from flwr.supercore.task_identity import TaskIdentity

    monkeypatch.setattr(TaskIdentity, "_run_id", run_id)
    content = RecordDict({"arrays": ArrayRecord({"w": Array(np.arange(6.0))}),
                          "config": ConfigRecord({"round": 3})})
    sent = Message(content, dst_node_id=node_id, message_type="train", group_id="3")
    md = sent.metadata
    sent = make_message(content=content, metadata=Metadata(
        run_id=md.run_id, message_id=str(uuid.uuid4()), src_node_id=md.src_node_id,
        dst_node_id=md.dst_node_id, reply_to_message_id="", group_id=md.group_id,
        created_at=created_at, ttl=md.ttl, message_type=md.message_type,
        src_task_id=md.src_task_id, dst_task_id=md.dst_task_id))
    if error:
        reply = Message(Error(code=0, reason="client failed"), reply_to=sent)
    else:
        reply = Message(RecordDict({"metrics": MetricRecord({"n": 100})}), reply_to=sent)
    reply.metadata.created_at = created_at + 0.25
    reply.metadata.ttl = md.ttl - 0.25
    return sent, reply


def _real_bytes(msg: Message) -> int:
    return sum(len(obj.deflate()) for obj in get_all_nested_objects(msg).values())


@pytest.mark.parametrize("error", [False, True])
def test_message_bytes_do_not_depend_on_random_ids_or_the_clock(monkeypatch, error):
    # Run and node ids 1, 2, 3 and 10 varint bytes wide; message ids and timestamps differ too.
    a = _exchange(monkeypatch, run_id=7, node_id=300, created_at=1.5, error=error)
    b = _exchange(monkeypatch, run_id=2**64 - 1, node_id=2**20 + 1, created_at=time.time(),
                  error=error)
    assert _real_bytes(a[0]) != _real_bytes(b[0])  # what Flower serialises does differ
    for x, y in zip(a, b, strict=True):
        assert message_bytes(x) == message_bytes(y)


@pytest.mark.parametrize("seed", range(5))
def test_message_bytes_stay_within_the_id_width_slack_of_the_real_size(monkeypatch, seed):
    from flwr.common.constant import NODE_ID_NUM_BYTES, RUN_ID_NUM_BYTES

    rng = np.random.default_rng(seed)
    run_id = int.from_bytes(rng.bytes(RUN_ID_NUM_BYTES), "little")
    node_id = int.from_bytes(rng.bytes(NODE_ID_NUM_BYTES), "little")
    # Random ids are counted at 10 bytes, the server's node id and the task id at their own width;
    # a wider body can add a digit to the body length in the message's header.
    slack = (10 - _varint_width(run_id)) + (10 - _varint_width(node_id)) + 1
    for msg in _exchange(monkeypatch, run_id, node_id, created_at=time.time()):
        assert 0 <= message_bytes(msg) - _real_bytes(msg) <= slack
    for run_id, node_id in [(1, 2), (2**64 - 1, 2**64 - 1)]:  # the narrowest and widest ids
        slack = (10 - _varint_width(run_id)) + (10 - _varint_width(node_id)) + 1
        for msg in _exchange(monkeypatch, run_id, node_id, created_at=time.time()):
            assert 0 <= message_bytes(msg) - _real_bytes(msg) <= slack


def test_local_sgd_learns_a_separable_rule():
    rng = np.random.default_rng(0)
    Z = rng.normal(size=(2000, 3))
    y = (Z[:, 0] - Z[:, 1] > 0).astype(float)
    w, b, loss = sgd_logreg(Z, y, np.zeros(3), 0.0, epochs=5, batch_size=32, lr=0.5, l2=0.0, rng=rng)
    assert ((Z @ w + b > 0) == y).mean() > 0.97 and w[0] > 0 > w[1] and loss < 0.2


def _client_replies(rng, n_clients=8, k=3, d=4):
    """Replies of clients with values of very different magnitudes (floating-point sums of them
    depend on their order), one list of seeding and one of K-means replies."""
    seed, lloyd = [], []
    for c in range(n_clients):
        X = rng.normal(size=(40, d)) * 10.0 ** rng.integers(-6, 8)
        sizes = rng.integers(1, 20, size=k).astype(float)
        seed.append(_reply({"c": X[:k], "s": sizes, "sum": X.sum(0), "sumsq": (X**2).sum(0)},
                           {"num-examples": len(X), "client-id": c}))
        sums, counts, inertia = local_sums(X, X[:k] * 0.5)
        lloyd.append(_reply({SUMS: pack_sums(sums, counts)},
                            {"inertia": inertia, "num-examples": len(X), "client-id": c}))
    return seed, lloyd


def test_kmeans_aggregation_does_not_depend_on_reply_order():
    rng = np.random.default_rng(3)
    seed_replies, lloyd_replies = _client_replies(rng)
    results = []
    for perm in [np.arange(8), *(rng.permutation(8) for _ in range(6))]:
        strategy = KMeansStrategy(3, num_clients=8, seed=0)
        centers = strategy.aggregate_seed([seed_replies[i] for i in perm])  # k-FED seeding
        strategy.start_from(centers)
        arrays, metrics = strategy.aggregate_train(1, [lloyd_replies[i] for i in perm])
        results.append((centers, strategy.tol_abs_, arrays["centers"].numpy(), metrics["inertia"]))
    for centers, tol, new, inertia in results[1:]:
        np.testing.assert_array_equal(centers, results[0][0])
        assert tol == results[0][1] and inertia == results[0][3]
        np.testing.assert_array_equal(new, results[0][2])


def test_recording_grid_hands_replies_on_in_client_order():
    """Every strategy (Flower's FedAvg too) aggregates the replies in the order the grid hands them
    on: in client order, the FedAvg model is the same bit for bit whatever order they arrived in."""
    from flwr.serverapp.strategy import FedAvg

    from methods.federated.server_app import RecordingGrid

    rng = np.random.default_rng(4)
    replies = [_reply({"coef": rng.normal(size=5) * 10.0 ** rng.integers(-6, 8), "intercept": rng.normal(size=1)},
                      {"num-examples": int(rng.integers(10, 500)), "train-loss": float(rng.random()),
                       "client-id": c}) for c in range(8)]

    for i, r in enumerate(replies):  # the reply to message i
        r.metadata.__dict__["_reply_to_message_id"] = f"m{i}"

    class Arrival:  # a grid whose replies arrive in a given order, a few per pull
        def __init__(self, order):
            self.order, self.pulls = list(order), 0

        def push_messages(self, messages):
            return [f"m{i}" for i, _ in enumerate(messages)]

        def pull_messages(self, message_ids):
            self.pulls += 1
            ready, self.order = self.order[:3], self.order[3:]
            assert all(f"m{i}" in set(message_ids) for i in ready)  # asked for what is still due
            return [replies[i] for i in ready]

    models = []
    for perm in [np.arange(8), *(rng.permutation(8) for _ in range(6))]:
        grid = RecordingGrid(Arrival(perm))
        got = grid.send_and_receive([Message(RecordDict(), dst_node_id=c, message_type="train")
                                     for c in range(8)])
        assert grid._grid.pulls == 3  # 3 + 3 + 2 replies: pulled until every reply is in
        assert [int(r.content["metrics"]["client-id"]) for r in got] == list(range(8))
        assert [e["client"] for e in grid.exchanges[0]["received"]] == list(range(8))
        arrays, metrics = FedAvg().aggregate_train(1, got)
        models.append((arrays["coef"].numpy(), arrays["intercept"].numpy(), metrics["train-loss"]))
    for coef, intercept, loss in models[1:]:
        np.testing.assert_array_equal(coef, models[0][0])
        np.testing.assert_array_equal(intercept, models[0][1])
        assert loss == models[0][2]


def test_recording_grid_stops_pulling_at_the_timeout():
    from methods.federated.server_app import RecordingGrid

    class Silent:  # no reply ever comes
        pulls = 0

        def push_messages(self, messages):
            return ["m0"]

        def pull_messages(self, message_ids):
            self.pulls += 1
            return []

    grid = RecordingGrid(Silent())
    t0 = time.perf_counter()
    assert grid.send_and_receive([Message(RecordDict(), dst_node_id=0, message_type="train")],
                                 timeout=0.3) == []
    assert 0.3 <= time.perf_counter() - t0 < 2.0 and grid._grid.pulls >= 3


def test_round_messages_carry_one_array_each(tmp_path):
    """A K-means or FedAvg round's message, either way, is six objects (message, record dict,
    array record, one array and its chunk, config or metric record): each object is one request
    per hop under the Deployment Engine. The packed arrays unpack to what was computed."""
    from flwr.app import Context

    from methods.federated import client_app
    from methods.federated.schema import MODEL, pack_model, unpack_model, unpack_sums

    rng = np.random.default_rng(5)
    X, y = rng.normal(size=(60, 3)), (rng.random(60) < 0.3).astype(int)
    np.savez(tmp_path / "rows.npz", X=X, y=y, X_segment=X)
    context = Context(run_id=1, node_id=2, node_config={"data-path": str(tmp_path / "rows.npz"), "partition-id": 0},
                      state=RecordDict(), run_config={})

    def sent(arrays: dict, config: dict, message_type: str) -> Message:
        content = RecordDict({"arrays": ArrayRecord({k: Array(v) for k, v in arrays.items()}),
                              "config": ConfigRecord(config)})
        return Message(content=content, dst_node_id=2, message_type=message_type)

    km = sent({"centers": X[:2].copy()}, {"server-round": 1}, "train.kmeans")
    km_reply = client_app.kmeans_step(km, context)
    fa = sent({MODEL: pack_model(np.zeros(3), 0.0)},
              {"seed": 0, "server-round": 1, "local-epochs": 1, "batch-size": 16, "learning-rate": 0.1, "l2": 0.0,
               "n-clusters": 0, "centers": [], "uniform-weights": False}, "train")
    fa_reply = client_app.fedavg_step(fa, context)
    for msg in (km, km_reply, fa, fa_reply):
        assert len(get_all_nested_objects(msg)) == 6
    sums, counts = unpack_sums(km_reply.content["arrays"][SUMS].numpy())
    want_sums, want_counts, _ = local_sums(X, X[:2])
    np.testing.assert_array_equal(sums, want_sums)
    assert counts.dtype == np.int64 and np.array_equal(counts, want_counts)
    coef, intercept = unpack_model(fa_reply.content["arrays"][MODEL].numpy())
    w, b, _ = sgd_logreg(X, y.astype(float), np.zeros(3), 0.0, epochs=1, batch_size=16, lr=0.1, l2=0.0,
                         rng=np.random.default_rng([0, 1, 0]))
    np.testing.assert_array_equal(coef, w)
    assert intercept == b
