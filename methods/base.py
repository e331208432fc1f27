"""The contract every privacy technique implements, and the cost/privacy facts it reports.

A method is a scikit-learn estimator (a binary classifier, :class:`methods._estimator.MethodMixin`):
configuration in ``__init__`` (stored unchanged), learning in ``fit``, learned state in attributes
ending in ``_``, ``sklearn.base.clone`` makes a fresh copy. During ``fit`` it fills ``costs_`` (what
it cost, per phase and per party) and ``privacy_`` (who sees what, and any formal guarantee).
"""

from __future__ import annotations

import logging
import resource
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, fields
from typing import Any, ClassVar, Protocol, runtime_checkable

import numpy as np

_log = logging.getLogger("privmark")


@dataclass
class PartyCost:
    cpu_s: float = 0.0
    bytes_sent: int = 0
    bytes_received: int = 0


@dataclass
class Costs:
    """Measured costs of one ``fit``. ``phases`` are wall seconds; ``parties`` are per-party CPU and
    bytes; ``rounds`` counts communication round trips (0 for a method that does not communicate)."""

    phases: dict[str, float] = field(default_factory=dict)
    parties: dict[str, PartyCost] = field(default_factory=dict)
    rounds: int = 0
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def bytes_total(self) -> int:
        """Bytes that crossed between parties (each message counted once, at its sender)."""
        return sum(p.bytes_sent for p in self.parties.values())

    def party(self, name: str) -> PartyCost:
        return self.parties.setdefault(name, PartyCost())

    @contextmanager
    def phase(self, name: str, party: str | None = None) -> Iterator[None]:
        """Time a phase (wall seconds, accumulated); with ``party``, charge its CPU to that party. The
        first start of each phase is logged (the console shows it: no long silence in a job)."""
        if name not in self.phases:
            _log.info("phase %s%s", name, f" ({party})" if party else "")
        wall, cpu = time.perf_counter(), time.process_time()
        try:
            yield
        finally:
            self.phases[name] = self.phases.get(name, 0.0) + time.perf_counter() - wall
            if party is not None:
                self.party(party).cpu_s += time.process_time() - cpu

    def to_dict(self) -> dict[str, Any]:
        return {
            "phases": dict(self.phases),
            "parties": {k: asdict(v) for k, v in self.parties.items()},
            "bytes_total": self.bytes_total,
            "rounds": self.rounds,
            **self.extra,
        }


@dataclass
class Privacy:
    """What the method protects. ``revealed`` maps each party to what it can see."""

    threat_model: str
    epsilon: float | None = None
    delta: float | None = None
    revealed: dict[str, str] = field(default_factory=dict)
    leakage: dict[str, Any] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out.update(out.pop("extra"))
        return out


@dataclass(frozen=True)
class FitInputs:
    """What the runner can hand ``fit`` beyond the training arrays. A method names the fields it
    takes in its ``fit_inputs`` and receives them as keyword arguments of ``fit``; the others are
    not passed. (A method's scratch directory is its own parameter, e.g. federated ``work_dir``.)"""

    #: the columns of ``X``, e.g. to split clients by a categorical column
    feature_names: Sequence[str] | None = None
    #: a held-out ``(X, y, X_segment)`` scored during training (per-round curves); never the
    #: training rows
    eval_set: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None

    def for_method(self, method: Method) -> dict[str, Any]:
        """The keyword arguments of ``method.fit``: the fields it declares in ``fit_inputs``."""
        wanted = tuple(method.fit_inputs)
        unknown = sorted(set(wanted) - {f.name for f in fields(self)})
        if unknown:
            raise TypeError(f"{type(method).__name__}.fit_inputs names {unknown[0]!r}; expected some of "
                            f"{[f.name for f in fields(self)]}")
        return {name: getattr(self, name) for name in wanted}


@runtime_checkable
class Segmenter(Protocol):
    """A released segmentation: ``n_clusters`` segments, a segment for any row."""

    n_clusters: int

    def segment(self, X_segment: np.ndarray) -> np.ndarray: ...


