"""Method-comparison report from a results table: self-contained HTML, a Markdown twin, LaTeX tables.

    uv run python -m benchmarks.report results/sweeps/paper_table/<stamp>/results.parquet [-o DIR]

Writes to ``DIR`` (default: ``report/`` beside the table): ``report.html`` (figures inline as SVG:
hover a point or bar for its values, click a legend entry to hide or show its series; no external
file or network needed, the PDF and PNG twins are linked), ``report.md`` (links ``figures/*.png``),
``paper_table.tex`` and ``comparison.tex`` (booktabs and siunitx, mean ± 95% CI, the best value of
each column in bold, split so that each table fits one column), and ``figures/`` (regenerated from
the table by :mod:`benchmarks.figures`). Nothing is re-run: every number comes from stored records.

The report is a list of sections, :data:`SECTIONS`: each is a function ``section(doc, ctx)`` that adds
blocks to ``doc`` (:class:`benchmarks._doc.Doc`) from the :class:`Context` ``ctx`` (the table, its ok
rows, the figures, the LaTeX files being written). A module with a section of its own adds it with
:func:`add_section`; the per-setting parts (one per data setting and k) are :data:`SETTING_PARTS`.
"""

from __future__ import annotations

import json
import math
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd

from benchmarks import _analysis as A
from benchmarks import _questions as Q
from benchmarks import figures as F
from benchmarks import metrics as metrics_module
from benchmarks._doc import TEX_NOTE, Doc, Num, fmt_ci, fmt_num, tex_si_tables
from benchmarks.collect import table_command
from methods._util import write_atomic

#: K. Zhang, ICDSNS 2025: the encrypted pipeline vs plaintext, best at k = 4
PAPER = {"he": {"precision": 0.92, "recall": 0.90, "auc": 0.94},
         "plaintext": {"precision": 0.93, "recall": 0.91, "auc": 0.95}}
PAPER_CITE = "K. Zhang, ICDSNS 2025"

SCORES = [("auc", "AUC"), ("precision", "Precision"), ("recall", "Recall"), ("f1", "F1"),
          ("weighted_precision", "W. precision"), ("weighted_recall", "W. recall"), ("pr_auc", "PR-AUC")]
QUALITY = [("silhouette", "Silhouette"), ("ari_vs_plaintext", "ARI vs plaintext")]
COSTS = [("startup_time", "Start-up (s)"), ("train_time", "Training (s)"), ("bytes_total", "Bytes (MiB)"),
         ("rounds", "Rounds"), ("peak_rss_mb", "Peak RSS (MiB)")]

EXTRA_DEFINITIONS = [
    ("95% CI", "mean over seeds ± the half-width of the 95% Student-t interval (t₀.₉₇₅,ₙ₋₁ · s/√n); "
     "\"—\" when fewer than two seeds. Seeds change the method's randomness (seeding, noise, "
     "partitions); the train/test split is fixed by split_seed."),
    ("Δ vs plaintext", "per seed, the method's score minus the plaintext run's on the same data "
     "setting, k, seed and split; mean and 95% CI of these paired differences."),
    ("Training", "wall-clock seconds of fit() (segmentation + predictor, all parties) without engine "
     "start-up (`costs.train_s`); records made before start-up was measured apart count their whole fit "
     "time (`costs.wall_s`). Timings of jobs run concurrently are flagged († and hollow markers) and are "
     "not comparable with sequential ones."),
    ("Start-up", "seconds of engine start-up inside fit() (`costs.startup_s`): Ray, the Flower SuperLink "
     "and SuperNodes, HE services; 0 for methods without an engine, \"—\" in older records. Shown "
     "apart from training in every table and figure, and left out of the training-time ratio."),
    ("Bytes", "bytes sent between parties during fit(), each message counted once at its sender."),
    ("mia_auc", "membership-inference attack ROC-AUC against the released model (0.5 = no better "
     "than guessing)."),
    ("The paper's metrics", f"{PAPER_CITE} reports precision, recall and AUC without stating the "
     "averaging. Its precision/recall near 0.9 on data with 11% positives fit the support-weighted "
     "averages over both classes (our W. precision / W. recall) far better than positive-class scores, "
     "and its setting (bank-additional with call duration) is the optimistic one: duration is only "
     "known after the call."),
]


