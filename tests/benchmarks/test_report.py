"""benchmarks.report: HTML with inline figures, a Markdown twin, LaTeX tables, paper numbers."""

from __future__ import annotations

import json
import shutil

import pandas as pd

from benchmarks import report as R


def test_report_inlines_every_figure(built):
    paths, tmp_path = built
    html = paths["html"].read_text()
    index = json.loads((tmp_path / "figures" / "index.json").read_text())
    assert index
    for fig in index:
        svg = (tmp_path / "figures" / f"{fig['name']}.svg").read_text()
        assert f'<figure id="{fig["name"]}" data-width-in="{fig["width_in"]:g}">{svg}' in html
        assert f'href="figures/{fig["name"]}.pdf"' in html  # the paper files are linked
    assert "<img" not in html and 'src="' not in html and "http" not in html.split("<body>")[0]
    assert html.count("<script>") == 1  # the legend toggle, inline
    md = paths["md"].read_text()
    for fig in index:
        assert f"](figures/{fig['name']}.png)" in md


def test_report_content(table, built):
    paths, _ = built
    md = paths["md"].read_text()
    for text in ("0.92", "0.90", "0.94", "0.93", "0.91", "0.95", "ICDSNS 2025", "Plaintext — paper",
                 "Plaintext — ours", "HE (CKKS) — ours", "not run", "Segment profiles", "Conversion", "Lift",
                 "mean age", "Metric definitions", "weighted_precision", "support-weighted", "95% CI"):
        assert text in md, text
    ours = table[(table["status"] == "ok") & (table["k"] == 4) & (table["n_train"] == table["n_train"].max())]
    assert f"| Plaintext | {len(ours)} | {ours['auc'].mean():.3f} ± " in md
    assert "0.920" in paths["paper_table"].read_text()


def test_definitions_are_text_not_markup(built):
    paths, _ = built
    html, md = paths["html"].read_text(), paths["md"].read_text()
    assert "``" not in html and "``" not in md
    assert "<code>threshold</code>" in html and "`threshold`" in md


def test_every_k_of_the_sweep_has_its_tables(built):
    paths, _ = built
    md = paths["md"].read_text()
    # the store: k in {2, 4}; 4 is the main k (paper comparison, leakage, profiles), 2 has its tables
    main, other = md.index("## bank_full (no duration), k = 4"), md.index("k = 2 (other k of the sweep)")
    assert main < other and md.count("### Method comparison") == 2
    assert md.count("### Against the paper") == 1 and md.index("### Against the paper") < other
    tex = paths["comparison"].read_text()
    assert r"\label{tab:cmp-bank_full-k4}" in tex and r"\label{tab:cmp-bank_full-k2}" in tex


def test_latex_tables_use_siunitx_bold_the_best_and_fit_a_column(built):
    from benchmarks._doc import COLUMN_PT, FILL

    paths, _ = built
    for key in ("paper_table", "comparison"):
        tex = paths[key].read_text()
        assert "\\usepackage{siunitx}" in tex.splitlines()[0]
        tables = tex.split(r"\begin{table}")[1:]
        assert tables and all(r"\bottomrule" in t and "S[table-format=" in t for t in tables)
        assert "±" not in tex and "\\bfseries" in tex
    cmp = paths["comparison"].read_text().split(r"\begin{table}")[1]
    rows = [line.split(" & ") for line in cmp.splitlines() if line.startswith("Plaintext")]
    assert all(cell.startswith("\\bfseries") for cell in rows[0][1:])  # one method: best everywhere
    from benchmarks._doc import Num, table_width_pt, tex_si_tables

    stats = [{"Method": "Plaintext", "auc": (0.73, 0.01), "t": (0.5, 0.1)},
             {"Method": "HE (CKKS, N=16384)", "auc": (0.74, 0.02), "t": (40.0, 2.0)},
             {"Method": "Paper", "auc": (0.95, float("nan")), "t": (float("nan"),) * 2, "_reference": True}]
    cols = [Num("auc", "AUC"), Num("t", "Train (s)", 2, "min")] * 4
    tex = tex_si_tables(stats, "Method", cols, "c", "tab:x")
    assert tex.count(r"\begin{table}") >= 2  # eight columns of mean ± CI do not fit one column
    for t in tex.split(r"\begin{table}")[1:]:
        n = t.count("S[table-format=")
        assert table_width_pt(stats, "Method", cols[:n]) <= FILL * COLUMN_PT
    first = tex.split(r"\begin{table}")[1]
    assert r"HE (CKKS, N=16384) & \bfseries 0.740 \pm 0.020 & 40.00 \pm 2.00" in first
    assert r"Plaintext & 0.730 \pm 0.010 & \bfseries 0.50 \pm 0.10" in first
    assert r"Paper & 0.950 & {--}" in first  # a reference is never the best


