"""Attacks on synthetic data where the answer is known, and the runner hook on real methods."""

from __future__ import annotations

import math
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from omegaconf import OmegaConf
from sklearn.base import BaseEstimator

from benchmarks import attacks as A
from benchmarks.attacks import membership as mi
from datasets import Part
from methods.base import Privacy

REPO = Path(__file__).resolve().parents[2]


# ---------------------------------------------------------------- synthetic data and models


def synthetic_split(n_train=600, n_test=600, d=6, seed=0, prevalence=0.3):
    rng = np.random.default_rng(seed)

    def part(n):
        X = rng.normal(size=(n, d))
        y = (rng.random(n) < prevalence).astype(np.int64)
        return Part(X=X, X_segment=X[:, :3].copy(), y=y, frame=None)

    return SimpleNamespace(train=part(n_train), test=part(n_test))


class Memoriser(BaseEstimator):
    """Predicts the true label with certainty on rows it was trained on, the prevalence elsewhere."""

    name = "memoriser"

    def __init__(self, n_clusters=3, random_state=0):
        self.n_clusters = n_clusters
        self.random_state = random_state

    def fit(self, X, y, X_segment):
        self.table_ = {row.tobytes(): int(label) for row, label in zip(np.asarray(X), y, strict=True)}
        self.prior_ = float(np.mean(y))
        self.privacy_ = Privacy(threat_model="none")
        return self

    def predict_proba(self, X, X_segment):
        out = np.full(len(X), self.prior_)
        for i, row in enumerate(np.asarray(X)):
            label = self.table_.get(row.tobytes())
            if label is not None:
                out[i] = 1 - 1e-9 if label == 1 else 1e-9
        return np.column_stack([1 - out, out])


class Oblivious(BaseEstimator):
    """A fixed model trained on other data: its outputs do not depend on membership."""

    name = "oblivious"

    def __init__(self, n_clusters=3, random_state=0, epsilon=None):
        self.n_clusters = n_clusters
        self.random_state = random_state
        self.epsilon = epsilon

    def fit(self, X, y, X_segment):
        rng = np.random.default_rng(self.random_state + 99)
        self.w_ = rng.normal(size=X.shape[1])
        self.privacy_ = Privacy(threat_model="test", epsilon=self.epsilon)
        return self

    def predict_proba(self, X, X_segment):
        p = 1 / (1 + np.exp(-(np.asarray(X) @ self.w_)))
        return np.column_stack([1 - p, p])


def fitted(model, split):
    return model.fit(split.train.X, split.train.y, split.train.X_segment)


# ---------------------------------------------------------------- metrics and the epsilon bound


def test_clopper_pearson_matches_closed_forms_and_covers():
    n, alpha = 40, 0.05
    lo, hi = A.clopper_pearson(np.array([0, n]), n, alpha)
    assert lo[0] == 0 and hi[1] == 1
    assert hi[0] == pytest.approx(1 - (alpha / 2) ** (1 / n))
    assert lo[1] == pytest.approx((alpha / 2) ** (1 / n))
    # coverage of the true rate in repeated binomial draws is at least 1 - alpha
    rng = np.random.default_rng(0)
    k = rng.binomial(n, 0.3, size=2000)
    lo, hi = A.clopper_pearson(k, n, alpha)
    assert ((lo <= 0.3) & (0.3 <= hi)).mean() >= 1 - alpha


def test_perfectly_separating_attack():
    member = np.r_[np.ones(2000, bool), np.zeros(2000, bool)]
    res = A.AttackScores(np.where(member, 1.0, 0.0) + np.random.default_rng(0).random(4000) * 0.5, member)
    s = A.summarize(res, "x")
    assert s["x_auc"] == 1.0
    assert s["x_tpr_at_fpr_0_001"] == 1.0 and s["x_advantage"] == 1.0
    # 1000 held-out targets per side, none misclassified: CP gives log(0.9963 / 0.0037) ~ 5.6
    assert 5.0 < s["x_eps_lb"] < 6.0
    assert s["x_eps_point"] is None  # no false positive at all: the plain ratio is infinite


def test_attack_independent_of_membership_is_at_chance():
    rng = np.random.default_rng(1)
    member = rng.permutation(np.r_[np.ones(3000, bool), np.zeros(3000, bool)])
    s = A.summarize(A.AttackScores(rng.normal(size=6000), member), "x")
    lo, hi = s["x_auc_ci"]
    assert lo <= 0.5 <= hi and hi - lo < 0.04
    assert s["x_eps_lb"] < 0.2
    assert s["x_tpr_at_fpr_0_01"] < 0.03