# -- content ------------------------------------------------------------------------------------
def _ci_cell(rows: pd.DataFrame, col: str, digits: int = 3, scale: float = 1.0) -> str:
    if col not in rows:
        return "—"
    mean, half, _ = A.mean_ci(rows[col])
    return fmt_ci(mean, half, digits, scale)


def _stats(rows: pd.DataFrame, col: str) -> tuple[float, float]:
    if col not in rows:
        return math.nan, math.nan
    mean, half, _ = A.mean_ci(rows[col])
    return mean, half


def comparison_table(rows: pd.DataFrame) -> pd.DataFrame:
    """One row per method variant: scores, segmentation quality and costs with 95% CIs; start-up
    apart from training."""
    rows = A.with_fit_split(rows)
    out = []
    for v in A.variant_order(rows):
        r = rows[rows["variant"] == v]
        line = {"Method": r["variant_label"].iloc[0], "Seeds": len(r)}
        for col, label in SCORES + QUALITY:
            line[label] = _ci_cell(r, col)
        line["Start-up (s)"] = _ci_cell(r, "startup_time", 2)
        line["Training (s)"] = _ci_cell(r, "train_time", 2) + (" †" if r["parallel"].any() else "")
        line["Bytes (MiB)"] = _ci_cell(r, "bytes_total", 2, 1 / 2**20)
        line["Rounds"] = _ci_cell(r, "rounds", 0)
        eps = r["epsilon"].dropna().unique() if "epsilon" in r else []
        line["ε"] = ", ".join("∞" if e == math.inf else f"{e:g}" for e in sorted(eps)) or "—"
        line["MIA AUC"] = _ci_cell(r, "leakage.mia_auc")
        out.append(line)
    return pd.DataFrame(out)


def comparison_stats(rows: pd.DataFrame) -> list[dict]:
    """The comparison's numbers, for LaTeX: per variant, ``{column: (mean, 95% CI half-width)}``."""
    rows = A.with_fit_split(rows)
    out = []
    for v in A.variant_order(rows):
        r = rows[rows["variant"] == v]
        line = {"Method": r["variant_label"].iloc[0] + (" †" if r["parallel"].any() else "")}
        for col in ("auc", "precision", "recall", "f1", "silhouette", "startup_time", "train_time",
                    "bytes_total", "rounds"):
            line[col] = _stats(r, col)
        out.append(line)
    return out


#: the LaTeX comparison's columns (short headers: each table must fit one column)
TEX_COMPARISON = [Num("auc", "AUC"), Num("precision", "Prec."), Num("recall", "Recall"), Num("f1", "F1"),
                  Num("silhouette", "Silh."), Num("startup_time", "Start-up (s)", 2, "min"),
                  Num("train_time", "Train (s)", 2, "min"), Num("bytes_total", "MiB", 1, "min", 1 / 2**20)]
TEX_PAPER = [Num("precision", "Prec."), Num("recall", "Recall"), Num("auc", "AUC"),
             Num("weighted_precision", "W. prec."), Num("weighted_recall", "W. rec.")]


#: the leakage table's columns: (record key under privacy.leakage, label); docs/attacks.md defines them
LEAKAGE = [("mia_auc", "Loss MIA AUC"), ("mia_advantage", "Loss adv."), ("mia_eps_lb", "ε lower bd."),
           ("lira_auc", "LiRA AUC"), ("lira_tpr_at_fpr_0_01", "LiRA TPR@1%"),
           ("centroid_mia_auc", "Centroid MIA AUC"), ("small_clusters", "Clusters < 10"),
           ("rf_mia_auc", "RF ref. AUC"), ("small_mia_auc", "Small-train AUC"),
           ("fl_recon_cosine_mean", "FL recon. cos."), ("fl_kmeans_singletons", "FL singletons"),
           ("dp_eps_lb_attack", "DP ε lb (attacks)"), ("he_ciphertext_auc", "Ciphertext AUC"),
           ("he_key_holder_spearman", "Key-holder ρ")]


