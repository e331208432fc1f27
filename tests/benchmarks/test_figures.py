"""benchmarks.figures: every figure the table supports, as non-empty PDF and PNG files."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd

from benchmarks import _style as S
from benchmarks import figures as F
from benchmarks.collect import write_table


def _files(fig):
    return [F.Path(fig.pdf), F.Path(fig.png)]


def test_figures_from_the_store(table, tmp_path):
    made = F.make_all(table, tmp_path)
    kinds = {f.kind for f in made}
    # smoke has k in {2, 4}; the store has two training-set sizes
    assert {"k_sweep", "comparison", "costs", "scaling"} <= kinds
    assert "privacy_utility" not in kinds  # no run with an epsilon yet
    from PIL import Image

    for fig in made:
        for path in _files(fig) + [F.Path(fig.svg)]:
            assert path.exists() and path.stat().st_size > 1000, path
        assert F.Path(fig.pdf).read_bytes().startswith(b"%PDF")
        assert F.Path(fig.png).read_bytes().startswith(b"\x89PNG")
        assert fig.caption
        # one of the two paper widths, and the files are that size (nothing cropped)
        assert fig.width_in in (S.COLUMN_W, S.TEXT_W), fig
        assert Image.open(fig.png).size == (round(fig.width_in * S.DPI), round(fig.height_in * S.DPI))
        svg = F.Path(fig.svg).read_text()
        assert svg.startswith("<svg") and f'width="{fig.width_in * 72:g}pt"' in svg
        assert "<title>" in svg and "data-legend" in svg  # hover values, clickable legend
    index = json.loads((tmp_path / "index.json").read_text())
    assert [e["name"] for e in index] == [f.name for f in made]
    assert not list(tmp_path.glob(".*"))  # no temporary files left behind


def test_privacy_utility_figure_draws_epsilon_and_references(smoke_table, tmp_path):
    # Stand-in DP rows until the dp method lands on this branch: real plaintext runs relabelled with
    # budgets (one of them infinite, recorded as "inf"), to exercise the epsilon axis.
    base = smoke_table[smoke_table["k"] == 4]
    dp = []
    for eps in (0.1, 1.0, math.inf):
        rows = base.copy()
        rows["method"], rows["epsilon"] = "dp", eps
        rows["config_hash"] = rows["config_hash"] + f"-{eps}"
        dp.append(rows)
    table = pd.concat([smoke_table, *dp], ignore_index=True)
    made = F.make_all(table, tmp_path)
    pu = [f for f in made if f.kind == "privacy_utility"]
    assert len(pu) == 1 and pu[0].name.endswith("_k4")
    assert all(p.stat().st_size > 1000 for p in _files(pu[0]))


def test_cli_reads_parquet_and_csv(smoke_table, tmp_path, capsys):
    parquet, csv = write_table(smoke_table, tmp_path / "results")
    assert F.main([str(parquet)]) == 0
    first = sorted(p.name for p in (tmp_path / "figures").iterdir())
    assert F.main([str(csv), "-o", str(tmp_path / "from_csv")]) == 0
    assert sorted(p.name for p in (tmp_path / "from_csv").iterdir()) == first
    assert "k_sweep" in capsys.readouterr().out


def test_no_ok_runs_means_no_figures(smoke_table, tmp_path):
    failed = smoke_table.assign(status="failed", auc=np.nan)
    assert F.make_all(failed, tmp_path) == []


def test_palettes_never_share_a_colour():
    methods = set(S.METHOD_COLORS.values()) | set(S.EXTRA_METHOD_COLORS)
    phases = set(S.PHASE_PALETTE) | {S.OTHER_PHASE, S.STARTUP_COLOR}
    parties = set(S.PARTY_COLORS.values()) | set(S.EXTRA_PARTY_COLORS) | {S.OTHER_PARTY}
    assert not (methods & phases) and not (methods & parties) and not (phases & parties)
    names = [f"p{i}" for i in range(9)]
    assert len(set(S.phase_colors(names).values())) == 9  # distinct within a figure
    assert S.phase_colors(["ray_start", "other phases"]) == {"ray_start": S.STARTUP_COLOR,
                                                             "other phases": S.OTHER_PHASE}
    assert [S.party_group(p) for p in ("client-3", "client_10", "server", "keyholder")] == \
        ["clients", "clients", "server", "keyholder"]


def test_costs_legend_groups_minor_phases_and_clients(smoke_table, tmp_path):
    import re

    rows = smoke_table[smoke_table["k"] == 4].copy()
    # twenty phases (one of them an engine start-up) and ten clients
    for i in range(20):
        rows[f"phase.step{i:02d}_s"] = 0.1 * (i + 1)
    rows["phase.ray_start_s"] = 0.01
    for i in range(10):
        rows[f"party.client-{i}.cpu_s"], rows[f"party.client-{i}.bytes_sent"] = 0.1, 1000.0
    with S.style():
        (fig,) = F.costs(rows.assign(parallel=False), "s", "s", tmp_path)
    svg = F.Path(fig.svg).read_text()
    entries = set(re.findall(r'data-series="(s\d+)" data-legend', svg))
    assert 0 < len(entries) <= S.MAX_LEGEND
    legend_texts = re.findall(r'<g id="[^"]+" data-series="s\d+" data-legend="1"><title>|'
                              r'data-legend="1">\s*<text[^>]*>([^<]+)</text>', svg)
    shown = {t.strip() for t in legend_texts if t}
    assert {"other phases", "ray_start", "clients", "owner", "step19"} <= shown, shown
    assert not any(t.startswith("client-") for t in shown)


def test_group_minor_keeps_the_largest_and_start_up():
    parts = pd.DataFrame({"a": [5.0], "b": [1.0], "c": [0.5], "ray_start": [0.1], "d": [3.0]})
    out = S.group_minor(parts, 3, protect=S.is_startup, other="other phases")
    assert list(out.columns) == ["ray_start", "a", "other phases"]
    assert out["other phases"].iloc[0] == 4.5 and out.to_numpy().sum() == parts.to_numpy().sum()


def test_a_figure_is_one_of_the_two_paper_widths():
    import pytest

    with pytest.raises(ValueError, match=r"figure width 'wide'; expected one of \['column', 'text'\]"):
        S.new_figure("wide")
