"""Paper figures from a results table, never from re-running a method.

    uv run python -m benchmarks.figures results/sweeps/k_sweep/<stamp>/results.parquet [-o DIR]

Each figure is drawn when the table holds what it needs, once per data setting (dataset, duration
on/off, subsample), as PDF, PNG (300 dpi) and SVG (for the HTML report: hover values, clickable
legends) in ``DIR`` (default: ``figures/`` beside the table):

- ``k_sweep_*``: AUC, precision, recall, silhouette and training time vs k (>= 2 values of k);
- ``privacy_utility_*``: AUC vs epsilon with plaintext and HE as reference lines (runs with an epsilon);
- ``scaling_*``: training time, bytes exchanged and peak RSS vs training rows, log-log, with each
  series' fitted growth exponent (>= 2 training-set sizes);
- ``comparison_*``: classification metrics per method at k = 4 (or the most common k);
- ``costs_*``: fit time by phase (start-up apart), CPU time by party and bytes sent by party at that k;
- ``leakage_roc_*``: membership-inference ROC per method at that k (runs with measured leakage).

Every figure is 3.5 in (one column) or 7.1 in (full width) wide, in one font, with one palette per
meaning (methods, phases, parties): :mod:`benchmarks._style`, which other figure modules use too.
Fit times are shown as training time, engine start-up (Ray, services; ``costs.startup_s``) apart
from it; records without the split count their whole fit time as training.

Points are means over seeds with 95% t-intervals. Timings of jobs run concurrently are marked
(hollow markers, "parallel" in the caption): they are not comparable with sequential ones.
``index.json`` lists every figure with its caption and size (the report reads it). Other figure
modules add a builder ``fn(rows, setting, slug, out_dir) -> list[Figure]`` to :data:`PER_SETTING`.
"""

from __future__ import annotations

import json
import math
import sys
from dataclasses import asdict, dataclass
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter  # noqa: E402

from benchmarks import _analysis as A  # noqa: E402
from benchmarks import _network_costs  # noqa: E402
from benchmarks import _style as S  # noqa: E402
from benchmarks.collect import ROC, table_command  # noqa: E402
from methods._util import write_atomic  # noqa: E402

COLUMN_W, TEXT_W, RC = S.COLUMN_W, S.TEXT_W, S.RC


@dataclass
class Figure:
    name: str
    kind: str
    setting: str
    caption: str
    pdf: str
    png: str
    svg: str = ""
    width_in: float = 0.0
    height_in: float = 0.0


def figure(fig, out_dir: Path, name: str, kind: str, setting: str, caption: str) -> Figure:
    """Save ``fig`` (:func:`benchmarks._style.save`) and describe it for the index and the report."""
    saved = S.save(fig, out_dir, name)
    return Figure(name, kind, setting, caption, saved["pdf"], saved["png"], saved["svg"],
                  saved["width_in"], saved["height_in"])


def _series(rows: pd.DataFrame, x: str, y: str) -> pd.DataFrame:
    """Mean and 95% CI of ``y`` per value of ``x`` (over seeds), plus whether any timing is parallel."""
    out = []
    for xv, g in rows.groupby(x):
        mean, half, n = A.mean_ci(g[y])
        out.append({"x": xv, "mean": mean, "half": half, "n": n, "parallel": bool(g["parallel"].any())})
    return pd.DataFrame(out).sort_values("x") if out else pd.DataFrame(columns=["x", "mean", "half", "n"])


def _value(mean: float, half: float, unit: str = "") -> str:
    text = f"{mean:.4g}" + ("" if half != half else f" ± {half:.2g}")
    return text + (f" {unit}" if unit else "")


def _line(ax, s: pd.DataFrame, st: dict, label: str, timing: bool = False, what: str = "",
          xname: str = "x", unit: str = "") -> None:
    """Means with their intervals, one series of the legend; each point's values on hover."""
    s = s[np.isfinite(s["mean"].astype(float))]
    if s.empty:
        return
    hollow = timing and s["parallel"].any()
    yerr = s["half"].where(s["half"].notna(), 0).to_numpy(float)
    x, y = s["x"].to_numpy(float), s["mean"].to_numpy(float)
    bars = ax.errorbar(x, y, yerr=yerr, label=label, color=st["color"], marker=st["marker"],
                       linestyle=st["linestyle"], capsize=2,
                       markerfacecolor="white" if hollow else st["color"], elinewidth=0.8)
    S.series(ax.figure, bars, label)
    tips = [f"{label}, {xname} = {_fmt_x(xv)}: {what} {_value(m, h, unit)} (n = {n})"
            for xv, m, h, n in zip(s["x"], s["mean"], s["half"], s["n"], strict=True)]
    S.hit_points(ax, x, y, tips, label)