def leakage_table(rows: pd.DataFrame) -> pd.DataFrame:
    """One row per method variant: the measured-leakage metrics present in the runs, with 95% CIs."""
    def measured(key: str) -> bool:
        col = f"leakage.{key}"
        return col in rows and pd.to_numeric(rows[col], errors="coerce").notna().any()

    present = [(key, label) for key, label in LEAKAGE if measured(key)]
    out = []
    for v in A.variant_order(rows):
        r = rows[rows["variant"] == v]
        line = {"Method": r["variant_label"].iloc[0], "Seeds": len(r)}
        for key, label in present:
            values = pd.to_numeric(r[f"leakage.{key}"], errors="coerce")
            line[label] = fmt_ci(*A.mean_ci(values)[:2]) if values.notna().any() else "—"
        out.append(line)
    return pd.DataFrame(out)



def relative_table(rows: pd.DataFrame) -> pd.DataFrame:
    """Paired differences (method - plaintext on the same seed) with 95% CIs; training time (start-up
    left out) as a ratio."""
    base = rows[rows["variant"] == "plaintext"]
    if base.empty:
        return pd.DataFrame()
    keys = ["k", "seed", "split_seed"]
    out = []
    for v in A.variant_order(rows):
        if v == "plaintext":
            continue
        r = rows[rows["variant"] == v]
        merged = r.merge(base, on=keys, suffixes=("", "_ref"))
        if merged.empty:
            continue
        line = {"Method": r["variant_label"].iloc[0], "Paired seeds": len(merged)}
        for col, label in SCORES[:6] + QUALITY[:1]:
            diff = pd.to_numeric(merged[col], errors="coerce") - pd.to_numeric(merged[f"{col}_ref"],
                                                                                  errors="coerce")
            mean, half, _ = A.mean_ci(diff)
            line[f"Δ {label}"] = fmt_ci(mean, half) if mean != mean else f"{mean:+.3f}" + (
                f" ± {half:.3f}" if half == half else "")
        # training alone: start-up (Ray, services) is a fixed cost that a ratio would blur
        ratio = A.train_seconds(merged) / A.train_seconds(
            merged[["wall_s_ref"] + (["train_s_ref"] if "train_s_ref" in merged else [])]
            .rename(columns=lambda c: c.removesuffix("_ref")))
        mean, half, _ = A.mean_ci(ratio)
        line["Training time ×"] = fmt_ci(mean, half, 1)
        out.append(line)
    return pd.DataFrame(out)


def paper_rows(rows: pd.DataFrame) -> pd.DataFrame:
    out = []
    for method in ("plaintext", "he"):
        paper = PAPER[method]
        out.append({"Method": f"{A.METHOD_NAMES[method]} — paper", "Seeds": "—",
                    "Precision": f"{paper['precision']:.2f}", "Recall": f"{paper['recall']:.2f}",
                    "AUC": f"{paper['auc']:.2f}", "W. precision": "—", "W. recall": "—"})
        r = rows[rows["variant"] == method]
        if r.empty:
            out.append({"Method": f"{A.METHOD_NAMES[method]} — ours", "Seeds": 0, "Precision": "not run",
                        "Recall": "not run", "AUC": "not run", "W. precision": "not run",
                        "W. recall": "not run"})
            continue
        out.append({"Method": f"{r['variant_label'].iloc[0]} — ours", "Seeds": len(r),
                    "Precision": _ci_cell(r, "precision"), "Recall": _ci_cell(r, "recall"),
                    "AUC": _ci_cell(r, "auc"), "W. precision": _ci_cell(r, "weighted_precision"),
                    "W. recall": _ci_cell(r, "weighted_recall")})
    for v in A.variant_order(rows):
        if v in ("plaintext", "he"):
            continue
        r = rows[rows["variant"] == v]
        out.append({"Method": f"{r['variant_label'].iloc[0]} — ours", "Seeds": len(r),
                    "Precision": _ci_cell(r, "precision"), "Recall": _ci_cell(r, "recall"),
                    "AUC": _ci_cell(r, "auc"), "W. precision": _ci_cell(r, "weighted_precision"),
                    "W. recall": _ci_cell(r, "weighted_recall")})
    return pd.DataFrame(out)


