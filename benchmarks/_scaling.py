"""How each regime's cost grows with the number of customers: fitted growth exponents and an
extrapolation to 10M and 100M customers, from the records of a scaling sweep (``+experiment=scaling``).

A cost y measured at training sizes n is fitted as y = a * n^b by least squares on log y against
log n (means over seeds per n); ``b`` is the growth exponent the figure shows. Small sizes are
dominated by fixed costs (start-up of pools, keys, the test-set scoring), so b over a range says how
the cost grew there, not how it grows beyond. The extrapolation is therefore affine: the cost at
the largest measured n plus the marginal cost per row between the two largest sizes times the
extra rows. With W workers, the per-row part of the time of the regimes whose per-row work splits
over workers (HE: the compute server's chunks, measured with w workers; federated: the clients' local
passes, counted as w = 1 since its clients ran on one machine) is scaled by w / W (an ideal split, an
optimistic bound), the fixed part is not; plaintext and DP run in one process and are shown unsplit.
The table says it is an extrapolation; nothing in it is measured.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from benchmarks import _analysis as A

TARGETS = (10_000_000, 100_000_000)
WORKERS = (16, 128)
#: HE K-means stages as costs.phases names them: keys, encryption, secure seeding, Lloyd rounds, final
#: assignment (beside the encrypted predictor's lr_* phases), or as the K-means estimator names them
#: (with predictor=owner)
HE_KMEANS_PHASES = ("keys", "encryption", "seeding", "clustering", "assignments")
HE_KMEANS_OWN_PHASES = ("keys", "encrypt", "seeding", "lloyd", "final_assignment")
HE_KMEANS = "he K-means"
#: regimes whose per-row work splits over workers, and the column of the measured worker count
#: (federated: its clients ran on this one machine, counted as one worker)
SPLIT = {"he": "method.workers", "federated": None}
COSTS = (("train_time", "time"), ("bytes_total", "bytes"), ("peak_rss_mb", "peak RSS"))


def he_kmeans_time(rows: pd.DataFrame) -> pd.Series:
    """Seconds of the HE K-means stages of each HE row (NaN for other rows or without phases)."""
    total = pd.Series(np.nan, index=rows.index)
    for names in (HE_KMEANS_OWN_PHASES, HE_KMEANS_PHASES):  # the second wins where both are there
        cols = [f"phase.{p}_s" for p in names]
        if rows.empty or not all(c in rows for c in cols):
            continue
        found = rows[cols].astype(float).sum(axis=1, min_count=len(cols))
        total = found.where(found.notna(), total)
    return total.where(rows["method"] == "he")


def fit_power(n: np.ndarray, y: np.ndarray) -> tuple[float, float] | None:
    """``(b, log a)`` of y = a * n^b, or None with fewer than two positive points."""
    keep = np.isfinite(y) & (y > 0) & np.isfinite(n) & (n > 0)
    if len(np.unique(n[keep])) < 2:
        return None
    b, log_a = np.polyfit(np.log(n[keep]), np.log(y[keep]), 1)
    return float(b), float(log_a)


def means(rows: pd.DataFrame, col: str) -> tuple[np.ndarray, np.ndarray]:
    g = rows.groupby("n_train")[col].mean() if col in rows else pd.Series(dtype=float)
    g = g[np.isfinite(g.astype(float))]
    return g.index.to_numpy(float), g.to_numpy(float)


def series(rows: pd.DataFrame) -> list[tuple[str, str, pd.DataFrame]]:
    """``(variant, label, rows)`` per variant of the sweep, plus HE K-means alone (its stages' time,
    over every HE row whatever the predictor) as ``train_time`` of a series of its own."""
    rows = A.with_fit_split(A.add_variants(rows, exclude=("n_train",)))
    out = [
        (v, rows.loc[rows["variant"] == v, "variant_label"].iloc[0], rows[rows["variant"] == v])
        for v in A.variant_order(rows)
    ]
    he = rows[rows["method"] == "he"]
    if not he.empty:
        km = he.assign(train_time=he_kmeans_time(he), bytes_total=np.nan, peak_rss_mb=np.nan)
        if km["train_time"].notna().any():
            out.append((HE_KMEANS, "HE K-means (its stages)", km))
    return out


def exponents(rows: pd.DataFrame) -> dict[str, float | None]:
    """The growth exponent of each cost of one series over every measured n."""
    out = {}
    for col, _ in COSTS:
        fitted = fit_power(*means(rows, col))
        out[col] = None if fitted is None else fitted[0]
    return out


def marginal(rows: pd.DataFrame, col: str) -> tuple[float, float, float] | None:
    """``(n_max, y(n_max), per-row cost)`` for the affine extrapolation y(N) = y(n_max) + c (N - n_max):
    c the marginal cost per row between the two largest measured sizes, or, when noise makes it
    negative, the average cost per row at n_max (an upper bound). None without two sizes."""
    n, y = means(rows, col)
    if len(n) < 2:
        return None
    order = np.argsort(n)
    n, y = n[order], y[order]
    c = (y[-1] - y[-2]) / (n[-1] - n[-2])
    if c < 0:
        c = y[-1] / n[-1]
    return float(n[-1]), float(y[-1]), float(c)


def _workers(rows: pd.DataFrame, method: str) -> int | None:
    method = "he" if method == HE_KMEANS else method
    if method not in SPLIT:
        return None
    col = SPLIT[method]
    if col is None or col not in rows or rows[col].isna().all():
        return 1
    return int(rows[col].dropna().astype(float).max())


def human_seconds(s: float) -> str:
    if not math.isfinite(s):
        return "—"
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if s >= size:
            return f"{s / size:.3g} {unit}"
    return f"{s:.3g} s"


def human_bytes(b: float) -> str:
    if not math.isfinite(b) or b <= 0:
        return "—"
    for unit, size in (("TiB", 2**40), ("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if b >= size:
            return f"{b / size:.4g} {unit}"
    return f"{b:.0f} B"


def extrapolation_table(rows: pd.DataFrame, targets=TARGETS, workers=WORKERS) -> pd.DataFrame:
    """One row per series and target size: the growth exponent over the measured sizes, the marginal
    cost per million rows, and the extrapolated training time (as measured, and with each W of
    ``workers``: the per-row part split over W workers, the rest not), bytes and peak RSS."""
    out = []
    for variant, label, r in series(rows):
        method = variant if variant == HE_KMEANS else r["method"].iloc[0]
        fit = marginal(r, "train_time")
        if fit is None:
            continue
        n_max, t_max, c = fit
        slope = fit_power(*means(r, "train_time"))
        w = _workers(r, method)
        fixed = max(t_max - c * n_max, 0.0)
        for target in targets:
            t1 = t_max + c * (target - n_max)
            row = {
                "Regime": label,
                "measured up to n": f"{int(n_max):,}",
                "time ∝ n^b": "—" if slope is None else f"{slope[0]:.2f}",
                "s per 1M rows (marginal)": f"{c * 1e6:.3g}",
                "customers": f"{target:,}",
                "time (as measured)": human_seconds(t1) + (f" (w = {w})" if w else ""),
            }
            for W in workers:
                row[f"time, W = {W}"] = human_seconds(fixed + c * target * w / W) if w else "— (one process)"
            for col, name in COSTS[1:]:
                f = marginal(r, col)
                if f is None or not np.isfinite(f[1]):
                    row[name] = "—"
                    continue
                value = f[1] + f[2] * (target - f[0])
                row[name] = human_bytes(value) if col == "bytes_total" else human_bytes(value * 2**20)
            out.append(row)
    return pd.DataFrame(out)


def measured_table(rows: pd.DataFrame) -> pd.DataFrame:
    """The measured points behind the figure: per series and n, time, bytes and peak RSS."""
    out = []
    for _, label, r in series(rows):
        for n, g in r.groupby("n_train"):
            out.append(
                {
                    "Regime": label,
                    "n": f"{int(n):,}",
                    "time": human_seconds(float(g["train_time"].mean())),
                    "s per 1,000 rows": f"{1000 * float(g['train_time'].mean()) / n:.3g}",
                    "bytes": human_bytes(float(g["bytes_total"].mean())),
                    "peak RSS": human_bytes(float(g["peak_rss_mb"].mean()) * 2**20),
                    "AUC": "—"
                    if g["auc"].isna().all() or label.startswith("HE K-means")
                    else f"{float(g['auc'].mean()):.3f}",
                }
            )
    return pd.DataFrame(out)


def section(doc, ctx) -> None:
    """The report's scaling section: measured points and the extrapolation, per data setting that has
    two or more training sizes."""
    if ctx.ok.empty or "n_train" not in ctx.ok:
        return
    for setting, _, rows in A.settings(ctx.ok, with_subsample=False):
        if rows["n_train"].nunique() < 2:
            continue
        rows = rows[rows["k"] == A.main_k(rows)]
        doc.h(2, f"Scaling: {setting}")
        doc.p(
            "Measured training time (start-up apart), bytes sent between parties and peak RSS per "
            "training-set size (means over seeds; wall times depend on the machine's load, see "
            "Machine)."
        )
        doc.table(measured_table(rows))
        doc.p(
            f"**Extrapolation, not a measurement**, to {' and '.join(f'{t:,}' for t in TARGETS)} "
            "customers: each cost at the largest measured n plus its marginal cost per row (between "
            'the two largest sizes) times the extra rows. "time ∝ n^b": the growth exponent of a '
            'log–log fit over every measured size (below 1 where fixed costs dominate). "W = …": '
            "the per-row part of the time scaled by w / W (w: the measured workers), split ideally "
            "over W workers (HE: the server's ciphertext chunks; federated: the clients' local "
            "passes), an optimistic bound that ignores coordination, the key holder and the network; "
            "plaintext and DP run in one process. Peak RSS: of one process holding every row."
        )
        doc.table(extrapolation_table(rows))