def test_latex_compiles_where_tex_is_installed(built, tmp_path):
    import subprocess

    import pytest

    if shutil.which("pdflatex") is None:
        pytest.skip("pdflatex not installed (Debian: texlive-latex-recommended, texlive-science)")
    paths, _ = built
    doc = tmp_path / "doc.tex"
    doc.write_text("\\documentclass[twocolumn]{article}\\usepackage[T1]{fontenc}\\usepackage{booktabs}"
                   "\\usepackage{siunitx}\\begin{document}\n"
                   + "".join(f"\\input{{{paths[k]}}}\n" for k in ("comparison", "paper_table"))
                   + "\\end{document}\n")
    out = subprocess.run(["pdflatex", "-interaction=nonstopmode", "-halt-on-error", doc.name], cwd=tmp_path,
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stdout[-3000:]
    assert "Overfull \\hbox" not in out.stdout  # every table fits its column


def test_relative_to_plaintext_pairs_seeds(smoke_table):
    # a second method made of real plaintext runs: every paired difference is exactly zero
    rows = smoke_table[smoke_table["k"] == 4]
    twin = rows.assign(method="dp", config_hash=rows["config_hash"] + "-twin")
    both = R.A.add_variants(pd.concat([rows, twin], ignore_index=True))
    rel = R.relative_table(both)
    assert list(rel["Method"]) == ["DP"]
    assert rel["Paired seeds"].iloc[0] == len(rows)
    assert rel["Δ AUC"].iloc[0].startswith("+0.000") and rel["Training time ×"].iloc[0].startswith("1.0")


def test_failed_runs_are_listed(smoke_table, tmp_path):
    table = smoke_table.copy()
    table.loc[0, ["status", "error"]] = ["failed", "RuntimeError: boom"]
    md = R.build(table, tmp_path)["md"].read_text()
    assert "## Failed runs" in md and "RuntimeError: boom" in md


def test_cli(smoke_table, tmp_path, capsys):
    from benchmarks.collect import write_table

    parquet, _ = write_table(smoke_table, tmp_path / "results")
    assert R.main([str(parquet)]) == 0
    html = (tmp_path / "report" / "report.html").read_text()
    assert "report.html" in capsys.readouterr().out
    # the table the report was made from is linked, relative to the report
    assert '<a href="../results.parquet">results.parquet</a>' in html
    assert "[results.csv](../results.csv)" in (tmp_path / "report" / "report.md").read_text()


def test_machine_facts_are_in_each_record_and_in_the_report(table, built):
    from benchmarks.record import machine

    here = machine()
    assert here["cpu_cores"] >= 1 and here["memory_gib"] > 0 and here["os"] and here["cpu_model"]
    assert (table["machine.cpu_cores"] == here["cpu_cores"]).all()
    assert set(table["machine.cpu_model"]) == {here["cpu_model"]}
    md = built[0]["md"].read_text()
    section = md[md.index("## Machine"):md.index("## bank_full")]
    assert here["cpu_model"] in section and f"{here['memory_gib']:g}" in section and here["os"] in section


def test_start_up_is_shown_apart_and_left_out_of_the_time_ratio(smoke_table):
    # a method that spends 10 s starting an engine and trains as fast as plaintext; plaintext rows
    # are as old records have them (no split: their whole fit time counts as training)
    rows = smoke_table[smoke_table["k"] == 4].drop(columns=["startup_s", "train_s"], errors="ignore")
    engine = rows.assign(method="federated", config_hash=rows["config_hash"] + "-fl",
                         startup_s=10.0, train_s=rows["wall_s"], wall_s=rows["wall_s"] + 10.0)
    both = R.A.add_variants(pd.concat([rows, engine], ignore_index=True))
    comp = R.comparison_table(both).set_index("Method")
    assert comp.loc["Federated", "Start-up (s)"].startswith("10.00")
    assert comp.loc["Plaintext", "Start-up (s)"] == "—"
    assert comp.loc["Federated", "Training (s)"] == comp.loc["Plaintext", "Training (s)"]
    rel = R.relative_table(both)
    assert rel["Training time ×"].iloc[0].startswith("1.0")


def test_a_module_adds_its_own_section(monkeypatch):
    import pytest

    monkeypatch.setattr(R, "SECTIONS", list(R.SECTIONS))
    R.add_section("network", lambda doc, ctx: doc.h(2, "Network costs"), after="settings")
    names = [n for n, _ in R.SECTIONS]
    assert names[names.index("settings") + 1] == "network"
    with pytest.raises(ValueError, match=r"no report section 'nope'; sections: header, machine"):
        R.add_section("x", lambda doc, ctx: None, before="nope")