@runtime_checkable
class Method(Segmenter, Protocol):
    """Segmentation (K-means, ``n_clusters`` segments) plus a subscription predictor P(y = 1)."""

    name: ClassVar[str]
    #: Dataset-config overrides the method needs (e.g. public scaling and clipping for DP); a class
    #: attribute, or a property when they depend on the method's parameters.
    dataset_overrides: Mapping[str, Any]
    #: the :class:`FitInputs` fields ``fit`` takes as keyword arguments (``()``: none)
    fit_inputs: ClassVar[tuple[str, ...]]
    random_state: int | None
    cluster_centers_: np.ndarray
    costs_: Costs
    privacy_: Privacy

    def fit(self, X: np.ndarray, y: np.ndarray, X_segment: np.ndarray | None = None) -> Method:
        """Learn from the training rows (``X_segment``: the columns K-means sees, default ``X``);
        the :class:`FitInputs` named in ``fit_inputs`` come as keyword-only arguments
        (``fit(X, y, X_segment, feature_names=...)``)."""

    def predict_proba(self, X: np.ndarray, X_segment: np.ndarray | None = None) -> np.ndarray:
        """``(n, 2)``, one column per class of ``classes_``; column 1 is P(y = 1)."""


# -- artefacts the leakage attacks read (benchmarks/attacks) -------------------------------------
# Optional: a fitted method that has one is attacked on it; one that has not gets the attack
# skipped, with the reason in the record.

@runtime_checkable
class Centroids(Protocol):
    """Released cluster centers, ``(k, d_segment)`` (attacked by the centroid membership attack)."""

    cluster_centers_: np.ndarray


@runtime_checkable
class FederatedServerView(Protocol):
    """What a federated server received from its clients."""

    #: every FedAvg client update as received, or None without FedAvg rounds:
    #: ``{"w": (rounds, clients, d), "b": (rounds, clients), "kind": "delta" | "gradient" | "params"
    #: (default "delta"), "l2": float, "lr": float, "global_w": (rounds, d), "global_b": (rounds,)}``
    #: (``params``: the client's model, turned into deltas with the global model)
    client_updates_: Mapping[str, Any] | None
    #: per client, the indices of its rows in the training data passed to ``fit`` (ground truth)
    client_rows_: Sequence[np.ndarray] | None
    #: federated K-means per-client counts (rounds, clients, k), or None without K-means rounds
    kmeans_client_counts_: np.ndarray | None
    #: and sums (rounds, clients, k, d_segment), or None
    kmeans_client_sums_: np.ndarray | None


@runtime_checkable
class HomomorphicServer(Protocol):
    """A method whose server computes on homomorphic ciphertexts: the ciphertext checks apply."""

    #: the HE scheme the server computes in ("ckks" or "bfv")
    scheme: str


@runtime_checkable
class KeyHolderAudit(Protocol):
    """An HE method whose K-means estimator can keep the key holder's transcript
    (``audit_transcript``), measured against the true distances by :mod:`benchmarks.attacks.he`."""

    #: the fitted HE K-means estimator; its ``channel_.transcript`` holds what the key holder saw
    kmeans_: Any


# -- optional hooks of the runner (benchmarks/run.py) ------------------------------------------

@runtime_checkable
class ScoringCosts(Protocol):
    """A method that charges the scoring of the test split to its costs: after ``fit``, the runner
    times its ``predict_proba`` on the test split and reports it here, once. ``predict_proba`` itself
    records nothing, so its result and ``costs_`` do not depend on how often it is called."""

    def record_scoring(self, wall_s: float, rows: int) -> None: ...


def with_segments(X: np.ndarray, labels: np.ndarray, n_clusters: int, include: bool = True) -> np.ndarray:
    """Model features plus the one-hot of each row's segment; with ``include=False`` (a method's
    ``segments_in_predictor=False``) the model features alone."""
    if not include:
        return np.asarray(X)
    return np.hstack([X, np.eye(n_clusters)[labels]])


def peak_rss_mb() -> float:
    """Peak resident set size of this process and its finished children, MiB."""
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    kids = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return max(own, kids) / 1024.0
