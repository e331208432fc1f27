"""HE K-means against plaintext Lloyd, BFV exactness, seeding, workers, served assignments."""

import multiprocessing

import numpy as np
import pytest
import tenseal as ts
from sklearn.cluster import KMeans
from sklearn.metrics import adjusted_rand_score

from methods.he import HEKMeans, quantized_lloyd
from methods.he.crypto import Codec, encrypt_onehots_under, load_context, split_chunks
from methods.plaintext import reference_init, reference_kmeans


def test_ckks_matches_plaintext_lloyd_from_the_same_centers(ckks_fit, seg_X):
    model, init = ckks_fit
    ref = reference_kmeans(seg_X, 3, 0, init=init, max_iter=4, tol=0.0)
    assert model.n_iter_ == ref.n_iter_ == 4
    assert adjusted_rand_score(model.labels_, ref.labels_) >= 0.999
    assert np.abs(model.cluster_centers_ - ref.cluster_centers_).max() <= 1e-3
    assert model.max_decryption_error_ < 1e-6
    assert model.inertia_ == pytest.approx(ref.inertia_, rel=1e-6)


def test_bfv_is_exactly_plaintext_lloyd_on_the_same_integers(seg_X):
    X = seg_X[:200]
    init = reference_init(X, 3, 1)
    model = HEKMeans(n_clusters=3, init=init, scheme="bfv", max_iter=2, tol=0.0, random_state=0, frac_bits=4,
                     poly_modulus_degree=8192, coeff_mod_bit_sizes=[60, 50, 50, 58]).fit(X)
    scale = 2**model.params_.frac_bits
    labels, centers, n_iter = quantized_lloyd(np.rint(X * scale).astype(np.int64),
                                              np.rint(init * scale).astype(np.int64), max_iter=2)
    assert model.n_iter_ == n_iter
    np.testing.assert_array_equal(model.labels_, labels)
    np.testing.assert_array_equal(model.centers_encoded_, centers)


def test_results_do_not_depend_on_the_number_of_workers(seg_X):
    rng = np.random.default_rng(0)
    X = np.vstack([seg_X, seg_X + rng.normal(0, 0.05, seg_X.shape), seg_X[:900]])  # 4,100 rows: 2 chunks
    init = reference_init(X, 3, 0)
    one = HEKMeans(3, init=init, max_iter=1, random_state=0).fit(X)
    two = HEKMeans(3, init=init, max_iter=1, random_state=0, workers=2).fit(X)
    assert len(one.encrypted_assignments_) == 2
    np.testing.assert_array_equal(one.labels_, two.labels_)
    np.testing.assert_allclose(one.cluster_centers_, two.cluster_centers_, atol=1e-6)
    assert one.costs_.rounds == two.costs_.rounds
    assert one.ops_['keyholder.decrypt'] == two.ops_['keyholder.decrypt']
    assert not multiprocessing.active_children()  # worker processes have exited


def test_permuted_scores_give_the_same_clustering(seg_X, ckks_fit):
    _, init = ckks_fit
    perm = HEKMeans(3, init=init, permute=True, max_iter=2, tol=0.0, random_state=0,
                    keep_transcript=True).fit(seg_X)
    ref = reference_kmeans(seg_X, 3, 0, init=init, max_iter=2, tol=0.0)
    np.testing.assert_array_equal(perm.labels_, ref.labels_)
    assert np.abs(perm.cluster_centers_ - ref.cluster_centers_).max() <= 1e-6
    # what the key holder decrypted in the first iteration: its argmin positions are shuffled
    codec = perm.keyholder_.codec
    msg = next(p for s, r, tag, p in perm.channel_.transcript if tag == "blinded scores")
    vals = np.stack([codec.decrypt(b)[: len(seg_X)] for b in msg], axis=1)
    true = ((seg_X[:, None, :] - init[None]) ** 2).sum(-1).argmin(1)
    assert np.mean(vals.argmin(1) == true) < 0.5


@pytest.mark.parametrize("init", ["kmeans++", "random"])
def test_secure_seeding_picks_distinct_records(seg_X, init):
    X = seg_X[:200]
    model = HEKMeans(3, init=init, max_iter=1, random_state=3).fit(X)
    C = model.init_centers_
    dist = ((C[:, None, :] - X[None]) ** 2).sum(-1).min(1)
    assert np.all(dist < 1e-6) and len(np.unique(C.round(6), axis=0)) == 3


def test_kmeans_parallel_seeding(seg_X):
    X = seg_X[:200]
    model = HEKMeans(3, init="kmeans_parallel", parallel_rounds=1, oversampling=3, max_iter=1,
                     random_state=0).fit(X)
    assert model.init_centers_.shape == (3, X.shape[1]) and np.isfinite(model.cluster_centers_).all()
    dist = ((model.init_centers_[:, None, :] - X[None]) ** 2).sum(-1).min(1)
    assert np.all(dist < 1e-6)  # candidates are records


def test_empty_cluster_is_reseeded(seg_X):
    X = seg_X[:200]
    init = np.vstack([X[0], X[1], np.full(X.shape[1], 1e3)])  # the third center attracts nobody
    model = HEKMeans(3, init=init, max_iter=1, random_state=0).fit(X)
    assert np.abs(model.cluster_centers_).max() < 1e3 and np.isfinite(model.cluster_centers_).all()


