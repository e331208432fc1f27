"""CKKS ciphertexts below TenSEAL's vector API: true scales, modulus levels, SEAL's seeded form.

TenSEAL 0.3.18 exposes SEAL's objects (``tenseal.sealapi``, the same extension module as its
vectors) but serializes every vector as a full ciphertext at whatever level it sits, and its
automatic rescaling overwrites the true scale with the vector's initial one. The K-means protocol
uses these helpers at the edges of its arithmetic instead:

- :meth:`Levels.encrypt_bytes`: a secret-key (symmetric) encryption saved in SEAL's *seeded* form:
  the second polynomial is replaced by the seed it was drawn from, so the ciphertext is about half
  the size; the receiver's ``ckks_vector_from`` expands it (SEAL's ``Ciphertext::load``).
- :meth:`Levels.shrink`: rescale while the scale stays at or above a floor, mod-switch while the
  value still fits, after relinearising a 3-component product; SEAL keeps the true scale, which TenSEAL's
  decryption uses, so the receiver decrypts the same values from fewer bytes.
- :meth:`Levels.add_plain` / :meth:`Levels.mul_constant`: plaintext terms encoded at a
  ciphertext's own level and scale (TenSEAL encodes at the vector's initial scale, top level).
- :meth:`Levels.rerandomize`: adds a fresh public-key encryption of zero made at a ciphertext's
  own level and scale, so that its second polynomial no longer is a function of the operands'
  (which a key holder who made those operands knows) and of the server's plaintext factors.

SEAL saves and loads only through files here: the bytes pass through a per-process file on a
memory file system (``/dev/shm`` where it exists), removed at once.
"""

from __future__ import annotations

import itertools
import math
import os
import struct
import tempfile

import numpy as np
import tenseal as ts
import tenseal.sealapi as seal

# --------------------------------------------------------------------------- the K-means scale plan

#: rho_j is rounded to RHO_FRAC_BITS fractional bits, so the constant encodes exactly at any scale
#: from 2^RHO_FRAC_BITS up (it multiplies the masked sums and counts at the finest scale up to
#: 2^RHO_MAX_SCALE_BITS that leaves room for the value) and cancels exactly in sum / count. The
#: permuted protocol's un-permuting masks carry rho at 2^RHO_SUM_SCALE_BITS.
RHO_FRAC_BITS, RHO_MAX_SCALE_BITS, RHO_SUM_SCALE_BITS = 24, 36, 32
#: a masked total is rescaled before the mask while its scale stays at or above 2^PRE_RESCALE_BITS
PRE_RESCALE_BITS = 36
#: floors on the scale of what the server sends: blinded scores and distances, masked totals,
#: extracted coordinates
SCORE_MIN_SCALE_BITS, TOTAL_MIN_SCALE_BITS, EXTRACT_MIN_SCALE_BITS = 30, 36, 60
#: position 0's offset-blinded score r * s_0 + o: r encoded at 2^BASE_SCALE_BITS (degree 3 at 2^115
#: holds the 31-bit offset), sent at a scale of at least 2^BASE_MIN_SCALE_BITS (the argmin does not
#: use it: it keeps the key holder's view what it was)
BASE_SCALE_BITS, BASE_MIN_SCALE_BITS = 35, 27
#: a 3-component product may be rescaled as it is while the scale left stays at or above this
RELIN_SCALE_BITS = 60
#: packed (complex) messages: two blinded score differences per ciphertext have their factors r
#: encoded at 2^PAIR_SCALE_BITS (degree 3 at 2^119 holds |a + i b| <= 2^27.5, and two rescales
#: leave 2^31 on the last prime); the first difference rides in position 0's ciphertext, times
#: PACKED_DIFF_GAIN in the imaginary part, so that it keeps the precision of a scale of 2^31 there
PAIR_SCALE_BITS, PACKED_DIFF_GAIN = 39, 16.0
#: packed selections are encrypted at 2^SELECTION_SCALE_BITS: the extracted coordinate (degree 2
#: at 2^108, 3 primes) is rescaled once to 2^64 and its mask still fits the two primes left
SELECTION_SCALE_BITS = 68


