"""The :class:`HEKMeans` estimator and the BFV reference Lloyd (:func:`quantized_lloyd`).

The estimator validates its parameters, encodes the data (CKKS reals, or BFV fixed point
``round(x * 2**frac_bits)``), runs :class:`~methods.he.kmeans_protocol.KMeansProtocol` in a
:class:`~methods.he.transport.Pool` and records costs, op counts and what each party saw. The
parties are in :mod:`methods.he.kmeans_keyholder`, :mod:`~methods.he.kmeans_server` and
:mod:`~methods.he.kmeans_owner`; the parameters and their 128-bit check in
:mod:`methods.he.crypto`. See docs/he.md.
"""

from __future__ import annotations

import time
from typing import Any, ClassVar

import numpy as np
from sklearn.base import BaseEstimator
from sklearn.utils.validation import validate_data

from methods._estimator import KMeansMixin, check_n_clusters
from methods.base import Costs
from methods.he import remote
from methods.he.blinding import FINAL_ROUND
from methods.he.crypto import (
    BLIND_FACTOR,
    HEParams,
    bfv_bounds,
    choose_plain_modulus,
    resolve_params,
    round_half_up,
)
from methods.he.kmeans_protocol import KMeansProtocol

INITS = ("kmeans++", "kmeans_parallel", "random")
BACKENDS = ("local", "ray")


def check_backend(backend, ray_address, transport) -> None:
    """The data-free checks of where the workers run (ValueError naming the parameter)."""
    from methods.he.ray_pool import check_address

    if backend not in BACKENDS:
        raise ValueError(f"backend={backend!r}; expected one of {list(BACKENDS)} (where the HE workers run)")
    if backend == "local" and ray_address is not None:
        raise ValueError(f"ray_address={ray_address!r} needs backend='ray' (backend='local' runs the "
                         "workers as processes of this machine)")
    if backend == "ray" and transport != "local":
        raise ValueError(f"backend='ray' with transport={transport!r}: the gRPC services run their own "
                         "worker pools; use transport='local' with Ray actors")
    check_address(ray_address)


def quantized_lloyd(Xq: np.ndarray, init_q: np.ndarray, max_iter: int, tol: float = 0.0):
    """Plaintext Lloyd on integer data with integer centroids (``round_half_up`` of each mean), the
    reference the BFV protocol must match exactly. Returns (labels, centers, n_iter)."""
    X = np.asarray(Xq, dtype=object)
    C = np.asarray(init_q, dtype=object)
    n_iter = 0
    Xi = np.asarray(Xq, dtype=np.int64)
    for _ in range(max_iter):
        Ci = C.astype(np.int64)
        scores = (Ci**2).sum(1)[None, :] - 2 * Xi @ Ci.T
        labels = scores.argmin(1)
        new = C.copy()
        for j in range(len(C)):
            members = X[labels == j]
            if len(members):
                new[j] = round_half_up(members.sum(0), len(members))
        shift = float(((new - C).astype(float) ** 2).sum())
        C, n_iter = new, n_iter + 1
        if shift <= tol:
            break
    Ci = C.astype(np.int64)
    labels = ((Ci**2).sum(1)[None, :] - 2 * Xi @ Ci.T).argmin(1)
    return labels, Ci, n_iter


