"""The K-means key holder: makes and holds the secret key; sees blinded values only.

:class:`KeyHolder` makes the keys (the public context goes to the server and the owner, the secret
context only to its own worker shards) and turns the blinded cluster totals into centroids;
:class:`KeyHolderShard` decrypts a chunk's blinded scores, distances and masked totals and answers
with fresh encryptions (secret-key encryption, :func:`methods.he.crypto.secret_key_encryptor`),
never with a decryption.

A shard holds one party's context and its share of the chunks (chunk ``c`` covers records
``c*S .. (c+1)*S - 1``, ``S`` slots, the last chunk zero-padded). Shards of different parties never
share objects: the protocol (:mod:`methods.he.kmeans_protocol`) moves their bytes through a
:class:`~methods.he.transport.Channel`, and :class:`~methods.he.transport.Pool` may run them in
worker processes.
"""

from __future__ import annotations

import math

import numpy as np

from methods.he.crypto import (
    Codec,
    HEParams,
    encrypt_onehots_under,
    load_context,
    make_context,
    onehot_vectors,
    public_bytes,
    round_half_up,
    valid_rows,
)
from methods.he.levels import SELECTION_SCALE_BITS, raw


def packed_view(decrypted: list[np.ndarray], k: int) -> list[np.ndarray]:
    """The unpacked message of :meth:`~methods.he.kmeans_server.ServerShard.packed_scores`
    (complex slots, ceil(k/2) ciphertexts): position 0's score, then the k - 1 differences."""
    from methods.he.levels import PACKED_DIFF_GAIN

    first = np.asarray(decrypted[0])
    out = [first.real, first.imag / PACKED_DIFF_GAIN] if k > 1 else [first.real]
    for z in decrypted[1:]:
        out += [np.asarray(z).real, np.asarray(z).imag]
    return out[:k]