def randomized_response(eps, n, seed):
    rng = np.random.default_rng(seed)
    keep = math.exp(eps) / (1 + math.exp(eps))
    out_in = (rng.random(n) < keep).astype(float)  # true bit 1 reported truthfully w.p. keep
    out_out = (rng.random(n) >= keep).astype(float)  # true bit 0
    return A.AttackScores(np.r_[out_in, out_out], np.r_[np.ones(n, bool), np.zeros(n, bool)])


def laplace_mechanism(eps, n, seed):
    rng = np.random.default_rng(seed)
    # counting query with sensitivity 1: the target moves the answer from 0 to 1
    out_in = 1 + rng.laplace(scale=1 / eps, size=n)
    out_out = rng.laplace(scale=1 / eps, size=n)
    return A.AttackScores(np.r_[out_in, out_out], np.r_[np.ones(n, bool), np.zeros(n, bool)])


@pytest.mark.parametrize("mechanism, eps, floor", [(randomized_response, 1.0, 0.8),
                                                   (randomized_response, 0.3, 0.15),
                                                   (laplace_mechanism, 2.0, 1.0)])
def test_epsilon_lower_bound_is_valid_and_informative(mechanism, eps, floor):
    for seed in range(3):
        bound = A.epsilon_lower_bound(mechanism(eps, 20000, seed), seed=seed)
        assert floor < bound["eps_lb"] <= eps
        assert bound["advantage_lb"] <= A.advantage_bound(eps)


def test_advantage_bound_is_tanh_half_epsilon():
    for eps in (0.1, 1.0, 3.0):
        assert A.advantage_bound(eps) == pytest.approx(math.tanh(eps / 2))
    assert A.advantage_bound(1.0, delta=0.01) > A.advantage_bound(1.0)
    assert A.advantage_bound(math.inf) == 1.0


def test_dp_audit_flags_a_claim_the_attack_refutes():
    res = randomized_response(1.0, 20000, 0)
    honest = A.dp_audit(res, claimed_epsilon=1.0)
    assert honest["dp_eps_lb_within_claim"] and honest["dp_advantage_within_bound"]
    false_claim = A.dp_audit(res, claimed_epsilon=0.5)
    assert not false_claim["dp_eps_lb_within_claim"]
    assert not false_claim["dp_advantage_within_bound"]  # RR(1) reaches tanh(1/2) > tanh(1/4)
    with pytest.raises(ValueError, match="claimed_epsilon"):
        A.dp_audit(res, claimed_epsilon=0)


# ---------------------------------------------------------------- membership inference


def test_audit_targets_are_balanced_label_matched_and_seeded():
    rng = np.random.default_rng(0)
    y_train, y_test = (rng.random(5000) < 0.12).astype(int), (rng.random(1200) < 0.12).astype(int)
    m, nm = mi.audit_targets(y_train, y_test, seed=3)
    assert len(m) == len(nm) == 1200 and len(np.unique(m)) == len(m)
    assert np.bincount(y_train[m]).tolist() == np.bincount(y_test[nm]).tolist()
    m2, nm2 = mi.audit_targets(y_train, y_test, seed=3)
    assert (m == m2).all() and (nm == nm2).all()
    assert not (m == mi.audit_targets(y_train, y_test, seed=4)[0]).all()
    m, nm = mi.audit_targets(y_train, y_test, seed=3, max_per_side=300)
    assert len(m) == len(nm) and abs(len(nm) - 300) <= 1
    assert np.bincount(y_train[m]).tolist() == np.bincount(y_test[nm]).tolist()


def test_newton_logreg_matches_scikit_learn():
    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(0)
    X = rng.normal(size=(800, 7))
    y = (X @ rng.normal(size=7) + rng.normal(size=800) > 0.5).astype(int)
    theta = mi.fit_logreg(X, y, C=0.3)
    ref = LogisticRegression(C=0.3, tol=1e-10, max_iter=10000).fit(X, y)
    np.testing.assert_allclose(theta[:-1], ref.coef_[0], atol=1e-4)
    assert theta[-1] == pytest.approx(ref.intercept_[0], abs=1e-4)


def test_memorising_model_is_caught_by_every_predictor_attack():
    split = synthetic_split(1500, 500)
    out = A.leakage(fitted(Memoriser(), split), split, seed=0)
    assert out["mia_auc"] > 0.99 and out["mia_tpr_at_fpr_0_001"] > 0.99
    assert out["lira_auc"] > 0.99
    assert out["mia_eps_lb"] > 3
    assert "centroids" in out["skipped"]  # a model without centroids is skipped with a reason
    assert out["errors"] == {}


