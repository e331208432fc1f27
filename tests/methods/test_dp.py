"""The DP method: budget accounting, refusals, public bounds only, and the noise really added.

Every test here turns diffprivlib's PrivacyLeakWarning into an error: a bound read from the data
fails the test that triggers it.
"""

from __future__ import annotations

import math
import warnings
from pathlib import Path

import numpy as np
import pytest
from diffprivlib.accountant import BudgetAccountant
from diffprivlib.utils import BudgetError, PrivacyLeakWarning

import methods.dp as dp
from methods import build
from methods.dp import (
    DPKMeans,
    DPLogisticRegression,
    DPMethod,
    check_epsilon,
    jacobian_epsilon,
    su_split,
)

pytestmark = pytest.mark.filterwarnings("error::diffprivlib.utils.PrivacyLeakWarning")


@pytest.fixture(scope="module")
def dp_split(make_dataset_config):
    """2,000 stratified rows of bank_full loaded the way the runner loads them for method=dp."""
    import datasets

    cfg = make_dataset_config("bank_full", subsample=2000)
    for key, value in DPMethod().dataset_overrides.items():
        cfg[key] = value
    return datasets.load(cfg, split_seed=0)


def fit_method(split, **params) -> DPMethod:
    params.setdefault("categorical", dict(split.preprocessor.categorical))
    m = DPMethod(n_clusters=params.pop("k", 4), random_state=params.pop("seed", 0), **params)
    return m.fit(split.train.X, split.train.y, split.train.X_segment)


def blobs(n=300, d=3, seed=0):
    rng = np.random.default_rng(seed)
    centres = rng.uniform(0.2, 0.8, size=(3, d))
    X = centres[rng.integers(0, 3, n)] + rng.normal(0, 0.03, size=(n, d))
    return np.clip(X, 0, 1)


# -- budget accounting ---------------------------------------------------------------------------

@pytest.mark.parametrize("epsilon,split_", [(1.0, 0.3), (0.1, 0.5), (3.0, 0.0), (0.3, 0.9)])
def test_accountant_total_is_the_budget(dp_split, epsilon, split_):
    params = {"epsilon": epsilon, "epsilon_split": split_, "prior_share": 0.05 if split_ < 0.9 else 0.02}
    m = fit_method(dp_split, **params)
    spends = m.privacy_.extra["spends"]
    assert m.privacy_.epsilon == pytest.approx(epsilon, rel=1e-12)
    assert sum(spends) <= epsilon  # never over the budget, not even by rounding
    assert m.accountant_.total()[0] == pytest.approx(epsilon, rel=1e-12)
    assert m.privacy_.delta == 0.0
    b = m.budget_
    assert b["segmentation"] == pytest.approx(split_ * epsilon)
    assert b["prior"] == pytest.approx(params["prior_share"] * epsilon)
    assert b["prediction"] == pytest.approx((1 - split_ - params["prior_share"]) * epsilon)
    # every spend is one of the parts; no part is spent twice or silently dropped
    assert sorted(spends) == pytest.approx(sorted(v for v in b.values() if v > 0))
    if m.kmeans_ is not None:
        assert m.kmeans_.spent_epsilon() == pytest.approx(b["segmentation"], rel=1e-12)


def test_record_states_budget_and_what_is_revealed(dp_split):
    m = fit_method(dp_split, epsilon=1.0)
    p = m.privacy_.to_dict()
    assert p["epsilon"] == pytest.approx(1.0) and p["delta"] == 0.0
    assert "centroids" in p["revealed"]["public"] and "coefficients" in p["revealed"]["public"]
    assert p["adjacency"].startswith("replace-one")
    km = p["mechanisms"]["kmeans"]
    assert km["count_sensitivity"] == 2.0
    assert km["sum_sensitivity"] == [1.0] * dp_split.train.X_segment.shape[1]


def test_infinite_epsilon_adds_no_noise(dp_split):
    m = fit_method(dp_split, epsilon=math.inf, epsilon_split=0.0, seed=0)
    assert math.isinf(m.privacy_.epsilon)
    other_seed = fit_method(dp_split, epsilon=math.inf, epsilon_split=0.0, seed=1)
    np.testing.assert_allclose(m.model_.coef_, other_seed.model_.coef_, rtol=1e-6, atol=1e-8)
    assert m.prior_ == pytest.approx(dp_split.train.y.mean())
    noisy = fit_method(dp_split, epsilon=1.0, epsilon_split=0.0, seed=1)
    assert not np.allclose(m.model_.coef_, noisy.model_.coef_, rtol=1e-3)


