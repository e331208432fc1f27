"""The logistic regression's compute server: the public context only, all data as ciphertexts.

:class:`LRServer` holds the public context (public and relinearisation keys; no Galois keys, no
secret key: refused if it has one) and the encrypted columns, and does every product over the
data. Its masks (below) are drawn from its own generator; what it sends the key holder carries a
fresh public-key encryption (the mask of ``z``, or an encryption of zero: :meth:`LRServer.dump_small`).

Depth budget of one iteration (levels counted from a fresh ciphertext, ``L0``):

``z = sum_j x_j * v_j``      tensor products at L1, summed *without* relinearisation or rescaling
                             (one relin/rescale saved per product); masked, refreshed by the key
                             holder -> fresh ``z`` at L0
``z^2``, ``z * u``           L1  (``u = a3 * c_i``: record weight times the cubic coefficient)
``r = (z u)(z^2 + a1/a3)``   L2  ``= c_i (a1 z + a3 z^3)``
``G_j = sum_c x_j * r``      tensor products at L2, summed over chunks, masked, sent unrelinearised

so one iteration needs two rescales after a refresh plus room for an unrescaled product at
``scale^2``: four data primes, e.g. ``[50, 36, 36, 36 | 60]`` at N = 8192 (218 bits, the 128-bit
limit). The constant part of the gradient, ``sum_i c_i x_i (0.5 - y_i)``, is computed once.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import tenseal as ts

from methods.he.crypto import HEParams, check_logreg_params, load_context
from methods.he.levels import Levels
from methods.he.logreg_math import NesterovState, SigmoidPoly, nesterov_step

#: Per-slot mask half-widths. z and u masks have ~2^49 of headroom at their level; gradient
#: slots only 2^13 (the unrescaled product at scale^2 sits on two primes), so their mask is
#: a per-slot uniform value plus a per-feature offset, kept under 2^12 in total.
Z_MASK = 2.0**20
GRAD_MASK = 2.0**10
GRAD_OFFSET = 2.0**11


class _Lazy:
    """Within the block, ciphertext products are neither relinearised nor rescaled."""

    def __init__(self, ctx: ts.Context):
        self.ctx = ctx

    def __enter__(self):
        self.ctx.auto_relin = False
        self.ctx.auto_rescale = False

    def __exit__(self, *exc):
        self.ctx.auto_relin = True
        self.ctx.auto_rescale = True


def _level(vec: ts.CKKSVector) -> int:
    return vec.ciphertext()[0].coeff_modulus_size()


def _scale(vec: ts.CKKSVector) -> float:
    return vec.ciphertext()[0].scale


@dataclass
class OpCounts:
    """Homomorphic operations the server performed, by kind."""

    tensor: int = 0       # ciphertext products without relinearisation / rescaling
    mul_relin: int = 0    # products with relinearisation and rescaling
    mul_scalar: int = 0   # ciphertext x scalar (one rescale)
    mul_plain: int = 0    # ciphertext x plaintext vector (mask encodings)
    encrypt: int = 0      # public-key encryptions (masks, intercept column)
    add: int = 0
    serialize: int = 0
    deserialize: int = 0
    extra: dict = field(default_factory=dict)

    def as_dict(self) -> dict:
        out = {k: v for k, v in self.__dict__.items() if k != "extra"}
        out.update(self.extra)
        return out


class LRServer:
    """Honest-but-curious compute server: public context only, all data as ciphertexts."""

    def __init__(self, public_context: bytes, params: HEParams, seed=None):
        check_logreg_params(params)
        self.params = params
        self.ctx = load_context(public_context, lazy=False)
        if self.ctx.is_private():
            raise ValueError("the server's context must not hold a secret key")
        self.ctx.global_scale = 2.0**params.scale_bits
        self.rng = np.random.default_rng(seed)
        self.levels = Levels(self.ctx, params.slots)
        self.ops = OpCounts()
        self._ones: dict[float, ts.CKKSVector] = {}

    # -- helpers -----------------------------------------------------------------------------
    def load(self, payload: bytes) -> ts.CKKSVector:
        self.ops.deserialize += 1
        return ts.ckks_vector_from(self.ctx, payload)

    def dump(self, vec: ts.CKKSVector) -> bytes:
        self.ops.serialize += 1
        return vec.serialize()

    #: re-randomise what :meth:`dump_small` sends; off only in the test that compares a message
    #: with the key holder's own replay of the server's public operations
    _rerandomize = True

    def dump_small(self, vec: ts.CKKSVector, value_bound: float, rerandomize: bool | None = None) -> bytes:
        """A masked vector for the key holder in its smallest form: relinearised, rescaled while
        the scale stays >= 2^(scale_bits - 4), mod-switched while ``value_bound`` still fits; then
        (``rerandomize``) plus a fresh public-key encryption of zero at that level. The key holder
        made the columns and labels and every refreshed value, so without it the second polynomial
        would be a function of polynomials it knows, the server's masks and the one encryption of
        ones the plaintext masks ride on (:meth:`_mask`), the same in every message."""
        self.ops.serialize += 1
        rerandomize = self._rerandomize if rerandomize is None else rerandomize
        if rerandomize:
            self.ops.encrypt += 1
            self.ops.add += 1
        return self.levels.shrink_bytes(vec, value_bound, self.params.scale_bits - 4, rerandomize=rerandomize)

    def _load_at_level_of(self, payload: bytes, ref: ts.CKKSVector) -> ts.CKKSVector:
        """Load ``payload`` mod-switched down to ``ref``'s level (TenSEAL switches the higher
        operand of a product in place; the product itself is thrown away). Loading again is
        cheaper than ``copy()``, which duplicates the whole context with its keys."""
        out = self.load(payload)
        with _Lazy(self.ctx):
            ref * out
        self.ops.tensor += 1
        return out

    def _mask(self, vec: ts.CKKSVector, mask: np.ndarray, encrypt: bool = False) -> ts.CKKSVector:
        """``vec + mask`` for a vector at any scale (TenSEAL encodes plaintexts at a vector's initial
        scale, so an unrescaled product cannot take a plaintext). Either a public encryption of
        the mask at vec's scale (``encrypt``: exact up to fresh noise), or a public encryption
        of ones at sqrt(vec's scale) times the mask as a plaintext (cheaper; its noise grows
        with the mask, which is fine for the small gradient masks)."""
        s = _scale(vec)
        if encrypt:
            self.ops.encrypt += 1
            with _Lazy(self.ctx):
                out = vec + ts.ckks_vector(self.ctx, mask, scale=s)
            self.ops.add += 1
            return out
        one = self._ones.get(s)
        if one is None:
            one = self._ones[s] = ts.ckks_vector(self.ctx, np.ones(self.params.slots), scale=math.sqrt(s))
        with _Lazy(self.ctx):
            m = one * mask.tolist()
            self.ops.mul_plain += 1
            out = vec + m
            self.ops.add += 1
        return out

    # -- setup -------------------------------------------------------------------------------
    def receive_data(self, columns: Sequence[Sequence[bytes]], labels: Sequence[bytes], n_rows: int) -> None:
        """Encrypted columns (d lists of chunk ciphertexts) and labels (chunk ciphertexts)."""
        n_chunks = math.ceil(n_rows / self.params.slots)
        for j, col in enumerate(columns):
            if len(col) != n_chunks:
                raise ValueError(f"column {j} has {len(col)} chunks; expected {n_chunks} for n_rows={n_rows} "
                                 f"at {self.params.slots} slots per ciphertext")
        if len(labels) != n_chunks:
            raise ValueError(f"labels have {len(labels)} chunks; expected {n_chunks} for n_rows={n_rows}")
        self.n_rows, self.n_chunks, self.d = n_rows, n_chunks, len(columns)
        self.y = [self.load(p) for p in labels]
        # reference ciphertexts at L1 and L2 to switch copies down to
        one = ts.ckks_vector(self.ctx, np.ones(self.params.slots))
        l1 = one * one
        l2 = l1 * l1
        self.ops.mul_relin += 2
        self.x_z = [[self._load_at_level_of(p, l1) for p in col] for col in columns]  # for z, at L1
        self.x_g = [[self._load_at_level_of(p, l2) for p in col] for col in columns]  # gradients, L2

    def prepare(self, poly: SigmoidPoly, w_neg: float, w_pos: float) -> tuple[list[bytes], list[bytes]]:
        """Record weights from the encrypted labels: ``u = a3 c`` (sent masked for a refresh) and
        the constant gradient term ``sum_c x_j c (0.5 - y)`` (sent masked, once)."""
        self.poly = poly
        alpha, beta = w_neg, w_pos - w_neg   # c = alpha + beta y
        u_masked, self._u_mask, const = [], [], None
        for c, y in enumerate(self.y):
            u = y * (poly.a3 * beta) + poly.a3 * alpha
            e = y * (-(alpha + 0.5 * beta)) + 0.5 * alpha   # c (0.5 - y) for y in {0, 1}
            self.ops.mul_scalar += 2
            r = self.rng.uniform(-Z_MASK, Z_MASK, self.params.slots)
            self._u_mask.append(r)
            u_masked.append(self.dump_small(u + r.tolist(), 2 * Z_MASK))
            with _Lazy(self.ctx):
                self.x_g[0][c] * e   # switches e down to L2 in place
            const = self._accumulate(const, c, e)
        out, self._b_mask = self._masked_sums(const)
        return u_masked, out

    def receive_weights_u(self, refreshed: Sequence[bytes]) -> None:
        self.u = [self.load(p) - m.tolist() for p, m in zip(refreshed, self._u_mask, strict=True)]
        self.ops.add += len(self.u)

    def start(self, masked_v: Sequence[bytes], step: dict) -> None:
        self._step = step
        self._masks = NesterovState(np.zeros(self.d), np.zeros(self.d))
        self._set_v(masked_v)

    # -- iteration ---------------------------------------------------------------------------
    def _accumulate(self, acc, c: int, vec: ts.CKKSVector):
        """``acc[j] += x_jc * vec`` for every column j (unrelinearised products at L2)."""
        with _Lazy(self.ctx):
            terms = [self.x_g[j][c] * vec for j in range(self.d)]
        self.ops.tensor += self.d
        if acc is None:
            return terms
        for j in range(self.d):
            acc[j] += terms[j]
        self.ops.add += self.d
        return acc

    def _masked_sums(self, vectors) -> tuple[list[bytes], np.ndarray]:
        """Each vector plus random slot values (uniform noise and a per-vector offset), for the key
        holder to sum; returns the payloads and the mask sums to remove later."""
        out, sums = [], np.zeros(len(vectors))
        for j, vec in enumerate(vectors):
            r = (self.rng.uniform(-GRAD_MASK, GRAD_MASK, self.params.slots)
                 + self.rng.uniform(-GRAD_OFFSET, GRAD_OFFSET))
            sums[j] = r.sum()
            out.append(self.dump_small(self._mask(vec, r), 2 * (GRAD_MASK + GRAD_OFFSET)))
        return out, sums

    def _set_v(self, masked_v: Sequence[bytes]) -> None:
        self.v = [self.load(p) - float(m) for p, m in zip(masked_v, self._masks.v, strict=True)]
        self.ops.add += self.d

    def scores(self) -> list[bytes]:
        """Masked linear scores z = X v per chunk, for the key holder to refresh."""
        out, self._z_mask = [], []
        for c in range(self.n_chunks):
            with _Lazy(self.ctx):
                z = self.x_z[0][c] * self.v[0]
                for j in range(1, self.d):
                    z += self.x_z[j][c] * self.v[j]
            self.ops.tensor += self.d
            self.ops.add += self.d - 1
            r = self.rng.uniform(-Z_MASK, Z_MASK, self.params.slots)
            self._z_mask.append(r)
            # the mask is a fresh public-key encryption already: nothing to add
            out.append(self.dump_small(self._mask(z, r, encrypt=True), 2 * Z_MASK, rerandomize=False))
        return out

    def gradients(self, refreshed_z: Sequence[bytes]) -> list[bytes]:
        """Masked per-feature gradient vectors from the refreshed scores."""
        grads = None
        a = self.poly.a1 / self.poly.a3
        for c, (p, m) in enumerate(zip(refreshed_z, self._z_mask, strict=True)):
            z = self.load(p) - m.tolist()
            r = (z * self.u[c]) * (z * z + a)        # c (a1 z + a3 z^3), at L2
            self.ops.mul_relin += 3
            self.ops.add += 2
            grads = self._accumulate(grads, c, r)
        out, m = self._masked_sums(grads)
        self._pending = m + self._b_mask
        return out

    def receive_update(self, masked_v: Sequence[bytes]) -> None:
        self._masks = nesterov_step(self._masks, self._pending, **self._step)
        self._set_v(masked_v)

    def finish(self, masked_w: Sequence[bytes]) -> list[bytes]:
        """Unmask the key holder's fresh final weights; keep them for encrypted inference and
        return them (still encrypted) for the owner."""
        self.w = [self.load(p) - float(m) for p, m in zip(masked_w, self._masks.w, strict=True)]
        self.ops.add += self.d
        return [self.dump(w) for w in self.w]

    # -- inference ---------------------------------------------------------------------------
    def score_encrypted(self, columns: Sequence[Sequence[bytes]]) -> list[bytes]:
        """Encrypted linear scores of new encrypted rows (same column layout, intercept column
        included) under the encrypted final weights; only the key holder can open them."""
        if len(columns) != self.d:
            raise ValueError(
                f"got {len(columns)} encrypted columns; the model has {self.d} (incl. intercept)")
        out = []
        for c in range(len(columns[0])):
            with _Lazy(self.ctx):
                z = self.load(columns[0][c]) * self.w[0]
                for j in range(1, self.d):
                    z += self.load(columns[j][c]) * self.w[j]
            self.ops.tensor += self.d
            out.append(self.dump(z))
        return out
