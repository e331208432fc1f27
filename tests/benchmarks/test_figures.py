"""benchmarks.figures: every figure the table supports, as non-empty PDF and PNG files."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd

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
    for fig in made:
        for path in _files(fig):
            assert path.exists() and path.stat().st_size > 1000, path
        assert F.Path(fig.pdf).read_bytes().startswith(b"%PDF")
        assert F.Path(fig.png).read_bytes().startswith(b"\x89PNG")
        assert fig.caption
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
