"""The server: seeds and runs federated K-means, then FedAvg logistic regression on all features plus
the segment one-hot, evaluating the global model on a held-out set after every round.

Run by the harness, everything it needs is in a run directory (``run.json`` with the settings,
optional ``init.npy`` and ``eval.npz``), named by run config ``run-dir`` or ``PRIVMARK_FL_RUN_DIR``;
it writes ``result.json`` there (:mod:`.result`; ``error.json`` if it fails). Run by ``flwr run .``
(no ``run-dir``), it reads its settings from the run config (:mod:`.app_config`) and logs the final
AUC. Every message goes through :class:`RecordingGrid`, which counts the bytes of each message as
Flower serialises it for the wire and keeps what the server received.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterable
from logging import INFO
from pathlib import Path

import numpy as np
from flwr.app import (
    Array,
    ArrayRecord,
    ConfigRecord,
    Context,
    Message,
    Metadata,
    MetricRecord,
    RecordDict,
)
from flwr.app.message.message import make_message
from flwr.common.constant import SUPERLINK_NODE_ID
from flwr.serverapp import Grid, NeighboringRelation, PrivacyConfig, SamplingMethod, ServerApp
from flwr.serverapp.strategy import DifferentialPrivacyClientSideFixedClipping, FedAvg, Strategy
from flwr.serverapp.strategy.strategy_utils import sample_nodes
from flwr.supercore import log
from flwr.supercore.inflatable.inflatable_object import get_all_nested_objects

from methods.federated import result as result_file
from methods.federated.client_app import features
from methods.federated.schema import MODEL, pack_model, unpack_model
from methods.federated.strategy import KMeansStrategy, by_client
from methods.progress import Progress

RUN_DIR_ENV = "PRIVMARK_FL_RUN_DIR"

app = ServerApp()


# A uint64 protobuf varint holds 7 bits a byte: 2**64 - 1 takes 10 bytes, the most any id can.
_WIDEST_ID = 2**64 - 1
# Ids Flower fixes rather than draws, the same in every run: the SuperLink's node id, and the task
# id ``run_simulation`` gives the ServerApp (a literal 1 in flwr/simulation/run_simulation.py).
_FIXED_NODE_IDS = frozenset({SUPERLINK_NODE_ID})
_FIXED_TASK_IDS = frozenset({1})


def _canonical_id(value: int | None, fixed: frozenset[int] = frozenset()) -> int | None:
    """``value`` at the widest encoding unless it is unset (None, or 0: proto3 leaves it out) or
    one of Flower's ``fixed`` ids, whose width is the same in every run."""
    return value if not value or value in fixed else _WIDEST_ID


def canonical_metadata(md: Metadata) -> Metadata:
    """A copy of ``md`` whose serialised size depends on the run's settings only, never on the
    random ids or the clock, and is the real size plus a few bytes at most:

    - run id, node ids and task ids (uint64 varints, 1 to 10 bytes by value; Flower draws them from
      8 random bytes) take the widest value, 10 bytes; unset ids and Flower's fixed ids (the
      SuperLink's node id, the simulation's ServerApp task id) keep theirs. A random id is 9 or 10
      bytes wide in all but 1 in 2**8 draws, so this adds a byte or so per random id;
    - ``created_at`` and ``ttl`` (doubles: 9 bytes unless 0, then left out) become 1.0 unless 0;
    - ``reply_to_message_id`` becomes as many ``0`` characters (its length does not vary);
    - ``message_id`` is empty, as Flower leaves it out of a message's bytes (the SuperLink sets it);
    - ``group_id`` and ``message_type``, set by the strategy, are kept.
    """
    return Metadata(
        run_id=_canonical_id(md.run_id),
        message_id="",
        src_node_id=_canonical_id(md.src_node_id, _FIXED_NODE_IDS),
        dst_node_id=_canonical_id(md.dst_node_id, _FIXED_NODE_IDS),
        reply_to_message_id="0" * len(md.reply_to_message_id),
        group_id=md.group_id,
        created_at=1.0 if md.created_at else 0.0,
        ttl=1.0 if md.ttl else 0.0,
        message_type=md.message_type,
        src_task_id=_canonical_id(md.src_task_id, _FIXED_TASK_IDS),
        dst_task_id=_canonical_id(md.dst_task_id, _FIXED_TASK_IDS),
    )


