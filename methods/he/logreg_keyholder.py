"""The logistic regression's key holder (by default the owner): the secret key; masked values only.

:class:`LRKeyHolder` makes the keys (the server gets public and relinearisation keys, never the
secret key or Galois keys), encrypts the owner's columns, decrypts only values the server has
blinded with random additive masks and answers with fresh encryptions (never a decryption to the
server). It also runs the Nesterov update on *masked* weights; the update is linear, so the server
can track the masks and remove them from the fresh ciphertexts.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import tenseal as ts

from methods.he.crypto import HEParams, check_logreg_params, column_chunks, make_context, public_bytes
from methods.he.levels import Levels
from methods.he.logreg_math import NesterovState, nesterov_step


class LRKeyHolder:
    """Holds the secret key; sees only masked values; answers with fresh encryptions.

    ``keep_transcript`` records every vector it decrypts (for the security tests).
    """

    def __init__(self, params: HEParams, keep_transcript: bool = False):
        check_logreg_params(params)
        self.params = params
        self._ctx = make_context(params, relin_keys=True)
        self._levels = Levels(self._ctx, params.slots)
        #: the level (primes left) the model columns and the broadcast weights are sent at: the
        #: server uses them only one prime down (products for the scores), never at the top
        self.column_level = self._levels.top - 1
        self.keep_transcript = keep_transcript
        self.transcript: list[np.ndarray] = []
        self.decryptions = 0
        self.encryptions = 0

    # -- keys and data -----------------------------------------------------------------------
    def public_context(self) -> bytes:
        """The server's context: public and relinearisation keys, no secret key, no Galois keys."""
        return public_bytes(self._ctx, relin_keys=True)

    def encrypt(self, values: np.ndarray, level: int | None = None) -> bytes:
        """A secret-key encryption at ``level`` (default: all primes), in SEAL's seeded form (half
        the size; :meth:`methods.he.levels.Levels.encrypt_bytes`)."""
        self.encryptions += 1
        return self._levels.encrypt_bytes(np.asarray(values, float), self._ctx.global_scale, level)

    def encrypt_column(self, values: np.ndarray, level: int | None = None) -> list[bytes]:
        """One column, chunked column-major into ciphertexts of N/2 slots (last chunk padded)."""
        chunks = column_chunks(np.asarray(values, float), self.params.slots)
        return [self.encrypt(chunk, level) for chunk in chunks]

    def _decrypt(self, payload: bytes) -> np.ndarray:
        self.decryptions += 1
        out = np.asarray(ts.ckks_vector_from(self._ctx, payload).decrypt())
        if self.keep_transcript:
            self.transcript.append(out)
        return out

    def decrypt_model(self, payload: bytes) -> np.ndarray:
        """Open the final encrypted model (the owner's right when it is the key holder)."""
        return self._decrypt(payload)

    # -- protocol ----------------------------------------------------------------------------
    def refresh(self, payloads: Sequence[bytes]) -> list[bytes]:
        """Fresh encryptions of masked vectors (the masks stay on; only the server can remove them)."""
        return [self.encrypt(self._decrypt(p)) for p in payloads]

    def start(self, masked_constant: Sequence[bytes], *, total_weight: float, l2: float,
              penalised: np.ndarray, eta: np.ndarray, gamma: np.ndarray) -> list[bytes]:
        """Receive the masked constant gradient term; start from w = v = 0; send Enc(v_0)."""
        self._b = np.array([self._decrypt(p).sum() for p in masked_constant])
        self._step = dict(total_weight=total_weight, l2=l2, penalised=penalised, eta=eta, gamma=gamma)
        d = len(masked_constant)
        self._state = NesterovState(np.zeros(d), np.zeros(d))
        return self._broadcast(self._state.v)

    def update(self, masked_gradients: Sequence[bytes]) -> list[bytes]:
        """One Nesterov step on masked weights from masked per-feature gradient vectors.

        Only slot sums are needed: the server masked each vector with random slot values, so
        summing them here spares the server its rotations (and the Galois keys).
        """
        raw = np.array([self._decrypt(p).sum() for p in masked_gradients]) + self._b
        self._state = nesterov_step(self._state, raw, **self._step)
        return self._broadcast(self._state.v)

    def final(self) -> list[bytes]:
        """Fresh encryptions of the (masked) final weights, one broadcast ciphertext each."""
        return self._broadcast(self._state.w)

    def _broadcast(self, values: np.ndarray) -> list[bytes]:
        return [self.encrypt(np.full(self.params.slots, v), self.column_level) for v in values]