def _fmt_x(v) -> str:
    v = float(v)
    return f"{v:,.0f}" if v.is_integer() else f"{v:g}"


def _startup_line(ax, s: pd.DataFrame, st: dict, label: str, xname: str) -> bool:
    """Start-up seconds as a thin dotted line of the method's colour (no legend entry); False when
    the method has none."""
    s = s[np.isfinite(s["mean"].astype(float)) & (s["mean"].astype(float) > 0)]
    if s.empty:
        return False
    (line,) = ax.plot(s["x"].to_numpy(float), s["mean"].to_numpy(float), color=st["color"],
                      linestyle=":", linewidth=0.9, marker="x", markersize=3)
    S.series(ax.figure, line, label)
    S.hit_points(ax, s["x"].to_numpy(float), s["mean"].to_numpy(float),
                 [f"{label}, {xname} = {_fmt_x(x)}: start-up {_value(m, h, 's')}"
                  for x, m, h in zip(s["x"], s["mean"], s["half"], strict=True)], label)
    return True


def _plain_log(axis) -> None:
    """Log-axis ticks at 1, 2, 5 x 10^i, labelled as plain numbers (0.5, 1, 20 000)."""
    axis.set_major_locator(LogLocator(subs=(1.0, 2.0, 5.0)))
    axis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:,.10g}".replace(",", "\u2009")))
    axis.set_minor_formatter(NullFormatter())


def _parallel_note(rows: pd.DataFrame) -> str:
    n = int(rows["parallel"].sum()) if "parallel" in rows else 0
    return (f" Hollow markers: timings include {n} runs from concurrent jobs (not comparable with "
            "sequential timings)." if n else "")


def _legend(fig, axes, ncol: int) -> None:
    handles, labels = axes[0].get_legend_handles_labels()
    if handles:
        fig.legend(handles[:S.MAX_LEGEND], labels[:S.MAX_LEGEND], loc="outside lower center",
                   ncol=max(1, min(ncol, len(handles))), frameon=False)


STARTUP_NOTE = (" Time is training time; dotted ×: engine start-up (Ray, services), shown apart "
                "(records without the split count their whole fit time as training).")


def k_sweep(rows: pd.DataFrame, setting: str, slug: str, out_dir: Path) -> list[Figure]:
    if rows["k"].nunique() < 2:
        return []
    rows = A.with_fit_split(A.add_variants(rows, exclude=("k",)))
    panels = [("auc", "ROC-AUC"), ("precision", "Precision (y = yes)"), ("recall", "Recall (y = yes)"),
              ("silhouette", "Silhouette (test sample)"), ("train_time", "Training time (s, log)")]
    fig, axes = S.new_figure("text", S.HEIGHT, ncols=len(panels), sharex=True)
    variants = A.variant_order(rows)
    sty = A.styles(variants)
    startup = False
    for ax, (col, title) in zip(axes, panels, strict=True):
        for v in variants:
            r = rows[rows["variant"] == v]
            label = r["variant_label"].iloc[0]
            _line(ax, _series(r, "k", col), sty[v], label, timing=col == "train_time",
                  what=title.split(" (")[0], xname="k", unit="s" if col == "train_time" else "")
            if col == "train_time":
                startup |= _startup_line(ax, _series(r, "k", "startup_time"), sty[v], label, "k")
        ax.set_title(title)
        ax.set_xlabel("k (segments)")
        ax.set_xticks(sorted(rows["k"].unique()))
        if col == "train_time":
            ax.set_yscale("log")
            _plain_log(ax.yaxis)
    _legend(fig, axes, ncol=6)
    seeds = rows.groupby(["variant", "k"]).size()
    caption = (f"Quality and cost vs number of segments k, {setting}. Mean over seeds "
               f"({seeds.min()}–{seeds.max()} per point) with 95% t-intervals; precision and recall "
               "for the positive class at the decision threshold; training time is fit()'s wall time "
               "without engine start-up." + (STARTUP_NOTE if startup else "") + _parallel_note(rows))
    return [figure(fig, out_dir, f"k_sweep_{slug}", "k_sweep", setting, caption)]


