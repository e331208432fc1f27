"""The K-means protocol driver: rounds between the three parties, seeding and Lloyd.

Per Lloyd iteration (two rounds, driven by the key holder):

1. key holder -> server: fresh encryptions of every centroid coordinate (replicated in all slots).
   server: ``s_ij = ||c_j||^2 - 2 x_i.c_j`` per chunk (``k*d`` ciphertext products, no
   relinearisation), blinded per point as ``r_i s_ij + o_i`` (``r_i > 0``, ``o_i`` shared by the
   point's ``k`` scores; optionally the ``k`` scores are permuted per point) -> key holder.
2. key holder: decrypts, argmin, fresh encrypted one-hots ``a_ij`` (k - 1 per chunk; the server
   derives the k-th) -> server. server: per-cluster ``rho_j sum_i a_ij x_i`` and ``rho_j sum_i a_ij``
   (chunks added first), each plus a random mask whose slots sum to zero -> key holder, who sums the
   slots and divides (``rho_j`` cancels).

In CKKS without ``permute`` every message carries two clusters, picks or centers, in the real
and imaginary parts of the slots (docs/he.md, "Complex slots"): ceil(k/2)(d+1) centroid
ciphertexts, ceil(k/2) score messages and packed one-hots per chunk, ceil(k/2)(d+1) totals.

No rotation is needed (the key holder sums slots of masked vectors), so the server's context holds
the public and relinearisation keys and, in CKKS, only the conjugation key of the Galois keys.
Each party's code is in its own module (:mod:`methods.he.kmeans_keyholder`,
:mod:`methods.he.kmeans_server`, :mod:`methods.he.kmeans_owner`); this driver holds
no key and no ciphertext arithmetic, only routing (:class:`~methods.he.transport.Pool` chains,
counted on a :class:`~methods.he.transport.Channel`) and the key holder's seeding choices on the
values it decrypted. See docs/he.md for what each party sees.
"""

from __future__ import annotations

import time

import numpy as np

from methods.base import Costs
from methods.he.blinding import FINAL_ROUND, Stream, cluster_factors, seeding_factor
from methods.he.crypto import HEParams, n_chunks, split_chunks
from methods.he.kmeans_keyholder import KeyHolder, KeyHolderShard
from methods.he.kmeans_owner import OwnerShard
from methods.he.kmeans_server import ServerShard
from methods.he.transport import Channel, Pool, Step, flatten
from methods.kmeans_core import weighted_kmeans_pp
from methods.progress import Progress

OWNER, SERVER, KEYHOLDER = "owner", "server", "keyholder"
#: the shard class of each party, as :class:`~methods.he.transport.Pool` workers build them
SHARDS = {OWNER: OwnerShard, SERVER: ServerShard, KEYHOLDER: KeyHolderShard}


def d2_sample(values: np.ndarray, rng: np.random.Generator) -> int:
    """One index drawn with probability proportional to ``values`` (scale-free D^2 sampling)."""
    v = np.clip(np.asarray(values, dtype=float), 0.0, None)
    total = v.sum()
    if not total > 0:
        return int(rng.integers(len(v)))
    return int(np.searchsorted(np.cumsum(v), rng.uniform(0.0, total), side="right").clip(0, len(v) - 1))