def test_model_independent_of_membership_stays_at_chance():
    split = synthetic_split(n_train=2000, n_test=2000)
    out = A.leakage(fitted(Oblivious(), split), split, seed=0)
    for attack in ("mia", "lira"):
        lo, hi = out[f"{attack}_auc_ci"]
        assert lo <= 0.5 <= hi, attack
        assert out[f"{attack}_eps_lb"] < 0.5


def test_lira_detects_members_of_overfit_logistic_regressions():
    # 10 target models, each on 40 rows of 50 weakly informative features (members are fitted,
    # non-members are not); shadows train on 40-row subsets of a disjoint pool
    rng = np.random.default_rng(0)
    d, n = 50, 40
    w = rng.normal(size=d)

    def draw(k):
        X = rng.normal(size=(k, d))
        return X, (X @ w * 0.1 + rng.logistic(size=k) > 0).astype(int)

    X_pool, y_pool = draw(2000)
    member = np.r_[np.ones(n, bool), np.zeros(n, bool)]
    parts = []
    for _ in range(10):
        (X_in, y_in), (X_out, y_out) = draw(n), draw(n)
        target = mi.fit_logreg(X_in, y_in)
        X_t, y_t = np.vstack([X_in, X_out]), np.r_[y_in, y_out]
        phi = mi.logit_confidence(1 / (1 + np.exp(-(X_t @ target[:-1] + target[-1]))), y_t)
        shadows = mi.shadow_confidences(X_t, y_t, X_pool, y_pool, n_shadows=8, size=n, C=1.0, rng=rng)
        parts.append(mi.lira_offline(phi, shadows, is_member=member))
    s = A.summarize(A.AttackScores.concat(parts), "lira")
    assert s["lira_auc_ci"][0] > 0.7


def test_centroid_attack_and_small_clusters():
    from sklearn.cluster import KMeans

    rng = np.random.default_rng(0)
    X_in, X_out = rng.normal(size=(200, 2)), rng.normal(size=(200, 2))
    many = KMeans(n_clusters=100, n_init=1, random_state=0).fit(X_in)  # ~2 members per centroid
    assert A.summarize(A.centroid_attack(X_in, X_out, many.cluster_centers_), "c")["c_auc"] > 0.8
    other = KMeans(n_clusters=4, n_init=1, random_state=0).fit(rng.normal(size=(200, 2)))
    lo, hi = A.summarize(A.centroid_attack(X_in, X_out, other.cluster_centers_), "c")["c_auc_ci"]
    assert lo <= 0.5 <= hi
    assert A.small_clusters(np.array([0, 1, 9, 10, 500])) == 2
    assert A.small_clusters(np.bincount(many.labels_, minlength=100)) == (
        (np.bincount(many.labels_, minlength=100) > 0).sum())


# ---------------------------------------------------------------- federated updates


def test_single_example_gradient_gives_the_record_and_label_exactly():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(30, 9))
    y = rng.integers(0, 2, size=30)
    w, b, lr, l2 = rng.normal(size=9), 0.3, 0.05, 0.01
    err = 1 / (1 + np.exp(-(X @ w + b))) - y
    grad_w, grad_b = err[:, None] * X, err
    x_hat, y_hat = A.reconstruct_lr_inputs(grad_w, grad_b, kind="gradient")
    np.testing.assert_allclose(x_hat, X, rtol=1e-10)
    assert (y_hat == y).all()
    # one local SGD step with L2, as a FedAvg delta: the server knows lr, l2 and the global w
    delta_w, delta_b = -lr * (grad_w + l2 * w), -lr * grad_b
    x_hat, y_hat = A.reconstruct_lr_inputs(delta_w, delta_b, kind="delta", l2=l2, global_w=w, lr=lr)
    np.testing.assert_allclose(x_hat, X, rtol=1e-8)
    assert (y_hat == y).all()
    # the client's model itself (what a FedAvg client sends), with the global model it started from
    x_hat, _ = A.reconstruct_lr_inputs(w + delta_w, b + delta_b, kind="params", l2=l2, global_w=w,
                                       global_b=b, lr=lr)
    np.testing.assert_allclose(x_hat, X, rtol=1e-6)
    # without removing the L2 term the reconstruction is off
    assert not np.allclose(A.reconstruct_lr_inputs(delta_w, delta_b)[0], X, rtol=1e-3)