def privacy_utility(rows: pd.DataFrame, setting: str, slug: str, out_dir: Path) -> list[Figure]:
    eps_rows = rows[rows["epsilon"].notna()] if "epsilon" in rows else rows.iloc[0:0]
    if eps_rows.empty or eps_rows["epsilon"].nunique() < 2:
        return []
    k = A.main_k(eps_rows)
    eps_rows = eps_rows[eps_rows["k"] == k]
    # options that move with epsilon (a noise multiplier) are the x axis too, not separate lines
    with_eps = {c for c in eps_rows.columns if c.startswith("method.")
                for _, r in eps_rows.groupby("method")
                if r[c].astype(str).nunique() > 1
                and r.groupby("epsilon")[c].nunique(dropna=False).max() <= 1}
    eps_rows = A.add_variants(eps_rows, exclude=("epsilon", "method.epsilon", *sorted(with_eps)))
    finite = eps_rows.loc[np.isfinite(eps_rows["epsilon"]), "epsilon"]
    if finite.empty:
        return []
    lo, hi = finite.min(), finite.max()
    inf_x = hi * 10 ** max(0.5, 0.15 * math.log10(max(hi / lo, 10)))  # where epsilon = inf is drawn
    fig, ax = S.new_figure("column", S.HEIGHT)
    sty = A.styles(A.variant_order(eps_rows))
    for v in A.variant_order(eps_rows):
        r = eps_rows[eps_rows["variant"] == v].copy()
        r["x"] = r["epsilon"].where(np.isfinite(r["epsilon"]), inf_x)
        _line(ax, _series(r, "x", "auc"), sty[v], r["variant_label"].iloc[0], what="AUC", xname="ε")
    for method in ("plaintext", "he"):
        ref = rows[(rows["method"] == method) & (rows["k"] == k)]
        mean, half, n = A.mean_ci(ref["auc"])
        if n:
            color = S.method_color(method)
            label = f"{A.METHOD_NAMES[method]} (reference)"
            line = ax.axhline(mean, color=color, linestyle="--" if method == "plaintext" else ":",
                              linewidth=1, label=label)
            S.series(fig, line, label)
            S.tip(fig, line, f"{label}: AUC {_value(mean, half)} (n = {n})")
            if half == half:
                band = ax.axhspan(mean - half, mean + half, color=color, alpha=0.08, linewidth=0)
                S.series(fig, band, label)
    ax.set_xscale("log")
    ticks = [t for t in 10.0 ** np.arange(math.floor(math.log10(lo)), math.ceil(math.log10(hi)) + 1)]
    has_inf = (~np.isfinite(eps_rows["epsilon"])).any()
    ax.set_xticks(ticks + ([inf_x] if has_inf else []))
    ax.set_xticklabels([f"{t:g}" for t in ticks] + (["∞"] if has_inf else []))
    ax.minorticks_off()
    ax.set_xlabel("privacy budget ε (log; ∞ = no noise)")
    ax.set_ylabel("ROC-AUC")
    handles, labels = ax.get_legend_handles_labels()
    ax.legend(handles[:S.MAX_LEGEND], labels[:S.MAX_LEGEND], frameon=False, loc="lower right")
    caption = (f"Privacy–utility trade-off at k = {k}, {setting}: test ROC-AUC vs the privacy budget ε "
               "(smaller ε = stronger privacy), mean over seeds with 95% t-intervals. Horizontal lines: "
               "plaintext and HE (no ε; HE computes the plaintext model exactly up to encoding error), "
               "shaded bands their 95% intervals.")
    return [figure(fig, out_dir, f"privacy_utility_{slug}_k{k}", "privacy_utility", setting, caption)]