def paper_stats(rows: pd.DataFrame) -> list[dict]:
    """The paper comparison's numbers, for LaTeX: the paper's figures (no interval) beside ours."""
    out = []
    order = ["plaintext", "he"] + [v for v in A.variant_order(rows) if v not in ("plaintext", "he")]
    for v in order:
        if v in PAPER:
            out.append({"Method": f"{A.METHOD_NAMES[v]} — paper", "_reference": True,
                        **{c.key: (PAPER[v].get(c.key, math.nan), math.nan) for c in TEX_PAPER}})
        r = rows[rows["variant"] == v]
        if r.empty:
            out.append({"Method": f"{A.METHOD_NAMES.get(v, v)} — ours (not run)"})
            continue
        out.append({"Method": f"{r['variant_label'].iloc[0]} — ours",
                    **{c.key: _stats(r, c.key) for c in TEX_PAPER}})
    return out


def segment_profiles(rows: pd.DataFrame) -> list[tuple[str, pd.DataFrame]]:
    """Per method variant, the segments of its lowest-seed run, highest lift first."""
    out = []
    for v in A.variant_order(rows):
        r = rows[rows["variant"] == v].sort_values("seed")
        rec = r.iloc[0]
        try:
            sizes = json.loads(rec["sizes"])
            rates = json.loads(rec["conversion_rates"])
            lift = json.loads(rec["lift"])
            profile = json.loads(rec["profile"]) if isinstance(rec.get("profile"), str) else {}
        except (TypeError, ValueError):
            continue
        total = sum(sizes) or 1
        lines = []
        for c in range(len(sizes)):
            line = {"Segment": c, "Customers": f"{sizes[c]:,}", "Share": f"{sizes[c] / total:.0%}"}
            for feat, means in (profile or {}).items():
                line[f"mean {feat}"] = fmt_num(means[c], 1)
            line["Conversion"] = "—" if rates[c] is None else f"{rates[c]:.1%}"
            line["Lift"] = "—" if lift[c] is None else f"{lift[c]:.2f}×"
            line["_lift"] = -1 if lift[c] is None else lift[c]
            lines.append(line)
        frame = pd.DataFrame(lines).sort_values("_lift", ascending=False).drop(columns="_lift")
        out.append((f"{rec['variant_label']} (seed {int(rec['seed'])})", frame))
    return out


def definitions() -> list[tuple[str, str]]:
    """The metric definitions of :mod:`benchmarks.metrics`, then the report's own."""
    return list(metrics_module.DEFINITIONS) + EXTRA_DEFINITIONS


TITLE = "privmark: privacy-preserving customer analytics — method comparison"


@dataclass
class Context:
    """What the sections read: the whole table, its ok rows, where the report goes, the table's path,
    the figures, and the LaTeX files being written (name -> content; each becomes ``<name>.tex``)."""

    table: pd.DataFrame
    ok: pd.DataFrame
    out_dir: Path
    source: str = ""
    figures: list[F.Figure] = field(default_factory=list)
    latex: dict[str, str] = field(default_factory=lambda: {"paper_table": TEX_NOTE, "comparison": TEX_NOTE})


Section = Callable[[Doc, Context], None]


def _table_link(ctx: Context) -> str:
    """The results table named as a link relative to the report (with its CSV twin when there)."""
    if not ctx.source:
        return "a results table"
    src = Path(ctx.source)
    if src.is_dir():
        src = src / "results.parquet"
    links = []
    for path in dict.fromkeys([src, src.with_suffix(".parquet"), src.with_suffix(".csv")]):
        if path.is_file():
            links.append(f"[{path.name}]({os.path.relpath(path.resolve(), ctx.out_dir.resolve())})")
    return " / ".join(links) if links else f"`{ctx.source}`"


