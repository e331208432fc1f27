"""The report's answers to three questions, from stored records only: which k, what the segments add
to the predictor, how well each method ranks customers for a campaign; and where the encrypted
pipeline loses AUC. :func:`sections` writes them into a report document, :func:`figures` draws the
gains chart of each data setting.

Rules (stated in the report too):

- **Best k by criterion**, per method over the k-sweep's runs with segments: the k with the best mean
  over seeds (silhouette, Calinski–Harabasz, conversion-rate spread and AUC gained from the segments:
  highest; Davies–Bouldin: lowest; equal means, to 12 decimals: the smallest k); the inertia
  elbow is the knee of the mean test-inertia curve, the k
  farthest below the chord from the first to the last point once k and inertia are scaled to [0, 1]
  (the Kneedle rule of Satopää et al. 2011, without smoothing). A k is *not distinguishable from the
  best* when the 95% t-interval of its paired (same seed) difference to the best k contains 0; for the
  elbow, when some seed's own curve has its knee there.
- **AUC gained from the segments** at k: the run's AUC minus the AUC of the same method and seed
  without segments (``method.segments_in_predictor=false``); without segments the predictor does not
  depend on k, so one run per seed (any k; k = 4 in the questions experiment) is the baseline.
- **Is k = 4 supported** on a data set, over every (method, criterion) pair with a verdict: *supported*
  when more than half have k = 4 as their best k; *not singled out* when more than half have it best
  or not distinguishable from the best; *not supported* otherwise.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd

from benchmarks import _analysis as A
from benchmarks._doc import Doc, fmt_ci

#: (column, label, direction): +1 higher is better, -1 lower is better; the elbow is separate
CRITERIA = [("silhouette", "Silhouette", +1), ("calinski_harabasz", "Calinski–Harabasz", +1),
            ("davies_bouldin", "Davies–Bouldin", -1), ("lift_spread", "Conversion spread (max/min)", +1),
            ("auc_gain", "AUC gained from segments", +1)]
ELBOW = ("inertia_test", "Inertia elbow (knee)")
TARGETING = [("lift_top5", "Lift@5%"), ("lift_top10", "Lift@10%"), ("lift_top20", "Lift@20%"),
             ("capture_top5", "Capture@5%"), ("capture_top10", "Capture@10%"),
             ("capture_top20", "Capture@20%"), ("profit_top10", "Profit@10% /1000"),
             ("profit_best", "Best profit /1000"), ("profit_best_share", "Best share called")]
TOLERANCE = 0.002  # the HE gap decomposition must add up to the total within this (AUC)


# -- selecting rows ---------------------------------------------------------------------------------
def with_segments(rows: pd.DataFrame) -> pd.Series:
    """True for runs whose predictor saw the segments (records before the option: true)."""
    col = rows.get("method.segments_in_predictor")
    if col is None:
        return pd.Series(True, index=rows.index)
    return col.map(lambda v: True if v is None or (isinstance(v, float) and v != v) else bool(v))


def _num(rows: pd.DataFrame, col: str) -> pd.Series:
    if col not in rows:
        return pd.Series(np.nan, index=rows.index)
    return pd.to_numeric(rows[col], errors="coerce")


KEYS = ["method", "seed", "split_seed"]


def add_auc_gain(rows: pd.DataFrame) -> pd.DataFrame:
    """``auc_gain`` (and ``pr_auc_gain``) of each run with segments: minus its method's and seed's
    run without segments (the largest k when there are several; they do not depend on k)."""
    rows = rows.copy()
    seg = with_segments(rows)
    base = rows[~seg].sort_values("k").drop_duplicates(KEYS, keep="last")
    for col in ("auc", "pr_auc"):
        ref = base.set_index(KEYS)[col] if not base.empty else pd.Series(dtype=float)
        idx = pd.MultiIndex.from_frame(rows[KEYS])
        rows[f"{col}_gain"] = np.where(seg, _num(rows, col).to_numpy() - ref.reindex(idx).to_numpy(float),
                                       np.nan) if not base.empty else np.nan
    return rows


# -- which k ----------------------------------------------------------------------------------------
def knee(ks, values) -> int | None:
    """The knee of a decreasing curve (see the module docstring); None with fewer than 3 points."""
    ks = np.asarray(ks, float)
    v = np.asarray(values, float)
    keep = np.isfinite(v)
    ks, v = ks[keep], v[keep]
    if len(ks) < 3 or v.max() == v.min():
        return None
    order = np.argsort(ks)
    ks, v = ks[order], v[order]
    x = (ks - ks[0]) / (ks[-1] - ks[0])
    y = (v - v.min()) / (v.max() - v.min())
    chord = y[0] + (y[-1] - y[0]) * x
    return int(ks[int(np.argmax(chord - y))])


def best_k(rows: pd.DataFrame, col: str, direction: int) -> dict | None:
    """Best k of one criterion for one method's runs (columns k, seed, ``col``): the k, the mean ± CI
    at it and at k = 4, and the ks not distinguishable from it (paired by seed)."""
    data = rows.assign(_v=_num(rows, col))[["k", "seed", "_v"]].dropna()
    if data["k"].nunique() < 3:
        return None
    wide = data.pivot_table(index="seed", columns="k", values="_v", aggfunc="mean")
    means = wide.mean().round(12)  # equal up to rounding: the smallest k wins
    best = int(means.idxmax() if direction > 0 else means.idxmin())
    tied = []
    for k in wide.columns:
        diff = (wide[k] - wide[best]).dropna()
        mean, half, n = A.mean_ci(diff)
        if (int(k) == best or (n >= 2 and half == half and abs(mean) <= half)
                or (n >= 1 and np.allclose(diff, 0))):
            tied.append(int(k))
    per_seed = [int(r.round(12).idxmax() if direction > 0 else r.round(12).idxmin())
                for _, r in wide.iterrows() if r.notna().any()]
    return {"best": best, "at_best": A.mean_ci(wide[best])[:2],
            "at_4": A.mean_ci(wide[4])[:2] if 4 in wide.columns else (math.nan, math.nan),
            "tied": sorted(tied), "per_seed": per_seed}


def elbow(rows: pd.DataFrame) -> dict | None:
    data = rows.assign(_v=_num(rows, ELBOW[0]))[["k", "seed", "_v"]].dropna()
    if data["k"].nunique() < 3:
        return None
    wide = data.pivot_table(index="seed", columns="k", values="_v", aggfunc="mean")
    best = knee(wide.columns, wide.mean().to_numpy())
    if best is None:
        return None
    per_seed = [k for k in (knee(wide.columns, r.to_numpy()) for _, r in wide.iterrows()) if k is not None]
    return {"best": best, "at_best": A.mean_ci(wide[best])[:2],
            "at_4": A.mean_ci(wide[4])[:2] if 4 in wide.columns else (math.nan, math.nan),
            "tied": sorted({best, *per_seed}), "per_seed": per_seed}


def _ks(ks) -> str:
    return ", ".join(str(k) for k in ks) if ks else "—"


def _digits(col: str) -> int:
    return 1 if col in ("calinski_harabasz", "inertia_test") else 3


def best_k_table(rows: pd.DataFrame) -> tuple[pd.DataFrame, list[dict]]:
    """One row per (method, criterion); and the verdicts the data-set sentence is made of."""
    rows = add_auc_gain(rows)
    rows = rows[with_segments(rows)]
    out, verdicts = [], []
    for method in sorted(rows["method"].unique(), key=A.method_sort_key):
        r = rows[rows["method"] == method]
        found = [(ELBOW[0], ELBOW[1], elbow(r))] + [(c, label, best_k(r, c, d)) for c, label, d in CRITERIA]
        for col, label, res in found:
            if res is None:
                continue
            digits = _digits(col)
            per_row = col == "inertia_test" and r["n_test"].notna().any()
            scale = 1 / r["n_test"].dropna().iloc[0] if per_row else 1
            out.append({"Method": A.method_name(method, r.iloc[0]), "Criterion": label,
                        "Best k": res["best"],
                        "At best k": fmt_ci(*res["at_best"], digits, scale),
                        "At k = 4": fmt_ci(*res["at_4"], digits, scale),
                        "Not distinguishable from best": _ks(res["tied"]),
                        "Best k per seed": _ks(res["per_seed"])})
            verdicts.append({"method": method, "criterion": label, "best": res["best"],
                             "supports_4": 4 in res["tied"], "is_4": res["best"] == 4})
    return pd.DataFrame(out), verdicts


def k4_sentence(setting: str, verdicts: list[dict]) -> str:
    """One sentence: is k = 4 supported on this data setting? (rule in the module docstring)"""
    if not verdicts:
        return f"{setting}: no k-sweep (at least three values of k) to judge k = 4 by."
    n = len(verdicts)
    best = sum(v["is_4"] for v in verdicts)
    tied = sum(v["supports_4"] and not v["is_4"] for v in verdicts)
    picks: dict[int, int] = {}
    for v in verdicts:
        picks[v["best"]] = picks.get(v["best"], 0) + 1
    common = ", ".join(f"k = {k} ({c})" for k, c in sorted(picks.items(), key=lambda kv: (-kv[1], kv[0])))
    if best > n / 2:
        verdict = "k = 4 is supported"
    elif best + tied > n / 2:
        verdict = "k = 4 is not singled out (consistent with the data, not preferred by it)"
    else:
        verdict = "k = 4 is not supported"
    return (f"{setting}: {verdict} — it is the best k for {best} of {n} (method, criterion) pairs and not "
            f"distinguishable from the best for {tied} more ({best + tied} of {n}); the best k chosen: "
            f"{common}.")


# -- what the segments add ------------------------------------------------------------------------
def segments_table(rows: pd.DataFrame) -> tuple[pd.DataFrame, list[str]]:
    """Paired with − without segments (same method, seed and split) at the setting's main k."""
    seg = with_segments(rows)
    if seg.all() or not (~seg).any():
        return pd.DataFrame(), []
    without = rows[~seg].sort_values("k").drop_duplicates(KEYS, keep="last")
    k = A.main_k(rows[seg]) if seg.any() else None
    withs = rows[seg & (rows["k"] == k)]
    merged = withs.merge(without, on=KEYS, suffixes=("", "_without"))
    out, notes = [], []
    for method in sorted(merged["method"].unique(), key=A.method_sort_key):
        m = merged[merged["method"] == method]
        line = {"Method": A.method_name(method, m.iloc[0]), "Paired seeds": len(m),
                "AUC with": fmt_ci(*A.mean_ci(m["auc"])[:2]),
                "AUC without": fmt_ci(*A.mean_ci(m["auc_without"])[:2])}
        verdict = None
        for col, label in (("auc", "Δ AUC"), ("pr_auc", "Δ PR-AUC"), ("lift_top10", "Δ Lift@10%")):
            if col not in m or f"{col}_without" not in m:
                continue
            diff = _num(m, col) - _num(m, f"{col}_without")
            mean, half, n = A.mean_ci(diff)
            ci = f" ± {half:.4f}" if half == half else ""
            line[label] = "—" if mean != mean else f"{mean:+.4f}{ci}"
            if col == "auc" and n:
                if half == half and mean - half > 0:
                    verdict = (f"segments raise its AUC by {mean:+.4f} (95% CI {mean - half:+.4f} to "
                               f"{mean + half:+.4f})")
                elif half == half and mean + half < 0:
                    verdict = (f"segments lower its AUC: {mean:+.4f} (95% CI {mean - half:+.4f} to "
                               f"{mean + half:+.4f}); they add nothing to prediction")
                else:
                    verdict = (f"segments add nothing measurable to prediction: Δ AUC {mean:+.4f}"
                               + (f" (95% CI {mean - half:+.4f} to {mean + half:+.4f} includes 0)"
                                  if half == half else f" ({n} seed)"))
        out.append(line)
        if verdict:
            notes.append(f"{line['Method']}: {verdict}.")
    return pd.DataFrame(out), notes