def test_components_refuse_to_overspend_an_accountant():
    X = blobs()
    acc = BudgetAccountant(epsilon=0.5, delta=0)
    with pytest.raises(BudgetError):
        DPKMeans(3, epsilon=1.0, bounds=(0, 1), accountant=acc, random_state=0).fit(X)
    assert acc.spent_budget == []
    DPKMeans(3, epsilon=0.5, bounds=(0, 1), accountant=acc, random_state=0).fit(X)
    assert acc.total()[0] == pytest.approx(0.5)


def test_su_split_spends_the_iteration_budget_with_su_ratio():
    for d in (1, 5, 20):
        eps_count, eps_sum = su_split(0.7, d)
        assert eps_count + d * eps_sum == pytest.approx(0.7)
        assert eps_count / eps_sum == pytest.approx(np.cbrt(4 * d * 0.225**2))


# -- refusals ------------------------------------------------------------------------------------

@pytest.mark.parametrize("bad", [0, 0.0, -1.0, -math.inf, math.nan, "1", None, True])
def test_refuses_epsilon_that_is_no_budget(dp_split, bad):
    with pytest.raises(ValueError, match="epsilon"):
        fit_method(dp_split, epsilon=bad)
    with pytest.raises(ValueError, match="epsilon"):
        DPKMeans(3, epsilon=bad, bounds=(0, 1)).fit(blobs())
    with pytest.raises(ValueError, match="epsilon"):
        DPLogisticRegression(epsilon=bad, data_norm=1.0).fit(blobs(), np.arange(300) % 2)


def test_refuses_missing_bounds():
    X = blobs()
    with pytest.raises(ValueError, match="bounds is missing"):
        DPKMeans(3, epsilon=1.0).fit(X)
    with pytest.raises(ValueError, match="data_norm is missing"):
        DPLogisticRegression(epsilon=1.0).fit(X, np.arange(len(X)) % 2)
    with pytest.raises(ValueError, match="feature_bounds is missing"):
        DPMethod(feature_bounds=None).fit(X, np.arange(len(X)) % 2, X)
    with pytest.raises(ValueError, match="bounds"):
        DPKMeans(3, epsilon=1.0, bounds=(1, 0)).fit(X)


@pytest.mark.parametrize("param,value,match", [
    ("epsilon_split", 1.0, "epsilon_split"),
    ("prior_share", -0.1, "prior_share"),
    ("class_prior", 2.0, "class_prior"),
    ("lr_C", 0, "lr_C"),
    ("kmeans_iter", 0, "n_iter"),
    ("kmeans_init", "k-means++", "init"),
    ("kmeans_init_share", 1.0, "init_share"),
    ("kmeans_init_bins", 1, "init_bins"),
])
def test_bad_parameters_are_named(dp_split, param, value, match):
    with pytest.raises(ValueError, match=match):
        fit_method(dp_split, **{param: value})


def test_every_config_key_is_a_constructor_parameter():
    from omegaconf import OmegaConf

    cfg = OmegaConf.load("conf/method/dp.yaml")
    cfg.categorical = {"marital": ["single", "married"]}  # the interpolation needs a dataset
    m = build(cfg, n_clusters=4, random_state=0)
    assert isinstance(m, DPMethod) and m.epsilon == cfg.epsilon


def test_check_epsilon_accepts_infinity():
    assert check_epsilon(math.inf) == math.inf


# -- bounds are public ---------------------------------------------------------------------------

def test_dataset_overrides_put_every_column_in_unit_box_from_public_bounds(dp_split, make_dataset_config):
    import datasets

    assert DPMethod().dataset_overrides["scaling"] == "public" and DPMethod().dataset_overrides["clip"]
    assert dp_split.bounds.min() == 0.0 and dp_split.bounds.max() == 1.0
    for part in (dp_split.train, dp_split.test):
        assert part.X.min() >= 0.0 and part.X.max() <= 1.0
    # the scaling learned nothing: another sample of rows gives the very same preprocessing
    cfg = make_dataset_config("bank_full", subsample=500, **DPMethod().dataset_overrides)
    other = datasets.load(cfg, split_seed=3).preprocessor
    np.testing.assert_array_equal(other.mean_, dp_split.preprocessor.mean_)
    np.testing.assert_array_equal(other.scale_, dp_split.preprocessor.scale_)