def test_served_assignments_are_fresh_one_hots(ckks_fit):
    model, _ = ckks_fit
    codec = model.keyholder_.codec
    onehot = np.stack([codec.decrypt(b) for b in model.encrypted_assignments_[0]], axis=1)
    n = len(model.labels_)
    np.testing.assert_allclose(onehot[:n], np.eye(3)[model.labels_], atol=1e-6)
    np.testing.assert_allclose(onehot[n:], 0.0, atol=1e-6)  # padding


def test_assignments_under_another_public_context(seg_X):
    X = seg_X[:300]
    other = ts.context(ts.SCHEME_TYPE.CKKS, 8192, coeff_mod_bit_sizes=[60, 40, 40, 60])
    other.global_scale = 2**40
    pub = other.copy()
    pub.make_context_public()
    model = HEKMeans(3, init=X[:3], max_iter=1, random_state=0, assignment_context=pub.serialize(),
                     assignment_chunk_size=128).fit(X)
    chunks = model.encrypted_assignments_
    assert len(chunks) == 3 and all(len(c) == 3 for c in chunks)  # 300 rows / 128 per ciphertext
    dec = np.vstack([np.stack([np.asarray(ts.ckks_vector_from(other, b).decrypt()) for b in c], axis=1)
                     for c in chunks])
    np.testing.assert_allclose(dec[:300], np.eye(3)[model.labels_], atol=1e-5)
    with pytest.raises((RuntimeError, ValueError)):  # not even loadable under the K-means context
        Codec(load_context(model.keyholder_.secret_context()), model.params_).load(chunks[0][0]).decrypt()


@pytest.mark.parametrize(("kwargs", "match"), [
    ({"n_clusters": 0}, "n_clusters=0; expected an integer >= 1"),
    ({"init": "kmeans"}, "init='kmeans'"),
    ({"init": np.zeros((2, 5))}, "init array"),
    ({"workers": 0}, "workers=0"),
    ({"scheme": "paillier"}, "scheme='paillier'"),
    ({"poly_modulus_degree": 8192, "coeff_mod_bit_sizes": [60, 60, 60, 60]}, "128-bit"),
    ({"max_iter": 0}, "max_iter=0"),
])
def test_bad_parameters_are_named(seg_X, kwargs, match):
    params = {"n_clusters": 3, **kwargs}
    with pytest.raises(ValueError, match=match):
        HEKMeans(**params).fit(seg_X[:50])


def test_bad_data_is_refused():
    with pytest.raises(ValueError, match="Expected 2D array, got 1D array"):
        HEKMeans(2).fit(np.zeros(5))
    with pytest.raises(ValueError, match="Input X contains NaN"):
        HEKMeans(2).fit(np.array([[0.0], [np.nan]]))
    with pytest.raises(ValueError, match="n_samples=1 should be >= n_clusters=2"):
        HEKMeans(2).fit(np.array([[0.0, 1.0]]))


@pytest.mark.parametrize("scheme", ["ckks", "bfv"])
def test_one_segment_is_the_owners_mean_and_sends_nothing(seg_X, scheme):
    """n_clusters=1: the centroid is the mean of the rows (as scikit-learn's), every row is in
    segment 0, and no protocol runs: no ciphertext, no byte, no round, no key holder."""
    X = seg_X[:200]
    model = HEKMeans(1, scheme=scheme, random_state=0).fit(X)
    reference = KMeans(1, n_init=1, random_state=0).fit(X)
    np.testing.assert_allclose(model.cluster_centers_, reference.cluster_centers_, atol=1e-12)
    assert model.inertia_ == pytest.approx(reference.inertia_, rel=1e-9)
    np.testing.assert_array_equal(model.labels_, np.zeros(len(X)))
    np.testing.assert_array_equal(model.predict(seg_X[200:260]), np.zeros(60))
    assert model.transform(X[:3]).shape == (3, 1)
    assert model.costs_.bytes_total == 0 and model.costs_.rounds == 0 and model.ops_ == {}
    assert model.keyholder_ is None and model.encrypted_assignments_ is None


def test_one_hots_encrypt_under_another_context_in_any_chunk_size(ckks_fit):
    model, _ = ckks_fit
    other = ts.context(ts.SCHEME_TYPE.CKKS, 8192, coeff_mod_bit_sizes=[60, 40, 40, 60])
    other.global_scale = 2**40
    pub = other.copy()
    pub.make_context_public()
    by_chunk = encrypt_onehots_under(pub.serialize(), split_chunks(model.labels_, 1000), 3, 1000)
    chunks = [by_chunk[c] for c in sorted(by_chunk)]
    assert len(chunks) == 2  # 1,600 records in chunks of 1,000
    dec = np.vstack([np.stack([np.asarray(ts.ckks_vector_from(other, b).decrypt()) for b in c], axis=1)
                     for c in chunks])
    np.testing.assert_allclose(dec[:1600], np.eye(3)[model.labels_], atol=1e-5)
    np.testing.assert_allclose(dec[1600:], 0.0, atol=1e-5)


def test_lloyd_iterations_are_logged(seg_X, caplog):
    import logging

    with caplog.at_level(logging.INFO, logger="privmark"):
        model = HEKMeans(3, init=seg_X[:3], max_iter=2, tol=0.0, random_state=0).fit(seg_X[:200])
    lines = [r.getMessage() for r in caplog.records if "Lloyd iteration" in r.getMessage()]
    assert len(lines) == model.n_iter_ == 2 and "shift=" in lines[-1]
