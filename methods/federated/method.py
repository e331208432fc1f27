"""The federated method and its estimators: federated K-means and FedAvg logistic regression on
Flower, over ``iid``, ``dirichlet`` or ``natural`` client splits of the training rows."""

from __future__ import annotations

import json
import math
import numbers
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
from scipy.special import expit
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.utils.validation import check_is_fitted, validate_data

from methods import ConfigError
from methods._estimator import KMeansMixin, MethodMixin, binary_tags, check_n_clusters, encode_binary
from methods.base import Costs, Privacy, with_segments
from methods.federated.partition import PARTITIONS, make_partition, onehot_groups
from methods.federated.schema import MODEL, SUMS, unpack_sums
from methods.federated.simulation import private_run_dir, run_federation
from methods.kmeans_core import nearest_center, reference_init

INITS = ("k-fed", "reference")
ENGINES = ("simulation", "deployment")
SUPERNODES = ("warm", "stock")
DP_KEYS = {"noise_multiplier", "clipping_norm", "delta"}


class _Federation(BaseEstimator):
    """Federated K-means (per-client sums and counts, k-FED seeding) and FedAvg logistic regression
    on all features plus the segment one-hot, run on Flower's simulation or Deployment Engine: the
    parameters, the run and what the server saw, shared by :class:`FederatedMethod` (both tasks,
    the harness method), :class:`FederatedKMeans` and :class:`FedAvgLogisticRegression` (one task
    each).

    Parameters
    ----------
    n_clusters : int
        Number of segments.
    random_state : int
        Seeds the partition, the seeding and the local SGD.
    num_clients : int or None
        Clients for ``iid`` and ``dirichlet``; ``None`` (or the group count) for ``natural``.
    partition : {"iid", "dirichlet", "natural"}
        How the training rows are split among clients.
    alpha : float
        Dirichlet concentration over the label (``partition="dirichlet"``); small = skewed.
    partition_column : str
        Categorical column for ``partition="natural"``, found through its one-hot features
        ``<column>=<value>`` in ``feature_names`` (passed to ``fit``).
    init : {"k-fed", "reference"} or array (n_clusters, n_segment_features)
        Initial centers. ``"k-fed"``: clients propose weighted local k-means candidates and the
        server runs weighted k-means++ on them (no raw rows leave a client). ``"reference"``: the
        plaintext reference's k-means++ centers (:func:`methods.kmeans_core.reference_init`), computed
        centrally from all rows -- a comparison mode, not a private one. An array: those centers.
    seed_candidates : int or None
        Local centers each client proposes for k-FED (``None``: ``n_clusters``).
    max_iter, tol : Lloyd limits with scikit-learn's meaning (tol relative to the mean variance).
    rounds : int
        FedAvg rounds.
    local_epochs, batch_size, learning_rate : local minibatch SGD per round.
    C : float
        Inverse L2 strength, as in scikit-learn (each client uses 1 / (C × total rows)).
    dp : mapping or None
        Client-level DP on the FedAvg updates: ``noise_multiplier`` (None = off), ``clipping_norm``,
        ``delta``. Clients clip their update (Flower's ``fixedclipping_mod``), the server adds
        Gaussian noise (``DifferentialPrivacyClientSideFixedClipping``) and weights clients equally.
    engine : {"simulation", "deployment"}
        ``"simulation"``: Flower's simulation engine on Ray, in this process. ``"deployment"``: the
        Deployment Engine: a SuperLink and one SuperNode per client, processes on 127.0.0.1, each
        SuperNode given only its client's rows (:mod:`methods.federated.deployment`). Same seed,
        same result on both.
    secure : bool
        Deployment Engine only: TLS on every connection and SuperNode authentication (otherwise the
        processes talk plain HTTP on 127.0.0.1).
    supernode : {"warm", "stock"}
        Deployment Engine only: ``"warm"`` runs each SuperNode with short polls and a warm ClientApp
        launcher (:mod:`methods.federated.supernode`, :mod:`methods.federated.clientapp_exec`);
        ``"stock"`` runs ``flower-supernode`` as shipped (a new ``flwr-clientapp`` per message).
    network : mapping or None
        The link between the clients and the server (``bandwidth_mbit``, ``rtt_ms``; the harness
        sets it from the ``network`` profile). Deployment Engine: a shaped profile is applied to each
        SuperNode's connection to the SuperLink, and the bytes that crossed it are kept in
        ``costs.wire``. The simulation engine has no connection to shape.
    num_cpus : int
        Cores given to Ray (each client task takes one).
    ray_reuse : bool
        Simulation only: connect to this process's Ray node, started by the first federated run
        and stopped at exit, instead of starting and stopping one per run.
    keep_server_view : bool
        Keep every message the server received in ``server_view_`` (for leakage attacks).
    work_dir : str or None
        Where the run directory (the clients' rows, ``FLWR_HOME``) is made, readable by this user
        only; default: the system temp dir, never next to the results. It is deleted after the run
        (also when the job is killed) unless ``keep_run_dir``.
    verbose : bool
        Show Flower's and Ray's logs.
    segments_in_predictor : bool
        False: FedAvg trains on the model features only (no segment one-hot).

    Attributes
    ----------
    cluster_centers_, labels_ (training rows), coef_, intercept_, partitions_ (row indices per
    client), history_ (per-round curves), server_view_ (what the server received, per exchange:
    ``phase``, ``round``, ``sent`` arrays, ``received`` list of ``{client, arrays, metrics}``),
    costs_, privacy_.
    """

    _tasks: ClassVar[tuple[str, ...]] = ("kmeans", "logreg")

    def __init__(self, n_clusters=4, random_state=0, num_clients=10, partition="iid", alpha=0.5,
                 partition_column="job", init="k-fed", seed_candidates=None, max_iter=300, tol=1e-4,
                 rounds=20, local_epochs=1, batch_size=64, learning_rate=0.5, C=1.0, dp=None,
                 num_cpus=2, keep_server_view=True, work_dir=None, keep_run_dir=False, verbose=False,
                 segments_in_predictor=True, engine="simulation", secure=False, ray_reuse=True,
                 supernode="warm", network=None):
        self.n_clusters = n_clusters
        self.random_state = random_state
        self.num_clients = num_clients
        self.partition = partition
        self.alpha = alpha
        self.partition_column = partition_column
        self.init = init
        self.seed_candidates = seed_candidates
        self.max_iter = max_iter
        self.tol = tol
        self.rounds = rounds
        self.local_epochs = local_epochs
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.C = C
        self.dp = dp
        self.num_cpus = num_cpus
        self.keep_server_view = keep_server_view
        self.work_dir = work_dir
        self.keep_run_dir = keep_run_dir
        self.verbose = verbose
        self.segments_in_predictor = segments_in_predictor
        self.engine = engine
        self.secure = secure
        self.ray_reuse = ray_reuse
        self.supernode = supernode
        self.network = network

    # -- validation ---------------------------------------------------------------------------
    def _check_params(self) -> dict | None:
        """Every setting checked before any file is written or Ray starts; a bad one raises
        :class:`~methods.ConfigError` naming ``method.<name>`` and the range it must be in."""

        def positive_int(name, value, low=1):
            if not isinstance(value, numbers.Integral) or isinstance(value, bool) or value < low:
                raise ConfigError(f"method.{name}={value!r}; expected an integer >= {low}")

        def number(name, value, low=0.0, high=math.inf, low_open=True, high_open=True, what="a number"):
            ok = (not isinstance(value, bool) and isinstance(value, numbers.Real) and math.isfinite(value)
                  and (value > low if low_open else value >= low)
                  and (value < high if high_open else value <= high))
            if not ok:
                hi = "" if high == math.inf else f" and {'<' if high_open else '<='} {high:g}"
                raise ConfigError(f"method.{name}={value!r}; expected {what} {'>' if low_open else '>='} "
                                  f"{low:g}{hi}")

        if self.engine not in ENGINES:
            raise ConfigError(f"method.engine={self.engine!r}; expected one of {list(ENGINES)}")
        for name in ("secure", "ray_reuse"):
            if not isinstance(getattr(self, name), bool):
                raise ConfigError(f"method.{name}={getattr(self, name)!r}; expected true or false")
        if self.supernode not in SUPERNODES:
            raise ConfigError(f"method.supernode={self.supernode!r}; expected one of {list(SUPERNODES)}")
        if self.secure and self.engine != "deployment":
            raise ConfigError("method.secure=true needs method.engine=deployment (the simulation engine "
                              "runs in one process, with no connection to secure)")
        if self.partition not in PARTITIONS:
            raise ConfigError(f"method.partition={self.partition!r}; expected one of {list(PARTITIONS)}")
        if self.num_clients is not None:
            positive_int("num_clients", self.num_clients, 2)
        if "kmeans" in self._tasks:
            positive_int("n_clusters", self.n_clusters, 1)
        for name in ("max_iter", "rounds", "local_epochs", "batch_size", "num_cpus"):
            positive_int(name, getattr(self, name))
        if self.seed_candidates is not None:
            positive_int("seed_candidates", self.seed_candidates)
        for name in ("alpha", "learning_rate", "C"):
            number(name, getattr(self, name), what="a finite number")
        number("tol", self.tol, low_open=False, what="a finite number")
        if isinstance(self.init, str) and self.init not in INITS:
            raise ConfigError(f"method.init={self.init!r}; expected one of {list(INITS)} or an array of "
                             f"initial centers")
        if self.dp is None:
            return None
        if not isinstance(self.dp, Mapping):
            raise ConfigError(f"method.dp={self.dp!r}; expected a mapping with keys {sorted(DP_KEYS)}")
        dp = dict(self.dp)
        unknown = sorted(set(dp) - DP_KEYS)
        if unknown:
            raise ConfigError(f"method.dp.{unknown[0]} is unknown; expected keys {sorted(DP_KEYS)}")
        if dp.get("noise_multiplier") is None:
            return None
        for key in ("noise_multiplier", "clipping_norm"):
            number(f"dp.{key}", dp.get(key), what="a finite number")
        number("dp.delta", dp.get("delta"), high=1.0, what="a probability")
        return {k: float(dp[k]) for k in DP_KEYS}

    def check_params(self) -> None:
        """The parameter checks that need no data (run by the config layer before any run dir)."""
        self._check_params()

    # -- fitting -------------------------------------------------------------------------------
    def _initial_centers(self, X_segment: np.ndarray) -> np.ndarray | None:
        if isinstance(self.init, str):
            if self.init == "k-fed":
                return None
            return reference_init(X_segment, self.n_clusters, self.random_state)
        init = np.asarray(self.init, dtype=float)
        if init.shape != (self.n_clusters, X_segment.shape[1]):
            raise ValueError(f"method.init has shape {init.shape}; expected ({self.n_clusters}, "
                             f"{X_segment.shape[1]}) initial centers")
        return init

    def _fit(self, X, y, X_segment, groups, eval_set):
        dp = self._check_params()
        if groups is not None and self.partition != "natural":
            raise ValueError(f"groups were given but method.partition={self.partition!r}; groups define "
                             f"the clients only with partition='natural'")
        self.costs_ = costs = Costs()
        t0 = time.perf_counter()
        with private_run_dir(self.work_dir, keep=bool(self.keep_run_dir)) as run_dir:
            with costs.phase("prepare"):
                parts = self._prepare(run_dir, X, y, X_segment, groups, eval_set, dp)
            if self.engine == "deployment":
                from methods.federated.deployment import run_deployment

                result = run_deployment(run_dir, len(parts), secure=self.secure, verbose=self.verbose,
                                        runtime=self.supernode, network=self.network)
            else:
                result = run_federation(run_dir, len(parts), num_cpus=self.num_cpus, verbose=self.verbose,
                                        reuse=self.ray_reuse)
        self.last_run_dir_ = run_dir  # deleted unless keep_run_dir; names the run's processes
        self._learn(result, X_segment, y, parts, dp, fit_s=time.perf_counter() - t0)
        return self

    def _prepare(self, run_dir: Path, X, y, X_segment, groups, eval_set, dp) -> list[np.ndarray]:
        """The client split, and the run's files: settings, each client's rows, the initial
        centers and the server's held-out set. Returns the split (row indices per client)."""
        parts = make_partition(self.partition, y, self.num_clients, self.random_state, self.alpha, groups)
        self.partitions_ = parts
        init = self._initial_centers(X_segment) if "kmeans" in self._tasks else None
        spec = {
            "tasks": list(self._tasks), "num_clients": len(parts), "n_clusters": self.n_clusters,
            "seed": self.random_state, "tol": float(self.tol), "max_iter": self.max_iter,
            "seed_candidates": self.seed_candidates or self.n_clusters, "rounds": self.rounds,
            "local_epochs": self.local_epochs, "batch_size": self.batch_size,
            "learning_rate": float(self.learning_rate), "l2": 1.0 / (float(self.C) * len(y)),
            "n_features": X.shape[1], "dp": dp, "keep_server_view": bool(self.keep_server_view),
            "segments_in_predictor": bool(self.segments_in_predictor),
            # a ping warms up Ray's workers, or the warm SuperNodes (the run's FAB fetched and
            # installed, its context made); with stock SuperNodes it would warm nothing up
            "warmup": "nodes" if (self.engine, self.supernode) == ("deployment", "stock") else "ping",
        }
        (run_dir / "run.json").write_text(json.dumps(spec, indent=1))
        for i, idx in enumerate(parts):
            np.savez(run_dir / f"client-{i}.npz", X=X[idx], y=y[idx], X_segment=X_segment[idx])
        if init is not None:
            np.save(run_dir / "init.npy", init)
        if eval_set is not None and "logreg" in self._tasks:
            Xe, ye, Se = eval_set
            np.savez(run_dir / "eval.npz", X=np.asarray(Xe, float), y=np.asarray(ye),
                     X_segment=np.asarray(Se, float))
        return parts

    def _learn(self, result: dict, X_segment, y, parts, dp, fit_s: float) -> None:
        costs = self.costs_
        # Start-up is everything before the ServerApp's first protocol message: importing and
        # starting the engine (Ray's node and job, or the SuperLink and SuperNodes and `flwr run`),
        # the engine booting the ServerApp, and the warm-up (waiting for every node; in simulation
        # also Ray starting the client workers). It has no bytes and no round.
        warmup = sum(ex["seconds"] for ex in result["exchanges"] if ex["phase"] == "warmup")
        exchanges = [ex for ex in result["exchanges"] if ex["phase"] != "warmup"]
        launched_at = result.get("launched_at", result["server_started_at"])
        boot = max(result["server_started_at"] - launched_at, 0.0)
        startup = boot + warmup
        protocol = result["server_wall_s"] - warmup
        costs.phases["startup"] = startup
        costs.phases["federation"] = protocol
        costs.phases["engine_stop"] = result["shutdown_s"]
        costs.extra["startup_s"] = startup
        # fit without start-up and without stopping the engine: preparing the clients' files and
        # running the protocol, plus what the engine spends between (reading the result back)
        costs.extra["train_s"] = max(fit_s - startup - result["shutdown_s"], 0.0)
        node_client = {e["node"]: e["client"] for ex in exchanges for e in ex["received"]}
        server = costs.party("server")
        server.cpu_s = result["server_cpu_s"]
        for ex in exchanges:
            costs.phases[f"federation.{ex['phase']}"] = (
                costs.phases.get(f"federation.{ex['phase']}", 0.0) + ex["seconds"])
            for node, b in ex["bytes_down"].items():  # node ids: JSON object keys, so strings
                server.bytes_sent += b
                costs.party(f"client-{node_client.get(int(node), node)}").bytes_received += b
            for node, b in ex["bytes_up"].items():
                server.bytes_received += b
                costs.party(f"client-{node_client.get(int(node), node)}").bytes_sent += b
            for e in ex["received"]:
                costs.party(f"client-{e['client']}").cpu_s += float(e["metrics"].get("cpu-s", 0.0))
        costs.rounds = len(exchanges)
        per_round = [{"phase": ex["phase"], "round": ex["round"], "seconds": ex["seconds"],
                      "bytes_down": sum(ex["bytes_down"].values()),
                      "bytes_up": sum(ex["bytes_up"].values())} for ex in exchanges]
        self.history_ = {"kmeans": result.get("kmeans_curve", []), "fedavg": result.get("fedavg_curve", []),
                         "rounds": per_round}
        engine = result.get("engine", "simulation")
        costs.extra["federated"] = {
            "engine": engine,
            # start-up, kept out of training time (costs.startup_s): engine boot + warm-up
            "startup_s": startup,
            "engine_boot_s": boot,
            "warmup_s": warmup,
            "shutdown_s": result["shutdown_s"],
            **({"import_s": result["import_s"], "ray_start_s": result["ray_start_s"],
                "ray_connect_s": result["ray_connect_s"], "ray_reused": result["ray_start_s"] == 0.0,
                "simulation_s": result["simulation_s"]} if engine == "simulation" else
               {"launch_s": result["launch_s"], "run_id": result["run_id"],
                "supernode": result.get("runtime", "stock"),
                # the SuperLink's own count of the run's bytes (Flower's `flwr ls`), for comparison
                # with bytes_total, counted per message by the ServerApp
                "superlink_traffic": result.get("superlink_traffic")}),
            "num_clients": len(parts),
            "client_sizes": [len(p) for p in parts],
            "client_positive_rate": [float(y[p].mean()) for p in parts],
            "kmeans_rounds": result.get("kmeans_rounds"),
            "kmeans_converged": result.get("kmeans_converged"),
            "per_round": per_round,
            "fedavg_curve": self.history_["fedavg"],
        }
        if result.get("wire"):  # the bytes that crossed the shaped client-server links
            costs.extra["wire"] = result["wire"]
        self.server_view_ = [{k: ex[k] for k in ("phase", "round", "sent", "received")} for ex in exchanges]
        if "centers" in result:
            self.cluster_centers_ = result["centers"]
            self.initial_centers_ = result["initial_centers"]
            self.labels_ = nearest_center(X_segment, self.cluster_centers_)
            self.n_iter_ = result["kmeans_rounds"]
        if "coef" in result:
            self.coef_, self.intercept_ = result["coef"], result["intercept"]
        self.privacy_ = self._privacy({**dp, **result["dp"]} if dp and "dp" in result else None)

    def _privacy(self, dp: dict | None) -> Privacy:
        revealed = {
            "server": (
                "per client: its row count, per-feature sums and sums of squares, its k-FED seeding "
                "candidates with their cluster sizes (a size of 1 is a record), and in every K-means "
                "round its per-cluster sums and counts (a count of 1 is a record); in every FedAvg round "
                "its locally trained model (clipped when DP is on), example count and training loss; "
                "the held-out evaluation set"),
            "clients": "their own rows; the global centroids and the global model of every round",
        }
        if isinstance(self.init, str) and self.init == "reference":
            revealed["server"] += "; init='reference' computes the initial centers from all rows centrally"
        extra: dict[str, Any] = {"partition": self.partition, "num_clients": len(self.partitions_)}
        if dp:
            extra["dp"] = {**dp, "scope": "FedAvg model updates, client level; K-means statistics are "
                           "not noised"}
        return Privacy(
            threat_model="honest-but-curious server, honest clients, no secure aggregation"
                         + ("; central client-level DP on the model" if dp else ""),
            epsilon=dp["epsilon"] if dp else None, delta=dp["delta"] if dp else None,
            revealed=revealed, extra=extra,
        )

    # -- what the server saw, in the shapes benchmarks.attacks reads ----------------------------
    def _exchanges(self, phase: str, key: str) -> list[dict]:
        view = getattr(self, "server_view_", None) or []
        return [ex for ex in view if ex["phase"] == phase and ex["received"]
                and all(key in e.get("arrays", {}) for e in ex["received"])]

    @staticmethod
    def _by_client(ex: dict) -> list[dict]:
        return sorted(ex["received"], key=lambda e: e["client"])

    @property
    def client_rows_(self) -> list[np.ndarray]:
        """Each client's row indices in the training data (the attacks' ground truth)."""
        return self.partitions_

    @property
    def client_updates_(self) -> dict | None:
        """Every client's FedAvg model per round as the server received it, with the global model
        it started from: ``w`` (rounds, clients, d), ``b`` (rounds, clients), ``global_w``, ``global_b``."""
        rounds = self._exchanges("fedavg", MODEL)
        if not rounds or any(not ex["sent"] for ex in rounds):
            return None
        n = sum(len(p) for p in self.partitions_)
        models = np.stack([[e["arrays"][MODEL] for e in self._by_client(ex)] for ex in rounds])
        sent = np.stack([ex["sent"][MODEL] for ex in rounds])
        return {
            "w": models[..., :-1], "b": models[..., -1], "kind": "params",
            "global_w": sent[:, :-1], "global_b": sent[:, -1],
            "lr": float(self.learning_rate),
            "l2": 1.0 / (float(self.C) * n),
        }

    def _kmeans_stat(self, part: int) -> np.ndarray | None:
        rounds = self._exchanges("kmeans", SUMS)
        if not rounds:
            return None
        return np.stack([[unpack_sums(e["arrays"][SUMS])[part] for e in self._by_client(ex)]
                         for ex in rounds])

    @property
    def kmeans_client_counts_(self) -> np.ndarray | None:
        """Per-client cluster counts of every federated K-means round, (rounds, clients, k)."""
        return self._kmeans_stat(1)

    @property
    def kmeans_client_sums_(self) -> np.ndarray | None:
        """Per-client cluster sums of every federated K-means round, (rounds, clients, k, d)."""
        return self._kmeans_stat(0)