def header(doc: Doc, ctx: Context) -> None:
    table = ctx.table
    doc.h(1, TITLE)
    counts = (table.groupby(["method", "status"]).size().rename("runs").reset_index()
              if not table.empty else pd.DataFrame(columns=["method", "status", "runs"]))
    doc.p(f"Generated {datetime.now(UTC).isoformat(timespec='seconds')} from {_table_link(ctx)} "
          "(one row per run; `pandas.read_parquet` reads it): "
          f"{len(table)} runs ({int((table.get('status') == 'ok').sum()) if not table.empty else 0} ok"
          + (f"; {len(table.attrs['skipped_records'])} unreadable record(s) left out"
             if table.attrs.get("skipped_records") else "") + "). "
          "Every number below comes from stored run records; nothing was re-run. "
          "Methods not present in the table are simply absent.")
    if not counts.empty:
        doc.table(counts.rename(columns={"method": "Method", "status": "Status", "runs": "Runs"}))


#: the machine columns of the table (``provenance.machine`` of each record) and their headers
MACHINE = [("machine.cpu_model", "CPU"), ("machine.cpu_cores", "Cores"),
           ("machine.cpu_cores_usable", "Usable cores"), ("machine.memory_gib", "Memory (GiB)"),
           ("machine.os", "OS"), ("machine.kernel", "Kernel"), ("machine.arch", "Arch"), ("python", "Python")]


def machine_table(table: pd.DataFrame) -> pd.DataFrame:
    """One row per machine the runs ran on (runs of older records, without machine facts, as "—")."""
    cols = [(c, label) for c, label in MACHINE if c in table]
    if table.empty or not cols:
        return pd.DataFrame()
    frame = table[[c for c, _ in cols]].astype(object).where(table[[c for c, _ in cols]].notna(), "—")
    frame = frame.map(lambda v: f"{v:g}" if isinstance(v, float) else str(v))
    out = frame.groupby([c for c, _ in cols], sort=False).size().rename("Runs").reset_index()
    return out.rename(columns=dict(cols))


def machine(doc: Doc, ctx: Context) -> None:
    doc.h(2, "Machine")
    frame = machine_table(ctx.table)
    if frame.empty:
        doc.p("The records do not say which machine they ran on (made before machine facts were "
              "recorded).")
        return
    doc.p("What the runs ran on (each record's `provenance.machine`); the library versions are under "
          "Provenance. Timings compare only within one machine.")
    doc.table(frame)


def settings(doc: Doc, ctx: Context) -> None:
    """One part per data setting and k: every k of a sweep has its tables; the main k (4, the
    paper's, or the most common) has the paper comparison, leakage and segment profiles too."""
    for setting, slug, rows in (A.settings(ctx.ok, with_subsample=False) if not ctx.ok.empty else []):
        rows = A.largest_n(rows)
        main = A.main_k(rows)
        for k in [main] + sorted(int(k) for k in rows["k"].dropna().unique() if int(k) != main):
            krows = A.add_variants(rows[rows["k"] == k])
            for part in SETTING_PARTS:
                part(doc, ctx, setting, slug, krows, k, k == main)


def _intro(doc: Doc, ctx: Context, setting: str, slug: str, rows: pd.DataFrame, k: int, main: bool) -> None:
    doc.h(2, f"{setting}, k = {k}" + ("" if main else " (other k of the sweep)"))
    n_train = rows["n_train"].dropna()
    if len(n_train):
        doc.p(f"{int(n_train.iloc[0]):,} training rows, {int(rows['n_test'].dropna().iloc[0]):,} test "
              "rows. Mean ± 95% CI over seeds; start-up (Ray, services) apart from training time."
              + (" † = includes timings of concurrently run jobs." if rows["parallel"].any() else ""))
    cite = A.DATA_CITES.get(str(rows["dataset"].iloc[0])) if len(rows) else None
    if cite:
        doc.p(f"Data: {cite}.")


