"""Method-comparison report from a results table: self-contained HTML, a Markdown twin, LaTeX tables.

    uv run python -m benchmarks.report results/sweeps/paper_table/<stamp>/results.parquet [-o DIR]

Writes to ``DIR`` (default: ``report/`` beside the table): ``report.html`` (figures embedded as
base64 PNG, no external files), ``report.md`` (links ``figures/*.png``), ``paper_table.tex`` and
``comparison.tex`` (booktabs), and ``figures/`` (regenerated from the table by
:mod:`benchmarks.figures`). Nothing is re-run: every number comes from stored records.
"""

from __future__ import annotations

import json
import math
import sys
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd

from benchmarks import _analysis as A
from benchmarks import _questions as Q
from benchmarks import figures as F
from benchmarks import metrics as metrics_module
from benchmarks._doc import Doc, fmt_ci, fmt_num, tex_table
from benchmarks.collect import table_command
from methods._util import write_atomic

#: K. Zhang, ICDSNS 2025: the encrypted pipeline vs plaintext, best at k = 4
PAPER = {"he": {"precision": 0.92, "recall": 0.90, "auc": 0.94},
         "plaintext": {"precision": 0.93, "recall": 0.91, "auc": 0.95}}
PAPER_CITE = "K. Zhang, ICDSNS 2025"

SCORES = [("auc", "AUC"), ("precision", "Precision"), ("recall", "Recall"), ("f1", "F1"),
          ("weighted_precision", "W. precision"), ("weighted_recall", "W. recall"), ("pr_auc", "PR-AUC")]
QUALITY = [("silhouette", "Silhouette"), ("ari_vs_plaintext", "ARI vs plaintext")]
COSTS = [("wall_s", "Fit time (s)"), ("bytes_total", "Bytes (MiB)"), ("rounds", "Rounds"),
         ("peak_rss_mb", "Peak RSS (MiB)")]

