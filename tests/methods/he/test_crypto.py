import numpy as np
import pytest

from methods.he.crypto import (
    BFVBounds,
    Codec,
    InsecureParameters,
    batching_prime,
    bfv_bounds,
    choose_plain_modulus,
    load_context,
    make_context,
    public_bytes,
    resolve_params,
    secret_key_encryptor,
)


def test_defaults_are_128_bit_secure_and_recorded():
    for scheme in ("ckks", "bfv"):
        p = resolve_params(scheme)
        assert not p.allow_insecure
        assert p.to_dict()["log_q"] == sum(p.coeff_mod_bit_sizes)


def test_weak_parameters_are_refused_with_the_parameter_named():
    with pytest.raises(InsecureParameters, match="poly_modulus_degree=8192"):
        resolve_params("ckks", 8192, [60, 60, 60, 60])
    # explicitly allowed (tests only): accepted and recorded
    assert resolve_params("ckks", 8192, [60, 60, 60, 60], allow_insecure=True).allow_insecure


def test_ckks_headroom_is_checked():
    with pytest.raises(InsecureParameters, match="scale_bits=40"):
        resolve_params("ckks", 8192, [60, 30, 30, 60])


def test_batching_prime_is_prime_and_one_mod_2n():
    t = batching_prime(40, 16384)
    assert t >= 2**40 and t % (2 * 16384) == 1
    assert all(t % q for q in range(2, 20000))


def test_bfv_plain_modulus_holds_every_bound():
    b = bfv_bounds(x_max=2**15, d=5, n=36168)
    p = choose_plain_modulus(resolve_params("bfv"), b)
    assert p.plain_modulus > 2 * b.needed
    with pytest.raises(ValueError, match="plain modulus"):
        choose_plain_modulus(resolve_params("bfv"), BFVBounds(2**40, 2**70, 0, 0))


def test_public_context_holds_no_secret_relin_or_galois_key():
    p = resolve_params("ckks")
    ctx = make_context(p)
    pub = load_context(public_bytes(ctx))
    assert not pub.is_private() and not pub.has_secret_key()
    assert not pub.has_galois_keys() and not pub.has_relin_keys() and pub.has_public_key()
    ct = Codec(pub, p).encrypt(np.arange(4.0))
    with pytest.raises(ValueError, match="secret"):
        ct.decrypt()
    assert np.allclose(Codec(ctx, p).decrypt(ct.serialize())[:4], np.arange(4.0), atol=1e-6)


def test_bfv_noise_budget_accounts_for_permutation():
    small = resolve_params("bfv", 8192, [60, 50, 50, 58])
    b = bfv_bounds(x_max=2**6, d=3, n=200)
    assert choose_plain_modulus(small, b).plain_modulus  # fits without permutation
    with pytest.raises(ValueError, match="permute"):
        choose_plain_modulus(small, b, permute=True)


@pytest.mark.parametrize("scheme", ["ckks", "bfv"])
def test_key_holder_encrypts_with_its_secret_key(scheme):
    p = resolve_params(scheme)
    if scheme == "bfv":
        p = choose_plain_modulus(p, bfv_bounds(2**10, 5, 1000))
    ctx = make_context(p)
    sym = secret_key_encryptor(ctx)
    with pytest.raises(ValueError, match="symmetric"):  # no public key: secret-key encryption
        sym.public_key()
    # its ciphertexts are ordinary ones: the server loads them and computes, the key holder decrypts
    server = Codec(load_context(public_bytes(ctx)), p)
    vals = np.arange(1, 9)
    ct = Codec(ctx, p).encrypt(vals)
    assert Codec(ctx, p)._enc_ctx.is_private()
    prod = server.load(ct.serialize()) * server.load(ct.serialize())
    np.testing.assert_allclose(Codec(ctx, p).decrypt(prod.serialize())[:8], vals**2, atol=1e-4)
