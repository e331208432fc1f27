"""Encrypted logistic regression: matches its plaintext twin, scores match, keys stay apart.

A subsample that fits one ciphertext and a dozen columns keep this fast (SEAL itself refuses
N = 4096 with the depth one iteration needs, so the tests run the 128-bit defaults).
"""

from __future__ import annotations

import numpy as np
import pytest
import tenseal as ts
from scipy.stats import spearmanr
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score

from methods.he.crypto import InsecureParameters, logreg_params
from methods.he.logreg import (
    HELogisticRegression,
    LRKeyHolder,
    encrypt_column_with,
    reference_gd,
)
from methods.he.logreg_math import class_weights, fit_sigmoid_poly, nesterov_schedule

SMALL = dict(poly_modulus_degree=8192, coeff_mod_bit_sizes=(50, 36, 36, 36, 60), scale_bits=36,
             allow_insecure=False)
COLS = [0, 1, 3, 4, 5, 6, 7, 30, 40, 45, 48]  # numerics, pdays indicator, a few one-hots


@pytest.fixture(scope="module")
def data(small_split):
    tr, te = small_split.train, small_split.test
    return tr.X[:, COLS], tr.y, te.X[:, COLS], te.y


@pytest.fixture(scope="module")
def fitted(data):
    X, y, _, _ = data
    kw = dict(n_iter=3, random_state=0, **SMALL)
    he = HELogisticRegression(keep_transcript=True, **kw).fit(X, y)
    pt = HELogisticRegression(encrypted=False, **kw).fit(X, y)
    return he, pt


def test_encrypted_training_matches_plaintext_reference(fitted, data):
    he, pt = fitted
    _, _, Xte, yte = data
    assert np.abs(he.w_ - pt.w_).max() < 2e-3 * max(1.0, np.abs(pt.w_).max())
    assert np.abs(he.w_).max() > 0.05  # it learned something
    np.testing.assert_allclose(he.coef_, pt.coef_, atol=5e-3)
    auc_he = roc_auc_score(yte, he.predict_proba(Xte)[:, 1])
    auc_pt = roc_auc_score(yte, pt.predict_proba(Xte)[:, 1])
    assert abs(auc_he - auc_pt) < 0.005


def test_encrypted_inference_matches_plaintext_scores(fitted, data):
    he, _ = fitted
    _, _, Xte, _ = data
    z_enc = he.encrypted_decision_function(Xte[:300])
    np.testing.assert_allclose(z_enc, he.decision_function(Xte[:300]), atol=1e-3)


def test_server_holds_no_secret_key(fitted):
    he, _ = fitted
    server = he.server_
    assert not server.ctx.is_private()
    assert not server.ctx.has_galois_keys()
    with pytest.raises(ValueError, match="secret"):
        ts.ckks_vector_from(server.ctx, server.dump(server.v[0])).decrypt()
    # the server's state holds no key-holder object and nothing secret
    assert not any(isinstance(v, LRKeyHolder) for v in vars(server).values())
    # everything the key holder sent is a TenSEAL serialization (bytes), never a decryption
    for sender, _, tag, payload in he.channel_.transcript:
        items = [payload] if isinstance(payload, bytes) else list(payload)
        assert all(isinstance(p, bytes) for p in items)
        if sender == "owner" and tag in ("z_fresh", "u_fresh", "v_fresh", "w_fresh"):
            for p in items:
                ts.ckks_vector_from(server.ctx, p)  # parses as a ciphertext


def test_key_holder_sees_only_masked_scores(fitted, data):
    """What the key holder decrypts during training is masked: the per-record record weights
    (which encode y) and scores (z) carry uniform masks of half-width 2^20 against |z| < 8."""
    he, _ = fitted
    X, y, _, _ = data
    n = len(y)
    z_true = np.hstack([he._transform(X), np.ones((n, 1))]) @ he.w_
    per_record = [v[:n] for v in he.key_holder_.transcript if np.abs(v[:n]).max() > 1e4]
    assert len(per_record) == 1 + he.n_iter  # u once, then z every iteration
    for v in per_record:
        assert abs(spearmanr(v, z_true).statistic) < 0.1
        assert abs(spearmanr(v, y).statistic) < 0.1
    # the gradient vectors it sums are masked slot by slot too: no slot is a record's own term
    grads = [v for v in he.key_holder_.transcript if 10 < np.abs(v).max() < 1e4]
    assert len(grads) >= he.n_iter * he.server_.d
    assert min(np.abs(v).mean() for v in grads) > 100