def test_fedavg_simulation_reconstruction_exact_at_batch_one_and_degrades():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(4000, 8))
    y = (X[:, 0] + rng.logistic(size=4000) > 1).astype(int)

    def report(n, bs, ep):
        sim = A.simulate_fedavg_lr(X, y, n_clients=20, records_per_client=n, batch_size=bs,
                                   local_epochs=ep, rounds=3, seed=1)
        x_hat, y_hat = A.reconstruct_lr_inputs(sim["update_w"], sim["update_b"])
        return A.reconstruction_report(x_hat, y_hat, sim["client_X"], sim["client_y"])

    for epochs in (1, 5):
        single = report(1, 1, epochs)
        assert single["cosine_min"] > 1 - 1e-9 and single["label_accuracy"] == 1.0
        assert single["single_record_clients"] == 20 and len(single["cosine_by_round"]) == 3
    few_steps, many_steps = report(32, 32, 1), report(32, 1, 5)
    assert few_steps["label_accuracy"] is None
    assert many_steps["cosine_mean"] < few_steps["cosine_mean"] < 1 - 1e-3


def test_reconstruction_sweep_rows():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(500, 4))
    y = rng.integers(0, 2, size=500)
    rows = A.reconstruction_sweep(X, y, grid=((1, 1, 2), (8, 4, 2)), n_clients=10, rounds=2)
    assert [(r["records_per_client"], r["batch_size"], r["local_epochs"]) for r in rows] == [(1, 1, 2),
                                                                                           (8, 4, 2)]
    assert rows[0]["cosine_mean"] == pytest.approx(1.0)


def test_kmeans_singletons_count_exact_records():
    client_X = [np.array([[1.0, 2.0], [3.0, 4.0]]), np.array([[5.0, 6.0]])]
    counts = np.array([[[1, 1, 0], [0, 1, 0]],   # round 0: client 0 has two singletons, client 1 one
                       [[2, 0, 0], [0, 0, 1]]])  # round 1: client 1 only
    sums = np.zeros((2, 2, 3, 2))
    sums[0, 0, 0], sums[0, 0, 1], sums[0, 1, 1] = client_X[0][0], client_X[0][1], client_X[1][0]
    sums[1, 0, 0], sums[1, 1, 2] = client_X[0].sum(0), client_X[1][0] + 0.5  # not a record
    out = A.kmeans_singletons(counts, sums, client_X)
    assert out["fl_kmeans_singletons"] == 1
    assert out["fl_kmeans_singletons_all_rounds"] == 4
    assert out["fl_kmeans_clients_exposed"] == 2
    assert out["fl_kmeans_singletons_exact_records"] == 3


# ---------------------------------------------------------------- HE: ciphertext only


def test_ciphertext_bytes_do_not_reveal_the_bit():
    # TenSEAL's encryption randomness is not seedable: a 99.99% interval keeps this from flaking
    out = A.ciphertext_leakage(n=160, seed=0, alpha=1e-4)
    lo, hi = out["he_ciphertext_auc_ci"]
    assert lo <= 0.5 <= hi
    assert out["he_plaintext_control_auc"] > 0.95  # the classifier does find a bit that is there


# ---------------------------------------------------------------- the runner hook


def test_hook_on_the_plaintext_method(small_split):
    from methods.plaintext import PlaintextMethod

    method = PlaintextMethod(n_clusters=3, random_state=0)
    fitted(method, small_split)
    cfg = {"small_train": {"enabled": True, "size": 40, "repeats": 3}, "reference": {"enabled": True,
                                                                                    "n_estimators": 10}}
    out = A.leakage(method, small_split, seed=0, cfg=cfg)
    assert out["errors"] == {}
    n = len(small_split.test)
    assert out["protocol"]["members"] == out["protocol"]["nonmembers"] == n
    for prefix in ("mia", "lira", "centroid_mia", "rf_mia", "rf_lira", "small_mia", "small_lira",
                   "small_centroid_mia"):
        assert 0 <= out[f"{prefix}_auc"] <= 1 and out[f"{prefix}_eps_lb"] >= 0, prefix
        assert len(out["roc"][prefix]["fpr"]) == 60
    assert out["small_mia_n_members"] == 3 * 40
    assert out["rf_mia_auc"] > out["mia_auc"]  # the fully grown forest leaks more than the LR
    assert isinstance(out["small_clusters"], int) and out["min_cluster_size"] >= 1
    assert set(out["skipped"]) == {"federated", "dp"}
    # the same seed gives the same targets and numbers
    again = A.leakage(method, small_split, seed=0, cfg={"centroids": {"enabled": False}})
    assert again["mia_auc"] == out["mia_auc"] and again["lira_auc"] == out["lira_auc"]


