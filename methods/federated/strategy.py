"""Server-side strategies: federated K-means (exact Lloyd from per-client sums and counts, k-FED
seeding) as a Flower message-API strategy, and the closed-form RDP ε of the un-subsampled Gaussian
mechanism, against which Flower's own accountant is checked.

The arithmetic lives in plain functions (:func:`aggregate_kmeans`, :func:`kfed_init`) so that it can
be checked without starting Flower or Ray.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from logging import INFO

import numpy as np
from flwr.app import ArrayRecord, ConfigRecord, Message, MetricRecord, RecordDict
from flwr.serverapp import Grid
from flwr.serverapp.strategy import Strategy
from flwr.serverapp.strategy.strategy_utils import sample_nodes
from flwr.supercore import log

from methods.federated.schema import SUMS, unpack_sums
from methods.kmeans_core import cluster_sums, m_step, squared_distances, weighted_kmeans_pp, weighted_lloyd

SEED = "train.seed"  # message types: clients register a handler per action
KMEANS = "train.kmeans"


# -- K-means arithmetic ---------------------------------------------------------------------------
def local_sums(X: np.ndarray, centers: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
    """A client's reply to one Lloyd round: per-cluster sums, counts and its inertia."""
    d = squared_distances(X, centers)
    labels = d.argmin(1)
    sums, counts = cluster_sums(X, labels, len(centers))
    inertia = float(np.maximum(d[np.arange(len(X)), labels], 0.0).sum())
    return sums, counts, inertia


def aggregate_kmeans(centers: np.ndarray, sums: Sequence[np.ndarray], counts: Sequence[np.ndarray]
                     ) -> tuple[np.ndarray, np.ndarray]:
    """New centers from every client's per-cluster sums and counts: exactly one Lloyd M-step over the
    union of the clients' rows. A cluster no client assigned keeps its previous center."""
    n = np.sum(np.stack(counts), axis=0)
    return m_step(centers, np.sum(np.stack(sums), axis=0), n), n


def kfed_init(candidates: np.ndarray, weights: np.ndarray, k: int, seed: int, lloyd_iter: int = 100
              ) -> np.ndarray:
    """k-FED seeding at the server: weighted k-means++ over the clients' local centers (weights =
    their local cluster sizes), refined by weighted Lloyd on those candidates only."""
    rng = np.random.default_rng(seed)
    candidates, weights = np.asarray(candidates, float), np.asarray(weights, float)
    keep = weights > 0
    candidates, weights = candidates[keep], weights[keep]
    if len(candidates) < k:
        raise ValueError(f"{len(candidates)} seeding candidates for {k} clusters; the clients proposed too "
                         f"few (raise method.seed_candidates)")
    centers = weighted_kmeans_pp(candidates, weights, k, rng)
    return weighted_lloyd(candidates, weights, centers, lloyd_iter)