def message_bytes(msg: Message) -> int:
    """Bytes of a message as Flower ships it: the serialised objects of its tree (message, record
    dict, records, arrays), each pushed or pulled once, as the SuperLink counts its traffic. The
    message object itself is serialised with :func:`canonical_metadata`, so the same content gives
    the same count in every run, at most 9 bytes (in practice 0 or 1) more per random id than the
    real serialisation, plus 1 should that carry the body length, written in decimal in the
    message's header, to another digit.
    """
    nested = get_all_nested_objects(msg)
    payload = sum(len(obj.deflate()) for obj in nested.values() if obj is not msg)
    canonical = make_message(metadata=canonical_metadata(msg.metadata),
                             content=msg.content if msg.has_content() else None,
                             error=msg.error if msg.has_error() else None)
    return payload + len(canonical.deflate())


POLL_MIN, POLL_MAX = 0.02, 0.1  # seconds between the server's pulls for replies


class RecordingGrid(Grid):
    """A :class:`Grid` that forwards to the real one and records, per exchange, the phase, round,
    bytes each way per node, wall seconds and (optionally) each reply's arrays and metrics. Replies
    come back in client order (:func:`by_client`), never in arrival order."""

    def __init__(self, grid: Grid, keep_replies: bool = True):
        self._grid = grid
        self.keep_replies = keep_replies
        self.phase = "setup"
        self.exchanges: list[dict] = []

    def set_run(self, run):
        return self._grid.set_run(run)

    @property
    def run(self):
        return self._grid.run

    def create_message(self, *args, **kwargs):
        return self._grid.create_message(*args, **kwargs)

    def get_node_ids(self) -> Iterable[int]:
        return self._grid.get_node_ids()

    def push_messages(self, messages):
        return self._grid.push_messages(messages)

    def pull_messages(self, message_ids):
        return self._grid.pull_messages(message_ids)

    def _exchange(self, messages: list[Message], timeout: float | None) -> list[Message]:
        """Flower's ``send_and_receive`` (push, then pull until every reply is in or ``timeout``
        has passed), polling with a back-off from :data:`POLL_MIN` to :data:`POLL_MAX` seconds: the
        Deployment Engine's grid (Flower 1.42) waits a fixed 3 s between pulls, a round's floor."""
        pending = set(self._grid.push_messages(messages))
        end = None if timeout is None else time.monotonic() + timeout
        replies: list[Message] = []
        poll = POLL_MIN
        while pending:
            got = list(self._grid.pull_messages(pending))
            replies += got
            pending -= {m.metadata.reply_to_message_id for m in got}
            if not pending or (end is not None and time.monotonic() >= end):
                break
            time.sleep(poll)
            poll = min(poll * 1.5, POLL_MAX)
        return replies

    def send_and_receive(self, messages: Iterable[Message], *, timeout: float | None = None):
        messages = list(messages)
        if not messages:
            return []
        down = {int(m.metadata.dst_node_id): message_bytes(m) for m in messages}
        t0 = time.perf_counter()
        replies = by_client(self._exchange(messages, timeout))
        seconds = time.perf_counter() - t0
        up, received = {}, []
        for r in replies:
            node = int(r.metadata.src_node_id)
            up[node] = message_bytes(r)
            if r.has_error():
                continue
            metrics = dict(r.content["metrics"]) if "metrics" in r.content else {}
            entry = {"node": node, "client": int(metrics.get("client-id", -1)), "metrics": metrics}
            if self.keep_replies and "arrays" in r.content:
                entry["arrays"] = {k: v.numpy().copy() for k, v in r.content["arrays"].items()}
            received.append(entry)
        first = messages[0].content
        config = first["config"] if "config" in first else {}
        sent = {}
        if self.keep_replies and "arrays" in first:
            sent = {k: v.numpy().copy() for k, v in first["arrays"].items()}
        self.exchanges.append({
            "phase": self.phase, "round": int(config.get("server-round", 0)), "seconds": seconds,
            "bytes_down": down, "bytes_up": up, "sent": sent, "received": received,
        })
        return replies


def run_dir_of(context: Context) -> Path | None:
    run_dir = context.run_config.get("run-dir") or os.environ.get(RUN_DIR_ENV)
    return Path(str(run_dir)) if run_dir else None


def harness_inputs(run_dir: Path) -> tuple[dict, dict | None, np.ndarray | None]:
    """Settings, held-out set and initial centers the harness wrote to ``run_dir``."""
    spec = json.loads((run_dir / "run.json").read_text())
    init = np.load(run_dir / "init.npy") if (run_dir / "init.npy").exists() else None
    eval_set = None
    if (run_dir / "eval.npz").exists():
        with np.load(run_dir / "eval.npz") as f:
            eval_set = {k: f[k] for k in f.files}
    return spec, eval_set, init