def test_hook_reports_a_failing_attack_instead_of_raising():
    class Broken(Oblivious):
        def predict_proba(self, X, X_segment):
            raise RuntimeError("no predictor")

    split = synthetic_split(200, 200)
    out = A.leakage(fitted(Broken(), split), split, seed=0, cfg={"he": {"enabled": False}})
    assert "no predictor" in out["errors"]["mia"]
    assert "mia_auc" not in out

    class BadSegments(Oblivious):  # LiRA's shadow features need the segments; the loss attack not
        def segment(self, X_segment):
            raise RuntimeError("no segments")

    split = synthetic_split(600, 200)
    out = A.leakage(fitted(BadSegments(), split), split, seed=0)
    assert "mia_auc" in out and "no segments" in out["errors"]["mia_lira"]


def test_hook_audits_a_dp_claim():
    split = synthetic_split(2000, 2000)
    honest = A.leakage(fitted(Oblivious(epsilon=1.0), split), split, seed=0)
    assert honest["dp_eps_lb_within_claim"] and honest["dp_claimed_epsilon"] == 1.0
    liar = fitted(Memoriser(), split)
    liar.privacy_ = Privacy(threat_model="claims DP", epsilon=0.5)
    out = A.leakage(liar, split, seed=0)
    assert not out["dp_eps_lb_within_claim"] and not out["dp_advantage_within_bound"]


def test_hook_attacks_exposed_federated_updates():
    split = synthetic_split(400, 200)
    method = fitted(Oblivious(), split)
    rng = np.random.default_rng(0)
    rows = [np.array([i]) for i in rng.choice(400, 25, replace=False)]
    X, y = split.train.X, split.train.y
    w = rng.normal(size=X.shape[1])
    err = np.array([1 / (1 + np.exp(-(X[r[0]] @ w))) - y[r[0]] for r in rows])
    method.client_updates_ = {"w": -0.1 * (err[:, None] * X[[r[0] for r in rows]])[None],
                              "b": -0.1 * err[None], "kind": "delta"}
    method.client_rows_ = rows
    method.kmeans_client_counts_ = np.ones((25, 3), int)
    method.kmeans_client_sums_ = None  # a server view declares every statistic, None when not exposed
    out = A.leakage(method, split, seed=0)
    assert out["fl_recon_cosine_min"] == pytest.approx(1.0) and out["fl_recon_label_accuracy"] == 1.0
    assert out["fl_kmeans_singletons"] == 75


def test_leakage_config_refuses_typos_and_bad_values():
    with pytest.raises(A.LeakageConfigError, match="n_shadow"):
        A.leakage_config({"lira": {"n_shadow": 4}})
    with pytest.raises(A.LeakageConfigError, match=r"leakage\.alpha"):
        A.leakage_config({"alpha": 2})
    assert A.leakage(None, None, 0, {"enabled": False})["skipped"] == {"all": "leakage.enabled=false"}


def test_config_files_match_the_schema_and_compose():
    from hydra import compose, initialize_config_dir

    default = OmegaConf.load(REPO / "conf" / "leakage" / "default.yaml")
    assert default.pop("defaults") == ["leakage_schema", "_self_"]  # Hydra composes it onto the schema
    assert OmegaConf.to_container(default) == OmegaConf.to_container(OmegaConf.structured(A.LeakageConfig))
    defaults = OmegaConf.load(REPO / "conf" / "config.yaml").get("defaults", [])
    wired = any(isinstance(d, dict) and "leakage" in d for d in OmegaConf.to_container(defaults))
    overrides = ["+experiment=leakage"] if wired else ["+leakage=default", "+experiment=leakage"]
    with initialize_config_dir(version_base="1.3", config_dir=str(REPO / "conf")):
        cfg = compose("config", overrides=overrides)
    c = A.leakage_config(cfg.leakage)
    assert c.reference.enabled and c.small_train.enabled and c.federated.simulation


def test_roc_figure_from_records(tmp_path):
    from benchmarks.attacks.figures import roc_figure

    split = synthetic_split(1500, 500)
    records = []
    for name, model in (("leaky", Memoriser()), ("private", Oblivious(epsilon=1.0))):
        m = fitted(model, split)
        priv = m.privacy_.to_dict()
        priv["leakage"] = A.leakage(m, split, seed=0)
        records.append({"method": name, "dataset": "synthetic", "k": 3, "seed": 0, "split_seed": 0,
                        "status": "ok", "privacy": priv})
    assert records[0]["privacy"]["leakage"]["mia_auc"] > 0.99
    fig = roc_figure(records)
    assert len(fig.axes[0].lines) == 3  # two methods and the chance line
    fig.savefig(tmp_path / "roc.png")
    assert (tmp_path / "roc.png").stat().st_size > 0