def _comparison(doc: Doc, ctx: Context, setting: str, slug: str, rows: pd.DataFrame, k: int,
                main: bool) -> None:
    doc.h(3, "Method comparison")
    doc.table(comparison_table(rows))
    ctx.latex["comparison"] += tex_si_tables(
        comparison_stats(rows), "Method", TEX_COMPARISON,
        f"Method comparison: {setting}, k = {k}; mean ± 95% CI over seeds, start-up apart from training.",
        f"tab:cmp-{slug}-k{k}") + "\n"
    rel = relative_table(rows)
    if not rel.empty:
        doc.h(3, "Relative to plaintext")
        doc.p("Paired differences (method − plaintext, same seed and split) with 95% CIs; "
              "training time (start-up left out) as a ratio to plaintext's.")
        doc.table(rel)


def _paper(doc: Doc, ctx: Context, setting: str, slug: str, rows: pd.DataFrame, k: int, main: bool) -> None:
    if not main:
        return
    doc.h(3, f"Against the paper ({PAPER_CITE})")
    doc.p("The paper's reported figures beside ours. Precision/recall are ours for the positive class "
          "(y = yes) at the threshold; W. = support-weighted over both classes (the likely definition "
          "behind the paper's numbers). Definitions below.")
    doc.table(paper_rows(rows))
    ctx.latex["paper_table"] += tex_si_tables(
        paper_stats(rows), "Method", TEX_PAPER,
        f"Ours vs {PAPER_CITE}: {setting}, k = {k}; mean ± 95% CI over seeds, the best of ours in bold.",
        f"tab:paper-{slug}") + "\n"


def _leakage(doc: Doc, ctx: Context, setting: str, slug: str, rows: pd.DataFrame, k: int, main: bool) -> None:
    leak = leakage_table(rows) if main else pd.DataFrame()
    if len(leak.columns) > 2:
        doc.h(3, "Measured privacy leakage")
        doc.p("Attacks on what each method releases or shows its server, one protocol for all "
              "(docs/attacks.md): membership inference on the predictor (AUC 0.5 = chance), the "
              "leaky references (random forest, small training sets) that show the attacks work, "
              "reconstruction from federated updates, and the HE checks. Mean ± 95% CI over seeds.")
        doc.table(leak)


def _profiles(doc: Doc, ctx: Context, setting: str, slug: str, rows: pd.DataFrame, k: int,
              main: bool) -> None:
    if not main:
        return
    doc.h(3, "Segment profiles")
    doc.p("For the marketing reader: each segment's size on the test split, the mean of the "
          "segmentation features in raw units (pdays: days since the last contact, among customers "
          "contacted before), its subscription (conversion) rate and lift = segment rate / overall "
          "rate. Highest lift first; one run per method.")
    for label, frame in segment_profiles(rows):
        doc.h(4, label)
        doc.table(frame)


#: the parts of one data setting at one k: ``part(doc, ctx, setting, slug, rows, k, main)``; ``main``
#: is true for the setting's main k
def _network(doc: Doc, ctx: Context, setting: str, slug: str, rows: pd.DataFrame, k: int, main: bool) -> None:
    if main:
        from benchmarks import _network_costs

        _network_costs.section(doc, rows)


SETTING_PARTS: list[Callable[..., None]] = [_intro, _comparison, _paper, _leakage, _network, _profiles]


def figures(doc: Doc, ctx: Context) -> None:
    doc.h(2, "Figures")
    if not ctx.figures:
        doc.p("No figures: the table has no ok runs.")
        return
    doc.p("Hover a point or a bar for its values; click a legend entry to hide or show its series. "
          "Each figure is shown at its paper width (3.5 in: one column, 7.1 in: the full text width); "
          "its PDF and PNG (300 dpi) are linked under it.")
    for fig in ctx.figures:
        doc.figure(fig)


def problems(doc: Doc, ctx: Context) -> None:
    """Failed runs, and files named like records that could not be read."""
    table = ctx.table
    failed = table[table["status"] != "ok"] if not table.empty else table
    if not failed.empty:
        doc.h(2, "Failed runs")
        doc.table(failed[["method", "dataset", "k", "seed", "error", "record"]].fillna("—"))
    unreadable = table.attrs.get("skipped_records") or []
    if unreadable:
        doc.h(2, "Unreadable records")
        doc.p(f"{len(unreadable)} file(s) named like records were left out of every table and figure: "
              "they could not be read or are not shaped like a run record.")
        doc.table(pd.DataFrame(unreadable).rename(columns={"record": "File", "problem": "Problem"}))


