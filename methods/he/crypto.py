"""The crypto core both HE protocols share: parameters, contexts, encoding, chunking.

- **Security**: the HomomorphicEncryption.org standard's maximum total coefficient-modulus bit
  length for classical 128-bit security with a ternary secret (Albrecht et al., "Homomorphic
  Encryption Security Standard", 2018, Table 1), the same table SEAL enforces
  (:data:`MAX_LOGQ_128`, :func:`check_security`).
- **Parameters**: one class, :class:`HEParams`, and its presets: :data:`CKKS_DEFAULT` and
  :data:`BFV_DEFAULT` (K-means, :func:`resolve_params`), :data:`LOGREG_DEFAULT` (logistic
  regression, :func:`logreg_params`, :func:`check_logreg_params`).
- **Contexts**: :func:`make_context` (the key holder's), :func:`public_bytes` (what the others get),
  :func:`load_context`.
- **Codec**, **chunking** (column-major: chunk ``c`` holds records ``c*S .. (c+1)*S - 1`` of one
  column, the last chunk zero-padded) and the **one-hot** vectors of a chunk's labels.

K-means degrees: every K-means protocol value has a *degree*: the number of encoded factors
multiplied into it. The arithmetic never rescales, so a CKKS value of degree ``p`` sits at scale
``Δ^p`` on the full modulus, and the largest degree the protocol reaches is 3 (``r ⊙ (x · c)``);
only what the server sends is rescaled, mod-switched and relinearised to its smallest form
(:mod:`methods.he.levels`), with SEAL keeping the true scale. In BFV the degree only matters for
the bound on the integers, which must stay below ``t / 2`` (BFV wraps silently).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np
import tenseal as ts

from methods.he.levels import RHO_FRAC_BITS, Levels

#: poly_modulus_degree N -> max log2(q) for 128-bit classical security
MAX_LOGQ_128 = {1024: 27, 2048: 54, 4096: 109, 8192: 218, 16384: 438, 32768: 881}


class InsecureParameters(ValueError):
    """The chosen parameters fall short of 128-bit security."""


def check_security(poly_modulus_degree: int, coeff_mod_bit_sizes, allow_insecure: bool = False) -> int:
    """Raise unless (N, moduli) meet 128-bit security; returns the total log q.

    ``allow_insecure`` exists for fast tests only and is recorded wherever it is used.
    """
    n = int(poly_modulus_degree)
    logq = int(sum(coeff_mod_bit_sizes))
    if n not in MAX_LOGQ_128:
        raise InsecureParameters(
            f"poly_modulus_degree={n}; expected a power of two in {sorted(MAX_LOGQ_128)}")
    if logq > MAX_LOGQ_128[n] and not allow_insecure:
        raise InsecureParameters(
            f"poly_modulus_degree={n} with coeff_mod_bit_sizes={list(coeff_mod_bit_sizes)} "
            f"(log q = {logq}) is below 128-bit security: the HE standard allows log q <= "
            f"{MAX_LOGQ_128[n]} for N={n}. Use a larger N or fewer/smaller moduli "
            "(allow_insecure=true is for tests only).")
    return logq


# --------------------------------------------------------------------------- parameters

#: K-means CKKS defaults: N = 8192, data primes 60, 44, 44 (degree-3 values at scale 2^120 keep 27 bits of
#: headroom; two rescales by the 44-bit primes bring a blinded score to the 60-bit prime alone at scale
#: 2^32) and a 60-bit special prime; total 208 bits, inside the 218-bit limit for N = 8192.
CKKS_DEFAULT = {"poly_modulus_degree": 8192, "coeff_mod_bit_sizes": (60, 44, 44, 60), "scale_bits": 40}
#: K-means BFV defaults: N = 16384 (noise budget for a ciphertext product followed by a full plaintext
#: product at t up to 2^50), 360-bit modulus, well inside the 438-bit limit.
BFV_DEFAULT = {"poly_modulus_degree": 16384, "coeff_mod_bit_sizes": (60,) * 6, "frac_bits": 8}
#: Logistic-regression CKKS defaults: N = 8192, four data primes (two rescales after a refresh and
#: an unrescaled product at scale^2 on the last two) and a 60-bit special prime; 218 bits.
LOGREG_DEFAULT = {"poly_modulus_degree": 8192, "coeff_mod_bit_sizes": (50, 36, 36, 36, 60), "scale_bits": 36}

#: Blinding ranges (server-chosen randomness). Lloyd scores: r ⊙ s + o with r log-uniform in
#: [1, R] and o uniform in [-O, O]; seeding: a common factor in [1, R]; cluster sums: a
#: per-cluster factor in [1, R].
BLIND_FACTOR = 16.0
CKKS_OFFSET = 2.0**30
CKKS_MASK = 2.0**20
#: a zero-sum mask's largest slot stays below this (its last slot, minus the sum of S - 1 uniform
#: draws in [-M, M], has a standard deviation of M * sqrt((S - 1) / 3) = 2^25.2 at S = 4096: 2^29 is
#: 14 standard deviations; the server refuses a draw beyond it rather than overflow)
CKKS_MASK_BOUND = 2.0**29


@dataclass(frozen=True)
class HEParams:
    """Resolved encryption parameters of one run (recorded as they are)."""

    scheme: str
    poly_modulus_degree: int
    coeff_mod_bit_sizes: tuple[int, ...]
    scale_bits: int = 40
    frac_bits: int = 8
    plain_modulus: int | None = None
    allow_insecure: bool = False
    log_q: int = field(default=0)

    @property
    def slots(self) -> int:
        """Records per ciphertext (one feature or one cluster indicator of a chunk)."""
        return self.poly_modulus_degree // 2 if self.scheme == "ckks" else self.poly_modulus_degree

    @property
    def delta(self) -> float:
        return 2.0**self.scale_bits

    @property
    def headroom_bits(self) -> int:
        """CKKS: bits left for |value| at degree 3 on the data modulus (special prime excluded)."""
        return sum(self.coeff_mod_bit_sizes[:-1]) - 3 * self.scale_bits - 1

    @property
    def sum_headroom_bits(self) -> int:
        """CKKS: bits left for a masked, rho-scaled cluster sum (degree 2 times rho's constant)."""
        return sum(self.coeff_mod_bit_sizes[:-1]) - 2 * self.scale_bits - RHO_FRAC_BITS - 1

    @classmethod
    def from_dict(cls, d: dict) -> HEParams:
        """The inverse of :meth:`to_dict` (how parameters reach worker shards)."""
        return cls(**{k: (tuple(v) if k == "coeff_mod_bit_sizes" else v) for k, v in d.items()
                      if k in cls.__dataclass_fields__})

    def to_dict(self) -> dict:
        out = asdict(self)
        out["coeff_mod_bit_sizes"] = list(self.coeff_mod_bit_sizes)
        out["slots"] = self.slots
        return out


def resolve_params(scheme: str, poly_modulus_degree=None, coeff_mod_bit_sizes=None, scale_bits=None,
                   frac_bits=None, allow_insecure=False) -> HEParams:
    """Fill defaults, validate and check 128-bit security (plain modulus is chosen later, BFV)."""
    if scheme not in ("ckks", "bfv"):
        raise ValueError(f"scheme={scheme!r}; expected 'ckks' or 'bfv'")
    base = CKKS_DEFAULT if scheme == "ckks" else BFV_DEFAULT
    n = int(poly_modulus_degree or base["poly_modulus_degree"])
    mods = tuple(int(b) for b in (coeff_mod_bit_sizes or base["coeff_mod_bit_sizes"]))
    if len(mods) < 2 or not all(17 <= b <= 60 for b in mods):
        raise ValueError(f"coeff_mod_bit_sizes={list(mods)}; expected at least two primes of 17..60 bits")
    log_q = check_security(n, mods, allow_insecure)
    params = HEParams(scheme=scheme, poly_modulus_degree=n, coeff_mod_bit_sizes=mods,
                      scale_bits=int(scale_bits or CKKS_DEFAULT["scale_bits"]),
                      frac_bits=int(BFV_DEFAULT["frac_bits"] if frac_bits is None else frac_bits),
                      allow_insecure=bool(allow_insecure), log_q=log_q)
    if scheme == "ckks":
        if not 20 <= params.scale_bits <= 60:
            raise ValueError(f"scale_bits={params.scale_bits}; expected 20..60")
        need = int(np.log2(CKKS_MASK_BOUND * BLIND_FACTOR)) + 1
        if params.headroom_bits < 16 or params.sum_headroom_bits < need:
            raise InsecureParameters(
                f"coeff_mod_bit_sizes={list(mods)} with scale_bits={params.scale_bits} leaves "
                f"{params.headroom_bits} bits for degree-3 values, {params.sum_headroom_bits} for masked sums"
                f"; expected >= 16 and >= {need} (all primes but the last: >= 3 * scale_bits + 17 bits)")
    elif not 0 <= params.frac_bits <= 20:
        raise ValueError(f"frac_bits={params.frac_bits}; expected 0..20")
    return params


def logreg_params(poly_modulus_degree=None, coeff_mod_bit_sizes=None, scale_bits=None,
                  allow_insecure=False) -> HEParams:
    """The logistic regression's CKKS parameters (defaults: :data:`LOGREG_DEFAULT`), unchecked:
    :func:`check_logreg_params` checks security, depth and headroom."""
    given = {"poly_modulus_degree": poly_modulus_degree, "coeff_mod_bit_sizes": coeff_mod_bit_sizes,
             "scale_bits": scale_bits}
    p = {k: LOGREG_DEFAULT[k] if v is None else v for k, v in given.items()}
    mods = tuple(int(b) for b in p["coeff_mod_bit_sizes"])
    return HEParams(scheme="ckks", poly_modulus_degree=int(p["poly_modulus_degree"]),
                    coeff_mod_bit_sizes=mods, scale_bits=int(p["scale_bits"]),
                    allow_insecure=bool(allow_insecure), log_q=sum(mods))


def check_logreg_params(params: HEParams) -> int:
    """Refuse logistic-regression parameters below 128-bit security or without the depth and
    headroom one iteration needs (see :mod:`methods.he.logreg_server`), naming the parameter;
    returns log q."""
    logq = check_security(params.poly_modulus_degree, params.coeff_mod_bit_sizes, params.allow_insecure)
    mods = list(params.coeff_mod_bit_sizes)
    if params.scheme != "ckks":
        raise ValueError(f"scheme={params.scheme!r}; the logistic regression runs on CKKS")
    if len(mods) < 5:
        raise ValueError(
            f"coeff_mod_bit_sizes={mods}: one iteration needs 4 data primes plus the special prime "
            "(two rescales after the refresh, and a product at scale^2 on the last two primes)")
    # the unrescaled gradient product at scale^2 lives on the primes left after two rescales
    left = sum(mods[:-3])
    if left - 2 * params.scale_bits < 14:
        raise ValueError(
            f"coeff_mod_bit_sizes={mods} with scale_bits={params.scale_bits}: the primes left at the "
            f"gradient level ({left} bits) leave {left - 2 * params.scale_bits} bits above scale^2; "
            "need >= 14 for the masked gradient slots")
    if mods[-1] < max(mods[:-1]):
        raise ValueError(
            f"coeff_mod_bit_sizes={mods}: the last (special) prime should be at least as large as "
            "every other, or key switching adds noise")
    return logq


# --------------------------------------------------------------------------- BFV plain modulus


def _is_prime(n: int) -> bool:
    if n < 2:
        return False
    small = (2, 3, 5, 7, 11, 13, 17, 19, 23, 29, 31, 37)
    for p in small:
        if n % p == 0:
            return n == p
    d, s = n - 1, 0
    while d % 2 == 0:
        d, s = d // 2, s + 1
    for a in small:  # deterministic for n < 3.3e24
        x = pow(a, d, n)
        if x in (1, n - 1):
            continue
        for _ in range(s - 1):
            x = x * x % n
            if x == n - 1:
                break
        else:
            return False
    return True


def batching_prime(bits: int, poly_modulus_degree: int) -> int:
    """The smallest prime t >= 2^bits with t = 1 mod 2N (needed for BFV slot batching)."""
    step = 2 * poly_modulus_degree
    t = ((1 << bits) // step + 1) * step + 1
    while not _is_prime(t):
        t += step
    return t


@dataclass(frozen=True)
class BFVBounds:
    """Worst-case magnitudes of every protocol integer, from the public bound on |x~| and n."""

    x_max: int  # |x~| = |round(x * 2^f)|
    score_max: int  # |r (||c||^2 - 2 x.c) + o|
    d2_max: int  # |sigma ||x - c||^2|
    sum_max: int  # |rho sum_i a_i x_i| and |rho n|

    @property
    def needed(self) -> int:
        return max(self.score_max, self.d2_max, self.sum_max)


def bfv_bounds(x_max: int, d: int, n: int) -> BFVBounds:
    """Bound each value before choosing t. Centroids are means of points, so |c~| <= x_max too."""
    R = int(BLIND_FACTOR)
    score = 16 * R * 3 * d * x_max**2  # 4 more bits: offsets up to t/8 hide |r s| <= t/32
    d2 = R * d * (2 * x_max) ** 2
    sums = R * n * max(x_max, 1)
    return BFVBounds(x_max=x_max, score_max=score, d2_max=d2, sum_max=sums)


def choose_plain_modulus(params: HEParams, bounds: BFVBounds, permute: bool = False) -> HEParams:
    """Pick t > 2 * (largest protocol integer); refuse if it cannot be a 60-bit batching prime."""
    bits = int(bounds.needed).bit_length() + 1
    if bits > 59:
        raise ValueError(
            f"BFV values reach {bounds.needed:.3e} (|x~| <= {bounds.x_max}); the plain modulus would need "
            f"{bits + 1} bits, above the 60 TenSEAL allows. Lower frac_bits or clip the data to smaller "
            "public bounds (dataset.clip=true)")
    t = batching_prime(bits, params.poly_modulus_degree)
    # noise estimate: fresh (~log t + 10 bits), then each product on the longest path (a ct x ct
    # product, then a full plaintext product) ~ log t + log N + 5 bits; permuting adds a plaintext
    # product before the M-step's ct x ct product
    logn = params.poly_modulus_degree.bit_length() - 1
    depth = 3 if permute else 2
    need = t.bit_length() + 10 + depth * (t.bit_length() + logn + 5)
    data_bits = sum(params.coeff_mod_bit_sizes[:-1])
    if data_bits < need:
        raise ValueError(
            f"BFV plain modulus of {t.bit_length()} bits needs a data modulus of about {need} bits for "
            f"the protocol's depth {depth}{' (permute)' if permute else ''}; coeff_mod_bit_sizes="
            f"{list(params.coeff_mod_bit_sizes)} gives {data_bits}. Use poly_modulus_degree=16384 or "
            "more primes")
    return HEParams(**{**params.__dict__, "plain_modulus": t})


# --------------------------------------------------------------------------- contexts


def configure(ctx: ts.Context) -> ts.Context:
    """Protocol contexts never rescale, relinearise or switch moduli behind the protocol's back."""
    ctx.auto_relin = False
    ctx.auto_rescale = False
    ctx.auto_mod_switch = False
    return ctx


def make_context(params: HEParams, relin_keys: bool = False) -> ts.Context:
    """A fresh secret-key context (the key holder's). K-means: TenSEAL never relinearises or
    rescales behind the protocol (:func:`configure`); CKKS gets relinearisation keys, which the
    server uses only on what it sends (:mod:`methods.he.levels`). ``relin_keys`` (logistic
    regression): relinearisation keys and TenSEAL's automatic relinearisation and rescaling,
    which the server switches off around its unrelinearised products."""
    if params.scheme == "ckks":
        ctx = ts.context(ts.SCHEME_TYPE.CKKS, params.poly_modulus_degree,
                         coeff_mod_bit_sizes=list(params.coeff_mod_bit_sizes), n_threads=1)
        ctx.global_scale = params.delta
    else:
        if params.plain_modulus is None:
            raise ValueError("BFV parameters need a plain modulus; call choose_plain_modulus first")
        ctx = ts.context(ts.SCHEME_TYPE.BFV, params.poly_modulus_degree, plain_modulus=params.plain_modulus,
                         coeff_mod_bit_sizes=list(params.coeff_mod_bit_sizes), n_threads=1)
    if relin_keys:
        ctx.generate_relin_keys()
        return ctx
    if params.scheme == "ckks":
        ctx.generate_relin_keys()
    return configure(ctx)


def public_bytes(ctx: ts.Context, relin_keys: bool = False) -> bytes:
    """Serialized public part of ``ctx``: the public key (and the relinearisation keys if asked);
    never the secret key, never Galois keys."""
    pub = ctx.copy()
    pub.make_context_public()
    return pub.serialize(save_public_key=True, save_secret_key=False, save_galois_keys=False,
                         save_relin_keys=relin_keys)


def load_context(data: bytes, lazy: bool = True) -> ts.Context:
    """A context from bytes; ``lazy`` (K-means) switches off automatic relinearisation and rescaling."""
    ctx = ts.context_from(data, n_threads=1)
    return configure(ctx) if lazy else ctx


#: ``encryption_type = 1`` (symmetric) as a protobuf field of TenSEAL's serialized context
#: (tenseal/proto/tensealcontext.proto, field 4, varint); appended, it overrides the saved value.
_SYMMETRIC_FIELD = b"\x20\x01"


def secret_key_encryptor(ctx: ts.Context) -> ts.Context:
    """A copy of a secret-key context that encrypts with the secret key (symmetric RLWE): the same
    ciphertexts as public-key encryption for every other party, at about 60 % of the cost, since
    no public-key product is needed. Falls back to a public copy if TenSEAL keeps it asymmetric."""
    sym = load_context(ctx.serialize(save_secret_key=True) + _SYMMETRIC_FIELD)
    try:
        sym.public_key()
    except ValueError:  # "public_key is not supported for symmetric encryption"
        if sym.is_private():
            return sym
    return load_context(public_bytes(ctx))


def round_half_up(num, den):
    """Integer division rounding half up: the BFV centroid update (exact in Python integers)."""
    return (2 * num + den) // (2 * den)


class Codec:
    """Encrypts, decrypts and (de)serializes protocol values for one context and parameters."""

    def __init__(self, ctx: ts.Context, params: HEParams):
        self.ctx = ctx
        self.params = params
        self.ckks = params.scheme == "ckks"
        # the key holder encrypts with its secret key (cheaper: op_ms encrypt_sk against encrypt in
        # `python -m benchmarks.perf he_kmeans`); other parties with the public key
        self._enc_ctx = ctx if ctx.is_public() else secret_key_encryptor(ctx)
        self._secret = ctx.secret_key() if ctx.is_private() else None
        self.levels = Levels(ctx, params.slots) if self.ckks else None

    def encrypt(self, values, degree: int = 1):
        v = np.asarray(values)
        if self.ckks:
            return ts.ckks_vector(self._enc_ctx, v.astype(float).tolist(), scale=self.params.delta**degree)
        return ts.bfv_vector(self._enc_ctx, v.astype(np.int64).tolist())

    def encrypt_bytes(self, values, degree: int = 1) -> bytes:
        """Serialized fresh encryption; with the secret key (CKKS) in SEAL's seeded form (half the
        size, :meth:`methods.he.levels.Levels.encrypt_bytes`)."""
        if self.ckks and self._secret is not None:
            v = np.asarray(values, dtype=float)
            return self.levels.encrypt_bytes(v, self.params.delta**degree)
        return self.encrypt(values, degree).serialize()

    def shrink_bytes(self, vec, value_bound: float, min_scale_bits: float) -> bytes:
        """What the server sends: CKKS in its smallest form (rescaled, mod-switched, relinearised);
        BFV as it is."""
        if not self.ckks:
            return vec.serialize()
        return self.levels.shrink_bytes(vec, value_bound, min_scale_bits)

    def load(self, data: bytes):
        return (ts.ckks_vector_from if self.ckks else ts.bfv_vector_from)(self.ctx, data)

    def decrypt(self, vec) -> np.ndarray:
        if isinstance(vec, (bytes, bytearray)):
            vec = self.load(vec)
        out = vec.decrypt(self._secret)
        return np.asarray(out, dtype=float if self.ckks else np.int64)

    def plain(self, values):
        """A plaintext operand for ``vec * plain`` / ``vec + plain`` (degree 1 in CKKS)."""
        v = np.asarray(values)
        return v.astype(float).tolist() if self.ckks else v.astype(np.int64).tolist()


# --------------------------------------------------------------------------- chunking and one-hots


def n_chunks(n: int, slots: int) -> int:
    """Ciphertexts per column of ``n`` records (at least one)."""
    return max(1, -(-int(n) // slots))


def chunk_rows(n: int, slots: int, c: int) -> slice:
    """The records of chunk ``c``."""
    return slice(c * slots, min(n, (c + 1) * slots))


def valid_rows(n: int, slots: int, c: int) -> int:
    """Records in chunk ``c`` (the rest of its slots is padding)."""
    return chunk_rows(n, slots, c).stop - c * slots


def pad(values: np.ndarray, slots: int) -> np.ndarray:
    """``values`` zero-padded to ``slots`` rows."""
    v = np.asarray(values)
    out = np.zeros((slots, *v.shape[1:]), dtype=v.dtype)
    out[: len(v)] = v
    return out


def split_chunks(values: np.ndarray, slots: int) -> dict[int, np.ndarray]:
    """``values`` (rows are records) by chunk, unpadded."""
    n = len(values)
    return {c: values[chunk_rows(n, slots, c)] for c in range(n_chunks(n, slots))}


def column_chunks(values: np.ndarray, slots: int) -> list[np.ndarray]:
    """One column as zero-padded chunks of ``slots`` values (one ciphertext each)."""
    return [pad(v, slots) for v in split_chunks(np.asarray(values), slots).values()]


def onehot_vectors(labels: np.ndarray, k: int, slots: int, dtype=np.int64) -> list[np.ndarray]:
    """The first ``k`` indicator vectors ``labels == j`` of one chunk, zero-padded to ``slots``."""
    return [pad((np.asarray(labels) == j).astype(dtype), slots) for j in range(k)]


def encrypt_onehots_under(public_context: bytes, labels: dict[int, np.ndarray], k: int,
                          slots: int) -> dict[int, list[bytes]]:
    """Fresh CKKS one-hot ciphertexts of each chunk's labels under another party's public context,
    at its global scale (e.g. the K-means key holder serving segments to the logistic regression)."""
    ctx = load_context(public_context, lazy=False)
    return {c: [ts.ckks_vector(ctx, v.tolist()).serialize() for v in onehot_vectors(lab, k, slots, float)]
            for c, lab in labels.items()}