# -- campaign targeting -----------------------------------------------------------------------------
def targeting_table(rows: pd.DataFrame) -> pd.DataFrame:
    present = [(c, label) for c, label in TARGETING if c in rows and _num(rows, c).notna().any()]
    if not present:
        return pd.DataFrame()
    out = []
    for v in A.variant_order(rows):
        r = rows[rows["variant"] == v]
        line = {"Method": r["variant_label"].iloc[0], "Seeds": len(r),
                "AUC": fmt_ci(*A.mean_ci(r["auc"])[:2])}
        for col, label in present:
            digits = 0 if col.startswith("profit_top") or col == "profit_best" else 2
            line[label] = fmt_ci(*A.mean_ci(_num(r, col))[:2], digits)
        out.append(line)
    return pd.DataFrame(out)


def economics(rows: pd.DataFrame) -> str:
    cost = _num(rows, "targeting.cost_per_call") if "targeting.cost_per_call" in rows else None
    if cost is not None and cost.notna().any():
        c, v = cost.dropna().iloc[0], _num(rows, "targeting.value_per_subscription").dropna().iloc[0]
        return f"a call costs {c:g} and a subscription is worth {v:g}"
    return "the economics of the runs' targeting config"


# -- where HE loses ---------------------------------------------------------------------------------
PARTS = [("class weighting (balanced vs none, scikit-learn)", "he_gap.sklearn_weighted",
          "he_gap.sklearn_plain"),
         ("sigmoid polynomial + fixed schedule (identical GD vs scikit-learn)", "he_gap.gd_plain",
          "he_gap.sklearn_weighted"),
         ("encrypted segmentation (HE vs plaintext segments, same GD)", "he_gap.gd_he", "he_gap.gd_plain"),
         ("encryption noise (HE vs identical GD)", "auc", "he_gap.gd_he")]