def test_mechanism_calibration_does_not_depend_on_the_data():
    """Sensitivities and norms come from the stated bounds: an outlier far outside them changes
    nothing but its own (clipped) row."""
    X = blobs()
    X_out = X.copy()
    X_out[0] = [50.0, -30.0, 1e6]
    a = DPKMeans(3, epsilon=1.0, bounds=(0, 1), n_iter=3, random_state=0).fit(X)
    b = DPKMeans(3, epsilon=1.0, bounds=(0, 1), n_iter=3, random_state=0).fit(X_out)
    assert a.count_sensitivity_ == b.count_sensitivity_ == 2.0
    np.testing.assert_array_equal(a.sum_sensitivity_, b.sum_sensitivity_)
    assert b.cluster_centers_.min() >= 0.0 and b.cluster_centers_.max() <= 1.0
    lr = DPLogisticRegression(epsilon=1.0, data_norm=2.0)
    rows = lr._unit_rows(np.vstack([X, X_out[:1] * 1e3]))
    assert np.linalg.norm(rows, axis=1).max() <= 1.0 + 1e-12


def test_no_privacy_leak_warning_in_a_run(tmp_path):
    """The whole job, as ``python -m benchmarks.run method=dp`` runs it, warns nothing about leaks."""
    from hydra import compose, initialize_config_dir

    from benchmarks.run import run_job

    conf = str(Path(dp.__file__).resolve().parents[1] / "conf")
    with initialize_config_dir(config_dir=conf, version_base="1.3"):
        cfg = compose("config", overrides=["method=dp", "dataset.subsample=1500"])
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        record = run_job(cfg, tmp_path)
    assert not [w for w in caught if issubclass(w.category, PrivacyLeakWarning)]
    assert record["status"] == "ok"
    assert record["privacy"]["epsilon"] == pytest.approx(1.0)
    assert record["data"]["dataset_config"]["scaling"] == "public"


# -- the noise really added ----------------------------------------------------------------------

def laplace_epsilon(noise: np.ndarray, sensitivity: float) -> float:
    """ε implied by Laplace noise samples: the scale's estimate mean|noise| against the sensitivity."""
    return sensitivity / float(np.mean(np.abs(noise)))


