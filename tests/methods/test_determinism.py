"""Same seed, same result: each method fitted twice with the same seed gives the same segments,
centers and probabilities. Plaintext, DP and federated: bit for bit. HE: the same labels; CKKS
decryptions carry fresh encryption noise, so centers and probabilities agree to 1e-6 (two workers:
the partial totals are reduced in worker order, never completion order)."""

import numpy as np
import pytest
from sklearn.metrics import adjusted_rand_score

from methods.plaintext import PlaintextMethod, reference_kmeans


def _fits(make, split):
    tr, te = split.train, split.test
    out = []
    for _ in range(2):
        m = make().fit(tr.X, tr.y, tr.X_segment)
        out.append((m, m.segment(tr.X_segment), m.predict_proba(te.X, te.X_segment)))
    return out


def _assert_identical(fits):
    (a, la, pa), (b, lb, pb) = fits
    np.testing.assert_array_equal(la, lb)
    np.testing.assert_array_equal(a.cluster_centers_, b.cluster_centers_)
    np.testing.assert_array_equal(pa, pb)


def test_plaintext_same_seed_same_result(small_split):
    _assert_identical(_fits(lambda: PlaintextMethod(n_clusters=3, random_state=5), small_split))


def test_dp_same_seed_same_result(make_dataset_config):
    import datasets
    from methods.dp import DPMethod

    cfg = make_dataset_config("bank_full", subsample=2000)
    for key, value in DPMethod().dataset_overrides.items():
        cfg[key] = value
    split = datasets.load(cfg, split_seed=0)
    cats = dict(split.preprocessor.categorical)
    _assert_identical(_fits(lambda: DPMethod(n_clusters=3, random_state=5, categorical=cats), split))


def test_he_same_seed_same_result_with_two_workers(small_split):
    from methods.he import HEMethod

    fits = _fits(lambda: HEMethod(n_clusters=3, init="k-means++", max_iter=3, tol=0.0, random_state=5,
                                  workers=2, lr_n_iter=2), small_split)
    (a, la, pa), (b, lb, pb) = fits
    np.testing.assert_array_equal(la, lb)
    np.testing.assert_array_equal(a.labels_, b.labels_)
    np.testing.assert_allclose(a.cluster_centers_, b.cluster_centers_, rtol=0, atol=1e-6)
    np.testing.assert_allclose(pa, pb, rtol=0, atol=1e-4)


def test_federated_same_seed_same_result(small_split, tmp_path):
    """k-FED seeding over iid clients with client-level DP: the clients' replies arrive in any
    order and the noise is drawn in the server; two runs agree bit for bit."""
    from methods.federated import FederatedMethod

    te = small_split.test
    runs = []
    for i in range(2):
        m = FederatedMethod(n_clusters=3, random_state=0, num_clients=4, partition="iid", init="k-fed",
                            rounds=2, dp={"noise_multiplier": 0.5, "clipping_norm": 1.0, "delta": 1e-5},
                            work_dir=str(tmp_path / str(i)))
        tr = small_split.train
        m.fit(tr.X, tr.y, tr.X_segment, eval_set=(te.X, te.y, te.X_segment))
        runs.append(m)
    a, b = runs
    np.testing.assert_array_equal(a.labels_, b.labels_)
    np.testing.assert_array_equal(a.cluster_centers_, b.cluster_centers_)
    assert a.n_iter_ == b.n_iter_
    assert np.bincount(a.labels_).tolist() == np.bincount(b.labels_).tolist()
    np.testing.assert_array_equal(a.coef_, b.coef_)
    np.testing.assert_array_equal(a.predict_proba(te.X, te.X_segment), b.predict_proba(te.X, te.X_segment))
    assert a.history_["fedavg"] == b.history_["fedavg"]
    ref = reference_kmeans(small_split.train.X_segment, 3, 0)
    ari = [adjusted_rand_score(ref.labels_, m.labels_) for m in runs]
    print(f"ARI vs plaintext: {ari}, K-means rounds: {a.n_iter_}, {b.n_iter_}")
    assert ari[0] == ari[1]


@pytest.fixture(autouse=True)
def _no_stray_children():
    import multiprocessing

    yield
    assert not multiprocessing.active_children()