def he_gap_table(rows: pd.DataFrame) -> tuple[pd.DataFrame, str]:
    """The HE − plaintext AUC gap and its parts, paired by seed at the main k (runs with segments)."""
    if "he_gap.gd_he" not in rows:
        return pd.DataFrame(), ""
    seg = with_segments(rows)
    k = A.main_k(rows[seg])
    he = rows[seg & (rows["method"] == "he") & (rows["k"] == k) & _num(rows, "he_gap.gd_he").notna()]
    plain = rows[seg & (rows["method"] == "plaintext") & (rows["k"] == k)]
    if he.empty:
        return pd.DataFrame(), ""
    m = he.merge(plain[["seed", "split_seed", "auc"]], on=["seed", "split_seed"], suffixes=("", "_plain"))
    if m.empty:
        return pd.DataFrame(), "No plaintext run with the HE runs' seeds: the total gap cannot be formed."
    total = _num(m, "auc") - _num(m, "auc_plain")
    parts = {label: _num(m, a) - _num(m, b) for label, a, b in PARTS}
    summed = sum(parts.values())
    residual = total - summed
    out = [{"Part": "total gap: HE − plaintext", "Δ AUC": fmt_ci(*A.mean_ci(total)[:2], 4)}]
    out += [{"Part": label, "Δ AUC": fmt_ci(*A.mean_ci(d)[:2], 4)} for label, d in parts.items()]
    out.append({"Part": "sum of the parts", "Δ AUC": fmt_ci(*A.mean_ci(summed)[:2], 4)})
    out.append({"Part": "total − sum (per seed, largest |·|)", "Δ AUC": f"{float(residual.abs().max()):.4f}"})
    worst = float(residual.abs().max())
    verdict = "add up" if worst <= TOLERANCE else "do NOT add up"
    note = (f"k = {k}, {len(m)} paired seed(s). The parts {verdict} "
            f"to the total within {TOLERANCE} AUC (largest per-seed difference {worst:.4f}: the harness's "
            "scikit-learn twin against the plaintext run's own model).")
    return pd.DataFrame(out), note


