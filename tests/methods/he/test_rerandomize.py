"""The key holder's attacks on what the servers send: second polynomials against its own ciphertexts.

A masked count is ``rho_j * (sum of the key holder's one-hots) + plaintext mask``: without a fresh
encryption of zero its second polynomial is ``K * (sum of the one-hots' second polynomials)`` with
``K = rho_j * 2^b`` the constant the server multiplied by, and the key holder, who made the one-hots,
reads ``K`` off any coefficient, hence ``rho_j`` and the cluster size ``n_j``.
"""

import numpy as np
import pytest
import tenseal as ts

from methods.he.blinding import Stream, cluster_factors, quantize_rho
from methods.he.crypto import resolve_params
from methods.he.kmeans_keyholder import KeyHolder, KeyHolderShard
from methods.he.kmeans_owner import OwnerShard
from methods.he.kmeans_server import ServerShard
from methods.he.levels import level, raw

SEED, N, K, D = 7, 300, 3, 2
ITERATIONS = (0, 1, 2, 3, 4, 5)


def _c1(ct) -> int:
    """The second polynomial's first value modulo the first prime (SEAL's NTT form: its value at
    one root of unity; a product by a constant multiplies each value by it). One suffices."""
    return int(ct.data(1))


@pytest.fixture(scope="module")
def parties():
    params = resolve_params("ckks")
    kh = KeyHolder(params)
    p = params.to_dict()
    rng = np.random.default_rng(0)
    X = rng.normal(size=(N, D))
    labels = rng.integers(0, K, N)
    owner = OwnerShard(p, kh.public_context())
    khs = KeyHolderShard(p, kh.secret_context(), N)
    onehots = {0: khs.onehot(labels, K - 1)}  # what the key holder sends (it made them)
    return params, kh, khs, owner.encrypt({0: X}), onehots, labels


_SENT: dict = {}


def _counts(parties, iteration: int, rerandomize: bool) -> list[bytes]:
    """The k masked, rho-scaled counts the server hands the key holder (one worker; computed once
    per module)."""
    if (iteration, rerandomize) not in _SENT:
        _SENT[iteration, rerandomize] = _server_counts(parties, iteration, rerandomize)
    return _SENT[iteration, rerandomize]


def _server_counts(parties, iteration: int, rerandomize: bool) -> list[bytes]:
    params, kh, _, columns, onehots, _ = parties
    server = ServerShard(params.to_dict(), kh.server_context(), N, SEED)
    server._rerandomize = rerandomize
    server.load(columns)
    total = K * D + K
    server.partial_sums(onehots, K, iteration, False, [list(range(total))], 0)
    rho = [float(r) for r in cluster_factors(SEED, iteration, K, True)]
    scales = [rho[j] for j in range(K) for _ in range(D)] + rho
    degrees = [2] * (K * D) + [1] * K
    out = server.reduce([], list(range(total)), Stream.SUM_MASKS, iteration, degrees, scales)
    assert server.op_counts()["encrypt"] == (K if rerandomize else 0)
    return out[K * D:]


def _q0(khs) -> int:
    return khs.codec.levels.sc.first_context_data().parms().coeff_modulus()[0].value()


def _own_sums(parties) -> list[int]:
    """Per cluster, the sum of the second polynomials of the key holder's one-hots (the k-th
    count is derived as valid records minus the others: minus their sum), modulo q0."""
    _, _, khs, _, onehots, _ = parties
    q0 = _q0(khs)
    c1 = [_c1(raw(khs.codec.load(b))) for b in onehots[0]]
    return [v % q0 for v in c1] + [(-sum(c1)) % q0]


def _attack(parties, counts: list[bytes]) -> list[tuple[float, float]]:
    """The key holder's reading of each count: the factor ``c1 / (own c1 sum) mod q0``, turned
    into rho by the received scale (``2^40 * 2^b``, no rescale: the count is mod-switched only),
    and the residual ``|c1 - K_true * (own c1 sum)| / q0`` the true constant leaves."""
    _, _, khs, _, _, _ = parties
    q0 = _q0(khs)
    out = []
    for blob, own in zip(counts, _own_sums(parties), strict=True):
        ct = raw(khs.codec.load(blob))
        assert level(ct) >= 2  # the first prime is left as it was (no rescale)
        recv = _c1(ct)
        factor = recv * pow(own, -1, q0) % q0
        rho = factor * 2.0**40 / ct.scale
        out.append((rho, ct.scale))
    return out


def _residuals(parties, counts, iteration) -> list[float]:
    _, _, khs, _, _, _ = parties
    q0 = _q0(khs)
    rho = [quantize_rho(r) for r in cluster_factors(SEED, iteration, K, True)]
    out = []
    for j, (blob, own) in enumerate(zip(counts, _own_sums(parties), strict=True)):
        ct = raw(khs.codec.load(blob))
        true_k = round(rho[j] * ct.scale / 2.0**40)
        r = (_c1(ct) - true_k * own) % q0
        out.append(min(r, q0 - r) / q0)
    return out


