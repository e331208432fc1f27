"""benchmarks.report: HTML with embedded figures, a Markdown twin, LaTeX tables, paper numbers."""

from __future__ import annotations

import base64
import re

import pandas as pd
import pytest

from benchmarks import report as R


@pytest.fixture(scope="module")
def built(table, tmp_path_factory):
    """The report of the whole test store, built once: ``(paths, output dir)``."""
    out = tmp_path_factory.mktemp("report")
    return R.build(table, out, source="store"), out


def test_report_embeds_every_figure(built):
    paths, tmp_path = built
    html = paths["html"].read_text()
    index = (tmp_path / "figures" / "index.json").read_text()
    names = re.findall(r'"name": "([^"]+)"', index)
    assert names
    images = re.findall(r'src="data:image/png;base64,([A-Za-z0-9+/=]+)"', html)
    assert len(images) == len(names)
    for name, data in zip(names, images, strict=True):
        assert f'id="{name}"' in html
        assert base64.b64decode(data) == (tmp_path / "figures" / f"{name}.png").read_bytes()
    assert "<img" in html and 'src="figures/' not in html and "http" not in html.split("<body>")[0]
    md = paths["md"].read_text()
    for name in names:
        assert f"](figures/{name}.png)" in md


def test_report_content(table, built):
    paths, _ = built
    md = paths["md"].read_text()
    for text in ("0.92", "0.90", "0.94", "0.93", "0.91", "0.95", "ICDSNS 2025", "Plaintext — paper",
                 "Plaintext — ours", "HE (CKKS) — ours", "not run", "Segment profiles", "Conversion", "Lift",
                 "mean age", "Metric definitions", "weighted_precision", "support-weighted", "95% CI"):
        assert text in md, text
    ours = table[(table["status"] == "ok") & (table["k"] == 4) & (table["n_train"] == table["n_train"].max())]
    assert f"| Plaintext | {len(ours)} | {ours['auc'].mean():.3f} ± " in md
    for key in ("paper_table", "comparison"):
        tex = paths[key].read_text()
        assert r"\begin{tabular}" in tex and r"\bottomrule" in tex and tex.count(r"\begin{table}") == 1
    assert "0.92" in paths["paper_table"].read_text()


def test_relative_to_plaintext_pairs_seeds(smoke_table):
    # a second method made of real plaintext runs: every paired difference is exactly zero
    rows = smoke_table[smoke_table["k"] == 4]
    twin = rows.assign(method="dp", config_hash=rows["config_hash"] + "-twin")
    both = R.A.add_variants(pd.concat([rows, twin], ignore_index=True))
    rel = R.relative_table(both)
    assert list(rel["Method"]) == ["DP"]
    assert rel["Paired seeds"].iloc[0] == len(rows)
    assert rel["Δ AUC"].iloc[0].startswith("+0.000") and rel["Fit time ×"].iloc[0].startswith("1.0")


def test_failed_runs_are_listed(smoke_table, tmp_path):
    table = smoke_table.copy()
    table.loc[0, ["status", "error"]] = ["failed", "RuntimeError: boom"]
    md = R.build(table, tmp_path)["md"].read_text()
    assert "## Failed runs" in md and "RuntimeError: boom" in md


def test_cli(smoke_table, tmp_path, capsys):
    from benchmarks.collect import write_table

    parquet, _ = write_table(smoke_table, tmp_path / "results")
    assert R.main([str(parquet)]) == 0
    assert (tmp_path / "report" / "report.html").exists()
    assert "report.html" in capsys.readouterr().out