# -- report sections --------------------------------------------------------------------------------
def sections(doc: Doc, ok: pd.DataFrame) -> None:
    """The questions' sections of the report, per data setting (nothing when the table lacks what a
    section needs)."""
    if ok.empty:
        return
    for setting, slug, rows in A.settings(ok, with_subsample=False):
        rows = A.largest_n(rows)
        k_table, verdicts = best_k_table(rows)
        seg_table, seg_notes = segments_table(rows)
        seg = rows[with_segments(rows)]
        main = A.add_variants(seg[seg["k"] == A.main_k(seg)]) if not seg.empty else seg
        tgt = targeting_table(main) if not main.empty else pd.DataFrame()
        gap, gap_note = he_gap_table(rows)
        if k_table.empty and seg_table.empty and tgt.empty and gap.empty:
            continue
        doc.h(2, f"Questions: {setting}")
        if not k_table.empty:
            doc.h(3, "Which k")
            doc.p(k4_sentence(setting, verdicts))
            doc.p("Best k by each criterion, per method, over the k-sweep's runs with segments (test split; "
                  "silhouette, Calinski–Harabasz and Davies–Bouldin on the same fixed sample of test rows "
                  "for every method, each in its method's segment-feature space). Mean ± 95% t-interval over "
                  "seeds at the best k and at k = 4 (inertia elbow: test inertia per test row). A k is not "
                  "distinguishable from the best when the 95% interval of its paired difference to the "
                  "best k contains 0 (elbow: when a seed's own curve has its knee there). The elbow is the "
                  "knee of the mean inertia curve: the k farthest below the chord from first to last point "
                  "with k and inertia scaled to [0, 1] (Kneedle, Satopää et al. 2011). AUC gained: the run's "
                  "AUC minus the same seed's run without segments. k = 4 is supported when more than half "
                  "of the (method, criterion) pairs have it as their best k, not singled out when more than "
                  "half have it best or not distinguishable from the best, not supported otherwise.")
            doc.table(k_table)
        if not seg_table.empty:
            doc.h(3, "What the segments add to the predictor")
            doc.p("Paired differences with − without the segment one-hots in the predictor "
                  "(method.segments_in_predictor), same method, seed and split; mean ± 95% CI. "
                  + " ".join(seg_notes))
            doc.table(seg_table)
        if not tgt.empty:
            doc.h(3, "Campaign targeting")
            doc.p("Customers ranked by predicted probability, the way a campaign calls them: lift = "
                  "subscription rate in the top x % / overall rate, capture = share of all subscribers "
                  f"reached there; profit per 1,000 customers of the base when {economics(rows)} "
                  "(illustrative economics, conf/config.yaml `targeting`). Mean ± 95% CI over seeds; "
                  f"the gains chart of every method is the figure gains_{slug}_k{A.main_k(seg)}.")
            doc.table(tgt)
        if not gap.empty:
            doc.h(3, "Where the encrypted pipeline loses AUC")
            doc.p("The HE − plaintext AUC gap split into its parts by the encrypted predictor's plaintext "
                  "twins, which each HE job trains on its own training rows (metrics.he_gap): each part "
                  "changes one thing, so the parts add up to the total. Mean ± 95% CI over seeds. "
                  + gap_note)
            doc.table(gap)
        elif gap_note:
            doc.p(gap_note)