def definitions_section(doc: Doc, ctx: Context) -> None:
    doc.h(2, "Metric definitions")
    doc.table(pd.DataFrame(definitions(), columns=["Metric", "Definition"]))


def provenance(doc: Doc, ctx: Context) -> None:
    table, source = ctx.table, ctx.source
    doc.h(2, "Provenance")
    if not table.empty:
        keys = [c for c in ("git_commit", "git_dirty", "python", "platform") if c in table]
        prov = table.groupby(keys, dropna=False).size().rename("runs").reset_index().fillna("—")
        doc.table(prov)
        versions = {c.removeprefix("version."): ", ".join(sorted(table[c].dropna().astype(str).unique()))
                    for c in table.columns if c.startswith("version.")}
        doc.table(pd.DataFrame(sorted(versions.items()), columns=["Package", "Version(s)"]))
    doc.p("Reproduce: each run's record.json holds its full resolved config, seeds, versions, machine "
          "and commit; rerun one with `uv run python -m benchmarks.run <overrides>`, or rebuild this "
          f"report with `uv run python -m benchmarks.report {source or '<table>'}`.")


#: the report, in order; :func:`add_section` inserts another module's section
def questions(doc: Doc, ctx: Context) -> None:
    """The paper's questions per data setting (:mod:`benchmarks._questions`)."""
    Q.sections(doc, ctx.ok)


def scaling(doc: Doc, ctx: Context) -> None:
    """Measured growth and its extrapolation to 10M and 100M customers (:mod:`benchmarks._scaling`)."""
    from benchmarks import _scaling

    _scaling.section(doc, ctx)


SECTIONS: list[tuple[str, Section]] = [("header", header), ("machine", machine), ("settings", settings),
                                       ("scaling", scaling), ("questions", questions), ("figures", figures),
                                       ("problems", problems), ("definitions", definitions_section),
                                       ("provenance", provenance)]


def add_section(name: str, section: Section, before: str | None = None, after: str | None = None) -> None:
    """Insert ``section`` (``section(doc, ctx)``) under ``name``, before or after a named section (at
    the end when neither is given); adding a name again replaces that section."""
    names = [n for n, _ in SECTIONS]
    if name in names:
        SECTIONS[names.index(name)] = (name, section)
        return
    anchor = before or after
    if anchor is not None and anchor not in names:
        raise ValueError(f"no report section {anchor!r}; sections: {', '.join(names)}")
    at = len(SECTIONS) if anchor is None else names.index(anchor) + (1 if after else 0)
    SECTIONS.insert(at, (name, section))


def build(table: pd.DataFrame, out_dir: Path, source: str = "") -> dict[str, Path]:
    """The report of ``table`` in ``out_dir``: HTML, Markdown, the LaTeX tables and the figures."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    figs = F.make_all(table, out_dir / "figures")
    ok = A.ok_rows(table)
    if not ok.empty and "parallel" not in ok:
        ok["parallel"] = False
    ctx = Context(table=table, ok=ok, out_dir=out_dir, source=source, figures=figs)
    doc = Doc()
    for _, section in SECTIONS:
        section(doc, ctx)
    paths = {"html": out_dir / "report.html", "md": out_dir / "report.md"}
    paths.update({name: out_dir / f"{name}.tex" for name in ctx.latex})
    contents = {"html": doc.html(TITLE, base=out_dir), "md": doc.markdown(out_dir), **ctx.latex}
    for key, path in paths.items():
        write_atomic(path, contents[key])
    return paths


def main(argv: list[str] | None = None) -> int:
    table, source, out = table_command(argv, "python -m benchmarks.report", __doc__, "report")
    paths = build(table, out, source=str(source))
    for key, path in paths.items():
        print(f"{key:12s} {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
