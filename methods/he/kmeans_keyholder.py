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