def _auc(y: np.ndarray, score: np.ndarray) -> float:
    from sklearn.metrics import roc_auc_score

    return float(roc_auc_score(y, score)) if len(np.unique(y)) == 2 else float("nan")


def warm_up(grid: RecordingGrid, num_clients: int, how: str = "ping") -> None:
    """Wait for every client's node; with ``how="ping"`` also send each an empty query, so that
    starting Ray's workers is not billed to round 1. (Under the Deployment Engine a message may
    start a fresh client process, so a ping warms nothing up there: ``how="nodes"``.)"""
    grid.phase = "warmup"
    t0 = time.perf_counter()
    nodes, _ = sample_nodes(grid, num_clients, num_clients)
    if how == "ping":
        grid.send_and_receive([Message(RecordDict(), message_type="query.ping", dst_node_id=n)
                               for n in nodes])
    else:
        grid.exchanges.append({"phase": "warmup", "round": 0, "seconds": time.perf_counter() - t0,
                               "bytes_down": {}, "bytes_up": {}, "sent": {}, "received": []})


def run_kmeans(grid: RecordingGrid, spec: dict, init: np.ndarray | None, out: dict) -> np.ndarray:
    strategy = KMeansStrategy(spec["n_clusters"], spec["num_clients"], seed=spec["seed"], tol=spec["tol"])
    grid.phase = "seeding"
    seed_cfg = ConfigRecord({"seed": spec["seed"], "seed-candidates": spec["seed_candidates"],
                             "server-round": 0})
    replies = grid.send_and_receive(strategy.configure_seed(seed_cfg, grid))
    centers = strategy.aggregate_seed(replies, init=init)
    out["initial_centers"] = centers.copy()
    arrays = strategy.start_from(centers)
    grid.phase = "kmeans"
    curve = []
    bar = Progress(f"federated K-means: round (max {spec['max_iter']})", unit="round")
    for r in range(1, spec["max_iter"] + 1):
        replies = grid.send_and_receive(strategy.configure_train(r, arrays, ConfigRecord(), grid))
        arrays, metrics = strategy.aggregate_train(r, replies)
        curve.append({"round": r, **dict(metrics)})
        bar.step()
        if strategy.converged:
            break
    bar.close()
    out.update(centers=arrays["centers"].numpy().copy(), kmeans_curve=curve, kmeans_rounds=len(curve),
               kmeans_converged=strategy.converged, counts=strategy.counts_, n_rows=strategy.n_rows_)
    return out["centers"]


def fedavg_strategy(n_clients: int, dp: dict) -> tuple[Strategy, object | None]:
    """FedAvg over every client, wrapped in Flower's client-side-clipping DP when ``dp`` sets a
    noise multiplier; with the wrapper's accountant, Flower's ``RdpAccountant`` (Google's
    dp-accounting underneath), or None without DP."""
    strategy = FedAvg(fraction_train=1.0, fraction_evaluate=0.0, min_train_nodes=n_clients,
                      min_available_nodes=n_clients)
    if dp.get("noise_multiplier") is None:
        return strategy, None
    from flwr.serverapp import RdpAccountant

    accountant = RdpAccountant(PrivacyConfig(
        target_delta=float(dp["delta"]), population_size=n_clients,
        neighboring_relation=NeighboringRelation.ADD_OR_REMOVE_ONE,
        sampling_method=SamplingMethod.NO_AMPLIFICATION))
    strategy = DifferentialPrivacyClientSideFixedClipping(
        strategy, float(dp["noise_multiplier"]), float(dp["clipping_norm"]), n_clients,
        accountant=accountant)
    return strategy, accountant