def scaling(rows: pd.DataFrame, setting: str, slug: str, out_dir: Path) -> list[Figure]:
    """Training time, bytes and peak RSS against n, log-log, each series' fitted growth exponent
    (:mod:`benchmarks._scaling`) in its panel's legend; HE K-means (its stages) as a series of its own."""
    from benchmarks import _scaling

    if rows["n_train"].nunique() < 2:
        return []
    k = A.main_k(rows)
    rows = rows[rows["k"] == k]
    every = _scaling.series(rows)
    fig, axes = S.new_figure("text", S.HEIGHT + 0.16 * len(every), ncols=3)
    sty = A.styles([v for v, _, _ in every if v != _scaling.HE_KMEANS])
    sty[_scaling.HE_KMEANS] = {"color": A.method_color("he"), "marker": "D", "linestyle": "-."}
    startup, zero_bytes = False, []
    panels = (("train_time", "training time (s)", "s", 1.0),
              ("bytes_total", "bytes sent (MiB)", "MiB", 2**20),
              ("peak_rss_mb", "peak RSS (MiB)", "MiB", 1.0))
    for ax, (col, ylabel, unit, scale) in zip(axes, panels, strict=True):
        for v, label, r in every:
            r = r[r[col].astype(float) > 0] if col in r else r.iloc[:0]
            if r.empty:
                if col == "bytes_total" and v != _scaling.HE_KMEANS:
                    zero_bytes.append(label)
                continue
            slope = _scaling.fit_power(*_scaling.means(r, col))
            shown = f"{label}: $n^{{{slope[0]:.2f}}}$" if slope else f"{label} (1 point)"
            s = _series(r, "n_train", col)
            s[["mean", "half"]] = s[["mean", "half"]] / scale
            _line(ax, s, sty[v], shown, timing=col == "train_time", what=ylabel.split(" (")[0],
                  xname="n", unit=unit)
            if col == "train_time" and v != _scaling.HE_KMEANS:
                startup |= _startup_line(ax, _series(A.with_fit_split(r), "n_train", "startup_time"),
                                         sty[v], label, "n")
        ax.set_xscale("log")
        ax.set_xlabel("training rows n (log)")
        ns = sorted(rows["n_train"].dropna().astype(int).unique())
        ax.set_xlim(ns[0] / 1.5, ns[-1] * 1.5)
        ax.set_xticks(ns, [f"{n / 1000:,.0f}k" if n < 10**6 else f"{n / 10**6:g}M" for n in ns],
                      rotation=45 if len(ns) > 4 else 0)
        ax.xaxis.set_minor_formatter(NullFormatter())
        if ax.get_legend_handles_labels()[0]:
            ax.set_yscale("log")
            _plain_log(ax.yaxis)
            ax.set_ylabel(ylabel + " (log)")
            handles, labels = ax.get_legend_handles_labels()
            ax.legend(handles[:S.MAX_LEGEND], labels[:S.MAX_LEGEND], frameon=False, fontsize="x-small",
                      loc="upper center", bbox_to_anchor=(0.5, -0.32), handlelength=1.5)
        else:
            ax.set_ylabel(ylabel)
            ax.set_yticks([])
            ax.text(0.5, 0.5, "no bytes exchanged", transform=ax.transAxes, ha="center", va="center")
    note = f" {', '.join(sorted(set(zero_bytes)))}: no bytes exchanged (not drawn)." if zero_bytes else ""
    caption = (f"Cost vs training-set size at k = {k}, {setting}, log–log: training time of fit() "
               "(start-up apart), bytes sent between parties (each message counted once, at its sender) "
               "and the job's peak RSS, mean over seeds with 95% t-intervals. Legend: the growth exponent "
               "b of a least-squares fit cost = a·n^b over the measured sizes. HE K-means (dashed): the "
               "time of its stages alone (keys, encryption, seeding, Lloyd rounds, assignment), over "
               "every HE run whatever its predictor." + note + (STARTUP_NOTE if startup else "")
               + _parallel_note(rows))
    return [figure(fig, out_dir, f"scaling_{slug}_k{k}", "scaling", setting, caption)]


COMPARISON = [("auc", "AUC"), ("precision", "Prec."), ("recall", "Recall"), ("f1", "F1"),
              ("weighted_precision", "W. prec."), ("weighted_recall", "W. recall")]