class FederatedMethod(MethodMixin, _Federation):
    """Federated K-means, then FedAvg logistic regression on all features plus the segment
    one-hot (parameters: :class:`_Federation`). A binary scikit-learn classifier
    (:class:`methods._estimator.MethodMixin`)."""

    name: ClassVar[str] = "federated"
    dataset_overrides: ClassVar[dict] = {}
    fit_inputs: ClassVar[tuple[str, ...]] = ("feature_names", "eval_set")

    def fit(self, X, y, X_segment=None, *, feature_names: Sequence[str] | None = None, eval_set=None):
        """Fit on the training rows. ``feature_names`` (the columns of ``X``) are needed for
        ``partition="natural"``; ``eval_set=(X, y, X_segment)`` is the server's held-out set,
        scored after every FedAvg round (``history_["fedavg"]``)."""
        X, y, X_segment = self._fit_arrays(X, y, X_segment)
        groups = None
        if self.partition == "natural":
            if feature_names is None:
                raise ValueError("method.partition='natural' needs fit(..., feature_names=...) to find "
                                 f"the one-hot columns of method.partition_column={self.partition_column!r}")
            groups, self.group_names_ = onehot_groups(X, feature_names, self.partition_column)
        return self._fit(X, y, X_segment, groups, eval_set)

    # -- use -----------------------------------------------------------------------------------
    def segment(self, X_segment):
        return nearest_center(np.asarray(X_segment, dtype=float), self.cluster_centers_)

    def _decision(self, X, X_segment):
        Z = with_segments(np.asarray(X, dtype=float), self.segment(X_segment), self.n_clusters,
                          self.segments_in_predictor)
        return Z @ self.coef_ + self.intercept_

    def decision_function(self, X, X_segment=None):
        """The linear score of ``classes_[1]`` (the global model on features + segment one-hot)."""
        return self._decision(*self._predict_arrays(X, X_segment))

    def _proba(self, X, X_segment):
        return expit(self._decision(X, X_segment))


