"""method=he with the encrypted predictor: K-means and logistic regression on ciphertexts, end to end.

One fit on the shared 2,000-row subsample (1,600 training rows: one ciphertext per column in both
stages), few Lloyd and Nesterov iterations; every test reads that fit.
"""

from __future__ import annotations

import numpy as np
import pytest
import tenseal as ts
from sklearn.metrics import roc_auc_score

from methods.base import ScoringCosts
from methods.he import HELogisticRegression, HEMethod
from methods.he.logreg import reference_gd
from methods.he.method import STAGES


@pytest.fixture(scope="module")
def fitted(small_split):
    tr = small_split.train
    method = HEMethod(n_clusters=3, init="k-means++", max_iter=4, tol=0.0, random_state=0, lr_n_iter=3)
    return method.fit(tr.X, tr.y, tr.X_segment)


def _reference(method, split):
    """The identical descent in numpy on the same standardised columns and the same segments."""
    tr, te = split.train, split.test
    lr = method.model_
    A = np.hstack([method.model_features(tr.X, tr.X_segment), np.ones((len(tr.y), 1))])
    A[:, tr.X.shape[1]:-1] = np.eye(method.n_clusters)[method.labels_]
    w, _ = reference_gd(A, tr.y, n_iter=lr.n_iter, learning_rate=lr.learning_rate, l2=lr.l2,
                        interval=lr.interval, w_neg=lr.class_weights_[0], w_pos=lr.class_weights_[1])
    Ate = np.hstack([method.model_features(te.X, te.X_segment), np.ones((len(te.y), 1))])
    return w, Ate @ w


def test_encrypted_predictor_is_the_default():
    assert HEMethod().predictor == "encrypted"
    assert HELogisticRegression.__module__ == "methods.he.logreg"


def test_matches_plaintext_gd_on_the_same_segments(fitted, small_split):
    te = small_split.test
    w_ref, z_ref = _reference(fitted, small_split)
    assert np.abs(fitted.model_.w_ - w_ref).max() < 2e-3 * max(1.0, np.abs(w_ref).max())
    assert np.abs(w_ref).max() > 0.05  # it learned something
    p = fitted.predict_proba(te.X, te.X_segment)[:, 1]
    assert p.shape == (len(te.y),) and ((p >= 0) & (p <= 1)).all()
    np.testing.assert_allclose(p, 1.0 / (1.0 + np.exp(-z_ref)), atol=2e-3)
    assert abs(roc_auc_score(te.y, p) - roc_auc_score(te.y, z_ref)) < 0.005


def test_served_assignments_decrypt_to_the_kmeans_labels(fitted, small_split):
    """What the LR server trains on as segment columns: the K-means key holder's fresh one-hots,
    under the LR key (only the LR key holder opens them), equal to the final K-means labels."""
    km, lr = fitted.kmeans_, fitted.model_
    served = km.encrypted_assignments_
    n, k, d = len(fitted.labels_), fitted.n_clusters, small_split.train.X.shape[1]
    assert lr.server_.d == d + k + 1  # features, k one-hots, intercept
    onehot = np.stack([np.concatenate([lr.key_holder_.decrypt_model(chunk[j]) for chunk in served])[:n]
                       for j in range(k)], axis=1)
    np.testing.assert_allclose(onehot, np.eye(k)[fitted.labels_], atol=1e-4)
    # the segments the owner scores with are the ones the model was trained on
    assert (fitted.segment(small_split.train.X_segment) == fitted.labels_).mean() > 0.99
    # and they are not readable under the K-means secret key
    with pytest.raises(Exception):  # noqa: B017 - TenSEAL raises a plain ValueError/RuntimeError
        np.asarray(ts.ckks_vector_from(km.keyholder_.ctx, served[0][0]).decrypt())


def test_server_side_objects_hold_no_secret_key(fitted):
    km, lr = fitted.kmeans_, fitted.model_
    for blob in (km.public_context_, lr.key_holder_.public_context()):
        ctx = ts.context_from(blob)
        assert not ctx.is_private() and not ctx.has_secret_key()
    assert not lr.server_.ctx.is_private() and not lr.server_.ctx.has_secret_key()
    assert not lr.server_.ctx.has_galois_keys()


def test_per_stage_costs(fitted):
    costs = fitted.costs_.to_dict()
    stages = costs["stages"]
    assert set(STAGES) <= set(stages)
    for s in ("clustering", "assignments", "lr_encryption", "lr_setup", "lr_training"):
        assert stages[s]["wall_s"] > 0 and stages[s]["bytes"] > 0, s
    assert stages["lr_training"]["rounds"] == 2 * fitted.lr_n_iter + 1  # two per iteration, one to finish
    assert sum(v["rounds"] for v in stages.values()) == costs["rounds"] > 0
    assert sum(v["bytes"] for v in stages.values()) == costs["bytes_total"]
    assert {"owner", "server", "keyholder"} <= set(costs["parties"])
    assert costs["parties"]["server"]["cpu_s"] > 0
    assert costs["phases"]["lr_training"] == stages["lr_training"]["wall_s"]
    revealed = fitted.privacy_.revealed
    assert set(revealed) == {"server", "keyholder", "owner"}
    assert "K-means" in revealed["server"] and "Logistic-regression" in revealed["server"]


def test_scoring_does_not_change_the_costs(fitted, small_split):
    te = small_split.test
    before = fitted.costs_.to_dict()
    first = fitted.predict_proba(te.X, te.X_segment)
    once = fitted.costs_.to_dict()
    np.testing.assert_array_equal(fitted.predict_proba(te.X, te.X_segment), first)
    assert fitted.costs_.to_dict() == once == before
    assert isinstance(fitted, ScoringCosts)


def test_bad_parameters_are_named(small_split):
    tr = small_split.train
    with pytest.raises(ValueError, match="predictor='bogus'"):
        HEMethod(n_clusters=2, predictor="bogus").fit(tr.X, tr.y, tr.X_segment)
    with pytest.raises(ValueError, match="lr_.*n_iter=0"):
        HEMethod(n_clusters=2, lr_n_iter=0).fit(tr.X, tr.y, tr.X_segment)
    with pytest.raises(ValueError, match="lr_.*coeff_mod_bit_sizes"):
        HEMethod(n_clusters=2, lr_coeff_mod_bit_sizes=[60, 40, 60]).fit(tr.X, tr.y, tr.X_segment)


def test_owner_predictor_still_available(small_split):
    tr, te = small_split.train, small_split.test
    method = HEMethod(n_clusters=2, init="k-means++", max_iter=2, predictor="owner").fit(tr.X, tr.y, tr.X_segment)
    p = method.predict_proba(te.X, te.X_segment)[:, 1]
    assert p.shape == (len(te.y),) and roc_auc_score(te.y, p) > 0.6
    assert "stages" not in method.costs_.extra