def run_fedavg(grid: RecordingGrid, spec: dict, eval_set: dict | None, centers: np.ndarray | None,
               out: dict) -> None:
    n_clients = spec["num_clients"]
    k = 0 if centers is None else len(centers)
    n_features = spec["n_features"] + k
    dp = spec.get("dp") or {}
    private = dp.get("noise_multiplier") is not None
    config = ConfigRecord({
        "seed": spec["seed"], "local-epochs": spec["local_epochs"], "batch-size": spec["batch_size"],
        "learning-rate": spec["learning_rate"], "l2": spec["l2"], "n-clusters": k,
        "centers": [] if centers is None else centers.ravel().tolist(), "uniform-weights": private,
    })
    strategy, accountant = fedavg_strategy(n_clients, dp)

    evaluate_fn = None
    if eval_set is not None:
        Z_eval, y_eval = features(eval_set, centers), eval_set["y"].astype(float)

        def evaluate_fn(server_round: int, arrays: ArrayRecord) -> MetricRecord:
            coef, intercept = unpack_model(arrays[MODEL].numpy())
            z = Z_eval @ coef + intercept
            loss = float(np.mean(np.logaddexp(0.0, z) - y_eval * z))
            if server_round > 0:
                bar.step(auc=_auc(y_eval, z), loss=loss)
            return MetricRecord({"auc": _auc(y_eval, z), "loss": loss})

    grid.phase = "fedavg"
    bar = Progress("federated logistic regression: round", total=spec["rounds"], unit="round")
    initial = ArrayRecord({MODEL: Array(pack_model(np.zeros(n_features), 0.0))})
    # Flower's DP wrapper draws its noise from NumPy's global generator: seeded from the run's seed
    # for the rounds, the caller's state restored after.
    rng_state = np.random.get_state()
    np.random.seed(np.random.SeedSequence([spec["seed"], 0xFEDA]).generate_state(1)[0])
    try:
        result = strategy.start(grid=grid, initial_arrays=initial, num_rounds=spec["rounds"],
                                train_config=config, evaluate_fn=evaluate_fn)
    finally:
        np.random.set_state(rng_state)
    bar.close()
    curve = [{"round": r, **dict(m)} for r, m in sorted(result.evaluate_metrics_serverapp.items())]
    train = {r: dict(m) for r, m in result.train_metrics_clientapp.items()}
    for row in curve:
        row["train_loss"] = train.get(row["round"], {}).get("train-loss")
    coef, intercept = unpack_model(result.arrays[MODEL].numpy())
    out.update(coef=coef.copy(), intercept=intercept, fedavg_curve=curve)
    if accountant is not None:
        spent = accountant.get_privacy_spent()
        out["dp"] = {"epsilon": spent.epsilon, "delta": spent.delta, "releases": spent.num_releases,
                     "accounting": spent.accounting_method, "optimal_order": spent.optimal_order,
                     "noise_stdv": float(dp["noise_multiplier"]) * float(dp["clipping_norm"]) / n_clients}


@app.main()
def main(grid: Grid, context: Context) -> None:
    started_at = time.time()
    from flwr.superlink.grid import http_grid

    from methods.federated.flower_waits import shorten_object_pulls

    shorten_object_pulls(http_grid)  # the Deployment Engine's grid pulls each reply's objects
    run_dir = run_dir_of(context)
    if run_dir is None:  # `flwr run .`: the run config names the data
        from methods.federated.app_config import server_inputs

        spec, eval_set, init = server_inputs(context.run_config)
    else:
        spec, eval_set, init = harness_inputs(run_dir)
    try:
        out = serve(grid, spec, eval_set, init)
    except BaseException as exc:
        if run_dir is not None:
            result_file.write(run_dir, {"error": f"{type(exc).__name__}: {exc}"}, result_file.ERROR)
        raise
    out["server_started_at"] = started_at
    if run_dir is not None:
        result_file.write(run_dir, out)
    final = (out.get("fedavg_curve") or [{}])[-1]
    log(INFO, "privmark: final AUC %.6f on %d held-out rows after %d FedAvg rounds (k=%d, %d K-means rounds)",
        final.get("auc", float("nan")), 0 if eval_set is None else len(eval_set["y"]),
        spec["rounds"], spec["n_clusters"], out.get("kmeans_rounds") or 0)


def serve(grid: Grid, spec: dict, eval_set: dict | None, init: np.ndarray | None) -> dict:
    """Warm-up, federated K-means, FedAvg; what was exchanged and learned."""
    rec = RecordingGrid(grid, keep_replies=spec.get("keep_server_view", True))
    cpu0, wall0 = time.thread_time(), time.perf_counter()
    out: dict = {}
    centers = None
    warm_up(rec, spec["num_clients"], spec.get("warmup", "ping"))
    if "kmeans" in spec["tasks"]:
        centers = run_kmeans(rec, spec, init, out)
    if "logreg" in spec["tasks"]:
        run_fedavg(rec, spec, eval_set, centers if spec.get("segments_in_predictor", True) else None, out)
    out.update(exchanges=rec.exchanges, server_cpu_s=time.thread_time() - cpu0,
               server_wall_s=time.perf_counter() - wall0)
    return out