_DIR = "/dev/shm" if os.path.isdir("/dev/shm") and os.access("/dev/shm", os.W_OK) else tempfile.gettempdir()
_COUNTER = itertools.count()


def _save(obj) -> bytes:
    path = os.path.join(_DIR, f"privmark-seal-{os.getpid()}-{next(_COUNTER)}")
    try:
        obj.save(path)
        with open(path, "rb") as f:
            return f.read()
    finally:
        try:
            os.unlink(path)
        except FileNotFoundError:
            pass


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        b, n = n & 0x7F, n >> 7
        out.append(b | 0x80 if n else b)
        if not n:
            return bytes(out)


def wrap(ciphertext: bytes, size: int, init_scale: float) -> bytes:
    """A TenSEAL ``CKKSVectorProto`` (tenseal/proto/tensors.proto: sizes = 1, ciphertexts = 2,
    scale = 3) around one serialized SEAL ciphertext: what ``ts.ckks_vector_from`` reads."""
    sizes = _varint(int(size))
    return (b"\x0a" + _varint(len(sizes)) + sizes + b"\x12" + _varint(len(ciphertext)) + ciphertext
            + b"\x19" + struct.pack("<d", float(init_scale)))


def _is_ct(obj) -> bool:
    return hasattr(obj, "coeff_modulus_size")


def raw(vec) -> seal.Ciphertext:
    """A copy of the (single) SEAL ciphertext of a TenSEAL CKKS vector (a ciphertext as it is)."""
    return vec if _is_ct(vec) else vec.data.ciphertext()[0]


def level(vec_or_ct) -> int:
    """Primes left in a ciphertext's modulus (the top level has all data primes)."""
    ct = raw(vec_or_ct)
    return int(ct.coeff_modulus_size())