def test_extra_encrypted_columns_under_public_context(data):
    """The K-means stage's one-hot columns arrive as fresh encryptions under our public context."""
    X, y, _, _ = data
    params = logreg_params(**{k: SMALL[k] for k in ("poly_modulus_degree", "coeff_mod_bit_sizes", "scale_bits",
                                               "allow_insecure")})
    kh = LRKeyHolder(params)
    mean, sd = X.mean(0), X.std(0)
    Z = np.clip((X - mean) / sd, -4, 4)
    seg = (X[:, 0] > 0).astype(float)
    seg = (seg - seg.mean()) / seg.std()
    cols = [kh.encrypt_column(Z[:, j]) for j in range(Z.shape[1])]
    extra = [encrypt_column_with(kh.public_context(), seg, params)]
    labels = kh.encrypt_column(y)
    counts = (int((y == 0).sum()), int((y == 1).sum()))
    est = HELogisticRegression(n_iter=2, **SMALL)
    est.fit_encrypted(kh, cols, labels, len(y), counts, extra_columns=extra)
    w_ref, _ = reference_gd(np.column_stack([Z, seg, np.ones(len(y))]), y, n_iter=2, learning_rate=2.0,
                            l2=1e-3, interval=8.0, w_neg=class_weights("balanced", *counts)[0],
                            w_pos=class_weights("balanced", *counts)[1])
    assert est.coef_.shape == (1, Z.shape[1] + 1)
    np.testing.assert_allclose(est.w_, w_ref, atol=2e-3)
    # coef_ applies to the columns as they were encrypted (no second standardisation or clip)
    cols_plain = np.column_stack([Z, seg])
    np.testing.assert_allclose(est.decision_function(cols_plain), cols_plain @ w_ref[:-1] + w_ref[-1],
                               atol=1e-2)


def test_several_chunks_padded_last():
    """More rows than slots: column-major chunks, the last one zero-padded, sums over chunks."""
    rng = np.random.default_rng(1)
    n = 4096 + 700
    X = rng.normal(size=(n, 3))
    y = (X @ [1.0, -2.0, 0.5] + rng.normal(size=n) > 1.0).astype(int)
    he = HELogisticRegression(n_iter=2, class_weight=None, **SMALL).fit(X, y)
    pt = HELogisticRegression(n_iter=2, class_weight=None, encrypted=False, **SMALL).fit(X, y)
    assert he.server_.n_chunks == 2
    np.testing.assert_allclose(he.w_, pt.w_, atol=1e-3)
    assert np.abs(pt.w_[:3]).max() > 0.1


def test_plaintext_gd_close_to_sklearn(small_split):
    tr, te = small_split.train, small_split.test
    pt = HELogisticRegression(encrypted=False).fit(tr.X, tr.y)
    sk = LogisticRegression(max_iter=2000, class_weight="balanced").fit(tr.X, tr.y)
    auc_pt = roc_auc_score(te.y, pt.predict_proba(te.X)[:, 1])
    auc_sk = roc_auc_score(te.y, sk.predict_proba(te.X)[:, 1])
    assert auc_pt > auc_sk - 0.03
    assert pt.out_of_interval_.shape == (pt.n_iter,)
    assert pt.out_of_interval_final_ < 0.01


def test_polynomial_and_schedule():
    poly = fit_sigmoid_poly(8.0)
    z = np.linspace(-8, 8, 101)
    assert np.abs(poly(z) - 1 / (1 + np.exp(-z))).max() < 0.12
    assert poly.a1 > 0 > poly.a3
    eta, gamma = nesterov_schedule(5, 2.0)
    assert eta.shape == gamma.shape == (5,)
    assert gamma[0] == 0.0 and (gamma[1:] < 0).all()


@pytest.mark.parametrize("kw, match", [
    (dict(n_iter=0), "n_iter"),
    (dict(learning_rate=-1.0), "learning_rate"),
    (dict(interval=0.0), "interval"),
    (dict(clip=-2.0), "clip"),
    (dict(class_weight="heavy"), "class_weight"),
    (dict(coeff_mod_bit_sizes=(60, 40, 60)), "coeff_mod_bit_sizes"),
])
def test_bad_parameters_are_named(kw, match, data):
    X, y, _, _ = data
    with pytest.raises(ValueError, match=match):
        HELogisticRegression(encrypted=False, **kw).fit(X, y) if match not in (
            "coeff_mod_bit_sizes",) else HELogisticRegression(**kw).fit(X, y)


def test_insecure_parameters_refused(data):
    X, y, _, _ = data
    kw = dict(SMALL, coeff_mod_bit_sizes=(60, 40, 40, 40, 60))
    with pytest.raises(InsecureParameters, match="log q = 240"):
        HELogisticRegression(**kw).fit(X, y)


def test_bad_inputs(data):
    X, y, _, _ = data
    three = y.copy()
    three[:3] = 2
    with pytest.raises(ValueError, match="binary"):
        HELogisticRegression(encrypted=False).fit(X, three)
    with pytest.raises(ValueError, match="inconsistent numbers of samples"):
        HELogisticRegression(encrypted=False).fit(X, y[:-1])
