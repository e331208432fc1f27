"""The K-means compute server: holds the public context only, and ciphertexts.

:class:`ServerShard` does the heavy arithmetic on its chunks: scores, blinding (the randomness in
:mod:`methods.he.blinding`), per-cluster sums, extraction, distances. It refuses a context that
holds a secret key, and nothing here can make or read one.

A shard holds one party's context and its share of the chunks (chunk ``c`` covers records
``c*S .. (c+1)*S - 1``, ``S`` slots, the last chunk zero-padded). Shards of different parties never
share objects: the protocol (:mod:`methods.he.kmeans_protocol`) moves their bytes through a
:class:`~methods.he.transport.Channel`, and :class:`~methods.he.transport.Pool` may run them in
worker processes.

Degrees (number of encoded factors, see :mod:`methods.he.crypto`): data, one-hots, selections,
``-2c`` are degree 1; ``x.c``, ``||c||^2``, ``||x||^2`` and weighted one-hots are degree 2; blinded
scores, blinded D^2 and blinded sums are degree 3.

Per-cluster sums (and extractions) are reduced across worker shards before they are masked: each
shard computes partial sums over its chunks, sends the partials of the vectors other shards *own*
to them (server-internal), and masks and hands on only the totals it owns. The key holder decrypts
one masked total per vector whatever the number of workers, never a worker's partial.
"""

from __future__ import annotations

import math

import numpy as np

from methods.he import levels
from methods.he.blinding import (
    Stream,
    blinding_factors,
    blinding_offsets,
    blinding_rng,
    cluster_factors,
    quantize_rho,
    zero_sum_vector,
)
from methods.he.crypto import (
    BLIND_FACTOR,
    CKKS_MASK_BOUND,
    CKKS_OFFSET,
    Codec,
    HEParams,
    load_context,
    valid_rows,
)
from methods.he.levels import (
    BASE_MIN_SCALE_BITS,
    BASE_SCALE_BITS,
    EXTRACT_MIN_SCALE_BITS,
    PACKED_DIFF_GAIN,
    PAIR_SCALE_BITS,
    PRE_RESCALE_BITS,
    RHO_FRAC_BITS,
    RHO_MAX_SCALE_BITS,
    RHO_SUM_SCALE_BITS,
    SCORE_MIN_SCALE_BITS,
    TOTAL_MIN_SCALE_BITS,
)