class Levels:
    """SEAL-level operations on one TenSEAL CKKS context (public or secret)."""

    def __init__(self, ctx: ts.Context, slots: int):
        self.ctx, self.slots = ctx, int(slots)
        self.sc = ctx.data.seal_context()
        self.evaluator = seal.Evaluator(self.sc)
        self.encoder = seal.CKKSEncoder(self.sc)
        self.pids, self.bits, self.top_prime = {}, {}, {}
        data = self.sc.first_context_data()
        while data is not None:
            primes = [m.value() for m in data.parms().coeff_modulus()]
            self.pids[len(primes)] = data.parms_id()
            self.bits[len(primes)] = sum(math.log2(p) for p in primes)
            self.top_prime[len(primes)] = primes[-1]
            data = data.next_context_data()
        self.top = max(self.pids)
        self._relin = ctx.data.relin_keys() if ctx.has_relin_keys() else None
        self._sym = seal.Encryptor(self.sc, ctx.data.secret_key()) if ctx.is_private() else None
        self._pub = None  # the public-key encryptor, made on first use

    def encode(self, values, level: int, scale: float) -> seal.Plaintext:
        """``values`` (real or complex: a scalar fills every slot) at ``level`` and ``scale``."""
        pt = seal.Plaintext()
        if np.ndim(values) == 0:
            v = complex(values) if np.iscomplexobj(values) else float(values)
            self.encoder.encode(v, self.pids[level], float(scale), pt)
        else:
            arr = np.asarray(values)
            arr = arr.astype(complex) if np.iscomplexobj(arr) else arr.astype(float)
            self.encoder.encode(arr.tolist(), self.pids[level], float(scale), pt)
        return pt

    # ------------------------------------------------------------------ complex slots
    # A CKKS slot holds a complex number; a real vector leaves the imaginary parts empty. The
    # protocols pack two real vectors a and b into one ciphertext of a + i b: linear operations
    # act on both parts at once, and a real plaintext factor scales both. Where the two parts
    # need different treatment the server takes them apart with the conjugation key (Galois
    # element 2N - 1, the only Galois key it holds): Re z = (z + conj z) / 2, Im z = (z - conj z) / 2i.

    def conjugation_key(self) -> bytes:
        """The Galois key of complex conjugation, serialized in seeded form (made with the secret key)."""
        if not self.ctx.is_private():
            raise ValueError("the conjugation key is made with the secret key")
        # SEAL's serializable form: each key's second polynomials replaced by their seed (half the bytes)
        return _save(seal.KeyGenerator(self.sc, self.ctx.data.secret_key()).create_galois_keys(
            [2 * self.sc.key_context_data().parms().poly_modulus_degree() - 1]))

    def load_conjugation_key(self, data: bytes) -> None:
        path = os.path.join(_DIR, f"privmark-seal-{os.getpid()}-{next(_COUNTER)}")
        try:
            with open(path, "wb") as f:
                f.write(data)
            keys = seal.GaloisKeys()
            keys.load(self.sc, path)
        finally:
            os.unlink(path)
        self._galois = keys

    def conjugate(self, ct: seal.Ciphertext) -> seal.Ciphertext:
        """A new ciphertext of the slot-wise complex conjugate of ``ct`` (relinearised first)."""
        if getattr(self, "_galois", None) is None:
            raise ValueError("conjugation needs the conjugation key (load_conjugation_key)")
        self._relinearize(ct)
        out = seal.Ciphertext()
        self.evaluator.complex_conjugate(ct, self._galois, out)
        return out

    def split(self, ct: seal.Ciphertext) -> tuple[seal.Ciphertext, seal.Ciphertext]:
        """(2 Re z, 2 Im z) of a ciphertext of z, exact up to the key switch's noise: z + conj z
        and -i (z - conj z) (the factor -i is the monomial -X^(N/2), encoded exactly at scale 1)."""
        conj = self.conjugate(ct)
        re, im = seal.Ciphertext(), seal.Ciphertext()
        self.evaluator.add(ct, conj, re)
        self.evaluator.sub(ct, conj, im)
        self.evaluator.multiply_plain_inplace(im, self.encode(-1j, level(im), 1.0))
        return re, im

    def mul_complex_plain(self, ct: seal.Ciphertext, values, scale: float) -> seal.Ciphertext:
        """A new ciphertext of ``ct`` times the (complex) plaintext ``values`` encoded at ``scale``."""
        out = seal.Ciphertext()
        self.evaluator.multiply_plain(ct, self.encode(values, level(ct), scale), out)
        return out

    def decrypt_complex(self, ct: seal.Ciphertext) -> np.ndarray:
        """The complex slots of ``ct`` (needs the secret key)."""
        if getattr(self, "_decryptor", None) is None:
            self._decryptor = seal.Decryptor(self.sc, self.ctx.data.secret_key())
        pt = seal.Plaintext()
        self._decryptor.decrypt(ct, pt)
        return np.asarray(self.encoder.decode_complex(pt))

    def encrypt_bytes(self, values, scale: float, level: int | None = None) -> bytes:
        """Secret-key encryption of ``values`` at ``level`` (default top) and ``scale``, serialized
        in seeded form inside a vector whose initial scale is ``scale``."""
        if self._sym is None:
            raise ValueError("seeded encryption needs the secret key (secret-key encryption)")
        pt = self.encode(values, level or self.top, scale)
        return wrap(_save(self._sym.encrypt_symmetric(pt)), self.slots, scale)

    def to_bytes(self, ct: seal.Ciphertext, init_scale: float | None = None) -> bytes:
        return wrap(_save(ct), self.slots, ct.scale if init_scale is None else init_scale)

    def vector(self, ct: seal.Ciphertext, init_scale: float | None = None):
        return ts.ckks_vector_from(self.ctx, self.to_bytes(ct, init_scale))

    def add_plain(self, ct: seal.Ciphertext, values) -> None:
        """``ct += values`` encoded at the ciphertext's own level and true scale (in place)."""
        self.evaluator.add_plain_inplace(ct, self.encode(values, level(ct), ct.scale))

    def mul_constant(self, ct: seal.Ciphertext, value: float, scale: float) -> None:
        """``ct *= value`` with the constant encoded at ``scale`` (exact for a dyadic ``value`` with
        at most log2(scale) fractional bits): the scale grows by ``scale`` (in place)."""
        self.evaluator.multiply_plain_inplace(ct, self.encode(float(value), level(ct), scale))

    def rerandomize(self, ct: seal.Ciphertext) -> None:
        """``ct += Enc_pk(0)``, the encryption of zero made at ``ct``'s level and given ``ct``'s
        scale (in place): the result's second polynomial is uniformly random to whoever holds the
        secret key, whatever ``ct`` was computed from. Its noise is a fresh encryption's, a few
        thousand in absolute terms: nothing at the scales the protocols send. Relinearises first."""
        if self._pub is None:
            self._pub = seal.Encryptor(self.sc, self.ctx.data.public_key())
        self._relinearize(ct)
        zero = seal.Ciphertext()
        self._pub.encrypt_zero(ct.parms_id(), zero)
        zero.scale = ct.scale
        self.evaluator.add_inplace(ct, zero)

    def _shrunk_level(self, lv: int, scale: float, value_bound: float, min_scale_bits: float) -> int:
        """The level :meth:`shrink` brings a ciphertext at (lv, scale) to."""
        while lv > 1:
            if math.log2(scale / self.top_prime[lv]) >= min_scale_bits:
                scale /= self.top_prime[lv]
            elif math.log2(max(value_bound, 1.0)) + math.log2(scale) + 1 < self.bits[lv - 1]:
                pass
            else:
                break
            lv -= 1
        return lv

    def factor_scale_bits(self, ct: seal.Ciphertext, value_bound: float, min_scale_bits: float,
                          lo: int, hi: int) -> int | None:
        """The scale exponent in [lo, hi] to encode a constant factor at (the value bound already
        includes the factor) that lets :meth:`shrink` send the product at the lowest level, the
        finest such; None if none fits the current modulus."""
        best = None
        for b in range(hi, lo - 1, -1):
            scale = ct.scale * 2.0**b
            if math.log2(max(value_bound, 1.0)) + math.log2(scale) + 1 >= self.bits[level(ct)]:
                continue
            lv = self._shrunk_level(level(ct), scale, value_bound, min_scale_bits)
            if best is None or lv < best[0]:
                best = (lv, b)
        return None if best is None else best[1]

    def rescale_while(self, ct: seal.Ciphertext, min_scale_bits: float) -> None:
        """Relinearise a product, then rescale while the scale stays >= 2^min_scale_bits (in place)."""
        self._relinearize(ct)
        while level(ct) > 1 and math.log2(ct.scale / self.top_prime[level(ct)]) >= min_scale_bits:
            self.evaluator.rescale_to_next_inplace(ct)

    def shrink(self, ct: seal.Ciphertext, value_bound: float, min_scale_bits: float) -> seal.Ciphertext:
        """The smallest form of ``ct`` that still decrypts to its values (``|value| <= value_bound``)
        at a scale of at least ``2^min_scale_bits``: rescale while the scale allows (the value keeps
        fitting, rescaling divides it and the modulus alike), then mod-switch while ``value_bound``
        times the scale stays below half the smaller modulus (in place). A product is relinearised
        before the first rescale that leaves a scale under 2^RELIN_SCALE_BITS: rescaling a
        3-component ciphertext multiplies the rounding of its third component by the square of the
        secret, visible noise at low scales and none at high ones, and key switching is cheaper on
        fewer primes."""
        while level(ct) > 1:
            L = level(ct)
            if math.log2(ct.scale / self.top_prime[L]) >= min_scale_bits:
                if math.log2(ct.scale / self.top_prime[L]) < RELIN_SCALE_BITS:
                    self._relinearize(ct)
                self.evaluator.rescale_to_next_inplace(ct)
            elif math.log2(max(value_bound, 1.0)) + math.log2(ct.scale) + 1 < self.bits[L - 1]:
                self.evaluator.mod_switch_to_next_inplace(ct)
            else:
                break
        self._relinearize(ct)
        return ct

    def _relinearize(self, ct: seal.Ciphertext) -> None:
        if ct.size() > 2 and self._relin is not None:
            self.evaluator.relinearize_inplace(ct, self._relin)

    def shrink_bytes(self, vec_or_ct, value_bound: float, min_scale_bits: float,
                     rerandomize: bool = False) -> bytes:
        """:meth:`shrink`, then (``rerandomize``) :meth:`rerandomize` at the lowest level reached
        (the cheapest encryption of zero), serialized."""
        ct = self.shrink(raw(vec_or_ct), value_bound, min_scale_bits)
        if rerandomize:
            self.rerandomize(ct)
        return self.to_bytes(ct)