EXTRA_DEFINITIONS = [
    ("95% CI", "mean over seeds ± the half-width of the 95% Student-t interval (t₀.₉₇₅,ₙ₋₁ · s/√n); "
     "\"—\" when fewer than two seeds. Seeds change the method's randomness (seeding, noise, "
     "partitions); the train/test split is fixed by split_seed."),
    ("Δ vs plaintext", "per seed, the method's score minus the plaintext run's on the same data "
     "setting, k, seed and split; mean and 95% CI of these paired differences."),
    ("Fit time", "wall-clock seconds of fit() (segmentation + predictor, all parties); timings of "
     "jobs run concurrently are flagged and are not comparable with sequential ones."),
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


def comparison_table(rows: pd.DataFrame) -> pd.DataFrame:
    """One row per method variant: scores, segmentation quality and costs with 95% CIs."""
    out = []
    for v in A.variant_order(rows):
        r = rows[rows["variant"] == v]
        line = {"Method": r["variant_label"].iloc[0], "Seeds": len(r)}
        for col, label in SCORES + QUALITY:
            line[label] = _ci_cell(r, col)
        line["Fit time (s)"] = _ci_cell(r, "wall_s", 2) + (" †" if r["parallel"].any() else "")
        line["Bytes (MiB)"] = _ci_cell(r, "bytes_total", 2, 1 / 2**20)
        line["Rounds"] = _ci_cell(r, "rounds", 0)
        eps = r["epsilon"].dropna().unique() if "epsilon" in r else []
        line["ε"] = ", ".join("∞" if e == math.inf else f"{e:g}" for e in sorted(eps)) or "—"
        line["MIA AUC"] = _ci_cell(r, "leakage.mia_auc")
        out.append(line)
    return pd.DataFrame(out)


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
    """Paired differences (method - plaintext on the same seed) with 95% CIs; time as a ratio."""
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
        ratio = merged["wall_s"] / merged["wall_s_ref"]
        mean, half, _ = A.mean_ci(ratio)
        line["Fit time ×"] = fmt_ci(mean, half, 1)
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


def _header(doc: Doc, table: pd.DataFrame, source: str) -> None:
    doc.h(1, TITLE)
    counts = (table.groupby(["method", "status"]).size().rename("runs").reset_index()
              if not table.empty else pd.DataFrame(columns=["method", "status", "runs"]))
    doc.p(f"Generated {datetime.now(UTC).isoformat(timespec='seconds')} from {source or 'a results table'}: "
          f"{len(table)} runs ({int((table.get('status') == 'ok').sum()) if not table.empty else 0} ok"
          + (f"; {len(table.attrs['skipped_records'])} unreadable record(s) left out"
             if table.attrs.get("skipped_records") else "") + "). "
          "Every number below comes from stored run records; nothing was re-run. "
          "Methods not present in the table are simply absent.")
    if not counts.empty:
        doc.table(counts.rename(columns={"method": "Method", "status": "Status", "runs": "Runs"}))


def _setting(doc: Doc, setting: str, slug: str, rows: pd.DataFrame, latex: dict[str, str]) -> None:
    """One data setting at its main k: comparison, relative, paper, leakage and segment sections."""
    rows = A.largest_n(rows)
    k = A.main_k(rows)
    rows = A.add_variants(rows[rows["k"] == k])
    n_train = rows["n_train"].dropna()
    doc.h(2, f"{setting}, k = {k}")
    if len(n_train):
        doc.p(f"{int(n_train.iloc[0]):,} training rows, {int(rows['n_test'].dropna().iloc[0]):,} test "
              "rows. Mean ± 95% CI over seeds."
              + (" † = includes timings of concurrently run jobs." if rows["parallel"].any() else ""))
    doc.h(3, "Method comparison")
    comp = comparison_table(rows)
    doc.table(comp)
    rel = relative_table(rows)
    if not rel.empty:
        doc.h(3, "Relative to plaintext")
        doc.p("Paired differences (method − plaintext, same seed and split) with 95% CIs; "
              "fit time as a ratio to plaintext's.")
        doc.table(rel)
    doc.h(3, f"Against the paper ({PAPER_CITE})")
    paper = paper_rows(rows)
    doc.p("The paper's reported figures beside ours. Precision/recall are ours for the positive class "
          "(y = yes) at the threshold; W. = support-weighted over both classes (the likely definition "
          "behind the paper's numbers). Definitions below.")
    doc.table(paper)
    latex["paper_table"] += tex_table(
        paper, f"Ours vs {PAPER_CITE}: {setting}, k = {k}; mean ± 95% CI over seeds.",
        f"tab:paper-{slug}") + "\n"
    latex["comparison"] += tex_table(
        comp[["Method", "Seeds", "AUC", "Precision", "Recall", "F1", "Silhouette", "Fit time (s)",
              "Bytes (MiB)"]],
        f"Method comparison: {setting}, k = {k}; mean ± 95% CI over seeds.", f"tab:cmp-{slug}") + "\n"
    _leakage(doc, rows)
    _profiles(doc, rows)


def _leakage(doc: Doc, rows: pd.DataFrame) -> None:
    leak = leakage_table(rows)
    if len(leak.columns) > 2:
        doc.h(3, "Measured privacy leakage")
        doc.p("Attacks on what each method releases or shows its server, one protocol for all "
              "(docs/attacks.md): membership inference on the predictor (AUC 0.5 = chance), the "
              "leaky references (random forest, small training sets) that show the attacks work, "
              "reconstruction from federated updates, and the HE checks. Mean ± 95% CI over seeds.")
        doc.table(leak)


def _profiles(doc: Doc, rows: pd.DataFrame) -> None:
    doc.h(3, "Segment profiles")
    doc.p("For the marketing reader: each segment's size on the test split, the mean of the "
          "segmentation features in raw units (pdays: days since the last contact, among customers "
          "contacted before), its subscription (conversion) rate and lift = segment rate / overall "
          "rate. Highest lift first; one run per method.")
    for label, frame in segment_profiles(rows):
        doc.h(4, label)
        doc.table(frame)


def _figures(doc: Doc, figs: list[F.Figure]) -> None:
    doc.h(2, "Figures")
    if not figs:
        doc.p("No figures: the table has no ok runs.")
    for fig in figs:
        doc.figure(fig)


def _problems(doc: Doc, table: pd.DataFrame) -> None:
    """Failed runs, and files named like records that could not be read."""
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


def _provenance(doc: Doc, table: pd.DataFrame, source: str) -> None:
    doc.h(2, "Provenance")
    if not table.empty:
        prov = (table.groupby(["git_commit", "git_dirty", "python", "platform"], dropna=False).size()
                .rename("runs").reset_index().fillna("—"))
        doc.table(prov)
        versions = {c.removeprefix("version."): ", ".join(sorted(table[c].dropna().astype(str).unique()))
                    for c in table.columns if c.startswith("version.")}
        doc.table(pd.DataFrame(sorted(versions.items()), columns=["Package", "Version(s)"]))
    doc.p("Reproduce: each run's record.json holds its full resolved config, seeds, versions and commit; "
          "rerun one with `uv run python -m benchmarks.run <overrides>`, or rebuild this report with "
          f"`uv run python -m benchmarks.report {source or '<table>'}`.")


def build(table: pd.DataFrame, out_dir: Path, source: str = "") -> dict[str, Path]:
    """The report of ``table`` in ``out_dir``: HTML, Markdown, the two LaTeX tables and the figures."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    figs = F.make_all(table, out_dir / "figures")
    ok = A.ok_rows(table)
    if not ok.empty and "parallel" not in ok:
        ok["parallel"] = False
    doc = Doc()
    _header(doc, table, source)
    latex: dict[str, str] = {"paper_table": "", "comparison": ""}
    for setting, slug, rows in (A.settings(ok, with_subsample=False) if not ok.empty else []):
        _setting(doc, setting, slug, rows, latex)
    Q.sections(doc, ok)
    _figures(doc, figs)
    _problems(doc, table)
    doc.h(2, "Metric definitions")
    doc.table(pd.DataFrame(definitions(), columns=["Metric", "Definition"]))
    _provenance(doc, table, source)

    paths = {"html": out_dir / "report.html", "md": out_dir / "report.md",
             "paper_table": out_dir / "paper_table.tex", "comparison": out_dir / "comparison.tex"}
    contents = {"html": doc.html(TITLE), "md": doc.markdown(out_dir), **latex}
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
