"""benchmarks._scaling: growth exponents, the affine extrapolation and its report section, from a
table of runs whose costs follow known laws."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from benchmarks import _scaling
from benchmarks import figures as F

SIZES = [10_000, 100_000, 1_000_000]


def _table() -> pd.DataFrame:
    rows = []
    for n in SIZES:
        base = {
            "status": "ok",
            "dataset": "synthetic",
            "dataset.include_duration": False,
            "dataset.subsample": None,
            "k": 4,
            "seed": 0,
            "n_train": n,
            "n_test": 9043,
            "auc": 0.76,
            "parallel": False,
            "startup_s": 0.0,
            "rounds": 1,
        }
        # plaintext: 2 s fixed + 1 s per 100k rows; HE: 1 ms a row with 2 workers, K-means a fifth
        rows.append(
            {
                **base,
                "method": "plaintext",
                "train_s": 2 + n / 1e5,
                "wall_s": 2 + n / 1e5,
                "bytes_total": 0,
                "peak_rss_mb": 300 + n / 1e3,
            }
        )
        he = {
            **base,
            "method": "he",
            "method.workers": 2,
            "train_s": n / 1e3,
            "wall_s": n / 1e3,
            "bytes_total": 1000 * n,
            "peak_rss_mb": 500 + n / 500,
        }
        if n < SIZES[-1]:  # the encrypted predictor's phase names; the largest n: predictor=owner's
            he.update({f"phase.{p}_s": n / 5e3 / 5 for p in _scaling.HE_KMEANS_PHASES})
        else:
            he.update({f"phase.{p}_s": n / 5e3 / 5 for p in _scaling.HE_KMEANS_OWN_PHASES})
        rows.append(he)
    return pd.DataFrame(rows)


def test_growth_exponents_of_known_laws():
    n = np.array(SIZES, dtype=float)
    b, log_a = _scaling.fit_power(n, 3 * n**1.5)
    assert b == pytest.approx(1.5) and math.exp(log_a) == pytest.approx(3)
    assert _scaling.fit_power(n[:1], n[:1]) is None
    got = {label: _scaling.exponents(r) for _, label, r in _scaling.series(_table())}
    assert got["HE (CKKS)"]["train_time"] == pytest.approx(1.0)
    assert got["HE K-means (its stages)"]["train_time"] == pytest.approx(1.0)
    assert got["Plaintext"]["train_time"] < 0.5  # fixed costs dominate the small sizes


def test_extrapolation_is_affine_in_the_marginal_cost_and_splits_over_workers():
    table = _scaling.extrapolation_table(_table(), targets=(10_000_000,), workers=(4,))
    row = table.set_index("Regime").loc["HE (CKKS)"]
    assert row["time (as measured)"] == "2.78 h (w = 2)"  # 10M rows at 1 ms a row
    assert row["time, W = 4"] == "1.39 h"  # the per-row part over 4 workers instead of 2
    assert row["bytes"] == "9.313 GiB" and row["s per 1M rows (marginal)"] == "1e+03"
    plain = table.set_index("Regime").loc["Plaintext"]
    assert plain["time (as measured)"] == "1.7 min" and plain["time, W = 4"] == "— (one process)"


def test_report_section_and_figure(tmp_path):
    from types import SimpleNamespace

    from benchmarks._doc import Doc

    doc = Doc()
    _scaling.section(doc, SimpleNamespace(ok=_table()))
    text = doc.markdown(tmp_path)
    assert "## Scaling: synthetic (no duration)" in text and "Extrapolation, not a measurement" in text
    with F.S.style():
        made = F.scaling(_table(), "synthetic (no duration)", "synthetic", tmp_path)
    assert len(made) == 1 and "growth exponent" in made[0].caption
    svg = F.Path(made[0].svg).read_text()
    assert "n^{1.00}" in svg or "1.00" in svg
