"""K-means on ciphertexts: the three-party protocol and the :class:`HEKMeans` estimator.

Per Lloyd iteration (two rounds, driven by the key holder):

1. key holder -> server: fresh encryptions of ``-2 c_jf`` and ``||c_j||^2`` (replicated in all slots).
   server: ``s_ij = ||c_j||^2 - 2 x_i.c_j`` per chunk (``k*d`` ciphertext products, no
   relinearisation), blinded per point as ``r_i s_ij + o_i`` (``r_i > 0``, ``o_i`` shared by the
   point's ``k`` scores; optionally the ``k`` scores are permuted per point) -> key holder.
2. key holder: decrypts, argmin, fresh encrypted one-hots ``a_ij`` (k - 1 per chunk; the server
   derives the k-th) -> server. server: per-cluster ``rho_j sum_i a_ij x_i`` and ``rho_j sum_i a_ij``
   (chunks added first), each plus a random mask whose slots sum to zero -> key holder, who sums the
   slots and divides (``rho_j`` cancels).

No rotation is needed (the key holder sums slots of masked vectors), so the public context holds
only the public key. See docs/he.md for what each party sees.
"""

from __future__ import annotations

import time
from typing import Any, ClassVar

import numpy as np

from methods.base import Costs
from methods.he.channel import Channel, flatten
from methods.he.parties import (
    blinding_factors,
    blinding_rng,
    chunk_rows,
    cluster_factors,
    onehots_under,
)
from methods.he.pool import Pool, Step
from methods.he.schemes import (
    BLIND_FACTOR,
    CKKS_MASK,
    CKKS_OFFSET,
    Codec,
    HEParams,
    bfv_bounds,
    choose_plain_modulus,
    load_context,
    make_context,
    public_bytes,
    resolve_params,
)
from methods.progress import Progress

INITS = ("kmeans++", "kmeans_parallel", "random")
OWNER, SERVER, KEYHOLDER = "owner", "server", "keyholder"


def d2_sample(values: np.ndarray, rng: np.random.Generator) -> int:
    """One index drawn with probability proportional to ``values`` (scale-free D^2 sampling)."""
    v = np.clip(np.asarray(values, dtype=float), 0.0, None)
    total = v.sum()
    if not total > 0:
        return int(rng.integers(len(v)))
    return int(np.searchsorted(np.cumsum(v), rng.uniform(0.0, total), side="right").clip(0, len(v) - 1))


def round_half_up(num, den):
    """Integer division rounding half up: the BFV centroid update (exact in Python integers)."""
    return (2 * num + den) // (2 * den)


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


class KeyHolder:
    """Holds the secret key; sees blinded values only; answers with fresh encryptions."""

    def __init__(self, params: HEParams):
        self.params = params
        self.ctx = make_context(params)
        self.codec = Codec(self.ctx, params)
        self.ops = {"decrypt": 0, "encrypt_sk": 0}

    def secret_context(self) -> bytes:
        """Serialized secret context, only for the key holder's own worker shards."""
        return self.ctx.serialize(save_secret_key=True)

    def public_context(self) -> bytes:
        return public_bytes(self.ctx)

    def encrypt_assignments(self, labels: np.ndarray, k: int, public_context: bytes | None = None,
                            chunk_size: int | None = None) -> list[list[bytes]]:
        """Fresh encrypted one-hots of ``labels`` (k per chunk of ``chunk_size`` records, default
        this context's slots), under this context or under ``public_context`` (bytes)."""
        size = chunk_size or self.params.slots
        by_chunk = _rechunk(np.asarray(labels), size)
        self.ops["encrypt_sk"] += k * len(by_chunk)
        if public_context is not None:
            out = onehots_under(public_context, by_chunk, k, size)
            return [out[c] for c in sorted(out)]
        chunks = []
        for c in sorted(by_chunk):
            vecs = []
            for j in range(k):
                v = np.zeros(size, dtype=np.int64)
                v[: len(by_chunk[c])] = by_chunk[c] == j
                vecs.append(self.codec.encrypt_bytes(v))
            chunks.append(vecs)
        return chunks

    def update(self, vals: list, k: int, d: int):
        """New centroids from the slot sums of the blinded cluster sums and counts (``rho_j``
        cancels in the ratio); ``None`` rows for empty clusters."""
        sums, counts = vals[: k * d], vals[k * d:]
        C = []
        for j in range(k):
            nj = counts[j]
            if (self.params.scheme == "ckks" and nj < 0.5) or (self.params.scheme == "bfv" and nj <= 0):
                C.append(None)
                continue
            row = sums[j * d:(j + 1) * d]
            if self.params.scheme == "ckks":
                C.append(np.asarray(row, dtype=float) / nj)
            else:
                C.append(np.array([round_half_up(s, nj) for s in row], dtype=np.int64))
        return C