class FederatedKMeans(KMeansMixin, _Federation):
    """Federated K-means alone, on any array: ``FederatedKMeans(n_clusters=4).fit(X).labels_``
    (parameters: :class:`_Federation`; the FedAvg ones are not used). A scikit-learn cluster
    estimator and transformer like :class:`sklearn.cluster.KMeans`: ``predict``, ``transform`` and
    ``score`` use the global centroids. With ``partition="natural"``, ``groups`` (one label per
    row) says which client holds each row; ``y`` (optional) is what ``partition="dirichlet"``
    skews the clients by."""

    _tasks = ("kmeans",)

    def fit(self, X, y=None, groups=None):
        X = validate_data(self, X, dtype=np.float64)
        check_n_clusters(self.n_clusters, len(X))
        # y only skews a dirichlet partition: its classes as codes 0..c-1 (any dtype, objects too)
        y = np.zeros(len(X), dtype=np.int64) if y is None else \
            np.unique(np.asarray(y), return_inverse=True)[1]
        if len(y) != len(X):
            raise ValueError(f"y has {len(y)} rows; expected one per row of X ({len(X)})")
        self._fit(np.empty((len(X), 0)), y, X, groups, None)
        self.inertia_ = float(((X - self.cluster_centers_[self.labels_]) ** 2).sum())
        return self