class HEKMeans(KMeansMixin, BaseEstimator):
    """K-means on ciphertexts: an outside server clusters records it cannot read.

    A scikit-learn cluster estimator and transformer, like :class:`sklearn.cluster.KMeans`:
    ``predict``, ``transform`` and ``score`` use the released centroids in the clear (owner side).
    A pickled model keeps what was released; the key holder (its secret key) is left out.

    Parameters
    ----------
    n_clusters : int
        1 runs no protocol: the one centroid is the mean of the rows, computed by the owner.
    init : {"kmeans++", "kmeans_parallel", "random"} or array (n_clusters, n_features)
        Secure D^2 seeding, k-means|| (fewer rounds), uniform records, or given centers.
    scheme : {"ckks", "bfv"}
        CKKS approximate reals, or BFV on fixed-point integers ``round(x * 2**frac_bits)``.
    max_iter, tol : int, float
        Stop after ``max_iter`` Lloyd iterations or when the squared centroid shift (summed over
        clusters, in the data's units) is at most ``tol``.
    permute : bool
        Also permute each point's k blinded scores (the key holder does not learn intermediate labels).
    workers : int
        Worker processes; each keeps its own contexts and chunks for the whole run.
    backend : {"local", "ray"}
        Where the workers run: processes of this machine's pool, or Ray actors
        (:mod:`methods.he.ray_pool`) on the cluster at ``ray_address`` or on a Ray node started for
        the run (``ray_address=None``). Same labels, centroids and op counts either way.
    ray_address : "HOST:PORT", "auto" or None
        A running Ray cluster's head (``backend="ray"`` only).
    random_state : int or None
    poly_modulus_degree, coeff_mod_bit_sizes, scale_bits, frac_bits :
        Encryption parameters (defaults in :mod:`methods.he.crypto`, 128-bit secure).
    allow_insecure : bool
        Accept parameters below 128-bit security (tests only; recorded).
    parallel_rounds, oversampling : k-means|| rounds and candidates per round (default 2k).
    local_trials : int or None
        k-means++ candidates per step, D^2-sampled, the best kept (default 2 + ln k as in
        scikit-learn; 1 = plain k-means++).
    assignment_context : bytes or None
        A public context (e.g. the encrypted predictor's); the final one-hot assignments are then
        encrypted under it (``encrypted_assignments_``) instead of under the K-means context.
    assignment_chunk_size : int or None
        Records per ciphertext for those assignments (default: this run's slots).
    keep_transcript : bool
        Keep every message in ``channel_.transcript`` (security tests).
    transport : {"local", "grpc"}
        ``local``: every party's shards in this process's pool; ``grpc``: the compute server (and
        the key holder's shards) in services (:mod:`methods.he.serve`), at ``server`` /
        ``keyholder`` or started for the run on 127.0.0.1 (:mod:`methods.he.remote`).
    server, keyholder : "HOST:PORT" or None
        Running services to use (``keyholder=None`` with a ``server``: this process holds the key).
    tls, tls_cert : bool, path or None
        TLS on the links (a certificate made for the run, or the given services' ``tls_cert``).
    token_file : path or None
        The given services' run token (else ``$PRIVMARK_HE_TOKEN``).
    network : dict or None
        ``{name, bandwidth_mbit, rtt_ms}`` applied to the link to the server (grpc only).

    Attributes
    ----------
    labels_, cluster_centers_, n_iter_, inertia_, n_features_in_, costs_, params_, ops_, init_centers_,
    encrypted_assignments_ (list over chunks of k serialized ciphertexts, column-major one-hot),
    public_context_ (bytes of the K-means public context: the owner's), server_context_ (the server's:
    with the relinearisation keys in CKKS), channel_.
    """

    name: ClassVar[str] = "he_kmeans"

    def __init__(self, n_clusters=4, init="kmeans++", scheme="ckks", max_iter=300, tol=1e-4, permute=False,
                 workers=1, random_state=None, poly_modulus_degree=None, coeff_mod_bit_sizes=None,
                 scale_bits=None, frac_bits=None, allow_insecure=False, parallel_rounds=5,
                 oversampling=None, local_trials=None, assignment_context=None,
                 assignment_chunk_size=None, keep_transcript=False, transport="local", server=None,
                 keyholder=None, tls=False, tls_cert=None, token_file=None, network=None, backend="local",
                 ray_address=None):
        self.n_clusters = n_clusters
        self.init = init
        self.scheme = scheme
        self.max_iter = max_iter
        self.tol = tol
        self.permute = permute
        self.workers = workers
        self.random_state = random_state
        self.poly_modulus_degree = poly_modulus_degree
        self.coeff_mod_bit_sizes = coeff_mod_bit_sizes
        self.scale_bits = scale_bits
        self.frac_bits = frac_bits
        self.allow_insecure = allow_insecure
        self.parallel_rounds = parallel_rounds
        self.oversampling = oversampling
        self.local_trials = local_trials
        self.assignment_context = assignment_context
        self.assignment_chunk_size = assignment_chunk_size
        self.keep_transcript = keep_transcript
        self.transport = transport
        self.server = server
        self.keyholder = keyholder
        self.tls = tls
        self.tls_cert = tls_cert
        self.token_file = token_file
        self.network = network
        self.backend = backend
        self.ray_address = ray_address

    # ---------------------------------------------------------------- validation
    def _check_params(self) -> HEParams:
        """The parameter checks that need no data; returns the encryption parameters (defaults
        filled, 128-bit security checked; the BFV plain modulus is chosen on the data)."""
        if isinstance(self.init, str) and self.init not in INITS:
            raise ValueError(f"init={self.init!r}; expected one of {list(INITS)} or an array of centers")
        if not isinstance(self.max_iter, (int, np.integer)) or not 1 <= self.max_iter < FINAL_ROUND:
            raise ValueError(f"max_iter={self.max_iter!r}; expected an integer in [1, {FINAL_ROUND})")
        if not (np.isfinite(self.tol) and self.tol >= 0):
            raise ValueError(f"tol={self.tol!r}; expected a finite number >= 0")
        if not isinstance(self.workers, (int, np.integer)) or self.workers < 1:
            raise ValueError(f"workers={self.workers!r}; expected an integer >= 1")
        if self.local_trials is not None and (not isinstance(self.local_trials, (int, np.integer))
                                              or self.local_trials < 1):
            raise ValueError(f"local_trials={self.local_trials!r}; expected an integer >= 1 or None")
        if not isinstance(self.parallel_rounds, (int, np.integer)) or self.parallel_rounds < 1:
            raise ValueError(f"parallel_rounds={self.parallel_rounds!r}; expected an integer >= 1")
        remote.check_link(self.transport, self.server, self.keyholder, self.tls, self.tls_cert,
                          self.token_file, self.network)
        check_backend(self.backend, self.ray_address, self.transport)
        return resolve_params(self.scheme, self.poly_modulus_degree, self.coeff_mod_bit_sizes,
                              self.scale_bits, self.frac_bits, self.allow_insecure)

    def _check(self, X) -> np.ndarray:
        """The checks on the data (and on the parameters that depend on it)."""
        X = validate_data(self, X, dtype=np.float64)
        k = check_n_clusters(self.n_clusters, len(X))
        if not isinstance(self.init, str):
            init = np.asarray(self.init, dtype=float)
            if init.shape != (k, X.shape[1]) or not np.isfinite(init).all():
                raise ValueError(f"init array has shape {init.shape}; expected finite ({k}, {X.shape[1]})")
        return X

    def _resolve(self, X: np.ndarray, params: HEParams) -> tuple[HEParams, np.ndarray, Any]:
        init = self.init
        if params.scheme == "ckks":
            # worst-case blinded score difference r * (||c_j||^2 - ||c_0||^2 - 2 x.(c_j - c_0)) and
            # seeding distance sigma ||x - c||^2 (centroids are means: ||c||^2 <= max ||x||^2 = r2)
            # must fit the degree-3 headroom
            r2 = float((X**2).sum(1).max())
            worst = BLIND_FACTOR * 6 * r2
            if worst >= 2.0**params.headroom_bits:
                raise ValueError(
                    f"data too large for CKKS headroom: blinded values reach {worst:.3e} >= "
                    f"2^{params.headroom_bits}; scale the data or use a larger coefficient modulus")
            return params, X, init
        scale = 2.0**params.frac_bits
        Xq = np.rint(X * scale).astype(np.int64)
        # public magnitude bound: the next power of two above max |x~| (reveals only its bit length)
        x_max = 1 << int(np.abs(Xq).max()).bit_length()
        params = choose_plain_modulus(params, bfv_bounds(x_max, X.shape[1], len(X)), bool(self.permute))
        if not isinstance(init, str):
            init = np.rint(np.asarray(init, dtype=float) * scale).astype(np.int64)
        return params, Xq, init

    # ---------------------------------------------------------------- fit
    def fit(self, X, y=None):
        X = self._check(X)
        params, Xenc, init = self._resolve(X, self._check_params())
        self.params_ = params
        if int(self.n_clusters) == 1:
            return self._fit_one_segment(X, params)
        seed = self.random_state
        if seed is None:
            seed = int(np.random.SeedSequence().entropy % 2**32)
        proto = KMeansProtocol(params, int(self.n_clusters), workers=int(self.workers),
                               permute=bool(self.permute), seed=int(seed),
                               keep_transcript=self.keep_transcript)
        wall = time.perf_counter()
        C0, C, n_iter, labels, served = self._run(proto, Xenc, init, params)
        self.wall_s_ = time.perf_counter() - wall
        proto.channel.charge(proto.costs)
        scale = 2.0**params.frac_bits if params.scheme == "bfv" else 1.0
        self.init_centers_ = np.asarray(C0, dtype=float) / scale
        self.cluster_centers_ = np.asarray(C, dtype=float) / scale
        self.centers_encoded_ = C
        self.labels_ = labels.astype(np.int64)
        self.n_iter_ = n_iter
        self.inertia_ = float(((X - self.cluster_centers_[self.labels_]) ** 2).sum())
        self.encrypted_assignments_ = served
        self.public_context_ = proto.public_context
        self.server_context_ = proto.server_context
        self.channel_ = proto.channel
        self.keyholder_ = proto.keyholder
        self.costs_ = proto.costs
        self.max_decryption_error_ = self._decryption_error(X, proto.last_labels, params)
        self.costs_.extra.update({
            "he_params": params.to_dict(),
            "ops": dict(self.ops_),
            "public_context_bytes": len(proto.public_context),
            "ciphertext_bytes": _ct_size(served),
            "n_iter": n_iter,
            "ckks_max_error": self.max_decryption_error_,
            "channel_stages": {k: dict(v) for k, v in proto.channel.stages.items()},
        })
        return self

    def _fit_one_segment(self, X: np.ndarray, params: HEParams):
        """``n_clusters=1``: the one segment's centroid is the mean of the rows, which the owner
        computes from its own records; no protocol runs, no ciphertext is made or sent, and neither
        the server nor the key holder learns anything (the released centroid is the same)."""
        wall = time.perf_counter()
        costs = Costs()
        with costs.phase("owner_mean", party="owner"):
            center = X.mean(axis=0, keepdims=True)
        self.wall_s_ = time.perf_counter() - wall
        scale = 2.0**params.frac_bits if params.scheme == "bfv" else 1.0
        self.init_centers_ = center.copy()
        self.cluster_centers_ = center
        self.centers_encoded_ = center * scale if params.scheme == "ckks" else np.rint(center * scale)
        self.labels_ = np.zeros(len(X), dtype=np.int64)
        self.n_iter_ = 1
        self.inertia_ = float(((X - center) ** 2).sum())
        self.encrypted_assignments_ = None
        self.public_context_ = self.server_context_ = None
        self.channel_ = self.keyholder_ = None
        self.ops_ = {}
        self.max_decryption_error_ = None
        costs.extra.update({"he_params": params.to_dict(), "ops": {}, "public_context_bytes": 0,
                            "ciphertext_bytes": None, "n_iter": 1, "ckks_max_error": None,
                            "channel_stages": {}, "one_segment": "the owner's mean; no protocol ran"})
        self.costs_ = costs
        return self

    def _run(self, proto: KMeansProtocol, Xenc: np.ndarray, init, params: HEParams):
        """Setup, seeding, Lloyd and the final assignment in one pool; returns
        (initial centers, centers, iterations, labels, served one-hots), centers encoded."""
        workers, shared = int(self.workers), remote.current()
        with remote.session_for(self, workers) as session, self._pool(session, proto) as pool:
            if shared is None and session.remote:  # services started for this fit
                proto.costs.phases["startup"] = session.startup_s
                proto.costs.extra["startup_s"] = session.startup_s
            if self.backend == "ray":  # node start, connection, actor placement: not the protocol's time
                proto.costs.phases["startup"] = pool.startup_s
                proto.costs.extra["startup_s"] = pool.startup_s
                proto.costs.extra["ray"] = {"address": pool.address,
                                            "placement": [list(p) for p in pool.placement],
                                            "nodes": len({node for node, _ in pool.placement})}
            proto.setup(Xenc, pool)
            proto.channel.stage = "seeding"
            with proto.costs.phase("seeding"):
                C0 = proto.seed(init, int(self.n_clusters), int(self.parallel_rounds), self.oversampling,
                                self.local_trials)
            tol = self.tol * (4.0**params.frac_bits if params.scheme == "bfv" else 1.0)
            proto.channel.stage = "lloyd"
            with proto.costs.phase("lloyd"):
                C, n_iter = proto.lloyd(C0, int(self.max_iter), tol)
            proto.channel.stage = "final_assignment"
            with proto.costs.phase("final_assignment"):
                labels, served = proto.finish(C, n_iter, self.assignment_context, self.assignment_chunk_size)
            self.ops_ = proto.op_counts()
        for party, cpu in pool.cpu.items():
            proto.costs.party(party).cpu_s += cpu
        if session.remote:
            proto.costs.extra["wire"] = session.wire()
        return C0, C, n_iter, labels, served

    def _pool(self, session, proto: KMeansProtocol):
        if self.backend == "ray":
            from methods.he.ray_pool import RayPool

            return RayPool(int(self.workers), self.ray_address)
        return session.pool(int(self.workers), proto.channel)

    def _decryption_error(self, X: np.ndarray, last, params: HEParams) -> float | None:
        """Owner-side check: decrypted centroids of the last update against the exact means of the
        records assigned in that iteration (the CKKS error of the whole update)."""
        if params.scheme != "ckks" or last is None:
            return None
        errs = [np.abs(X[last == j].mean(0) - self.cluster_centers_[j]).max()
                for j in range(self.n_clusters) if (last == j).any()]
        return float(max(errs)) if errs else None

    def __getstate__(self):
        state = super().__getstate__()
        state.pop("keyholder_", None)  # the secret key never leaves the process in a pickle
        return state

    def revealed(self) -> dict[str, str]:
        """What each party saw in this run (for ``privacy.revealed``)."""
        perm = " in a per-point random cluster order (intermediate labels hidden)" if self.permute else ""
        return {
            "server": "ciphertexts only (public key, relinearisation keys and, in CKKS, the complex-"
                      "conjugation key; no secret key, no rotation keys); "
                      "public sizes n, d, k, the number of iterations and the encryption parameters"
                      + ("; BFV plain modulus reveals the bit length of max|x|"
                         if self.scheme == "bfv" else ""),
            "keyholder": "per Lloyd iteration, each point's k scores blinded as r_i*s_ij + o_i" + perm
                         + " and its argmin; cluster sums and counts scaled by a secret per-cluster "
                           "factor and masked per slot (only their ratios, the centroids, are learned); "
                           "during seeding D^2 up to a secret common factor and the chosen centers; "
                           "the final labels",
            "owner": "its own records, the centroids and the labels",
        }


def _ct_size(served) -> int | None:
    try:
        return len(served[0][0])
    except (IndexError, TypeError):
        return None

