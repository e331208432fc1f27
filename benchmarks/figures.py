"""Paper figures from a results table, never from re-running a method.

    uv run python -m benchmarks.figures results/sweeps/k_sweep/<stamp>/results.parquet [-o DIR]

Each figure is drawn when the table holds what it needs, once per data setting (dataset, duration
on/off, subsample), as PDF and PNG (300 dpi) in ``DIR`` (default: ``figures/`` beside the table):

- ``k_sweep_*``: AUC, precision, recall, silhouette and fit time vs k (>= 2 values of k);
- ``privacy_utility_*``: AUC vs epsilon with plaintext and HE as reference lines (runs with an epsilon);
- ``scaling_*``: fit time and bytes exchanged vs training rows, log-log (>= 2 training-set sizes);
- ``comparison_*``: classification metrics per method at k = 4 (or the most common k);
- ``costs_*``: fit time by phase, CPU time by party and bytes sent by party at that k;
- ``leakage_roc_*``: membership-inference ROC per method at that k (runs with measured leakage).

Points are means over seeds with 95% t-intervals. Timings of jobs run concurrently are marked
(hollow markers, "parallel" in the caption): they are not comparable with sequential ones.
``index.json`` lists every figure with its caption (the report reads it).
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
from benchmarks.collect import ROC, table_command  # noqa: E402
from methods._util import atomic_path, write_atomic  # noqa: E402

COLUMN_W, TEXT_W = 3.5, 7.16  # inches: one column / full width of a two-column paper
RC = {
    "font.size": 8, "axes.titlesize": 8, "axes.labelsize": 8, "legend.fontsize": 7,
    "xtick.labelsize": 7, "ytick.labelsize": 7, "lines.linewidth": 1.2, "lines.markersize": 4,
    "axes.spines.top": False, "axes.spines.right": False, "axes.grid": True, "grid.alpha": 0.3,
    "grid.linewidth": 0.5, "savefig.bbox": "tight", "savefig.pad_inches": 0.02, "pdf.fonttype": 42,
    "figure.constrained_layout.use": True,
}


@dataclass
class Figure:
    name: str
    kind: str
    setting: str
    caption: str
    pdf: str
    png: str


def _save(fig, out_dir: Path, name: str) -> tuple[str, str]:
    paths = []
    for ext in ("pdf", "png"):
        path = out_dir / f"{name}.{ext}"
        with atomic_path(path) as tmp:
            fig.savefig(tmp, dpi=300, format=ext)
        paths.append(str(path))
    plt.close(fig)
    return paths[0], paths[1]


def _series(rows: pd.DataFrame, x: str, y: str) -> pd.DataFrame:
    """Mean and 95% CI of ``y`` per value of ``x`` (over seeds), plus whether any timing is parallel."""
    out = []
    for xv, g in rows.groupby(x):
        mean, half, n = A.mean_ci(g[y])
        out.append({"x": xv, "mean": mean, "half": half, "n": n, "parallel": bool(g["parallel"].any())})
    return pd.DataFrame(out).sort_values("x") if out else pd.DataFrame(columns=["x", "mean", "half", "n"])


def _line(ax, s: pd.DataFrame, st: dict, label: str, timing: bool = False) -> None:
    s = s[np.isfinite(s["mean"].astype(float))]
    if s.empty:
        return
    hollow = timing and s["parallel"].any()
    yerr = s["half"].where(s["half"].notna(), 0).to_numpy(float)
    ax.errorbar(s["x"].to_numpy(float), s["mean"].to_numpy(float), yerr=yerr, label=label,
                color=st["color"], marker=st["marker"], linestyle=st["linestyle"], capsize=2,
                markerfacecolor="white" if hollow else st["color"], elinewidth=0.8)


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
        fig.legend(handles, labels, loc="outside lower center", ncol=ncol, frameon=False)


def k_sweep(rows: pd.DataFrame, setting: str, slug: str, out_dir: Path) -> list[Figure]:
    if rows["k"].nunique() < 2:
        return []
    rows = A.add_variants(rows, exclude=("k",))
    panels = [("auc", "ROC-AUC"), ("precision", "Precision (y = yes)"), ("recall", "Recall (y = yes)"),
              ("silhouette", "Silhouette (test sample)"), ("wall_s", "Fit time (s, log)")]
    fig, axes = plt.subplots(1, len(panels), figsize=(TEXT_W, 2.1), sharex=True)
    variants = A.variant_order(rows)
    sty = A.styles(variants)
    for ax, (col, title) in zip(axes, panels, strict=True):
        for v in variants:
            r = rows[rows["variant"] == v]
            _line(ax, _series(r, "k", col), sty[v], r["variant_label"].iloc[0], timing=col == "wall_s")
        ax.set_title(title)
        ax.set_xlabel("k (segments)")
        ax.set_xticks(sorted(rows["k"].unique()))
        if col == "wall_s":
            ax.set_yscale("log")
            _plain_log(ax.yaxis)
    _legend(fig, axes, ncol=min(len(variants), 6))
    name = f"k_sweep_{slug}"
    seeds = rows.groupby(["variant", "k"]).size()
    caption = (f"Quality and cost vs number of segments k, {setting}. Mean over seeds "
               f"({seeds.min()}–{seeds.max()} per point) with 95% t-intervals; precision and recall "
               "for the positive class at the decision threshold; fit time is the wall time of fit()."
               + _parallel_note(rows))
    return [Figure(name, "k_sweep", setting, caption, *_save(fig, out_dir, name))]


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
    fig, ax = plt.subplots(figsize=(COLUMN_W, 2.4))
    sty = A.styles(A.variant_order(eps_rows))
    for v in A.variant_order(eps_rows):
        r = eps_rows[eps_rows["variant"] == v].copy()
        r["x"] = r["epsilon"].where(np.isfinite(r["epsilon"]), inf_x)
        _line(ax, _series(r, "x", "auc"), sty[v], r["variant_label"].iloc[0])
    for method in ("plaintext", "he"):
        ref = rows[(rows["method"] == method) & (rows["k"] == k)]
        mean, half, n = A.mean_ci(ref["auc"])
        if n:
            color = A.METHOD_COLORS[method]
            ax.axhline(mean, color=color, linestyle="--" if method == "plaintext" else ":", linewidth=1,
                       label=f"{A.METHOD_NAMES[method]} (reference)")
            if half == half:
                ax.axhspan(mean - half, mean + half, color=color, alpha=0.08, linewidth=0)
    ax.set_xscale("log")
    ticks = [t for t in 10.0 ** np.arange(math.floor(math.log10(lo)), math.ceil(math.log10(hi)) + 1)]
    has_inf = (~np.isfinite(eps_rows["epsilon"])).any()
    ax.set_xticks(ticks + ([inf_x] if has_inf else []))
    ax.set_xticklabels([f"{t:g}" for t in ticks] + (["∞"] if has_inf else []))
    ax.minorticks_off()
    ax.set_xlabel("privacy budget ε (log; ∞ = no noise)")
    ax.set_ylabel("ROC-AUC")
    ax.legend(frameon=False, loc="lower right")
    name = f"privacy_utility_{slug}_k{k}"
    caption = (f"Privacy–utility trade-off at k = {k}, {setting}: test ROC-AUC vs the privacy budget ε "
               "(smaller ε = stronger privacy), mean over seeds with 95% t-intervals. Horizontal lines: "
               "plaintext and HE (no ε; HE computes the plaintext model exactly up to encoding error), "
               "shaded bands their 95% intervals.")
    return [Figure(name, "privacy_utility", setting, caption, *_save(fig, out_dir, name))]


def scaling(rows: pd.DataFrame, setting: str, slug: str, out_dir: Path) -> list[Figure]:
    if rows["n_train"].nunique() < 2:
        return []
    k = A.main_k(rows)
    rows = A.add_variants(rows[rows["k"] == k], exclude=("n_train",))
    fig, axes = plt.subplots(1, 2, figsize=(TEXT_W * 0.75, 2.3))
    zero_bytes = []
    sty = A.styles(A.variant_order(rows))
    for v in A.variant_order(rows):
        r = rows[rows["variant"] == v]
        label = r["variant_label"].iloc[0]
        _line(axes[0], _series(r, "n_train", "wall_s"), sty[v], label, timing=True)
        b = _series(r[r["bytes_total"] > 0], "n_train", "bytes_total")
        if b.empty:
            zero_bytes.append(label)
            axes[1].plot([], [], **{k_: sty[v][k_] for k_ in ("color", "marker", "linestyle")},
                         label=label)
        else:
            b[["mean", "half"]] = b[["mean", "half"]] / 2**20
            _line(axes[1], b, sty[v], label)
    drew = (True, len(zero_bytes) < rows["variant"].nunique())
    for ax, ylabel, has_data in zip(axes, ("fit time (s)", "bytes exchanged (MiB)"), drew, strict=True):
        ax.set_xlim(rows["n_train"].min() / 1.3, rows["n_train"].max() * 1.3)
        ax.set_xscale("log")
        ax.set_xlabel("training rows n (log)")
        ns = sorted(rows["n_train"].dropna().astype(int).unique())
        ax.set_xticks(ns, [f"{n:,}" for n in ns], rotation=30 if len(ns) > 4 else 0)
        ax.xaxis.set_minor_formatter(NullFormatter())
        if has_data:
            ax.set_yscale("log")
            _plain_log(ax.yaxis)
            ax.set_ylabel(ylabel + " (log)")
        else:
            ax.set_ylabel(ylabel)
            ax.set_yticks([])
            ax.text(0.5, 0.5, "no bytes exchanged", transform=ax.transAxes, ha="center", va="center")
    _legend(fig, axes, ncol=4)
    note = f" {', '.join(zero_bytes)}: no bytes exchanged (not drawn)." if zero_bytes else ""
    name = f"scaling_{slug}_k{k}"
    caption = (f"Cost vs training-set size at k = {k}, {setting}, log–log: wall time of fit() and bytes "
               "sent between parties (each message counted once, at its sender), mean over seeds with "
               "95% t-intervals." + note + _parallel_note(rows))
    return [Figure(name, "scaling", setting, caption, *_save(fig, out_dir, name))]


COMPARISON = [("auc", "AUC"), ("precision", "Prec."), ("recall", "Recall"), ("f1", "F1"),
              ("weighted_precision", "W. prec."), ("weighted_recall", "W. recall")]


def comparison(rows: pd.DataFrame, setting: str, slug: str, out_dir: Path) -> list[Figure]:
    k = A.main_k(rows)
    rows = A.add_variants(rows[rows["k"] == k])
    variants = A.variant_order(rows)
    sty = A.styles(variants)
    many = len(variants) > 4  # a full-width figure with the legend beside it
    fig, ax = plt.subplots(figsize=(TEXT_W if many else COLUMN_W, 2.4))
    width = 0.8 / len(variants)
    x = np.arange(len(COMPARISON))
    for i, v in enumerate(variants):
        r = rows[rows["variant"] == v]
        stats_ = [A.mean_ci(r[col]) for col, _ in COMPARISON]
        means = [s[0] for s in stats_]
        halves = [0 if s[1] != s[1] else s[1] for s in stats_]
        st = sty[v]
        ax.bar(x + (i - (len(variants) - 1) / 2) * width, means, width, yerr=halves, capsize=1.5,
               color=st["color"], alpha=0.85, label=r["variant_label"].iloc[0],
               error_kw={"elinewidth": 0.7})
    ax.set_xticks(x, [label for _, label in COMPARISON])
    ax.set_ylim(0, 1)
    ax.set_ylabel("score on the test split")
    ax.grid(axis="x", visible=False)
    if many:
        ax.legend(frameon=False, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    else:
        ax.legend(frameon=False, ncol=min(len(variants), 4), loc="lower center", bbox_to_anchor=(0.5, 1.0))
    seeds = rows.groupby("variant").size()
    name = f"comparison_{slug}_k{k}"
    caption = (f"Classification quality by method at k = {k}, {setting}; mean over seeds "
               f"({seeds.min()}–{seeds.max()}) with 95% t-intervals. Precision, recall and F1 for the "
               "positive class (y = yes) at the decision threshold; weighted = support-weighted average "
               "over both classes.")
    return [Figure(name, "comparison", setting, caption, *_save(fig, out_dir, name))]


def _mean_by(rows: pd.DataFrame, prefix: str, suffix: str = "") -> pd.DataFrame:
    cols = [c for c in rows.columns if c.startswith(prefix) and c.endswith(suffix) and rows[c].notna().any()]
    means = rows.groupby("variant")[cols].mean()
    means.columns = [c.removeprefix(prefix).removesuffix(suffix) for c in cols]
    return means


def costs(rows: pd.DataFrame, setting: str, slug: str, out_dir: Path) -> list[Figure]:
    k = A.main_k(rows)
    rows = A.add_variants(rows[rows["k"] == k])
    variants = A.variant_order(rows)
    labels = [rows.loc[rows["variant"] == v, "variant_label"].iloc[0] for v in variants]
    panels = [("phase.", "_s", "fit time by phase (s)"), ("party.", ".cpu_s", "CPU time by party (s)"),
              ("party.", ".bytes_sent", "bytes sent by party (MiB)")]
    fig, axes = plt.subplots(1, 3, figsize=(TEXT_W, 0.45 * len(variants) + 1.2), sharey=True)
    for ax, (prefix, suffix, title) in zip(axes, panels, strict=True):
        means = _mean_by(rows, prefix, suffix).reindex(variants).fillna(0.0)
        if prefix == "phase.":  # "a.b" is a sub-phase of "a": stacking both would count it twice
            means = means[[c for c in means.columns if "." not in c or c.split(".")[0] not in means.columns]]
        if suffix == ".bytes_sent":
            means = means / 2**20
        left = np.zeros(len(variants))
        for j, part in enumerate(means.columns):
            ax.barh(np.arange(len(variants)), means[part].to_numpy(), left=left, height=0.6,
                    label=part, color=plt.cm.tab20(j % 20))
            left += means[part].to_numpy()
        for yi, total in enumerate(left if left.max() > 0 else []):
            ax.annotate(f"{total:.3g}", (total, yi), xytext=(2, 0), textcoords="offset points",
                        va="center", fontsize=6)
        ax.set_title(title)
        ax.set_yticks(np.arange(len(variants)), labels)
        ax.invert_yaxis()
        ax.grid(axis="y", visible=False)
        if left.max() > 0:
            ax.set_xlim(0, left.max() * 1.25)
            ax.legend(frameon=False, fontsize=6, loc="upper center", bbox_to_anchor=(0.5, -0.12),
                      ncol=min(len(means.columns), 3))
        else:
            ax.set_xticks([])
            ax.text(0.5, 0.5, "none", transform=ax.transAxes, ha="center", va="center")
    name = f"costs_{slug}_k{k}"
    caption = (f"Where the cost goes at k = {k}, {setting}: wall time of each fit() phase, CPU time "
               "charged to each party and bytes each party sent (MiB), means over seeds; the number "
               "at each bar's end is its total." + _parallel_note(rows))
    return [Figure(name, "costs", setting, caption, *_save(fig, out_dir, name))]


def _roc_record(row: pd.Series) -> dict | None:
    """What :func:`~benchmarks.attacks.figures.roc_figure` reads of a run, from its table row: its
    stored curves (``leakage.roc``, JSON), their AUCs and the claimed epsilon; None without curves."""
    blob = row.get(ROC)
    if not isinstance(blob, str):
        return None
    try:
        roc = json.loads(blob)
    except ValueError:
        return None
    if not isinstance(roc, dict) or not roc:
        return None
    eps = row.get("epsilon")
    leak = {"roc": roc, **{f"{a}_auc": row.get(f"leakage.{a}_auc") for a in roc}}
    return {"method": row["method"], "privacy": {"epsilon": None if eps is None or eps != eps else eps,
                                                 "leakage": leak}}


def leakage(rows: pd.DataFrame, setting: str, slug: str, out_dir: Path) -> list[Figure]:
    """Membership-inference ROC (loss attack, log-log), one curve per method: each method's
    lowest-seed run with stored curves (the table's ``leakage.roc`` column)."""
    from benchmarks.attacks.figures import roc_figure

    if ROC not in rows:
        return []
    records = []
    for method in sorted(rows["method"].unique(), key=A.method_sort_key):
        runs = (_roc_record(r) for _, r in rows[rows["method"] == method].sort_values("seed").iterrows())
        record = next((r for r in runs if r is not None), None)
        if record is not None:
            records.append(record)
    if not records:
        return []
    try:
        fig = roc_figure(records)
    except (KeyError, TypeError, ValueError) as exc:  # a curve of the wrong shape in some record
        print(f"warning: no leakage ROC figure for {setting}: a stored curve is malformed ({exc})",
              file=sys.stderr)
        plt.close("all")
        return []
    fig.set_size_inches(COLUMN_W, COLUMN_W)
    name = f"leakage_roc_{slug}"
    pdf, png = _save(fig, out_dir, name)
    return [Figure(name, "leakage", setting, f"Membership inference on each method's released predictor "
                   f"(loss-threshold attack, first seed), {setting}; dashed: the leaky references; "
                   "grey: chance. Protocol in docs/attacks.md.", pdf, png)]


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
    with plt.rc_context(RC):
        for setting, slug, r in A.settings(rows, with_subsample=True):
            made += k_sweep(r, setting, slug, out_dir)
            made += privacy_utility(r, setting, slug, out_dir)
        for setting, slug, r in A.settings(rows, with_subsample=False):
            made += scaling(r, setting, slug, out_dir)
            big = A.largest_n(r)
            made += comparison(big, setting, slug, out_dir)
            made += costs(big, setting, slug, out_dir)
            made += leakage(big[big["k"] == A.main_k(big)], setting, slug, out_dir)
        from benchmarks import _questions

        made += _questions.figures(rows, out_dir)
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