class FedAvgLogisticRegression(ClassifierMixin, _Federation):
    """FedAvg logistic regression alone, on any array: ``.fit(X, y).predict_proba(X)[:, 1]``
    (parameters: :class:`_Federation`; the K-means ones are not used). A binary scikit-learn
    classifier: ``classes_`` are the two labels of ``y``, ``n_iter_`` the FedAvg rounds run (an
    array of one, as LogisticRegression's). ``eval_set=(X, y)`` is scored after
    every round; with ``partition="natural"``, ``groups`` (one label per row) says which client
    holds each row."""

    _tasks = ("logreg",)

    def __sklearn_tags__(self):
        return binary_tags(super().__sklearn_tags__())

    def fit(self, X, y, groups=None, eval_set=None):
        X, y = validate_data(self, X, y, dtype=np.float64)
        y = encode_binary(self, y)
        if eval_set is not None:
            Xe, ye = eval_set
            ye = np.searchsorted(self.classes_, np.asarray(ye))
            eval_set = (Xe, ye, np.empty((len(ye), 0)))
        self._fit(X, y, np.empty((len(X), 0)), groups, eval_set)
        self.n_iter_ = np.array([self.rounds])  # FedAvg rounds, as LogisticRegression's (1,) array
        return self

    def decision_function(self, X):
        """The linear score of ``classes_[1]`` (the global model)."""
        check_is_fitted(self)
        X = validate_data(self, X, reset=False, dtype=np.float64)
        return X @ self.coef_ + self.intercept_

    def predict_proba(self, X):
        p = expit(self.decision_function(X))
        return np.column_stack([1.0 - p, p])

    def predict(self, X):
        positive = self.decision_function(X) >= 0.0
        return self.classes_[positive.astype(np.int64)]