def comparison(rows: pd.DataFrame, setting: str, slug: str, out_dir: Path) -> list[Figure]:
    k = A.main_k(rows)
    rows = A.add_variants(rows[rows["k"] == k])
    variants = A.variant_order(rows)
    sty = A.styles(variants)
    many = len(variants) > 4  # a full-width figure with the legend beside it
    fig, ax = S.new_figure("text" if many else "column", S.HEIGHT)
    width = 0.8 / len(variants)
    x = np.arange(len(COMPARISON))
    for i, v in enumerate(variants):
        r = rows[rows["variant"] == v]
        label = r["variant_label"].iloc[0]
        stats_ = [A.mean_ci(r[col]) for col, _ in COMPARISON]
        means = [s[0] for s in stats_]
        halves = [0 if s[1] != s[1] else s[1] for s in stats_]
        bars = ax.bar(x + (i - (len(variants) - 1) / 2) * width, means, width, yerr=halves, capsize=1.5,
                      color=sty[v]["color"], alpha=0.85, label=label, error_kw={"elinewidth": 0.7})
        S.series(fig, bars, label)
        for patch, (_, name), (mean, half, n) in zip(bars.patches, COMPARISON, stats_, strict=True):
            S.tip(fig, patch, f"{label}: {name} {_value(mean, half)} (n = {n})")
    ax.set_xticks(x, [label for _, label in COMPARISON])
    ax.set_ylim(0, 1)
    ax.set_ylabel("score on the test split")
    ax.grid(axis="x", visible=False)
    if many:
        ax.legend(frameon=False, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    else:
        ax.legend(frameon=False, ncol=min(len(variants), 4), loc="lower center", bbox_to_anchor=(0.5, 1.0))
    seeds = rows.groupby("variant").size()
    caption = (f"Classification quality by method at k = {k}, {setting}; mean over seeds "
               f"({seeds.min()}–{seeds.max()}) with 95% t-intervals. Precision, recall and F1 for the "
               "positive class (y = yes) at the decision threshold; weighted = support-weighted average "
               "over both classes.")
    return [figure(fig, out_dir, f"comparison_{slug}_k{k}", "comparison", setting, caption)]


def _mean_by(rows: pd.DataFrame, prefix: str, suffix: str = "") -> pd.DataFrame:
    cols = [c for c in rows.columns if c.startswith(prefix) and c.endswith(suffix) and rows[c].notna().any()]
    means = rows.groupby("variant")[cols].mean()
    means.columns = [c.removeprefix(prefix).removesuffix(suffix) for c in cols]
    return means


def phase_means(rows: pd.DataFrame, variants: list[str]) -> pd.DataFrame:
    """Mean seconds per phase of fit() for each variant (rows), sub-phases left out where their
    parent is there; start-up (``startup_s``) added as a phase of its own where no phase says it."""
    means = _mean_by(rows, "phase.", "_s").reindex(variants).fillna(0.0)
    # "a.b" is a sub-phase of "a": stacking both would count it twice
    means = means[[c for c in means.columns if "." not in c or c.split(".")[0] not in means.columns]]
    startup = A.startup_seconds(rows).groupby(rows["variant"]).mean().reindex(variants).fillna(0.0)
    named = [c for c in means.columns if S.is_startup(c)]
    if startup.gt(0).any():
        # a record's startup_s stands for its start-up phases: it replaces them, never adds to them
        means = means.drop(columns=named)
        means.insert(0, "startup", startup)
    return means


def party_sums(rows: pd.DataFrame, variants: list[str], suffix: str) -> pd.DataFrame:
    """Mean per party of ``party.<name><suffix>``, parties of one role (``client-0``..) summed."""
    means = _mean_by(rows, "party.", suffix).reindex(variants).fillna(0.0)
    return means.T.groupby(S.party_group, sort=False).sum().T if not means.empty else means


def costs(rows: pd.DataFrame, setting: str, slug: str, out_dir: Path) -> list[Figure]:
    k = A.main_k(rows)
    rows = A.add_variants(rows[rows["k"] == k])
    variants = A.variant_order(rows)
    labels = [rows.loc[rows["variant"] == v, "variant_label"].iloc[0] for v in variants]
    cpu = party_sums(rows, variants, ".cpu_s")
    sent = party_sums(rows, variants, ".bytes_sent") / 2**20
    parties = list(dict.fromkeys([*cpu.columns, *sent.columns]))
    if len(parties) > S.MAX_LEGEND // 2:
        other = "other parties"
        keep = list(S.group_minor(cpu.reindex(columns=parties, fill_value=0.0), S.MAX_LEGEND // 2,
                                  other=other).columns)
        fold = [p for p in parties if p not in keep]
        for frame in (cpu, sent):
            frame[other] = frame.reindex(columns=fold, fill_value=0.0).sum(axis=1)
            frame.drop(columns=[p for p in fold if p in frame], inplace=True)
        parties = keep if other in keep else keep + [other]
    phases = S.group_minor(phase_means(rows, variants), S.MAX_LEGEND - len(parties), protect=S.is_startup,
                           other="other phases")
    pcolor, qcolor = S.phase_colors(list(phases.columns)), S.party_colors(parties)
    fig, axes = S.new_figure("text", 0.32 * len(variants) + 1.5, ncols=3, sharey=True)
    panels = [(phases, "fit time by phase (s)", "s", pcolor),
              (cpu, "CPU time by party (s)", "s", qcolor), (sent, "bytes sent by party (MiB)", "MiB", qcolor)]
    for ax, (means, title, unit, colors) in zip(axes, panels, strict=True):
        left = np.zeros(len(variants))
        for part in means.columns:
            values = means[part].to_numpy(float)
            bars = ax.barh(np.arange(len(variants)), values, left=left, height=0.6, label=part,
                           color=colors[part], hatch=S.STARTUP_HATCH if S.is_startup(part) else None,
                           edgecolor="white", linewidth=0.3)
            S.series(fig, bars, f"{part}")
            for patch, label, value in zip(bars.patches, labels, values, strict=True):
                S.tip(fig, patch, f"{label}: {part} {value:.3g} {unit}")
            left += values
        for yi, total in enumerate(left if left.max() > 0 else []):
            ax.annotate(f"{total:.3g}", (total, yi), xytext=(2, 0), textcoords="offset points",
                        va="center", fontsize=6)
        ax.set_title(title)
        ax.set_yticks(np.arange(len(variants)), labels)
        ax.invert_yaxis()
        ax.grid(axis="y", visible=False)
        if left.max() > 0:
            ax.set_xlim(0, left.max() * 1.25)
        else:
            ax.set_xticks([])
            ax.text(0.5, 0.5, "none", transform=ax.transAxes, ha="center", va="center")
    handles = {}
    for ax in axes:
        for h, lab in zip(*ax.get_legend_handles_labels(), strict=True):
            handles.setdefault(lab, h)
    for names, title, loc in ((list(phases.columns), "phase", "outside lower left"),
                              (parties, "party", "outside lower right")):
        shown = [n for n in names if n in handles]
        if shown:
            fig.legend([handles[n] for n in shown], shown, title=title, loc=loc, frameon=False,
                       ncol=min(len(shown), 5 if title == "phase" else 4))
    caption = (f"Where the cost goes at k = {k}, {setting}: wall time of each fit() phase (engine "
               "start-up hatched, apart from training; smaller phases summed as \"other\"), CPU time "
               "charged to each party and bytes each party sent (MiB; clients summed), means over seeds; "
               "the number at each bar's end is its total." + _parallel_note(rows))
    return [figure(fig, out_dir, f"costs_{slug}_k{k}", "costs", setting, caption)]


REFERENCE_STYLE = {"rf_mia": ("#555555", "--"), "small_mia": ("#999999", "-.")}


def _roc_curve(row: pd.Series) -> tuple[dict, dict] | None:
    """A run's stored curves (the table's ``leakage.roc``, JSON) and their AUCs; None without."""
    blob = row.get(ROC)
    if not isinstance(blob, str):
        return None
    try:
        roc = json.loads(blob)
    except ValueError:
        return None
    if not isinstance(roc, dict) or not roc:
        return None
    return roc, {a: row.get(f"leakage.{a}_auc") for a in roc}


def leakage(rows: pd.DataFrame, setting: str, slug: str, out_dir: Path) -> list[Figure]:
    """Membership-inference ROC (loss attack, log-log), one curve per method: each method's
    lowest-seed run with stored curves (the table's ``leakage.roc`` column)."""
    from benchmarks.attacks.figures import _positive

    if ROC not in rows:
        return []
    curves = []
    for method in sorted(rows["method"].unique(), key=A.method_sort_key):
        runs = rows[rows["method"] == method].sort_values("seed")
        found = next(((r, c) for _, r in runs.iterrows() if (c := _roc_curve(r)) is not None), None)
        if found is not None:
            curves.append(found)
    if not curves:
        return []
    fig, ax = S.new_figure("column", 3.0)
    lo = 1e-4
    try:
        for row, (roc, aucs) in curves:
            if "mia" not in roc:
                continue
            eps = row.get("epsilon")
            label = A.method_name(row["method"], row) + ("" if eps is None or eps != eps or eps == math.inf
                                                         else f" (ε={eps:g})")
            label += f": AUC {aucs['mia']:.3f}" if aucs.get("mia") == aucs.get("mia") else ""
            (line,) = ax.plot(*_positive(roc["mia"]), color=S.method_color(row["method"]), label=label)
            S.series(fig, line, label)
            S.tip(fig, line, label)
        for ref, (color, dash) in REFERENCE_STYLE.items():
            found = next(((roc, aucs) for _, (roc, aucs) in curves if ref in roc), None)
            if found is not None:
                auc = found[1].get(ref)
                label = f"{ref} (reference): AUC {auc:.3f}" if auc == auc and auc is not None else ref
                (line,) = ax.plot(*_positive(found[0][ref]), color=color, linestyle=dash, label=label)
                S.series(fig, line, label)
                S.tip(fig, line, label)
    except (KeyError, TypeError, ValueError) as exc:  # a curve of the wrong shape in some record
        print(f"warning: no leakage ROC figure for {setting}: a stored curve is malformed ({exc})",
              file=sys.stderr)
        plt.close(fig)
        return []
    ax.plot([lo, 1], [lo, 1], color="#CCCCCC", linewidth=0.8, linestyle=":", label="chance")
    ax.set(xscale="log", yscale="log", xlim=(lo, 1), ylim=(lo, 1), xlabel="false positive rate",
           ylabel="true positive rate")
    ax.legend(loc="lower right", frameon=False)
    return [figure(fig, out_dir, f"leakage_roc_{slug}", "leakage", setting,
                   f"Membership inference on each method's released predictor (loss-threshold attack, "
                   f"first seed), {setting}, log–log; dashed: the leaky references; dotted: chance. "
                   "Protocol in docs/attacks.md.")]


#: figures drawn once per data setting with the subsample kept apart: ``fn(rows, setting, slug, out_dir)``
PER_SUBSAMPLE = [k_sweep, privacy_utility]
#: figures drawn once per data setting (all subsamples together); ``comparison``, ``costs`` and
#: ``leakage`` see the largest subsample only (:func:`make_all`)
PER_SETTING = [scaling]
def gains(rows: pd.DataFrame, setting: str, slug: str, out_dir: Path) -> list[Figure]:
    """The cumulative gains chart (:func:`benchmarks._questions.gains`, which imports this module)."""
    from benchmarks import _questions

    return _questions.gains(rows, setting, slug, out_dir)


AT_LARGEST_N = [comparison, costs, _network_costs.figures, gains]


def make_all(table: pd.DataFrame, out_dir: Path | str) -> list[Figure]:
    """Every figure the table supports, written to ``out_dir``; also writes ``index.json``."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    rows = A.ok_rows(table)
    made: list[Figure] = []
    if rows.empty:
        return made
    if "parallel" not in rows:
        rows["parallel"] = False
    with S.style():
        for setting, slug, r in A.settings(rows, with_subsample=True):
            for builder in PER_SUBSAMPLE:
                made += builder(r, setting, slug, out_dir)
        for setting, slug, r in A.settings(rows, with_subsample=False):
            for builder in PER_SETTING:
                made += builder(r, setting, slug, out_dir)
            big = A.largest_n(r)
            for builder in AT_LARGEST_N:
                made += builder(big, setting, slug, out_dir)
            made += leakage(big[big["k"] == A.main_k(big)], setting, slug, out_dir)
    write_atomic(out_dir / "index.json", json.dumps([asdict(f) for f in made], indent=2))
    return made


def main(argv: list[str] | None = None) -> int:
    table, source, out = table_command(argv, "python -m benchmarks.figures", __doc__, "figures")
    made = make_all(table, out)
    if not made:
        print(f"{source}: no ok runs, no figures", file=sys.stderr)
        return 1
    for f in made:
        print(f"{f.kind:16s} {f.pdf}  {f.png}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
