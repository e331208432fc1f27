"""The questions' answers: k criteria on blobs with a known best k, campaign metrics against a hand
computation, the HE gap decomposition adding up, and the report sections built from a table."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from benchmarks import _questions as Q
from benchmarks import metrics
from benchmarks._doc import Doc
from methods.plaintext import PlaintextMethod

# four blobs on the corners of a square; the lowest and highest subscription rates sit on a diagonal,
# so any merge of two neighbouring blobs narrows the spread of conversion rates
CORNERS = np.array([[0.0, 0.0], [10.0, 0.0], [0.0, 10.0], [10.0, 10.0]])
POSITIVES_OF_8 = [1, 2, 4, 6]  # of every point's 8 copies: rates 1/8, 1/4, 1/2, 3/4 (exact in binary)


def _blobs(points_per_blob: int, seed: int):
    rng = np.random.default_rng(seed)
    X, y = [], []
    for center, pos in zip(CORNERS, POSITIVES_OF_8, strict=True):
        pts = center + 0.5 * rng.normal(size=(points_per_blob, 2))
        for p in pts:  # each point 8 times: any segment made of whole points keeps its blob's rate
            X += [p] * 8
            y += [1] * pos + [0] * (8 - pos)
    X, y = np.array(X), np.array(y)
    # one constant model feature: the predictor knows the blobs only through the segments, and
    # splitting a blob into segments of the same rate leaves the AUC as it is
    return X, y, np.zeros((len(y), 1))


class _Part:
    def __init__(self, X, y, S):
        self.X, self.y, self.X_segment = X, y, S


@pytest.fixture(scope="module")
def blob_rows():
    """Rows like collect's, from real plaintext fits on the blobs: k = 2..6, seeds 0-2, with and
    without segments."""
    X, y, noise = _blobs(30, seed=7)
    Xt, yt, noise_t = _blobs(20, seed=8)
    rows = []
    for seed in range(3):
        for k in range(2, 7):
            for seg in (True, False):
                if not seg and k != 4:
                    continue
                m = PlaintextMethod(n_clusters=k, random_state=seed, segments_in_predictor=seg)
                m.fit(noise, y, X)
                labels = m.segment(Xt)
                s = metrics.segmentation(X, Xt, labels, m.cluster_centers_, yt, silhouette_sample=400, seed=0)
                c = metrics.classification(yt, m.predict_proba(noise_t, Xt)[:, 1])
                rows.append({"method": "plaintext", "k": k, "seed": seed, "split_seed": 0, "status": "ok",
                             "n_test": len(yt), "method.segments_in_predictor": seg,
                             **{key: s[key] for key in ("inertia_test", "silhouette", "calinski_harabasz",
                                                        "davies_bouldin", "lift_spread")},
                             "auc": c["auc"], "pr_auc": c["pr_auc"]})
    return pd.DataFrame(rows)


def test_every_k_criterion_finds_the_four_blobs(blob_rows):
    table, verdicts = Q.best_k_table(blob_rows)
    best = dict(zip(table["Criterion"], table["Best k"], strict=True))
    assert set(best) == {"Inertia elbow (knee)", "Silhouette", "Calinski–Harabasz", "Davies–Bouldin",
                         "Conversion spread (max/min)", "AUC gained from segments"}
    assert all(k == 4 for k in best.values()), best
    assert all(v["is_4"] for v in verdicts)
    assert "k = 4 is supported" in Q.k4_sentence("blobs", verdicts)
    # the spread at k = 4 is the blobs' own: (3/4) / (1/8)
    four = blob_rows[(blob_rows["k"] == 4) & blob_rows["method.segments_in_predictor"]]
    assert four["lift_spread"].tolist() == pytest.approx([6.0] * 3)


def test_knee_rule_and_ties():
    assert Q.knee([2, 3, 4, 5, 6], [100, 50, 5, 4, 3]) == 4
    assert Q.knee([2, 3, 4, 5, 6], [100, 10, 8, 6, 4]) == 3
    assert Q.knee([2, 3], [2, 1]) is None
    # a k whose paired difference to the best has an interval containing 0 is not distinguishable
    rows = pd.DataFrame({"k": [2, 3, 4] * 3, "seed": [0] * 3 + [1] * 3 + [2] * 3,
                         "s": [0.1, 0.50, 0.52, 0.2, 0.53, 0.51, 0.15, 0.49, 0.50]})
    res = Q.best_k(rows, "s", +1)
    assert res["best"] == 4 and res["tied"] == [3, 4] and res["per_seed"] == [4, 3, 4]
    assert Q.best_k(rows, "s", -1)["best"] == 2
    assert "not supported" in Q.k4_sentence("x", [{"best": 3, "is_4": False, "supports_4": False}] * 2
                                            + [{"best": 4, "is_4": True, "supports_4": True}])


def test_targeting_by_hand():
    # 20 customers, 4 subscribers; scores from high to low with one tie kept in row order
    y = np.array([1, 0, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0])
    p = np.array([.9, .8, .8, .7, .6, .5, .45, .4, .35, .3, .25, .2, .15, .1, .09, .08, .07, .06, .05, .01])
    out = metrics.targeting(y, p, shares=(0.05, 0.10, 0.20), cost_per_call=2.0, value_per_subscription=10.0,
                            gains_points=5)
    # top 5 % = 1 customer (a hit); 10 % = 2 (1 hit: the tie at .8 keeps row 1 before row 2);
    # 20 % = 4 (2 hits); base rate 4/20
    assert out["lift_top5"] == pytest.approx((1 / 1) / 0.2)
    assert out["lift_top10"] == pytest.approx((1 / 2) / 0.2)
    assert out["lift_top20"] == pytest.approx((2 / 4) / 0.2)
    assert out["capture_top5"] == pytest.approx(1 / 4)
    assert out["capture_top10"] == pytest.approx(1 / 4)
    assert out["capture_top20"] == pytest.approx(2 / 4)
    # profit per 1,000 customers: (10 * hits - 2 * calls) * 1000 / 20
    assert out["profit_top10"] == pytest.approx((10 * 1 - 2 * 2) * 50)
    assert out["profit_top20"] == pytest.approx((10 * 2 - 2 * 4) * 50)
    # gains at 0, 25, 50, 75, 100 % called: 0, 5 rows (2 hits), 10 (3), 15 (4), 20 (4)
    assert out["gains"] == {"contacted": [0.0, 0.25, 0.5, 0.75, 1.0], "captured": [0.0, 0.5, 0.75, 1.0, 1.0]}
    profits = [0, (20 - 10) * 50, (30 - 20) * 50, (40 - 30) * 50, (40 - 40) * 50]
    assert out["profit_best"] == pytest.approx(max(profits)) and out["profit_best_share"] == 0.25
    with pytest.raises(ValueError, match="subscriber"):
        metrics.targeting(np.zeros(5), np.linspace(0, 1, 5))


def test_he_gap_parts_add_up_to_the_total():
    rows = []
    for seed, (plain, twins, he) in enumerate([(0.70, (0.70, 0.71, 0.69, 0.68), 0.679),
                                                (0.72, (0.7201, 0.7301, 0.70, 0.705), 0.70)]):
        base = {"k": 4, "seed": seed, "split_seed": 0, "method.segments_in_predictor": True}
        rows.append({**base, "method": "plaintext", "auc": plain})
        rows.append({**base, "method": "he", "auc": he,
                     **dict(zip(["he_gap.sklearn_plain", "he_gap.sklearn_weighted", "he_gap.gd_plain",
                                 "he_gap.gd_he"], twins, strict=True))})
    table, note = Q.he_gap_table(pd.DataFrame(rows))
    values = dict(zip(table["Part"], table["Δ AUC"], strict=True))
    assert values["total gap: HE − plaintext"].startswith("-0.0205")
    assert values["class weighting (balanced vs none, scikit-learn)"].startswith("0.0100")
    assert values["encryption noise (HE vs identical GD)"].startswith("-0.0030")
    assert values["total − sum (per seed, largest |·|)"] == "0.0001"
    assert "add up" in note and "NOT" not in note


def test_sections_and_gains_figure_from_a_table(blob_rows, tmp_path):
    rows = blob_rows.assign(dataset="bank_full", **{"dataset.include_duration": False,
                                                     "dataset.subsample": None}, n_train=100)
    rows["lift_top10"] = 2.0 + rows["seed"] * 0.1
    rows["gains"] = json.dumps({"contacted": [0, 0.5, 1], "captured": [0, 0.8, 1]})
    doc = Doc()
    Q.sections(doc, rows)
    text = doc.markdown(tmp_path)
    assert "Which k" in text and "k = 4 is supported" in text
    assert "What the segments add to the predictor" in text and "Δ AUC" in text
    assert "Campaign targeting" in text and "Lift@10%" in text
    figs = Q.figures(rows, tmp_path)
    assert [f.kind for f in figs] == ["gains"] and (tmp_path / f"{figs[0].name}.png").stat().st_size > 1000


@pytest.mark.parametrize("override, message", [
    ("targeting.shares=[0.1,1.5]", r"targeting\.shares=\[0\.1, 1\.5\]; expected a non-empty list of fractions"),
    ("targeting.cost_per_call=-1", r"targeting\.cost_per_call=-1\.0; expected a finite amount >= 0"),
    ("targeting.gains_points=1", r"targeting\.gains_points=1; expected an integer >= 2"),
])
def test_targeting_refusals(override, message):
    from hydra import compose, initialize_config_dir

    from benchmarks import config_check
    from benchmarks.config import ConfigError

    from .conftest import REPO

    with initialize_config_dir(config_dir=str(REPO / "conf"), version_base="1.3"):
        cfg = compose("config", overrides=[override], return_hydra_config=True)
    with pytest.raises(ConfigError, match=message):
        config_check.check(cfg, cfg.hydra.runtime.choices)