def test_kmeans_noise_spends_the_claimed_epsilon(monkeypatch):
    """Capture the mechanism calls of a real fit, replay each one many times on fixed statistics and
    estimate the noise scale it adds; the ε those scales imply, with the sensitivities derived here
    from the bounds (2 for a count vector, the box width for a sum coordinate, 2 for a histogram),
    must add up to the accountant's total within 1%. 100,000 draws per mechanism: each scale is
    estimated within 0.32% (one standard error), the total within less."""
    calls = {"hist": [], "stats": []}
    real_hist, real_stats = dp.noisy_histogram, dp.noisy_cluster_stats
    monkeypatch.setattr(dp, "noisy_histogram", lambda c, e, r: calls["hist"].append(e) or real_hist(c, e, r))
    monkeypatch.setattr(dp, "noisy_cluster_stats",
                        lambda *a: calls["stats"].append(a[3:7]) or real_stats(*a))
    lower, upper = np.array([0.0, -1.0, 2.0]), np.array([1.0, 3.0, 2.5])
    X = lower + blobs(d=3) * (upper - lower)
    acc = BudgetAccountant(epsilon=0.8, delta=0)
    km = DPKMeans(3, epsilon=0.8, bounds=(lower, upper), n_iter=4, random_state=0, accountant=acc).fit(X)
    claimed = acc.total()[0]
    assert claimed == pytest.approx(0.8) and len(calls["stats"]) == km.n_iter_ == 4
    width = upper - lower

    rng = np.random.RandomState(1)
    samples = 100_000
    (eps_hist,) = calls["hist"]
    noise = real_hist(np.zeros(samples), eps_hist, rng)
    spent = laplace_epsilon(noise, 2.0)
    # one fixed assignment of 2,000 rows to 1,000 clusters; each replay yields 1,000 counts and sums
    Z = np.tile((X - (lower + upper) / 2)[:2], (1000, 1))
    labels = np.repeat(np.arange(1000), 2)
    for eps_count, eps_sum, count_sens, sum_sens in calls["stats"]:
        c_noise, s_noise = [], []
        for _ in range(samples // 1000):
            counts, sums, noisy_counts, noisy_sums = real_stats(Z, labels, 1000, eps_count, eps_sum,
                                                                count_sens, sum_sens, rng)
            c_noise.append(noisy_counts - counts)
            s_noise.append(noisy_sums - sums)
        s_noise = np.vstack(s_noise)
        spent += laplace_epsilon(np.concatenate(c_noise), 2.0)
        spent += sum(laplace_epsilon(s_noise[:, j], width[j]) for j in range(3))
    assert spent == pytest.approx(claimed, rel=0.01)


def test_diffprivlib_kmeans_split_would_fail_the_same_check():
    """The upstream split, noise as diffprivlib's KMeans adds it: counts get the sum share and each
    dimension's sum the count share, so at d = 20 it spends (1 + d c) / (d + c) of the request."""
    from diffprivlib.models import KMeans

    d, iters, eps = 20, 5, 1.0
    eps_0, eps_i = KMeans(epsilon=eps)._split_epsilon(d, iters)  # as _update_centers unpacks it
    # count sensitivity 1 and sum sensitivity 1 per dimension (diffprivlib's, on [0, 1] data)
    spent = iters * (eps_0 + d * eps_i)
    c = np.cbrt(4 * d * 0.225**2)
    assert spent == pytest.approx(eps * (1 + d * c) / (d + c))
    assert spent > 1.5 * eps  # far beyond the 1% tolerance: the swap is what the test above guards
    ours_count, ours_sum = su_split(eps / iters, d)
    assert iters * (ours_count + d * ours_sum) == pytest.approx(eps)


def test_logistic_regression_noise_spends_the_claimed_epsilon(monkeypatch):
    """Capture the vector mechanism diffprivlib builds inside a real fit, draw its noise vector many
    times and estimate ε' from the mean norm (‖b‖ ~ Gamma(dim, 2R/ε')): 150,000 degrees of freedom,
    a relative error of 0.26%. Add the Jacobian term
    2 log(1 + c R² C) computed here (c = 1/4, R = 1: the rows are mapped into the unit ball); the sum
    must equal the LR's claimed ε within 1%."""
    import diffprivlib.models.logistic_regression as dlr

    built = []

    class Spy(dlr.Vector):
        def __init__(self, **kw):
            built.append(kw)
            super().__init__(**kw)

    monkeypatch.setattr(dlr, "Vector", Spy)
    rng = np.random.default_rng(0)
    X = rng.uniform(0, 1, size=(400, 59))  # 60 noise coordinates with the intercept: fewer draws
    y = (X[:, 0] + rng.normal(0, 0.3, 400) > 0.5).astype(int)
    acc = BudgetAccountant(epsilon=0.7, delta=0)
    lr = DPLogisticRegression(epsilon=0.7, data_norm=math.sqrt(59), C=0.5, random_state=0, accountant=acc)
    lr.fit(X, y)
    claimed = acc.total()[0]
    (kw,) = built
    assert kw["data_sensitivity"] == 1.0 and kw["n"] == 400 and kw["dimension"] == 60
    assert np.linalg.norm(lr._unit_rows(X), axis=1).max() <= 1.0 + 1e-12

    dim, draws = kw["dimension"], 2_500  # the mean norm's relative error: 1 / sqrt(draws * dim)
    mech = dlr.Vector(**{**kw, "random_state": np.random.RandomState(1)})
    zero = np.zeros(dim)
    norms = np.empty(draws)
    for i in range(draws):
        _, grad = mech.randomise(lambda w: (0.0, np.zeros(dim)))(zero)
        norms[i] = np.linalg.norm(grad) * kw["n"]  # the noise term's gradient at w = 0 is b / n
    eps_noise = 2 * 1.0 * dim / norms.mean()
    spent = eps_noise + jacobian_epsilon(lr.C, curvature=0.25, row_norm=1.0)
    assert spent == pytest.approx(claimed, rel=0.01)


def test_unseeded_noise_comes_from_system_random():
    noisy = dp.laplace_noise(np.zeros((3, 2)), 1.0, 1.0, None)
    assert noisy.shape == (3, 2) and np.isfinite(noisy).all() and np.unique(noisy).size == 6
    m = DPMethod(random_state=None)
    assert m._streams(3) == [None, None, None]
    a, b = DPMethod(random_state=7)._streams(2)
    assert a.random_sample() != b.random_sample()
