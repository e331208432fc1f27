"""What the HE K-means parties send is in its smallest form: levels, components, seeded encryptions."""

import numpy as np
import pytest
import tenseal as ts

from methods.he import resolve_params
from methods.he.crypto import Codec, load_context, make_context, public_bytes
from methods.he.kmeans_protocol import lloyd_bytes_floor
from methods.he.levels import level, raw


@pytest.fixture(scope="module")
def codecs():
    params = resolve_params("ckks")
    ctx = make_context(params)
    keyholder = Codec(ctx, params)
    server = Codec(load_context(public_bytes(ctx, relin_keys=True)), params)
    return params, keyholder, server


def test_seeded_encryption_round_trips_at_half_the_size(codecs):
    params, keyholder, server = codecs
    values = np.random.default_rng(0).normal(size=params.slots)
    seeded = keyholder.encrypt_bytes(values)
    full = keyholder.encrypt(values).serialize()
    assert len(seeded) < 0.55 * len(full)
    vec = server.load(seeded)  # the server expands the seed on load
    assert level(vec) == len(params.coeff_mod_bit_sizes) - 1 and raw(vec).size() == 2
    np.testing.assert_allclose(keyholder.decrypt(vec.serialize()), values, atol=1e-6)
    # a product with the expanded ciphertext is an ordinary one
    np.testing.assert_allclose(keyholder.decrypt((vec * vec).serialize()), values**2, atol=1e-5)


def test_shrink_sends_a_degree_3_value_relinearised_on_the_last_prime(codecs):
    params, keyholder, server = codecs
    rng = np.random.default_rng(1)
    x, c, r = rng.normal(size=(3, params.slots))
    prod = server.encrypt(x) * server.load(keyholder.encrypt_bytes(c)) * server.plain(r)  # degree 3
    assert raw(prod).size() == 3 and level(prod) == 3
    small = server.shrink_bytes(prod, 2.0**params.headroom_bits, 30)
    vec = keyholder.load(small)
    assert level(vec) == 1 and raw(vec).size() == 2
    assert len(small) < 0.25 * len(prod.serialize())
    np.testing.assert_allclose(keyholder.decrypt(small), x * c * r, atol=1e-5)  # scale 2^32


def test_key_holder_receives_everything_at_the_lowest_level(ckks_fit):
    """Blinded score differences, position 0's score and the masked totals arrive on the last prime
    alone as 2-component ciphertexts; the key holder's centroids and one-hots are seeded."""
    model, _ = ckks_fit
    codec = model.keyholder_.codec
    levels_seen: dict[str, set] = {}
    sizes: dict[str, set] = {}
    for _, _, tag, payload in model.channel_.transcript:
        if tag in ("blinded scores", "masked sums", "centroids", "one-hot assignments"):
            for b in payload:
                ct = raw(codec.load(b))
                levels_seen.setdefault(tag, set()).add(level(ct))
                sizes.setdefault(tag, set()).add(len(b))
                assert ct.size() == 2
    assert levels_seen["blinded scores"] == {1}
    assert levels_seen["masked sums"] == {2}  # the masks and rho need two primes at a 2^36 scale
    fresh_full = len(codec.encrypt(np.zeros(model.params_.slots)).serialize())
    assert max(sizes["centroids"] | sizes["one-hot assignments"]) < 0.55 * fresh_full
    assert max(sizes["blinded scores"]) < 0.4 * fresh_full


def test_server_context_has_relinearisation_keys_only():
    params = resolve_params("ckks")
    from methods.he.kmeans_keyholder import KeyHolder

    kh = KeyHolder(params)
    server = load_context(kh.server_context())
    assert server.is_public() and not server.has_secret_key() and not server.has_galois_keys()
    assert server.has_relin_keys()
    owner = load_context(kh.public_context())
    assert not owner.has_relin_keys() and not owner.has_secret_key()
    with pytest.raises(ValueError):
        ts.ckks_vector(server, [1.0]).decrypt()


def test_floor_counts_the_view_and_one_hots_at_the_last_prime():
    params = resolve_params("ckks")
    f = lloyd_bytes_floor(4096, 4, 5, params)
    # 3 differences (2 x 8192 x 60 bits) and 3 seeded one-hots (8192 x 60 bits) per 8,192 customers
    # (two real values per complex slot); 20 centroid coordinates and 24 totals, two per ciphertext
    assert f["per_customer_per_iteration"] == pytest.approx(3 * (122880 + 61440) / 8192)
    assert f["broadcast_per_iteration"] == pytest.approx(10 * 61440 + 12 * 122880)


def test_logreg_floor_counts_scores_and_the_broadcast():
    from methods.he.crypto import logreg_params
    from methods.he.logreg_protocol import iteration_bytes_floor

    p = logreg_params()  # [50, 36, 36, 36 | 60], scale 2^36
    f = iteration_bytes_floor(4096, 10, p)
    # per record: masked z (2 x 8192 x (21 + 36 + 1) bits) and a seeded fresh z on 158 bits, per 4,096
    assert f["per_record_per_iteration"] == pytest.approx((2 * 8192 * 58 + 8192 * 158) / 8 / 4096)
    assert f["broadcast_per_iteration"] == pytest.approx(10 * (2 * 8192 * 50 + 8192 * 122) / 8)


def test_extracted_coordinates_keep_their_precision():
    """Seeding extracts records through masked totals that are not rescaled: a record's values
    come back to well under 1e-6 (two chunks, large and small columns)."""
    from methods.he import KMeansProtocol, Pool

    rng = np.random.default_rng(5)
    X = rng.normal(size=(5000, 3)) * np.array([1.0, 3.0, 20.0])
    proto = KMeansProtocol(resolve_params("ckks"), 3, seed=11)
    with Pool(1) as pool:
        proto.setup(X, pool)
        got = proto.extract([3, 4500])
    np.testing.assert_allclose(got, X[[3, 4500]], atol=1e-6)