def packed_centers(decrypted: list[np.ndarray], d: int) -> np.ndarray:
    """The centers of a packed center message (per pair: d coordinates c_a + i c_b, then the norms),
    one row per center (two per pair, the last one's imaginary part empty for an odd count)."""
    rows = []
    for p in range(len(decrypted) // (d + 1)):
        z = np.array([np.asarray(v)[0] for v in decrypted[p * (d + 1):p * (d + 1) + d]])
        rows += [z.real, z.imag]
    return np.array(rows)


def decrypt_complex(codec: Codec, blob: bytes) -> np.ndarray:
    """The complex slots of a serialized CKKS vector (``codec`` holds the secret key)."""
    return codec.levels.decrypt_complex(raw(codec.load(blob)))


def seen_centers(codec: Codec, payload: list[bytes], k: int, d: int, packed: bool) -> np.ndarray:
    """The centroids a "centroids" message carries (k x d), packed or one coordinate per ciphertext."""
    if packed:
        return packed_centers([decrypt_complex(codec, b) for b in payload], d)[:k]
    return np.array([codec.decrypt(b)[0] for b in payload]).reshape(k, d)


def seen_scores(codec: Codec, payload: list[bytes], k: int, packed: bool, n: int) -> np.ndarray:
    """The k offset-blinded scores ``r s_l + o`` (n x k) a "blinded scores" message gives the key
    holder; ``payload`` is chunk-major (each chunk's ciphertexts, then the next chunk's)."""
    m = (k + 1) // 2 if packed else k
    dec = (lambda b: decrypt_complex(codec, b)) if packed else codec.decrypt
    cols = [np.concatenate([dec(b) for b in payload[j::m]])[:n] for j in range(m)]
    return blinded_scores(packed_view(cols, k) if packed else cols)


def blinded_scores(decrypted: list[np.ndarray]) -> np.ndarray:
    """The k offset-blinded scores ``r s_l + o`` of each point (columns) from one chunk's decrypted
    message: position 0's score, then the k - 1 differences to it."""
    base = np.asarray(decrypted[0])
    return np.stack([base] + [base + np.asarray(v) for v in decrypted[1:]], axis=1)


class KeyHolder:
    """Makes and holds the secret key; turns the blinded cluster totals into centroids."""

    def __init__(self, params: HEParams):
        self.params = params
        self.ctx = make_context(params)
        self.codec = Codec(self.ctx, params)

    def secret_context(self) -> bytes:
        """Serialized secret context, only for the key holder's own worker shards."""
        return self.ctx.serialize(save_secret_key=True)

    def public_context(self) -> bytes:
        """The owner's public context: the public key alone."""
        return public_bytes(self.ctx)

    def server_context(self) -> bytes:
        """The server's public context: the public key and, in CKKS, the relinearisation keys it
        relinearises what it sends with (never the secret key, never Galois keys)."""
        return public_bytes(self.ctx, relin_keys=self.params.scheme == "ckks")

    def conjugation_key(self) -> bytes:
        """CKKS: the Galois key of complex conjugation, the server's only Galois key (it takes
        packed totals apart with it, :mod:`methods.he.levels`)."""
        return self.codec.levels.conjugation_key()

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


class KeyHolderShard:
    """Decrypts blinded values of some chunks and answers with fresh encryptions."""

    def __init__(self, params: dict, secret_context: bytes, n: int):
        self.params = HEParams.from_dict(params)
        self.codec = Codec(load_context(secret_context), self.params)
        self.n = int(n)
        self.ops = {"decrypt": 0, "encrypt_sk": 0}

    def _valid(self, c: int) -> int:
        return valid_rows(self.n, self.params.slots, c)

    def onehot(self, labels: np.ndarray, k: int) -> list[bytes]:
        """Fresh encryptions of the first ``k`` indicator vectors of one chunk's labels."""
        self.ops["encrypt_sk"] += k
        return [self.codec.encrypt_bytes(v) for v in onehot_vectors(labels, k, self.params.slots)]

    def encrypt_pairs(self, rows: list[np.ndarray]) -> list[bytes]:
        """Packed centers (CKKS): per pair of rows (a, b), d fresh encryptions of a_f + i b_f and
        one of ||a||^2 + i ||b||^2 (at the scale of a product), each replicated in all slots; an
        odd last row is paired with nothing (zero imaginary part)."""
        S, delta, out = self.params.slots, self.params.delta, []
        lv = self.codec.levels
        for p in range(0, len(rows), 2):
            a = np.asarray(rows[p], dtype=float)
            b = np.asarray(rows[p + 1], dtype=float) if p + 1 < len(rows) else np.zeros_like(a)
            out += [lv.encrypt_bytes(np.full(S, complex(x, y)), delta) for x, y in zip(a, b, strict=True)]
            out.append(lv.encrypt_bytes(np.full(S, complex(a @ a, b @ b)), delta * delta))
        self.ops["encrypt_sk"] += len(out)
        return out

    def packed_onehot(self, labels: np.ndarray, k: int) -> list[bytes]:
        """Fresh packed one-hots ``a_2p + i a_{2p+1}`` of one chunk's labels, ceil(k/2) of them."""
        v = onehot_vectors(labels, k, self.params.slots, float) + [np.zeros(self.params.slots)]
        self.ops["encrypt_sk"] += (k + 1) // 2
        lv = self.codec.levels
        return [lv.encrypt_bytes(v[p] + 1j * v[p + 1], self.params.delta) for p in range(0, k, 2)]

    def packed_assign(self, scores: dict[int, list[bytes]], k: int,
                      n_onehots: int | None = None) -> tuple[dict, dict]:
        """:meth:`assign` on packed scores (:func:`packed_view`); answers with packed one-hots
        (``n_onehots=None``) or with the first ``n_onehots`` real ones."""
        onehots, labels = {}, {}
        lv = self.codec.levels
        for c, cts in scores.items():
            m = self._valid(c)
            view = packed_view([lv.decrypt_complex(raw(self.codec.load(b)))[:m] for b in cts], k)
            self.ops["decrypt"] += len(cts)
            lab = np.stack([np.zeros(m)] + view[1:], axis=1).argmin(axis=1)
            labels[c] = lab
            onehots[c] = self.packed_onehot(lab, k) if n_onehots is None else self.onehot(lab, n_onehots)
        return onehots, labels

    def packed_slot_sums(self, blobs: list[bytes]) -> list[tuple[float, float]]:
        """(sum of real parts, sum of imaginary parts) of masked packed vectors (``math.fsum``)."""
        lv, out = self.codec.levels, []
        for b in blobs:
            z = lv.decrypt_complex(raw(self.codec.load(b)))
            self.ops["decrypt"] += 1
            out.append((math.fsum(z.real.tolist()), math.fsum(z.imag.tolist())))
        return out

    def packed_decrypt_chunks(self, blobs: dict[int, list[bytes]], count: int) -> dict[int, np.ndarray]:
        """Packed distances (real, imaginary: two centers per ciphertext), ``count`` rows per chunk."""
        lv, out = self.codec.levels, {}
        for c, cts in blobs.items():
            m = self._valid(c)
            rows = []
            for b in cts:
                z = lv.decrypt_complex(raw(self.codec.load(b)))[:m]
                rows += [z.real, z.imag]
            out[c] = np.stack(rows[:count], axis=0)
            self.ops["decrypt"] += len(cts)
        return out

    def packed_selections(self, picks: list[tuple[int, int]], chunks: list[int]) -> dict[int, list[bytes]]:
        """:meth:`selections` with two picks per ciphertext (real and imaginary part), encrypted at
        2^SELECTION_SCALE_BITS (:mod:`methods.he.levels`)."""
        S, lv, out = self.params.slots, self.codec.levels, {}
        for c in chunks:
            vecs = []
            for p in range(0, len(picks), 2):
                v = np.zeros(S, dtype=complex)
                for e, (pc, ps) in enumerate(picks[p:p + 2]):
                    if pc == c:
                        v[ps] += 1j if e else 1.0
                vecs.append(lv.encrypt_bytes(v, 2.0**SELECTION_SCALE_BITS))
            out[c] = vecs
        self.ops["encrypt_sk"] += (len(picks) + 1) // 2 * len(chunks)
        return out

    def assign(self, scores: dict[int, list[bytes]], k: int,
               n_onehots: int | None = None) -> tuple[dict, dict]:
        """Argmin of each point's blinded scores; fresh encrypted one-hots of the argmin position,
        the first ``n_onehots`` positions (default k; k - 1 suffice for the server's sums). A
        chunk's scores are position 0's ``r s_0 + o`` and the k - 1 differences ``r (s_l - s_0)``
        (see :func:`blinded_scores`); the argmin needs only the differences."""
        onehots, labels = {}, {}
        for c, cts in scores.items():
            m = self._valid(c)
            vals = np.stack([np.zeros(m)] + [self.codec.decrypt(b)[:m] for b in cts[1:]], axis=1)
            self.ops["decrypt"] += len(cts) - 1
            lab = vals.argmin(axis=1)
            labels[c] = lab
            onehots[c] = self.onehot(lab, k if n_onehots is None else n_onehots)  # positions 0, 1, ...
        return onehots, labels

    def slot_sums(self, blobs: list[bytes]) -> list:
        """Decrypt masked vectors and sum their slots: exactly rounded (``math.fsum``) in CKKS,
        exact integers mod t (centred) in BFV."""
        out = []
        for b in blobs:
            v = self.codec.decrypt(b)
            self.ops["decrypt"] += 1
            if self.params.scheme == "ckks":
                out.append(math.fsum(v.tolist()))
            else:
                t = self.params.plain_modulus
                s = int(sum(int(x) for x in v)) % t
                out.append(s - t if s > t // 2 else s)
        return out

    def encrypt_replicated(self, values: list) -> list[bytes]:
        """Each value in every slot (degree 1), fresh encryptions."""
        S = self.params.slots
        self.ops["encrypt_sk"] += len(values)
        return [self.codec.encrypt_bytes(np.full(S, v)) for v in values]

    def decrypt_chunks(self, blobs: dict[int, list[bytes]]) -> dict[int, np.ndarray]:
        out = {}
        for c, cts in blobs.items():
            m = self._valid(c)
            out[c] = np.stack([self.codec.decrypt(b)[:m] for b in cts], axis=0)
            self.ops["decrypt"] += len(cts)
        return out

    def selections(self, picks: list[tuple[int, int]], chunks: list[int]) -> dict[int, list[bytes]]:
        """For each pick (chunk, slot) a selection vector in every chunk (zero except at the pick)."""
        S = self.params.slots
        out = {}
        for c in chunks:
            vecs = []
            for pc, ps in picks:
                v = np.zeros(S, dtype=np.int64)
                if pc == c:
                    v[ps] = 1
                vecs.append(self.codec.encrypt_bytes(v))
            out[c] = vecs
        self.ops["encrypt_sk"] += len(picks) * len(chunks)
        return out

    def encrypt_assignments(self, labels: dict[int, np.ndarray], k: int, public_context: bytes,
                            slots: int) -> dict[int, list[bytes]]:
        """Fresh one-hot ciphertexts of final labels (``slots`` records per ciphertext, zero-padded)
        under another party's public context (at that context's global scale)."""
        self.ops["encrypt_sk"] += k * len(labels)
        return encrypt_onehots_under(public_context, labels, k, slots)

    def op_counts(self) -> dict[str, int]:
        return dict(self.ops)