def test_without_rerandomisation_the_key_holder_reads_rho_and_the_cluster_sizes(parties):
    _, _, khs, _, _, labels = parties
    sizes = np.bincount(labels, minlength=K)
    for it in ITERATIONS[:2]:
        counts = _counts(parties, it, rerandomize=False)
        rho = [quantize_rho(r) for r in cluster_factors(SEED, it, K, True)]
        totals = khs.slot_sums(counts)
        for j, (recovered, _) in enumerate(_attack(parties, counts)):
            assert recovered == rho[j]  # exactly: rho_j, from what the key holder made
            assert round(totals[j] / recovered) == sizes[j]  # the blinded count unblinded
        assert max(_residuals(parties, counts, it)) == 0.0


def test_rerandomised_counts_have_a_second_polynomial_independent_of_the_one_hots(parties):
    _, _, khs, _, _, labels = parties
    residuals = []
    for it in ITERATIONS:
        counts = _counts(parties, it, rerandomize=True)
        for recovered, _ in _attack(parties, counts):
            assert not 1.0 <= recovered <= 16.0  # no factor in rho's range: a uniform residue mod q0
        residuals += _residuals(parties, counts, it)
        # the key holder still gets rho_j * n_j, exactly enough for the centroids
        rho = [quantize_rho(r) for r in cluster_factors(SEED, it, K, True)]
        np.testing.assert_allclose(np.array(khs.slot_sums(counts)) / rho, np.bincount(labels, minlength=K),
                                   atol=1e-4)
    # even the true constant leaves a residual of uniform size: |r| / q0 uniform on [0, 1/2],
    # mean 1/4 (18 draws: standard deviation 0.034)
    assert min(residuals) > 1e-6 and 0.1 < np.mean(residuals) < 0.4


def _size_candidates(totals: list[float]) -> list[int]:
    """Cluster sizes n consistent with the count totals T_t = rho'_t n (one cluster, several
    iterations, same size): rho'_t has RHO_FRAC_BITS = 24 fractional bits and lies in [1, 16], so
    T_t 2^24 is an integer multiple of n up to the decryption's error (a few units)."""
    out = []
    for n in range(1, N + 1):
        ok = True
        for T in totals:
            P = T * 2.0**24
            m = round(P / n)
            if not (2**24 <= m <= 2**28) or abs(P - m * n) > 16:
                ok = False
                break
        if ok:
            out.append(n)
    return out


def test_count_totals_still_reveal_a_stable_cluster_size(parties):
    """A limit (docs/he.md): rho'_j is dyadic, and CKKS decrypts the count total rho'_j n_j
    precisely enough that over a few iterations with the same n_j few sizes besides n_j stay
    consistent (of the hundreds rho' in [1, 16] allows)."""
    _, _, khs, _, _, labels = parties
    sizes = np.bincount(labels, minlength=K)
    totals = [khs.slot_sums(_counts(parties, it, rerandomize=True)) for it in ITERATIONS]
    found = [_size_candidates([T[j] for T in totals]) for j in range(K)]
    assert all(sizes[j] in found[j] for j in range(K))
    assert max(len(f) for f in found) <= 15


@pytest.mark.parametrize("rerandomize", [False, True])
def test_logreg_record_weights_are_not_a_replay_of_the_key_holders_labels(rerandomize):
    """The masked record weights ``u + R = a3 (alpha + beta y) + R``: without re-randomisation the
    key holder, replaying the server's public operations on the labels it encrypted, gets the
    received second polynomial exactly (the masks change only the first)."""
    from methods.he.crypto import logreg_params
    from methods.he.logreg import LRKeyHolder
    from methods.he.logreg_math import SigmoidPoly
    from methods.he.logreg_server import Z_MASK, LRServer

    params = logreg_params()
    kh = LRKeyHolder(params)
    rng = np.random.default_rng(1)
    n = 40
    columns = [kh.encrypt_column(rng.normal(size=n), kh.column_level) for _ in range(2)]
    labels = kh.encrypt_column(rng.integers(0, 2, n).astype(float))
    server = LRServer(kh.public_context(), params, seed=3)
    server._rerandomize = rerandomize
    server.receive_data(columns, labels, n)
    poly, w_neg, w_pos = SigmoidPoly(8.0, 0.2, -0.002), 0.6, 2.5
    u_masked, _ = server.prepare(poly, w_neg, w_pos)
    # the key holder's replay, with its own context and the public constants
    y = ts.ckks_vector_from(kh._ctx, labels[0])
    u = y * (poly.a3 * (w_pos - w_neg)) + poly.a3 * w_neg
    replay = raw(ts.ckks_vector_from(kh._ctx, kh._levels.shrink_bytes(u, 2 * Z_MASK, params.scale_bits - 4)))
    got = raw(ts.ckks_vector_from(kh._ctx, u_masked[0]))
    assert level(got) == level(replay) and got.scale == replay.scale
    assert (int(got.data(1)) == int(replay.data(1))) is (not rerandomize)
    assert server.ops.encrypt == (server.n_chunks + server.d if rerandomize else 0)