# -- the Flower strategy --------------------------------------------------------------------------
class KMeansStrategy(Strategy):
    """Federated Lloyd: each round every client returns per-cluster sums and counts for the global
    centers it was sent; the server adds them up and divides (:func:`aggregate_kmeans`).

    The server app drives the rounds itself (``configure_train`` / ``aggregate_train`` per round,
    stopping on scikit-learn's tolerance rule), because Lloyd stops on convergence rather than after
    a fixed number of rounds. ``configure_seed`` / ``aggregate_seed`` are the k-FED seeding round.
    """

    def __init__(self, n_clusters: int, num_clients: int, seed: int = 0, tol: float = 1e-4):
        self.n_clusters = n_clusters
        self.num_clients = num_clients
        self.seed = seed
        self.tol = tol
        self.tol_abs_: float | None = None  # tol × mean feature variance, known after seeding
        self.n_rows_: int | None = None
        self.shift_: float = math.inf
        self.counts_: np.ndarray | None = None
        self.inertia_: float | None = None

    def summary(self) -> None:
        log(INFO, "\t├──> KMeansStrategy: k=%d, tol=%g (relative, scikit-learn's rule)",
            self.n_clusters, self.tol)

    def _messages(self, content: RecordDict, grid: Grid, message_type: str) -> list[Message]:
        # Every client takes part in every round: Lloyd needs all rows.
        nodes, _ = sample_nodes(grid, self.num_clients, self.num_clients)
        return [Message(content=content, message_type=message_type, dst_node_id=node)
                for node in sorted(nodes)]

    # seeding round ---------------------------------------------------------------------------
    def configure_seed(self, config: ConfigRecord, grid: Grid) -> list[Message]:
        config["n-clusters"] = self.n_clusters
        return self._messages(RecordDict({"config": config}), grid, SEED)

    def aggregate_seed(self, replies: Iterable[Message], init: np.ndarray | None = None) -> np.ndarray:
        """Global feature statistics (for the tolerance) and the initial centers: ``init`` if given,
        otherwise k-FED over the clients' candidates."""
        replies = _valid(replies, "seeding")
        arrays = [r.content["arrays"].to_numpy_ndarrays() for r in replies]
        n = sum(int(r.content["metrics"]["num-examples"]) for r in replies)
        s = np.sum([a[2] for a in arrays], axis=0)
        ss = np.sum([a[3] for a in arrays], axis=0)
        var = np.maximum(ss / n - (s / n) ** 2, 0.0)
        self.n_rows_ = n
        self.tol_abs_ = float(var.mean() * self.tol)
        if init is not None:
            return np.asarray(init, float)
        cands = np.vstack([a[0] for a in arrays])
        weights = np.concatenate([a[1] for a in arrays])
        return kfed_init(cands, weights, self.n_clusters, self.seed)

    # Lloyd rounds ----------------------------------------------------------------------------
    def configure_train(self, server_round: int, arrays: ArrayRecord, config: ConfigRecord, grid: Grid
                        ) -> Iterable[Message]:
        config["server-round"] = server_round
        return self._messages(RecordDict({"arrays": arrays, "config": config}), grid, KMEANS)

    def aggregate_train(self, server_round: int, replies: Iterable[Message]
                        ) -> tuple[ArrayRecord | None, MetricRecord | None]:
        replies = _valid(replies, f"K-means round {server_round}")
        centers = self._current
        sums, counts, inertia = [], [], 0.0
        for r in replies:
            s, c = unpack_sums(r.content["arrays"][SUMS].numpy())
            sums.append(s)
            counts.append(c)
            inertia += float(r.content["metrics"]["inertia"])
        new, n = aggregate_kmeans(centers, sums, counts)
        self.shift_ = float(((new - centers) ** 2).sum())
        self.counts_, self.inertia_ = n, inertia
        self._current = new
        metrics = MetricRecord({"inertia": inertia, "center-shift": self.shift_,
                                "empty-clusters": int((n == 0).sum())})
        return ArrayRecord({"centers": _array(new)}), metrics

    def start_from(self, centers: np.ndarray) -> ArrayRecord:
        self._current = np.asarray(centers, float)
        return ArrayRecord({"centers": _array(self._current)})

    @property
    def converged(self) -> bool:
        return self.tol_abs_ is not None and self.shift_ <= self.tol_abs_

    def configure_evaluate(self, server_round, arrays, config, grid) -> Iterable[Message]:
        return []  # K-means has no federated evaluation step

    def aggregate_evaluate(self, server_round, replies) -> MetricRecord | None:
        return None


def _array(a: np.ndarray):
    from flwr.app import Array

    return Array(np.ascontiguousarray(a))


def by_client(replies: Iterable[Message]) -> list[Message]:
    """Replies in client order (their ``client-id``, the partition id; then the sending node),
    whatever order they arrived in: every aggregation (k-FED's candidate stack, the K-means and
    FedAvg sums, floating-point ones included) then gives the same result for the same seed."""
    def key(r: Message) -> tuple[int, int, int]:
        node = int(r.metadata.src_node_id)
        if not r.has_error() and "metrics" in r.content and "client-id" in r.content["metrics"]:
            return 0, int(r.content["metrics"]["client-id"]), node
        return 1, node, 0

    return sorted(replies, key=key)


def _valid(replies: Iterable[Message], what: str) -> list[Message]:
    replies = by_client(replies)
    errors = [r for r in replies if r.has_error()]
    if errors:
        raise RuntimeError(f"{len(errors)} client(s) failed in {what}: {errors[0].error.reason}")
    if not replies:
        raise RuntimeError(f"no client replied in {what}")
    return replies


# -- privacy accounting ---------------------------------------------------------------------------
#: Rényi orders searched when converting to (ε, δ); dense near 1, sparse far out.
ORDERS = np.concatenate([1.0 + np.geomspace(1e-3, 1.0, 200)[:-1], np.geomspace(2.0, 4096.0, 400)])


def gaussian_rdp_epsilon(noise_multiplier: float, releases: int, delta: float) -> tuple[float, float]:
    """(ε, optimal order) of ``releases`` Gaussian mechanisms with noise ``noise_multiplier`` × sensitivity.

    RDP of one release at order α is α / (2 z²) (Mironov 2017); releases compose additively; the
    conversion to (ε, δ) is Balle et al. 2020 (Prop. 12/Thm. 21), the one Flower's backend uses.
    """
    if releases == 0:
        return 0.0, math.nan
    rdp = releases * ORDERS / (2.0 * noise_multiplier**2)
    eps = rdp + np.log1p(-1.0 / ORDERS) - (math.log(delta) + np.log(ORDERS)) / (ORDERS - 1.0)
    i = int(np.argmin(eps))
    return max(float(eps[i]), 0.0), float(ORDERS[i])