class ComputeServer:
    """The server's coordinator: holds the public context only (its worker shards do the arithmetic)."""

    def __init__(self, params: HEParams, public_context: bytes, seed: int):
        self.params = params
        self.ctx = load_context(public_context)
        if self.ctx.is_private():
            raise ValueError("the compute server's context must not hold a secret key")
        self.seed = seed


class KMeansProtocol:
    """One run of the three parties on one data matrix (rows are the owner's records)."""

    def __init__(self, params: HEParams, n_clusters: int, *, workers: int = 1, permute: bool = False,
                 seed: int = 0, keep_transcript: bool = False):
        self.params = params
        self.k = n_clusters
        self.workers = workers
        self.permute = permute
        seeds = np.random.SeedSequence(seed).spawn(3)
        self.kh_rng = np.random.default_rng(seeds[0])
        self.server_seed = int(seeds[1].generate_state(1)[0])
        self.channel = Channel(keep_transcript=keep_transcript)
        self.costs = Costs()
        self.internal_transfers = 0

    # ---------------------------------------------------------------- plumbing
    def _send(self, sender: str, receiver: str, blobs, tag: str, request: bool = False):
        (self.channel.request if request else self.channel.send)(sender, receiver, flatten(blobs), tag)
        return blobs

    def _split(self, items: dict) -> list[dict]:
        return [{c: items[c] for c in group if c in items} for group in self.groups]

    def _cpu(self, party: str, since: float) -> None:
        self.costs.party(party).cpu_s += time.process_time() - since

    def _chain(self, per_worker: list[list[Step]]) -> list[list]:
        """Run the steps in every worker (bytes between parties stay in the worker, counted on its
        channel and merged into this run's); returns each worker's step outputs."""
        res = self.pool.chain(per_worker, self.channel.stage, self.channel.keep_transcript)
        self.channel.merge([counts for _, counts in res])
        return [outputs for outputs, _ in res]

    def _owners(self, n_vectors: int) -> list[list[int]]:
        """Which worker reduces, masks and hands on each total: an even, contiguous split (the
        reduction is a round of its own, so it is balanced by itself; contiguous ranges reach the
        key holder in order)."""
        return [g.tolist() for g in np.array_split(np.arange(n_vectors), self.workers)]

    def _reduced_slot_sums(self, outgoing: list[dict], owners: list[list[int]], purpose: int, call: int,
                           degrees: list[int], scales: list | None, tag: str) -> list:
        """Second half of a masked sum: the server shards exchange partials (server-internal), each
        adds, masks and scales the totals it owns and hands them to the key holder shard beside it,
        which sums their slots. Returns the slot sums of every vector, in order."""
        incoming = [[out.get(w, {}) for v, out in enumerate(outgoing) if v != w] for w in range(self.workers)]
        self.internal_transfers += sum(len(m) for out in outgoing for m in out.values())
        res = self._chain([[Step(SERVER, "reduce", (incoming[w], owners[w], purpose, call, degrees, scales),
                                 to=KEYHOLDER, tag=tag),
                            Step(KEYHOLDER, "slot_sums")] for w in range(self.workers)])
        vals: list = [None] * sum(len(o) for o in owners)
        for idx, out in zip(owners, res, strict=True):
            for i, v in zip(idx, out[-1], strict=True):
                vals[i] = v
        return vals

    # ---------------------------------------------------------------- setup
    def setup(self, X: np.ndarray, pool: Pool) -> None:
        self.pool = pool
        self.internal_transfers = 0
        self.n, self.d = X.shape
        S = self.params.slots
        self.n_chunks = -(-self.n // S)
        self.groups = [list(g) for g in np.array_split(np.arange(self.n_chunks), self.workers)]
        self.channel.stage = "keys"
        with self.costs.phase("keys"):
            t0 = time.process_time()
            self.keyholder = KeyHolder(self.params)
            public = self.keyholder.public_context()
            secret = self.keyholder.secret_context()
            self._cpu(KEYHOLDER, t0)
            self.public_context = public
            self._send(KEYHOLDER, SERVER, public, "public context")
            self._send(KEYHOLDER, OWNER, public, "public context")
            t0 = time.process_time()
            self.server = ComputeServer(self.params, public, self.server_seed)
            self._cpu(SERVER, t0)
            p = self.params.to_dict()
            pool.broadcast(OWNER, "__init__", (p, public))
            pool.broadcast(SERVER, "__init__", (p, public, self.n, self.server_seed))
            pool.broadcast(KEYHOLDER, "__init__", (p, secret, self.n))
        self.channel.stage = "encrypt"
        with self.costs.phase("encrypt"):
            blocks = {c: X[chunk_rows(self.n, S, c)] for c in range(self.n_chunks)}
            # the owner's worker shards encrypt their own chunks and load them into the server
            # shard beside them: the columns never pass through this process
            self._chain([[Step(OWNER, "encrypt", (b,), to=SERVER, tag="encrypted columns"),
                          Step(SERVER, "load")] for b in self._split(blocks)])

    def encrypt_centers(self, C: np.ndarray) -> list[bytes]:
        """Fresh encryptions of every centroid coordinate, replicated in all slots (key holder's
        worker shards share the work)."""
        values = np.asarray(C).ravel().tolist()
        parts = self.pool.map(KEYHOLDER, "encrypt_replicated",
                              [(list(p),) for p in np.array_split(np.asarray(values, dtype=object),
                                                                  self.workers)])
        return [b for part in parts for b in part]

    # ---------------------------------------------------------------- building blocks
    def extract(self, picks: list[int]) -> np.ndarray:
        """Coordinates of records ``picks`` for the key holder, via encrypted selections (the
        server learns nothing of which records); one round."""
        S = self.params.slots
        sel_picks = [(i // S, i % S) for i in picks]
        self._extractions = getattr(self, "_extractions", 0) + 1
        owners = self._owners(len(picks) * self.d)
        res = self._chain([[Step(KEYHOLDER, "selections", (sel_picks, g), to=SERVER, tag="selections",
                                 request=True),
                            Step(SERVER, "extract_partials", (owners, w))]
                           for w, g in enumerate(self.groups)])
        vals = self._reduced_slot_sums([out[-1] for out in res], owners, 6, self._extractions,
                                       [2] * (len(picks) * self.d), None, "masked extraction")
        dtype = float if self.params.scheme == "ckks" else np.int64
        return np.asarray(vals, dtype=dtype).reshape(len(picks), self.d)

    def distances(self, centers: np.ndarray, sigma) -> np.ndarray:
        """``sigma * ||x_i - c||^2`` for every record and each center, as the key holder sees them
        (``sigma`` is the server's secret common factor); one round. Shape (n, len(centers))."""
        blobs = self.encrypt_centers(centers)
        self._send(KEYHOLDER, SERVER, blobs, "centers", request=True)
        res = self._chain([[Step(SERVER, "distances", (blobs, self.d, sigma), to=KEYHOLDER, tag="blinded D2"),
                            Step(KEYHOLDER, "decrypt_chunks")]] * self.workers)
        vals = {c: v for out in res for c, v in out[-1].items()}
        return np.concatenate([vals[c].T for c in range(self.n_chunks)], axis=0).astype(float)

    def seed(self, init, n_clusters: int, parallel_rounds: int = 5, oversampling: float | None = None,
             local_trials: int | None = None):
        """Initial centers known to the key holder only."""
        k, rng = n_clusters, self.kh_rng
        ckks = self.params.scheme == "ckks"
        sigma_raw = blinding_factors(blinding_rng(self.server_seed, 3), 1, ckks)[0]
        sigma = float(sigma_raw) if ckks else int(sigma_raw)
        if not isinstance(init, str):
            return np.asarray(init, dtype=float if ckks else np.int64)
        if init == "random":
            return self.extract(sorted(rng.choice(self.n, size=k, replace=False).tolist()))
        first = int(rng.integers(self.n))
        centers = self.extract([first])
        if init == "kmeans++":
            # each step draws `trials` candidates by D^2 sampling and keeps the one that lowers the
            # potential most (scikit-learn's greedy k-means++; trials=1 is plain k-means++); the
            # candidates are extracted in one round and their distances computed in one round
            trials = int(local_trials or 2 + int(np.log(k)))
            D = self.distances(centers, sigma)[:, 0]
            for _ in range(1, k):
                cand = self.extract([d2_sample(D, rng) for _ in range(trials)])
                if trials == 1 and len(centers) + 1 == k:
                    return np.vstack([centers, cand])
                Dc = self.distances(cand, sigma)
                best = int(np.minimum(D[:, None], Dc).sum(0).argmin())
                centers = np.vstack([centers, cand[best:best + 1]])
                D = np.minimum(D, Dc[:, best])
            return centers
        # k-means|| (Bahmani et al. 2012): oversample, then weighted k-means++ on the candidates
        ell = float(oversampling or 2 * k)
        cols = [self.distances(centers, sigma)]
        for _ in range(parallel_rounds):
            D = np.clip(np.min(np.hstack(cols), axis=1), 0.0, None)
            if not D.sum() > 0:
                break
            chosen = np.flatnonzero(rng.random(self.n) < np.minimum(1.0, ell * D / D.sum()))
            if len(chosen) == 0:
                continue
            new = self.extract(chosen.tolist())
            centers = np.vstack([centers, new])
            cols.append(self.distances(new, sigma))
        if len(centers) < k:
            extra = rng.choice(self.n, size=k - len(centers), replace=False)
            centers = np.vstack([centers, self.extract(sorted(extra.tolist()))])
            return centers[:k]
        nearest = np.hstack(cols).argmin(axis=1) if len(cols) else np.zeros(self.n, int)
        weights = np.bincount(nearest, minlength=len(centers)).astype(float)
        return _weighted_kmeanspp(centers, weights, k, rng, integer=not ckks)

    def _scores_steps(self, enc_c: list[bytes], iteration: int, permute: bool, n_onehots: int,
                      hand_on: bool) -> list[Step]:
        """Server scores -> key holder argmin and ``n_onehots`` fresh one-hots per chunk, handed on
        to the server (a new round; the labels are kept) or returned with the labels."""
        return [Step(SERVER, "scores", (enc_c, self.k, iteration, permute), to=KEYHOLDER,
                     tag="blinded scores"),
                Step(KEYHOLDER, "assign", (self.k, n_onehots), to=SERVER if hand_on else None,
                     tag="one-hot assignments", request=True, split=hand_on)]

    def iterate(self, C: np.ndarray, iteration: int, permute: bool):
        """One Lloyd iteration, two rounds. Round 1: encrypted centroids -> blinded scores -> fresh
        one-hots; round 2: masked, blinded cluster sums and counts -> new centroids (None if a
        cluster is empty). Returns (new centroids, argmin positions by chunk)."""
        k, d = self.k, self.d
        enc_c = self.encrypt_centers(C)
        self._send(KEYHOLDER, SERVER, enc_c, "centroids", request=True)
        owners = self._owners(k * d + k)
        res = self._chain([self._scores_steps(enc_c, iteration, permute, k - 1, hand_on=True)
                           + [Step(SERVER, "partial_sums", (k, iteration, permute, owners, w))]
                           for w in range(self.workers)])
        positions = {c: v for out in res for c, v in out[1].items()}
        scales = None
        if not permute:  # with permute, rho_j is already carried by the un-permuting masks
            ckks = self.params.scheme == "ckks"
            rho = cluster_factors(self.server_seed, iteration, k, ckks)
            rho = [float(r) if ckks else int(r) for r in rho]
            scales = [rho[j] for j in range(k) for _ in range(d)] + rho
        degrees = [3 if permute else 2] * (k * d) + [2 if permute else 1] * k
        vals = self._reduced_slot_sums([out[-1] for out in res], owners, 5, iteration, degrees, scales,
                                       "masked sums")
        t0 = time.process_time()
        C = self.keyholder.update(vals, k, d)
        self._cpu(KEYHOLDER, t0)
        return C, positions

    def lloyd(self, C: np.ndarray, max_iter: int, tol: float):
        n_iter = 0
        self.last_labels = None
        bar = Progress(f"HE K-means: Lloyd iteration (max {max_iter})", unit="iter")
        for it in range(max_iter):
            new, pos = self.iterate(C, it, self.permute)
            # argmin positions are labels unless permuted (kept for the owner's error check)
            self.last_labels = None if self.permute else \
                np.concatenate([pos[c] for c in range(self.n_chunks)])
            empty = [j for j, c in enumerate(new) if c is None]
            if empty:  # re-seed empty clusters with uniformly drawn records
                picks = self.kh_rng.choice(self.n, size=len(empty), replace=False)
                for j, row in zip(empty, self.extract(sorted(picks.tolist())), strict=True):
                    new[j] = row
            new = np.vstack(new)
            shift = float(((new.astype(float) - C.astype(float)) ** 2).sum())
            C, n_iter = new, n_iter + 1
            bar.step(shift=shift)
            if shift <= tol and not empty:
                break
        bar.close()
        return C, n_iter

    def finish(self, C: np.ndarray, n_iter: int, assignment_context: bytes | None = None,
               chunk_size: int | None = None):
        """Final assignment with the final centroids (unpermuted: the owner receives the labels);
        fresh encrypted one-hots are served to the server (optionally under another context)."""
        enc_c = self.encrypt_centers(C)
        self._send(KEYHOLDER, SERVER, enc_c, "centroids", request=True)
        n_onehots = self.k if assignment_context is None else 0  # else encrypted under that context
        res = self._chain([self._scores_steps(enc_c, max(n_iter, 0) + 1_000_000, False, n_onehots,
                                              hand_on=False)] * self.workers)
        onehots = {c: v for out in res for c, v in out[-1][0].items()}
        pos = {c: v for out in res for c, v in out[-1][1].items()}
        labels = np.concatenate([pos[c] for c in range(self.n_chunks)])
        if assignment_context is not None:
            self._send(SERVER, KEYHOLDER, assignment_context, "assignment context", request=True)
            by_chunk = _rechunk(labels, chunk_size or self.params.slots)
            groups = [list(g) for g in np.array_split(np.arange(len(by_chunk)), self.workers)]
            res = self.pool.map(KEYHOLDER, "encrypt_assignments",
                                [({c: by_chunk[c] for c in g}, self.k, assignment_context,
                                  chunk_size or self.params.slots) for g in groups])
            onehots = {c: v for part in res for c, v in part.items()}
        self._send(KEYHOLDER, SERVER, onehots, "final one-hot assignments")
        served = [onehots[c] for c in sorted(onehots)]
        return labels, served

    def op_counts(self) -> dict[str, int]:
        ops: dict[str, int] = {}
        for party in (SERVER, KEYHOLDER):
            for part in self.pool.broadcast(party, "op_counts", ()):
                for key, v in part.items():
                    ops[f"{party}.{key}"] = ops.get(f"{party}.{key}", 0) + v
        for key, v in self.keyholder.ops.items():
            ops[f"keyholder.{key}"] = ops.get(f"keyholder.{key}", 0) + v
        ops["owner.encrypt"] = self.n_chunks * self.d
        # ciphertexts moved between parties, plus server-internal partials between worker shards
        ops["transfer"] = self.channel.blobs + self.internal_transfers
        return ops


def _rechunk(labels: np.ndarray, size: int) -> dict[int, np.ndarray]:
    return {c: labels[c * size:(c + 1) * size] for c in range(-(-len(labels) // size))}


def _weighted_kmeanspp(points: np.ndarray, weights: np.ndarray, k: int, rng, integer: bool) -> np.ndarray:
    """k-means++ on weighted candidates, in the key holder's clear (k-means|| reduction step)."""
    P = points.astype(float)
    w = np.maximum(weights, 1e-12)
    idx = [int(rng.choice(len(P), p=w / w.sum()))]
    D = ((P - P[idx[0]]) ** 2).sum(1)
    for _ in range(1, k):
        i = d2_sample(w * D, rng)
        idx.append(i)
        D = np.minimum(D, ((P - P[i]) ** 2).sum(1))
    out = points[idx]
    return out.astype(np.int64) if integer else out.astype(float)


class HEKMeans:
    """K-means on ciphertexts: an outside server clusters records it cannot read.

    Parameters
    ----------
    n_clusters : int
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
    random_state : int or None
    poly_modulus_degree, coeff_mod_bit_sizes, scale_bits, frac_bits :
        Encryption parameters (defaults in :mod:`methods.he.schemes`, 128-bit secure).
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

    Attributes
    ----------
    labels_, cluster_centers_, n_iter_, inertia_, costs_, params_, ops_, init_centers_,
    encrypted_assignments_ (list over chunks of k serialized ciphertexts, column-major one-hot),
    public_context_ (bytes of the K-means public context), channel_.
    """

    name: ClassVar[str] = "he_kmeans"

    def __init__(self, n_clusters=4, init="kmeans++", scheme="ckks", max_iter=300, tol=1e-4, permute=False,
                 workers=1, random_state=None, poly_modulus_degree=None, coeff_mod_bit_sizes=None,
                 scale_bits=None, frac_bits=None, allow_insecure=False, parallel_rounds=5,
                 oversampling=None, local_trials=None, assignment_context=None,
                 assignment_chunk_size=None, keep_transcript=False):
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

    # ---------------------------------------------------------------- validation
    def _check(self, X) -> np.ndarray:
        X = np.asarray(X, dtype=float)
        if X.ndim != 2 or X.shape[0] < 1 or X.shape[1] < 1:
            raise ValueError(f"X must be a non-empty 2-D array; got shape {X.shape}")
        if not np.isfinite(X).all():
            raise ValueError("X must be finite")
        k = self.n_clusters
        if not isinstance(k, (int, np.integer)) or not 2 <= k <= len(X):
            raise ValueError(f"n_clusters={k!r}; expected an integer with 2 <= n_clusters <= {len(X)} (rows)")
        if isinstance(self.init, str):
            if self.init not in INITS:
                raise ValueError(f"init={self.init!r}; expected one of {list(INITS)} or an array of centers")
        else:
            init = np.asarray(self.init, dtype=float)
            if init.shape != (k, X.shape[1]) or not np.isfinite(init).all():
                raise ValueError(f"init array has shape {init.shape}; expected finite ({k}, {X.shape[1]})")
        if not isinstance(self.max_iter, (int, np.integer)) or self.max_iter < 1:
            raise ValueError(f"max_iter={self.max_iter!r}; expected an integer >= 1")
        if not self.tol >= 0:
            raise ValueError(f"tol={self.tol!r}; expected a number >= 0")
        if not isinstance(self.workers, (int, np.integer)) or self.workers < 1:
            raise ValueError(f"workers={self.workers!r}; expected an integer >= 1")
        if self.local_trials is not None and (not isinstance(self.local_trials, (int, np.integer))
                                              or self.local_trials < 1):
            raise ValueError(f"local_trials={self.local_trials!r}; expected an integer >= 1 or None")
        if not isinstance(self.parallel_rounds, (int, np.integer)) or self.parallel_rounds < 1:
            raise ValueError(f"parallel_rounds={self.parallel_rounds!r}; expected an integer >= 1")
        return X

    def _resolve(self, X: np.ndarray) -> tuple[HEParams, np.ndarray, Any]:
        params = resolve_params(self.scheme, self.poly_modulus_degree, self.coeff_mod_bit_sizes,
                                self.scale_bits, self.frac_bits, self.allow_insecure)
        init = self.init
        if params.scheme == "ckks":
            # worst-case blinded score r * (||c||^2 + 2|x||c|) + o must fit the degree-3 headroom
            r2 = float((X**2).sum(1).max())
            worst = BLIND_FACTOR * 3 * r2 + CKKS_OFFSET + CKKS_MASK * params.slots
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
        params, Xenc, init = self._resolve(X)
        self.params_ = params
        seed = self.random_state
        if seed is None:
            seed = int(np.random.SeedSequence().entropy % 2**32)
        proto = KMeansProtocol(params, int(self.n_clusters), workers=int(self.workers),
                               permute=bool(self.permute), seed=int(seed),
                               keep_transcript=self.keep_transcript)
        wall = time.perf_counter()
        with Pool(int(self.workers)) as pool:
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
        self.channel_ = proto.channel
        self.keyholder_ = proto.keyholder
        self.costs_ = proto.costs
        # owner-side check: decrypted centroids of the last update against the exact means of the
        # records assigned in that iteration (the CKKS error of the whole update)
        self.max_decryption_error_ = None
        last = proto.last_labels
        if params.scheme == "ckks" and last is not None:
            errs = [np.abs(X[last == j].mean(0) - self.cluster_centers_[j]).max()
                    for j in range(self.n_clusters) if (last == j).any()]
            self.max_decryption_error_ = float(max(errs)) if errs else None
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

    def predict(self, X) -> np.ndarray:
        """Nearest released centroid (owner-side, in the clear)."""
        from methods.base import nearest_center

        return nearest_center(np.asarray(X, dtype=float), self.cluster_centers_)

    def fit_predict(self, X, y=None) -> np.ndarray:
        return self.fit(X).labels_

    def revealed(self) -> dict[str, str]:
        """What each party saw in this run (for ``privacy.revealed``)."""
        perm = " in a per-point random cluster order (intermediate labels hidden)" if self.permute else ""
        return {
            "server": "ciphertexts only (public key context, no secret/relinearisation/Galois keys); "
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


def key_holder_spearman(model: HEKMeans, X: np.ndarray) -> float:
    """The key holder's transcript check: the largest |Spearman rho|, over Lloyd assignment rounds and
    clusters, between the scores it decrypted and the true squared distances of the records to the
    centroids of that round. Blinding keeps it near 0; needs a model fitted with ``keep_transcript``."""
    from scipy import stats

    if not model.channel_.transcript:
        raise ValueError("key_holder_spearman needs a model fitted with keep_transcript=True")
    codec, k, d = model.keyholder_.codec, model.n_clusters, X.shape[1]
    worst, centers = 0.0, None
    for _, _, tag, payload in model.channel_.transcript:
        if tag == "centroids":
            centers = np.array([codec.decrypt(b)[0] for b in payload]).reshape(k, d)
        elif tag == "blinded scores" and centers is not None:
            # the payload is chunk-major: chunk c's k ciphertexts, one per cluster, then chunk c + 1's
            seen = np.stack([np.concatenate([codec.decrypt(b) for b in payload[j::k]])[: len(X)]
                             for j in range(k)], axis=1)
            true = ((X[:, None, :] - centers[None]) ** 2).sum(-1)
            for j in range(k):
                rho = stats.spearmanr(true[:, j], seen[:, j]).statistic
                worst = max(worst, abs(float(rho)))
    return worst