@pytest.mark.parametrize("rerandomize", [False, True])
def test_bfv_counts_are_rerandomised(rerandomize):
    """BFV: a count's second polynomial is ``rho_j`` (an integer in [1, 16]) times the sum of the
    one-hots' unless a fresh encryption of zero is added."""
    from methods.he.crypto import bfv_bounds, choose_plain_modulus

    params = choose_plain_modulus(resolve_params("bfv"), bfv_bounds(2**8, D, N))
    kh = KeyHolder(params)
    p = params.to_dict()
    rng = np.random.default_rng(0)
    labels = rng.integers(0, K, N)
    khs = KeyHolderShard(p, kh.secret_context(), N)
    onehots = {0: khs.onehot(labels, K - 1)}
    server = ServerShard(p, kh.server_context(), N, SEED)
    server._rerandomize = rerandomize
    server.load(OwnerShard(p, kh.public_context()).encrypt({0: rng.integers(-256, 256, (N, D))}))
    total = K * D + K
    server.partial_sums(onehots, K, 0, False, [list(range(total))], 0)
    rho = [int(r) for r in cluster_factors(SEED, 0, K, False)]
    scales = [rho[j] for j in range(K) for _ in range(D)] + rho
    counts = server.reduce([], list(range(total)), Stream.SUM_MASKS, 0, [2] * (K * D) + [1] * K, scales)[K * D:]
    q0 = khs.codec.ctx.data.seal_context().first_context_data().parms().coeff_modulus()[0].value()
    own = [_c1(khs.codec.load(b).ciphertext()[0]) for b in onehots[0]]
    # the k-th count is valid records minus the others; BFV negates by the plaintext t - 1
    own = [v % q0 for v in own] + [(params.plain_modulus - 1) * sum(own) % q0]
    read = [_c1(khs.codec.load(b).ciphertext()[0]) * pow(s, -1, q0) % q0 for b, s in zip(counts, own, strict=True)]
    assert (read == rho) is (not rerandomize)
    assert np.array_equal(np.array(khs.slot_sums(counts)) // rho, np.bincount(labels, minlength=K))


_PACKED: dict = {}


def _packed_counts(parties, rerandomize: bool) -> tuple[list[bytes], ServerShard]:
    """The packed protocol's counts (CKKS, two clusters per ciphertext): ceil(k/2) totals, from
    the same packed one-hots and conjugation key every call."""
    params, kh, khs, columns, _, labels = parties
    if "onehots" not in _PACKED:
        _PACKED["onehots"] = {0: khs.packed_onehot(labels, K)}
        _PACKED["conjugation"] = kh.conjugation_key()
    server = ServerShard(params.to_dict(), kh.server_context(), N, SEED, _PACKED["conjugation"])
    server._rerandomize = rerandomize
    server.load(columns)
    M = (K + 1) // 2
    total = M * D + M
    server.packed_sums(_PACKED["onehots"], K, [list(range(total))], 0)
    rho = [float(r) for r in cluster_factors(SEED, 0, K, True)]
    pair = [(rho[2 * p], rho[min(2 * p + 1, K - 1)]) for p in range(M)]
    out = server.reduce([], list(range(total)), Stream.SUM_MASKS, 0, [2] * (M * D) + [1] * M,
                        [pair[p] for p in range(M) for _ in range(D)] + pair, packed=True)
    return out[M * D:], server


@pytest.mark.parametrize("rerandomize", [False, True])
def test_packed_counts_are_rerandomised(parties, rerandomize):
    """The packed counts come from the key holder's packed one-hots, rho and the conjugation key
    alone (all deterministic given the server's seed): without re-randomisation two runs send the
    same second polynomial, with it each count gets fresh randomness; either way the real and
    imaginary slot sums are rho_j n_j of their clusters."""
    _, _, khs, _, _, labels = parties
    (first, server), (second, _) = (_packed_counts(parties, rerandomize) for _ in range(2))
    assert server.op_counts()["encrypt"] == (len(first) if rerandomize else 0)
    same = [_c1(raw(khs.codec.load(a))) == _c1(raw(khs.codec.load(b)))
            for a, b in zip(first, second, strict=True)]
    assert all(same) != rerandomize and (not rerandomize or not any(same))
    rho = [quantize_rho(r) for r in cluster_factors(SEED, 0, K, True)]
    sums = [v for pair in khs.packed_slot_sums(first) for v in pair][:K]
    np.testing.assert_allclose(np.array(sums) / rho, np.bincount(labels, minlength=K), atol=1e-4)