# -- the gains figure -------------------------------------------------------------------------------
def _curve(blob) -> tuple[np.ndarray, np.ndarray] | None:
    try:
        g = json.loads(blob) if isinstance(blob, str) else None
        return np.asarray(g["contacted"], float), np.asarray(g["captured"], float)
    except (TypeError, ValueError, KeyError):
        return None


def gains(rows: pd.DataFrame, setting: str, slug: str, out_dir):
    """Cumulative gains of every method at the main k (runs with segments), mean over seeds."""
    from benchmarks import _style as S
    from benchmarks import figures as F

    if "gains" not in rows:
        return []
    rows = rows[with_segments(rows) & rows["gains"].notna()]
    if rows.empty:
        return []
    k = A.main_k(rows)
    rows = A.add_variants(rows[rows["k"] == k])
    fig, ax = S.new_figure("column", S.HEIGHT)
    variants = A.variant_order(rows)
    sty = A.styles(variants)
    seeds = []
    for v in variants:
        curves = [c for c in map(_curve, rows.loc[rows["variant"] == v, "gains"]) if c is not None]
        if not curves or any(len(c[0]) != len(curves[0][0]) for c in curves):
            continue
        seeds.append(len(curves))
        x = curves[0][0]
        y = np.mean([c[1] for c in curves], axis=0)
        label = rows.loc[rows["variant"] == v, "variant_label"].iloc[0]
        (line,) = ax.plot(x * 100, y * 100, color=sty[v]["color"], linestyle=sty[v]["linestyle"],
                          label=label)
        S.series(fig, [line], label)
        at = [i for i, share in enumerate(x) if round(share * 100) in (5, 10, 20, 50)]
        S.hit_points(ax, x[at] * 100, y[at] * 100,
                     [f"{label}: {y[i] * 100:.1f} % of subscribers in the top {x[i] * 100:.0f} %"
                      for i in at],
                     label)
    if not seeds:
        import matplotlib.pyplot as plt

        plt.close(fig)
        return []
    ax.plot([0, 100], [0, 100], color="grey", linewidth=0.8, linestyle=":", label="random calling")
    for share in (5, 10, 20):
        ax.axvline(share, color="#bbbbbb", linewidth=0.5)
    ax.set_xlabel("customers called, highest score first (%)")
    ax.set_ylabel("subscribers reached (%)")
    ax.set_xlim(0, 100)
    ax.set_ylim(0, 100)
    ax.legend(frameon=False, loc="lower right")
    name = f"gains_{slug}_k{k}"
    caption = (f"Cumulative gains at k = {k}, {setting}: share of all test-split subscribers reached when "
               "calling the given share of customers in order of predicted probability, mean over seeds "
               f"({min(seeds)}–{max(seeds)} per method); dotted: random calling; thin lines at 5, 10 and "
               "20 %.")
    return [F.figure(fig, out_dir, name, "gains", setting, caption)]


def figures(rows: pd.DataFrame, out_dir) -> list:
    """The questions' figures of every data setting (called inside :func:`benchmarks.figures.make_all`)."""
    made = []
    for setting, slug, r in A.settings(rows, with_subsample=False):
        made += gains(A.largest_n(r), setting, slug, out_dir)
    return made