class ServerShard:
    """Heavy arithmetic on ciphertexts; holds the public context only (no secret key)."""

    #: re-randomise the masked counts (:meth:`_finish`); off only in the test that plays the
    #: key holder's attack on them
    _rerandomize = True

    def __init__(self, params: dict, public_context: bytes, n: int, seed: int,
                 conjugation_key: bytes | None = None):
        self.params = HEParams.from_dict(params)
        self.ctx = load_context(public_context)
        if self.ctx.is_private() or self.ctx.has_secret_key():
            raise ValueError("the compute server must be given a public context (it holds a secret key)")
        if self.params.scheme == "ckks" and not self.ctx.has_relin_keys():
            raise ValueError("the CKKS compute server needs the relinearisation keys: give it "
                             "KeyHolder.server_context(), not the owner's public context")
        self.codec = Codec(self.ctx, self.params)
        self.ckks = self.params.scheme == "ckks"
        if conjugation_key is not None:
            self.codec.levels.load_conjugation_key(conjugation_key)
        self.n, self.seed = int(n), int(seed)
        self.x: dict[int, list] = {}
        self.x2: dict[int, object] = {}  # CKKS: ||x||^2 per chunk (degree 2), for packed distances
        self.perm: dict[int, np.ndarray] = {}
        self.partials: dict[int, object] = {}  # the totals this shard owns, between share and reduce
        self.totals: dict[tuple, tuple] = {}  # per set of chunks: sum_i x_i per feature, valid counts
        self.ops = {"ct_mul": 0, "pt_mul": 0, "sc_mul": 0, "add": 0, "encrypt": 0, "conj": 0}

    def load(self, columns: dict[int, list[bytes]]) -> None:
        for c, cols in columns.items():
            self.x[c] = [self.codec.load(b) for b in cols]

    def _m2x(self, c: int) -> list:
        """-2x of chunk ``c`` as SEAL ciphertexts, made when a scoring call needs it and dropped:
        keeping it (or 2x) beside ``x`` would double the server's memory, for d additions per chunk
        and call."""
        self.ops["add"] += len(self.x[c])
        return [levels.raw(-(v + v)) for v in self.x[c]]

    def _finish(self, v, rng: np.random.Generator, rho=None, count: bool = False,
                min_scale_bits: float = TOTAL_MIN_SCALE_BITS) -> bytes:
        """``v`` plus a random vector whose slots sum to zero (mod t), times ``rho`` if given,
        serialized: every slot hidden, the slot sum kept. The key holder decrypts ``v + mask``
        either way, so the mask is a plaintext: in CKKS encoded at the ciphertext's own level and
        true scale, rho a constant rounded to RHO_FRAC_BITS fractional bits (exact at the scale it
        is encoded at), and the result sent in its smallest form.

        A count (``count``) is built from the key holder's own one-hot ciphertexts, plaintexts and
        rho alone, so its second polynomial would be rho times a sum of polynomials the key holder
        made (and rho read off it): a count gets a fresh public-key encryption of zero before it
        is sent (in CKKS at the level it is sent at, the cheapest). A sum or an extraction holds
        the owner's ciphertexts, whose randomness the key holder never sees."""
        mask = zero_sum_vector(self.params, rng)
        self.ops["add"] += 1
        fresh = count and self._rerandomize
        if not self.ckks:
            v = v + self.codec.plain(mask)
            if rho is not None:
                v = v * rho
                self.ops["sc_mul"] += 1
            if fresh:
                v = v + self.codec.encrypt(np.zeros(self.params.slots, dtype=np.int64))
                self.ops["encrypt"] += 1
                self.ops["add"] += 1
            return v.serialize()
        if np.abs(mask).max() >= CKKS_MASK_BOUND:
            raise ValueError("a zero-sum mask exceeded its 14-sigma bound; rerun with another seed")
        lv = self.codec.levels
        ct = levels.raw(v)
        # a slot adds one record per chunk: |value| <= chunks * max|x| (|x| < 2^11 by the fit's check)
        bound = float(np.abs(mask).max()) + 2.0**11 * -(-self.n // self.params.slots)
        if rho is not None:
            bound *= BLIND_FACTOR
        # rescale a product before the mask and rho while its scale stays >= 2^PRE_RESCALE_BITS: the
        # room it frees lets rho be encoded finely enough for the result to reach the last prime
        lv.rescale_while(ct, max(PRE_RESCALE_BITS, min_scale_bits))
        lv.add_plain(ct, mask)
        if rho is not None:
            bits = lv.factor_scale_bits(ct, bound, TOTAL_MIN_SCALE_BITS, RHO_FRAC_BITS, RHO_MAX_SCALE_BITS)
            if bits is None:
                raise ValueError(f"no room for rho at scale 2^{math.log2(ct.scale):.0f}, "
                                 f"level {levels.level(ct)}")
            lv.mul_constant(ct, quantize_rho(rho), 2.0**bits)
            self.ops["sc_mul"] += 1
        if fresh:
            self.ops["encrypt"] += 1
            self.ops["add"] += 1
        return lv.shrink_bytes(ct, bound, min_scale_bits, rerandomize=fresh)

    def _send(self, v) -> bytes:
        """A blinded score or distance (degree 3) in its smallest form."""
        return self.codec.shrink_bytes(v, 2.0**self.params.headroom_bits, SCORE_MIN_SCALE_BITS)

    def _valid(self, c: int) -> list:
        """Plaintext 1 on chunk ``c``'s records, 0 on its padding (n is public)."""
        S = self.params.slots
        v = np.zeros(S, dtype=np.int64)
        v[: valid_rows(self.n, S, c)] = 1
        return self.codec.plain(v)

    def _sum(self, vectors: list):
        acc = vectors[0]
        for v in vectors[1:]:
            acc = acc + v
        self.ops["add"] += len(vectors) - 1
        return acc

    def _negated(self, v):
        return -v if self.ckks else v * -1  # (TenSEAL's BFV vectors have no negation)

    def _totals(self, chunks: list[int]) -> tuple[list, list]:
        """This shard's sum_i x_i per feature as degree-2 values (times a plaintext 1, exact) and,
        per slot, how many of its chunks hold a record there (a plaintext): cached, they do not
        change between iterations."""
        key = tuple(chunks)
        if key not in self.totals:
            S = self.params.slots
            valid = np.zeros(S, dtype=np.int64)
            for c in chunks:
                valid[: valid_rows(self.n, S, c)] += 1
            d = len(self.x[chunks[0]])
            ones = self.codec.plain(np.ones(S))
            sums = [self._sum([self.x[c][f] for c in chunks]) * ones for f in range(d)]
            self.ops["pt_mul"] += d
            self.totals[key] = (sums, self.codec.plain(valid))
        return self.totals[key]

    def _share(self, partials: list, owners: list[list[int]], me: int) -> dict[int, dict[int, bytes]]:
        """Keep the partial vectors this shard owns; serialize the others for their owners."""
        self.partials = {i: partials[i] for i in owners[me]} if partials else {}
        return {w: {i: partials[i].serialize() for i in idx}
                for w, idx in enumerate(owners) if w != me and partials}

    def _finish_pair(self, v, rng: np.random.Generator, rho: tuple | None, count: bool,
                     min_scale_bits: float) -> bytes:
        """:meth:`_finish` of a packed total ``a + i b`` (CKKS): a mask whose real and imaginary
        parts each sum to zero over the slots (two draws of :func:`zero_sum_vector`), then, with
        ``rho = (rho_a, rho_b)``, ``rho_a (a + m) + i rho_b (b + m')`` as
        ``(rho_a + rho_b)/2 z + (rho_a - rho_b)/2 conj z`` (one conjugation; the constants have
        RHO_FRAC_BITS + 1 fractional bits, exact at the scale they are encoded at)."""
        mask = zero_sum_vector(self.params, rng) + 1j * zero_sum_vector(self.params, rng)
        self.ops["add"] += 1
        if max(np.abs(mask.real).max(), np.abs(mask.imag).max()) >= CKKS_MASK_BOUND:
            raise ValueError("a zero-sum mask exceeded its 14-sigma bound; rerun with another seed")
        lv = self.codec.levels
        ct = levels.raw(v)
        bound = float(np.abs(mask).max()) + math.sqrt(2) * 2.0**11 * -(-self.n // self.params.slots)
        fresh = count and self._rerandomize
        lv.rescale_while(ct, max(PRE_RESCALE_BITS, min_scale_bits))
        lv.add_plain(ct, mask)
        if rho is not None:
            bound *= BLIND_FACTOR
            ra, rb = (quantize_rho(x) for x in rho)
            bits = lv.factor_scale_bits(ct, bound, TOTAL_MIN_SCALE_BITS, RHO_FRAC_BITS + 1,
                                        RHO_MAX_SCALE_BITS)
            if bits is None:
                raise ValueError(f"no room for rho at scale 2^{math.log2(ct.scale):.0f}, "
                                 f"level {levels.level(ct)}")
            conj = lv.conjugate(ct) if ra != rb else None
            lv.mul_constant(ct, (ra + rb) / 2, 2.0**bits)
            if conj is not None:
                self.ops["conj"] += 1
                lv.mul_constant(conj, (ra - rb) / 2, 2.0**bits)
                lv.evaluator.add_inplace(ct, conj)
            self.ops["sc_mul"] += 2
        if fresh:
            self.ops["encrypt"] += 1
            self.ops["add"] += 1
        return lv.shrink_bytes(ct, bound, min_scale_bits, rerandomize=fresh)

    def reduce(self, incoming: list[dict[int, bytes]], owned: list[int], stream: Stream, call: int,
               degrees: list[int], scales: list | None, packed: bool = False) -> list[bytes]:
        """Totals of the vectors this shard owns (its partial plus the other shards'), each masked
        (randomness per vector, independent of the worker split) and scaled by ``scales[i]``."""
        out = []
        for i in owned:
            acc = self.partials.get(i)
            for part in incoming:
                if i in part:
                    v = self.codec.load(part[i])
                    if acc is None:
                        acc = v
                    else:
                        acc = acc + v
                        self.ops["add"] += 1
            rho = None if scales is None else scales[i]
            # extracted coordinates keep their products' scale (a rescale would round them to
            # about 2^-19): they are a record's values, and few
            floor = EXTRACT_MIN_SCALE_BITS if stream == Stream.EXTRACTION_MASKS else TOTAL_MIN_SCALE_BITS
            finish = self._finish_pair if packed else self._finish
            out.append(finish(acc, blinding_rng(self.seed, stream, call, i), rho,
                              count=degrees[i] < max(degrees), min_scale_bits=floor))
        self.partials = {}
        return out

    def scores(self, centroids: list[bytes], k: int, iteration: int, permute: bool) -> dict[int, list[bytes]]:
        """The k - 1 blinded score differences ``r * (s_l - s_0)`` of each chunk, where
        ``s_j = ||c_j||^2 - 2 x.c_j`` and ``l`` runs over the clusters (or, with ``permute``, over
        positions in a random per-point order of them). They carry what the k offset-blinded scores
        ``r * s_j + o`` carried (the offset cancels in the differences the argmin needs) in one
        ciphertext fewer, with no offset to make room for. ``centroids`` holds k*d ciphertexts of
        c_jf (degree 1, replicated); ``s_j = sum_f c_jf (c_jf - 2 x_f)`` needs no extra ciphertext."""
        d = len(centroids) // k
        cs = [self.codec.load(b) for b in centroids]
        S, out = self.params.slots, {}
        for c in sorted(self.x):
            rng = blinding_rng(self.seed, Stream.SCORES, iteration, c)
            r = blinding_factors(rng, S, self.ckks)
            if self.ckks:
                o = blinding_offsets(rng, S)
            else:  # |o| <= t/8
                t = self.params.plain_modulus
                o = rng.integers(-(t >> 3), (t >> 3) + 1, S)
            two_x = [v + v for v in self.x[c]]  # made per chunk and dropped (see _m2x)
            s = []
            for j in range(k):
                acc = None
                for f in range(d):
                    cj = cs[j * d + f]
                    term = cj * (cj - two_x[f])
                    acc = term if acc is None else acc + term
                s.append(acc)
            self.ops["ct_mul"] += k * d
            self.ops["add"] += 2 * k * d + d
            if permute:
                perm = np.argsort(rng.random((S, k)), axis=1)  # position l holds cluster perm[:, l]
                self.perm[c] = perm
                blinded = []
                for pos in range(k):
                    acc = None
                    for j in range(k):
                        term = s[j] * self.codec.plain(np.where(perm[:, pos] == j, r, 0))
                        acc = term if acc is None else acc + term
                    blinded.append(acc)
                self.ops["pt_mul"] += k * k
                self.ops["add"] += k * k
                diffs = [blinded[pos] - blinded[0] for pos in range(1, k)]
                weights = [np.where(perm[:, 0] == j, r, 0) for j in range(k)]
            else:
                diffs = [(s[j] - s[0]) * self.codec.plain(r) for j in range(1, k)]
                self.ops["pt_mul"] += k - 1
                weights = [r] + [None] * (k - 1)
            self.ops["add"] += k - 1
            out[c] = [self._base(s, weights, o)] + [self._send(v) for v in diffs]
        return out

    def _base(self, s: list, weights: list, o: np.ndarray) -> bytes:
        """Position 0's offset-blinded score ``sum_j s_j * weights_j + o`` (``weights_j`` the
        factors r where cluster j sits at position 0). With the k - 1 differences it gives the key
        holder every ``r * s + o`` of the point, as k offset-blinded scores did; in CKKS the
        factors are encoded at 2^BASE_SCALE_BITS and the offset added as a plaintext at the true
        scale, so the degree-3 value fits the modulus with the offset's 31 bits."""
        if not self.ckks:
            acc = None
            for sj, w in zip(s, weights, strict=True):
                if w is not None:
                    term = sj * self.codec.plain(w)
                    acc = term if acc is None else acc + term
            self.ops["pt_mul"] += sum(w is not None for w in weights)
            return (acc + self.codec.plain(o)).serialize()
        lv, acc = self.codec.levels, None
        for sj, w in zip(s, weights, strict=True):
            if w is None:
                continue
            ct = levels.raw(sj)
            lv.evaluator.multiply_plain_inplace(ct, lv.encode(w, levels.level(ct), 2.0**BASE_SCALE_BITS))
            self.ops["pt_mul"] += 1
            if acc is None:
                acc = ct
            else:
                lv.evaluator.add_inplace(acc, ct)
        lv.add_plain(acc, o)
        return lv.shrink_bytes(acc, CKKS_OFFSET + 2.0**self.params.headroom_bits, BASE_MIN_SCALE_BITS)

    def partial_sums(self, onehots: dict[int, list[bytes]], k: int, iteration: int, permute: bool,
                     owners: list[list[int]], me: int) -> dict:
        """Partial sum_i a_ij x_i (k*d vectors) and sum_i a_ij (k) over this shard's chunks, from
        k - 1 one-hots per chunk. Without ``permute``, cluster k's are derived once per shard:
        ``sum_i x_i - (the other clusters' sums)`` and ``(valid records) - (the other counts)``,
        so a chunk costs (k-1)*d products (degrees 2 and 1; the owner of each total scales it by
        rho_j). With ``permute`` the k-th one-hot of each chunk is derived (valid-record indicator
        minus the others) and the one-hots are un-permuted by plaintext masks that also carry rho_j
        (degrees 3 and 2). Returns the partials other shards own (see :meth:`reduce`)."""
        if not onehots:
            return self._share([], owners, me)
        rho = cluster_factors(self.seed, iteration, k, self.ckks)
        d = len(next(iter(self.x.values())))
        m = k if permute else k - 1  # clusters summed chunk by chunk
        acc_s: list = []
        acc_n: list = []
        for c in sorted(onehots):
            a = [self.codec.load(b) for b in onehots[c]]
            if permute:
                a.append(self._negated(self._sum(a)) + self._valid(c))
                self.ops["add"] += 1
                perm = self.perm[c]
                a_hat, a = a, []
                for j in range(k):
                    a.append(self._unpermute(a_hat, perm, j, rho[j]))
                self.ops["pt_mul"] += k * k
                self.ops["add"] += k * (k - 1)
            for j in range(m):
                for f in range(d):
                    term = a[j] * self.x[c][f]
                    if len(acc_s) < m * d:
                        acc_s.append(term)
                    else:
                        acc_s[j * d + f] += term
                if len(acc_n) < m:
                    acc_n.append(a[j])
                else:
                    acc_n[j] += a[j]
            self.ops["ct_mul"] += m * d
            self.ops["add"] += m * (d + 1)
        if not permute:
            x_total, valid = self._totals(sorted(onehots))
            acc_s += [x_total[f] - self._sum([acc_s[j * d + f] for j in range(m)]) for f in range(d)]
            acc_n.append(self._negated(self._sum(acc_n)) + valid)
            self.ops["add"] += d + 1  # the subtractions (the sums' additions are counted by _sum)
        return self._share(acc_s + acc_n, owners, me)

    def _unpermute(self, a_hat: list, perm: np.ndarray, j: int, rho_j):
        """``sum_pos a_hat[pos] * [perm[:, pos] == j] * rho_j``: cluster j's one-hot, scaled by rho_j.
        CKKS encodes the plaintext masks at 2^RHO_SUM_SCALE_BITS (not at the one-hots' scale), so
        the masked sums of degree 3 fit the modulus; the scale is SEAL's true one."""
        if not self.ckks:
            acc = None
            for pos in range(len(a_hat)):
                term = a_hat[pos] * self.codec.plain(np.where(perm[:, pos] == j, rho_j, 0))
                acc = term if acc is None else acc + term
            return acc
        lv, acc = self.codec.levels, None
        for pos in range(len(a_hat)):
            ct = levels.raw(a_hat[pos])
            mask = np.where(perm[:, pos] == j, quantize_rho(rho_j), 0.0)
            pt = lv.encode(mask, levels.level(ct), 2.0**RHO_SUM_SCALE_BITS)
            lv.evaluator.multiply_plain_inplace(ct, pt)
            if acc is None:
                acc = ct
            else:
                lv.evaluator.add_inplace(acc, ct)
        return lv.vector(acc)

    def extract_partials(self, selections: dict[int, list[bytes]], owners: list[list[int]], me: int) -> dict:
        """Partial sum_i e_i x_i (degree 2) for each selection vector e, over this shard's chunks;
        returns the partials other shards own (see :meth:`reduce`)."""
        acc: list = []
        for c in sorted(selections):
            for m, b in enumerate(selections[c]):
                e = self.codec.load(b)
                for f in range(len(self.x[c])):
                    term = e * self.x[c][f]
                    if len(acc) <= m * len(self.x[c]) + f:
                        acc.append(term)
                    else:
                        acc[m * len(self.x[c]) + f] += term
                self.ops["ct_mul"] += len(self.x[c])
                self.ops["add"] += len(self.x[c])
        return self._share(acc, owners, me)

    def distances(self, centers: list[bytes], d: int, sigma) -> dict[int, list[bytes]]:
        """sigma * ||x - c||^2 (degree 3) for each chunk and each center; ``centers`` holds d
        ciphertexts of c_f (degree 1, replicated) per center."""
        m = len(centers) // d
        cs = [[self.codec.load(b) for b in centers[i * d:(i + 1) * d]] for i in range(m)]
        out = {}
        for c in sorted(self.x):
            blobs = []
            for ci in cs:
                acc = None
                for f in range(d):
                    diff = self.x[c][f] - ci[f]
                    term = diff * diff
                    acc = term if acc is None else acc + term
                blobs.append(self._send(acc * sigma))
            out[c] = blobs
            self.ops["ct_mul"] += m * d
            self.ops["add"] += 2 * m * d
            self.ops["sc_mul"] += m
        return out

    # ------------------------------------------------------------------ packed (CKKS, unpermuted)
    # Two clusters (or picks, or centers) share a ciphertext, one in the real and one in the
    # imaginary part of every slot (:mod:`methods.he.levels`, "complex slots"): the centroids
    # come as Z_pf = c_{2p,f} + i c_{2p+1,f} and N_p = ||c_2p||^2 + i ||c_{2p+1}||^2, so that
    # Q_p = N_p - 2 sum_f Z_pf x_f = s_2p + i s_{2p+1} holds two clusters' scores.

    def _pairs(self, blobs: list[bytes], d: int) -> list[tuple[list, object]]:
        """(Z_p1..Z_pd, N_p) per pair of a packed centroid message (SEAL ciphertexts)."""
        cts = [levels.raw(self.codec.load(b)) for b in blobs]
        return [(cts[p * (d + 1):p * (d + 1) + d], cts[p * (d + 1) + d]) for p in range(len(cts) // (d + 1))]

    def _q(self, pair, m2x_c: list):
        """Q_p = N_p - 2 sum_f Z_pf x_f of a chunk, from its -2x (degree 2, 3 components)."""
        lv, (zs, nn) = self.codec.levels, pair
        acc = None
        for z, m2x in zip(zs, m2x_c, strict=True):
            term = levels.seal.Ciphertext()
            lv.evaluator.multiply(z, m2x, term)
            if acc is None:
                acc = term
            else:
                lv.evaluator.add_inplace(acc, term)
        lv.evaluator.add_inplace(acc, nn)
        self.ops["ct_mul"] += len(zs)
        self.ops["add"] += len(zs)
        return acc

    def _combine(self, terms: list[tuple[object, np.ndarray]], scale_bits: int):
        """sum of ciphertext times (complex) plaintext factor, the factors encoded at 2^scale_bits."""
        lv, acc = self.codec.levels, None
        for ct, w in terms:
            term = lv.mul_complex_plain(ct, w, 2.0**scale_bits)
            if acc is None:
                acc = term
            else:
                lv.evaluator.add_inplace(acc, term)
        self.ops["pt_mul"] += len(terms)
        self.ops["add"] += len(terms) - 1
        return acc

    def packed_scores(self, centroids: list[bytes], k: int, iteration: int) -> dict[int, list[bytes]]:
        """The key holder's view of :meth:`scores` in ceil(k/2) ciphertexts per chunk: position
        0's ``r s_0 + o`` with ``g r (s_1 - s_0)`` in the imaginary part (g = PACKED_DIFF_GAIN),
        then the pairs ``r (s_l - s_0) + i r (s_{l+1} - s_0)``, l = 2, 4, ... (the same blinding
        randomness as :meth:`scores`). With s_0 = (Q_0 + conj Q_0) / 2 and s_1 = (Q_0 - conj Q_0) / 2i
        (one conjugation per chunk) every message is a plaintext-linear form of the Q_p."""
        if not self.x:
            return {}
        d = len(self.x[next(iter(self.x))])
        pairs = self._pairs(centroids, d)
        lv, S, out, g = self.codec.levels, self.params.slots, {}, PACKED_DIFF_GAIN
        for c in sorted(self.x):
            rng = blinding_rng(self.seed, Stream.SCORES, iteration, c)
            r = blinding_factors(rng, S, True)
            o = blinding_offsets(rng, S)
            m2x = self._m2x(c)
            q = [self._q(p, m2x) for p in pairs]
            q0bar = lv.conjugate(q[0])  # relinearises q[0]
            self.ops["conj"] += 1
            first = self._combine([(q[0], r / 2 * (1 + g - 1j * g)), (q0bar, r / 2 * (1 - g - 1j * g))],
                                  BASE_SCALE_BITS)
            lv.add_plain(first, o)
            head = 2.0**self.params.headroom_bits
            bound = math.hypot(CKKS_OFFSET + head, g * head)
            msgs = [lv.shrink_bytes(first, bound, BASE_MIN_SCALE_BITS)]
            if len(q) > 1:
                s0x2 = levels.seal.Ciphertext()
                lv.evaluator.add(q[0], q0bar, s0x2)  # 2 s_0
                self.ops["add"] += 1
                for p in range(1, len(q)):
                    both = 2 * p + 1 < k
                    w0 = -r / 2 * (1 + 1j) if both else -r / 2
                    v = self._combine([(q[p], r), (s0x2, w0)], PAIR_SCALE_BITS)
                    msgs.append(lv.shrink_bytes(v, math.sqrt(2) * 2.0**self.params.headroom_bits,
                                                SCORE_MIN_SCALE_BITS))
            self.ops["add"] += len(q)
            out[c] = msgs
        return out

    def packed_sums(self, onehots: dict[int, list[bytes]], k: int, owners: list[list[int]],
                    me: int) -> dict:
        """Partial sum_i A_pi x_i (per pair p and feature) and sum_i A_pi (per pair) over this
        shard's chunks, from the packed one-hots A_p = a_2p + i a_{2p+1} (ceil(k/2) per chunk,
        every cluster: nothing is derived). Returns the partials other shards own."""
        if not onehots:
            return self._share([], owners, me)
        d = len(next(iter(self.x.values())))
        acc_s: list = []
        acc_n: list = []
        for c in sorted(onehots):
            a = [self.codec.load(b) for b in onehots[c]]
            for p in range(len(a)):
                for f in range(d):
                    term = a[p] * self.x[c][f]
                    if len(acc_s) < len(a) * d:
                        acc_s.append(term)
                    else:
                        acc_s[p * d + f] += term
                if len(acc_n) < len(a):
                    acc_n.append(a[p])
                else:
                    acc_n[p] += a[p]
            self.ops["ct_mul"] += len(a) * d
            self.ops["add"] += len(a) * (d + 1)
        return self._share(acc_s + acc_n, owners, me)

    def packed_distances(self, centers: list[bytes], d: int, sigma, m: int) -> dict[int, list[bytes]]:
        """sigma (||x - c_a||^2 + i ||x - c_b||^2) per chunk and pair of the ``m`` packed centers
        (``centers`` as :meth:`packed_scores` takes centroids): sigma (Q_p + (1 + i) ||x||^2). A
        lone last center (odd ``m``) gets sigma (Q_p + ||x||^2): its imaginary part stays empty
        (it would otherwise hold sigma ||x||^2, the distance to a center at the origin)."""
        pairs = self._pairs(centers, d)
        lv, out = self.codec.levels, {}
        for c in sorted(self.x):
            if c not in self.x2:
                acc = None
                for x in (levels.raw(v) for v in self.x[c]):
                    term = levels.seal.Ciphertext()
                    lv.evaluator.square(x, term)
                    if acc is None:
                        acc = term
                    else:
                        lv.evaluator.add_inplace(acc, term)
                lv._relinearize(acc)
                self.x2[c] = acc
                self.ops["ct_mul"] += d
            blobs, m2x = [], self._m2x(c)
            for p, pair in enumerate(pairs):
                norm = sigma * (1 + 1j) if 2 * p + 1 < m else sigma
                v = self._combine([(self._q(pair, m2x), sigma), (self.x2[c], norm)], PAIR_SCALE_BITS)
                blobs.append(lv.shrink_bytes(v, math.sqrt(2) * 2.0**self.params.headroom_bits,
                                             SCORE_MIN_SCALE_BITS))
            out[c] = blobs
        return out

    def op_counts(self) -> dict[str, int]:
        return dict(self.ops)