def lloyd_bytes_floor(n: int, k: int, d: int, params: HEParams, modulus_bits: float | None = None) -> dict:
    """The floor of one Lloyd iteration's bytes (docs/he.md, "Bytes and the floor"): per customer,
    the key holder's k - 1 blinded differences as 2-component ciphertexts and the k - 1 one-hots
    in seeded form (1 component), all at the modulus of ``modulus_bits`` (default: the last data
    prime alone, the smallest modulus that holds the differences with the argmin exact); plus the
    broadcast that does not grow with n: k*d centroid coordinates (seeded) and k(d+1) masked totals
    (2 components) at that modulus. A CKKS ciphertext has N/2 complex slots: N real values, two
    per slot (real and imaginary parts), so a value costs 2 log2(q) bits, log2(q) seeded."""
    N = params.poly_modulus_degree
    qb = float(modulus_bits if modulus_bits is not None else params.coeff_mod_bit_sizes[0])
    full, seeded = 2 * N * qb / 8, N * qb / 8
    per_customer = (k - 1) * (full + seeded) / N
    broadcast = -(-k * d // 2) * seeded + -(-k * (d + 1) // 2) * full
    return {"modulus_bits": qb, "per_customer_per_iteration": per_customer,
            "broadcast_per_iteration": broadcast, "per_iteration": per_customer * n + broadcast}


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
        # CKKS packs two clusters, picks or centers per ciphertext (complex slots); the permuted
        # protocol and BFV send one per ciphertext
        self.ckks = params.scheme == "ckks"
        self.packed = self.ckks and not permute

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

    def _reduced_slot_sums(self, outgoing: list[dict], owners: list[list[int]], stream: Stream, call: int,
                           degrees: list[int], scales: list | None, tag: str, packed: bool = False) -> list:
        """Second half of a masked sum: the server shards exchange partials (server-internal), each
        adds, masks and scales the totals it owns and hands them to the key holder shard beside it,
        which sums their slots. Returns the slot sums of every vector, in order."""
        incoming = [[out.get(w, {}) for v, out in enumerate(outgoing) if v != w] for w in range(self.workers)]
        self.internal_transfers += sum(len(m) for out in outgoing for m in out.values())
        res = self._chain([[Step(SERVER, "reduce",
                                 (incoming[w], owners[w], stream, call, degrees, scales, packed),
                                 to=KEYHOLDER, tag=tag),
                            Step(KEYHOLDER, "packed_slot_sums" if packed else "slot_sums")]
                           for w in range(self.workers)])
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
        self.n_chunks = n_chunks(self.n, S)
        self.groups = [list(g) for g in np.array_split(np.arange(self.n_chunks), self.workers)]
        self.channel.stage = "keys"
        with self.costs.phase("keys"):
            t0 = time.process_time()
            self.keyholder = KeyHolder(self.params)
            public = self.keyholder.public_context()
            server_public = self.keyholder.server_context()
            secret = self.keyholder.secret_context()
            self._cpu(KEYHOLDER, t0)
            self.public_context = public
            self.server_context = server_public
            self._send(KEYHOLDER, SERVER, server_public, "public context")
            self._send(KEYHOLDER, OWNER, public, "public context")
            p = self.params.to_dict()
            pool.broadcast(OWNER, "__init__", (p, public))
            server_args = (p, server_public, self.n, self.server_seed)
            if self.ckks:
                t0 = time.process_time()
                conj = self.keyholder.conjugation_key()
                self._cpu(KEYHOLDER, t0)
                self._send(KEYHOLDER, SERVER, conj, "conjugation key")
                server_args += (conj,)
            pool.broadcast(SERVER, "__init__", server_args)
            pool.broadcast(KEYHOLDER, "__init__", (p, secret, self.n))
        self.channel.stage = "encrypt"
        with self.costs.phase("encrypt"):
            blocks = split_chunks(X, S)
            # the owner's worker shards encrypt their own chunks and load them into the server
            # shard beside them, chunk by chunk (a stream: one chunk's ciphertexts held at a
            # time): the columns never pass through this process
            self._chain([[Step(OWNER, "encrypt", (b,), to=SERVER, tag="encrypted columns", stream=True),
                          Step(SERVER, "load")] for b in self._split(blocks)])
            del blocks

    def encrypt_pairs(self, C: np.ndarray) -> list[bytes]:
        """Packed centers (CKKS): per pair of rows, d ciphertexts c_a + i c_b and the norms
        ||c_a||^2 + i ||c_b||^2, replicated in all slots (key holder's worker shards)."""
        rows = [np.asarray(r, dtype=float) for r in np.asarray(C)]
        pairs = [rows[p:p + 2] for p in range(0, len(rows), 2)]
        groups = np.array_split(np.arange(len(pairs)), self.workers)
        parts = self.pool.map(KEYHOLDER, "encrypt_pairs",
                              [([r for i in g for r in pairs[i]],) for g in groups])
        return [b for part in parts for b in part]

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
        if self.ckks:  # two picks per selection and per extracted coordinate
            n_out = (len(picks) + 1) // 2 * self.d
            owners = self._owners(n_out)
            res = self._chain([[Step(KEYHOLDER, "packed_selections", (sel_picks, g), to=SERVER,
                                     tag="selections", request=True),
                                Step(SERVER, "extract_partials", (owners, w))]
                               for w, g in enumerate(self.groups)])
            vals = self._reduced_slot_sums([out[-1] for out in res], owners, Stream.EXTRACTION_MASKS,
                                           self._extractions, [2] * n_out, None, "masked extraction",
                                           packed=True)
            rows = np.asarray(vals, dtype=float).reshape(-1, self.d, 2)  # (pair, feature, re/im)
            return rows.transpose(0, 2, 1).reshape(-1, self.d)[: len(picks)]
        owners = self._owners(len(picks) * self.d)
        res = self._chain([[Step(KEYHOLDER, "selections", (sel_picks, g), to=SERVER, tag="selections",
                                 request=True),
                            Step(SERVER, "extract_partials", (owners, w))]
                           for w, g in enumerate(self.groups)])
        vals = self._reduced_slot_sums([out[-1] for out in res], owners, Stream.EXTRACTION_MASKS,
                                       self._extractions, [2] * (len(picks) * self.d), None,
                                       "masked extraction")
        dtype = float if self.params.scheme == "ckks" else np.int64
        return np.asarray(vals, dtype=dtype).reshape(len(picks), self.d)

    def distances(self, centers: np.ndarray, sigma) -> np.ndarray:
        """``sigma * ||x_i - c||^2`` for every record and each center, as the key holder sees them
        (``sigma`` is the server's secret common factor); one round. Shape (n, len(centers))."""
        if self.ckks:  # two centers per ciphertext
            blobs = self.encrypt_pairs(centers)
            self._send(KEYHOLDER, SERVER, blobs, "centers", request=True)
            res = self._chain([[Step(SERVER, "packed_distances", (blobs, self.d, sigma, len(centers)),
                                     to=KEYHOLDER, tag="blinded D2"),
                                Step(KEYHOLDER, "packed_decrypt_chunks", (len(centers),))]] * self.workers)
        else:
            blobs = self.encrypt_centers(centers)
            self._send(KEYHOLDER, SERVER, blobs, "centers", request=True)
            res = self._chain([[Step(SERVER, "distances", (blobs, self.d, sigma), to=KEYHOLDER,
                                     tag="blinded D2"),
                                Step(KEYHOLDER, "decrypt_chunks")]] * self.workers)
        vals = {c: v for out in res for c, v in out[-1].items()}
        return np.concatenate([vals[c].T for c in range(self.n_chunks)], axis=0).astype(float)

    def seed(self, init, n_clusters: int, parallel_rounds: int = 5, oversampling: float | None = None,
             local_trials: int | None = None):
        """Initial centers known to the key holder only."""
        k, rng = n_clusters, self.kh_rng
        ckks = self.params.scheme == "ckks"
        sigma = seeding_factor(self.server_seed, ckks)
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
        # weighted k-means++ in the key holder's clear (the k-means|| reduction step); every
        # candidate keeps a tiny weight, so an empty one can still be drawn
        picks = weighted_kmeans_pp(centers, np.maximum(weights, 1e-12), k, rng, draw=d2_sample)
        return picks if ckks else picks.astype(np.int64)

    def _scores_steps(self, enc_c: list[bytes], iteration: int, permute: bool, n_onehots: int,
                      hand_on: bool) -> list[Step]:
        """Server scores -> key holder argmin and ``n_onehots`` fresh one-hots per chunk, handed on
        to the server (a new round; the labels are kept) or returned with the labels."""
        if self.packed and not permute:  # n_onehots None: packed one-hots
            return [Step(SERVER, "packed_scores", (enc_c, self.k, iteration), to=KEYHOLDER,
                         tag="blinded scores"),
                    Step(KEYHOLDER, "packed_assign", (self.k, n_onehots), to=SERVER if hand_on else None,
                         tag="one-hot assignments", request=True, split=hand_on)]
        return [Step(SERVER, "scores", (enc_c, self.k, iteration, permute), to=KEYHOLDER,
                     tag="blinded scores"),
                Step(KEYHOLDER, "assign", (self.k, n_onehots), to=SERVER if hand_on else None,
                     tag="one-hot assignments", request=True, split=hand_on)]

    def iterate(self, C: np.ndarray, iteration: int, permute: bool):
        """One Lloyd iteration, two rounds. Round 1: encrypted centroids -> blinded scores -> fresh
        one-hots; round 2: masked, blinded cluster sums and counts -> new centroids (None if a
        cluster is empty). Returns (new centroids, argmin positions by chunk)."""
        k, d = self.k, self.d
        if self.packed and not permute:
            return self._iterate_packed(C, iteration)
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
        vals = self._reduced_slot_sums([out[-1] for out in res], owners, Stream.SUM_MASKS, iteration,
                                       degrees, scales, "masked sums")
        t0 = time.process_time()
        C = self.keyholder.update(vals, k, d)
        self._cpu(KEYHOLDER, t0)
        return C, positions

    def _iterate_packed(self, C: np.ndarray, iteration: int):
        """:meth:`iterate` with two clusters per ciphertext (CKKS, unpermuted): packed centroids,
        ceil(k/2) score messages and packed one-hots per chunk, (d + 1) ceil(k/2) totals."""
        k, d = self.k, self.d
        M = (k + 1) // 2
        enc_c = self.encrypt_pairs(C)
        self._send(KEYHOLDER, SERVER, enc_c, "centroids", request=True)
        owners = self._owners(M * d + M)
        res = self._chain([self._scores_steps(enc_c, iteration, False, None, hand_on=True)
                           + [Step(SERVER, "packed_sums", (k, owners, w))]
                           for w in range(self.workers)])
        positions = {c: v for out in res for c, v in out[1].items()}
        rho = [float(r) for r in cluster_factors(self.server_seed, iteration, k, True)]
        pair_rho = [(rho[2 * p], rho[min(2 * p + 1, k - 1)]) for p in range(M)]
        scales = [pair_rho[p] for p in range(M) for _ in range(d)] + pair_rho
        vals = self._reduced_slot_sums([out[-1] for out in res], owners, Stream.SUM_MASKS, iteration,
                                       [2] * (M * d) + [1] * M, scales, "masked sums", packed=True)
        sums = [vals[(j // 2) * d + f][j % 2] for j in range(k) for f in range(d)]
        counts = [vals[M * d + j // 2][j % 2] for j in range(k)]
        t0 = time.process_time()
        C = self.keyholder.update(sums + counts, k, d)
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
        enc_c = self.encrypt_pairs(C) if self.packed else self.encrypt_centers(C)
        self._send(KEYHOLDER, SERVER, enc_c, "centroids", request=True)
        n_onehots = self.k if assignment_context is None else 0  # else encrypted under that context
        res = self._chain([self._scores_steps(enc_c, max(n_iter, 0) + FINAL_ROUND, False, n_onehots,
                                              hand_on=False)] * self.workers)
        onehots = {c: v for out in res for c, v in out[-1][0].items()}
        pos = {c: v for out in res for c, v in out[-1][1].items()}
        labels = np.concatenate([pos[c] for c in range(self.n_chunks)])
        if assignment_context is not None:
            self._send(SERVER, KEYHOLDER, assignment_context, "assignment context", request=True)
            by_chunk = split_chunks(labels, chunk_size or self.params.slots)
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
        ops["owner.encrypt"] = self.n_chunks * self.d
        # ciphertexts moved between parties, plus server-internal partials between worker shards
        ops["transfer"] = self.channel.blobs + self.internal_transfers
        return ops

