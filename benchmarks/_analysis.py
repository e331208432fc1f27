"""Shared by figures and report: method names, settings, variant labels and styles, 95% CIs, and the
fit time split into start-up and training. Colours come from :mod:`benchmarks._style`."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
from scipy import stats

from benchmarks._style import METHOD_COLORS, method_color  # noqa: F401  (METHOD_COLORS: re-exported)

METHOD_ORDER = ["plaintext", "he", "federated", "dp"]
METHOD_NAMES = {"plaintext": "Plaintext", "he": "HE (CKKS)", "federated": "Federated", "dp": "DP"}
METHOD_MARKERS = {"plaintext": "o", "he": "s", "federated": "^", "dp": "D"}

#: the columns that, together, say which data a run saw
SETTING = ["dataset", "dataset.include_duration", "dataset.subsample"]
#: columns that identify a run but are never part of a variant label
NOT_VARIANT = {"method.epsilon"}


def ok_rows(table: pd.DataFrame) -> pd.DataFrame:
    if table.empty or "status" not in table:
        return table.iloc[0:0]
    return table[table["status"] == "ok"].copy()


def mean_ci(values) -> tuple[float, float, int]:
    """Mean, half-width of the 95% t-interval, and n (half-width NaN when n < 2)."""
    v = np.asarray(pd.to_numeric(pd.Series(values), errors="coerce").dropna(), dtype=float)
    n = len(v)
    if n == 0:
        return math.nan, math.nan, 0
    if n == 1:
        return float(v[0]), math.nan, 1
    half = float(stats.t.ppf(0.975, n - 1) * v.std(ddof=1) / math.sqrt(n))
    return float(v.mean()), half, n


def method_name(method: str, row=None) -> str:
    """The human name of a method's run: an HE run names its scheme (``method.scheme`` of the row,
    when the table has it), so a BFV run is not labelled with :data:`METHOD_NAMES`' CKKS."""
    scheme = None if row is None else row.get("method.scheme")
    if method == "he" and isinstance(scheme, str) and scheme:
        return f"HE ({scheme.upper()})"
    return METHOD_NAMES.get(method, method)


def method_sort_key(method: str) -> tuple[int, str]:
    return (METHOD_ORDER.index(method) if method in METHOD_ORDER else len(METHOD_ORDER), method)


def _fmt(value) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def add_variants(table: pd.DataFrame, exclude: tuple[str, ...] = ()) -> pd.DataFrame:
    """Add ``variant`` (a method plus the options that vary among its rows, e.g. "dp (epsilon=1)")
    and ``variant_label`` (the human name). Columns in ``exclude`` (a figure's x axis) are ignored."""
    table = table.copy()
    variants = pd.Series("", index=table.index, dtype=object)
    labels = pd.Series("", index=table.index, dtype=object)
    for method, rows in table.groupby("method"):
        option_cols = [c for c in rows.columns if c.startswith("method.") and c not in exclude
                       and c not in NOT_VARIANT and rows[c].astype(str).nunique(dropna=False) > 1]
        eps_varies = "epsilon" in rows and rows["epsilon"].nunique(dropna=True) > 1
        if eps_varies:  # an option that moves with epsilon (a noise multiplier) is said by epsilon
            option_cols = [c for c in option_cols
                           if rows.groupby("epsilon")[c].nunique(dropna=False).max() > 1]
        for idx, row in rows.iterrows():
            opts = ", ".join(f"{c.removeprefix('method.')}={_fmt(row[c])}" for c in option_cols)
            variants[idx] = f"{method} ({opts})" if opts else method
            name = method_name(method, row)
            shown = ", ".join(f"{c.removeprefix('method.')}={_fmt(row[c])}" for c in option_cols
                              if not (method == "he" and c == "method.scheme"))  # in the name
            labels[idx] = f"{name} ({shown})" if shown else name
        if "epsilon" not in exclude and eps_varies:
            for idx, row in rows.iterrows():
                eps = "∞" if row["epsilon"] == math.inf else f"{row['epsilon']:g}"
                variants[idx] += f" [eps={eps}]"
                labels[idx] += f" (ε={eps})"
    table["variant"], table["variant_label"] = variants, labels
    return table


def variant_order(table: pd.DataFrame) -> list[str]:
    """Variants by method (plaintext, he, federated, dp), then by epsilon (strongest privacy first)."""
    firsts = table.drop_duplicates("variant").set_index("variant")
    eps = firsts["epsilon"] if "epsilon" in firsts else pd.Series(math.nan, index=firsts.index)
    def key(v):
        e = eps[v]
        return method_sort_key(firsts.loc[v, "method"]), e == e, e if e == e else 0.0, v

    return sorted(firsts.index, key=key)


def _shade(color: str, amount: float) -> tuple[float, float, float]:
    """``color`` mixed with white (amount 0 = the colour itself)."""
    from matplotlib.colors import to_rgb

    return tuple(c + (1 - c) * amount for c in to_rgb(color))


def style(variant: str, i: int = 0, of: int = 1) -> dict:
    """Line/bar style of a variant: its method's colour and marker; the ``i``-th of ``of`` variants
    of one method gets a lighter shade and its own dash."""
    method = variant.split(" ")[0]
    color = method_color(method)
    if of > 1:
        color = _shade(color, 0.6 * i / (of - 1))
    return {"color": color, "marker": METHOD_MARKERS.get(method, "v"),
            "linestyle": ["-", "--", ":", "-."][i % 4]}


def styles(variants: list[str]) -> dict[str, dict]:
    """:func:`style` for each variant, shading variants of the same method apart."""
    by_method: dict[str, list[str]] = {}
    for v in variants:
        by_method.setdefault(v.split(" ")[0], []).append(v)
    return {v: style(v, group.index(v), len(group)) for group in by_method.values() for v in group}


#: the source of each dataset, for the report (a csv table is the researcher's own)
DATA_CITES = {
    "bank_full": "UCI Bank Marketing (Moro, Cortez & Rita, Decision Support Systems 62, 2014)",
    "bank_additional": "UCI Bank Marketing (Moro, Cortez & Rita, Decision Support Systems 62, 2014)",
    "cdnow": "CDNOW purchase histories (Fader & Hardie; Fader, Hardie & Lee, Marketing Science 24(2), 2005)",
}


def train_seconds(rows: pd.DataFrame) -> pd.Series:
    """Seconds of fit() spent training, start-up left out (``costs.train_s``); records without the
    split (older ones) give their whole fit time (``wall_s``)."""
    wall = pd.to_numeric(rows["wall_s"], errors="coerce") if "wall_s" in rows else pd.Series(
        math.nan, index=rows.index)
    if "train_s" not in rows:
        return wall
    return pd.to_numeric(rows["train_s"], errors="coerce").where(lambda s: s.notna(), wall)


def startup_seconds(rows: pd.DataFrame) -> pd.Series:
    """Seconds of engine start-up inside fit() (``costs.startup_s``: Ray, SuperLink, HE services);
    NaN where the record does not say (older records)."""
    if "startup_s" not in rows:
        return pd.Series(math.nan, index=rows.index)
    return pd.to_numeric(rows["startup_s"], errors="coerce")


def with_fit_split(rows: pd.DataFrame) -> pd.DataFrame:
    """``rows`` with the columns ``train_time`` (:func:`train_seconds`) and ``startup_time``
    (:func:`startup_seconds`)."""
    return rows.assign(train_time=train_seconds(rows), startup_time=startup_seconds(rows))


def setting_label(dataset: str, include_duration, subsample) -> str:
    """``bank_full (no duration)``; a dataset without a duration column (``include_duration`` null:
    cdnow, csv) is named alone."""
    parts = []
    if include_duration is not None and include_duration == include_duration:
        parts.append("with duration" if bool(include_duration) else "no duration")
    if subsample is not None and subsample == subsample:
        parts.append(f"{int(subsample):,}-row subsample")
    return f"{dataset} ({', '.join(parts)})" if parts else dataset


def setting_slug(dataset: str, include_duration, subsample=None) -> str:
    slug = dataset + ("_duration" if bool(include_duration) and include_duration == include_duration else "")
    if subsample is not None and subsample == subsample:
        slug += f"_n{int(subsample)}"
    return slug


def settings(table: pd.DataFrame, with_subsample: bool = True):
    """``(label, slug, rows)`` for each data setting in the table."""
    cols = SETTING if with_subsample else SETTING[:2]
    keyed = table.assign(**{c: table[c].astype(object).where(table[c].notna(), None) for c in cols
                            if c in table})
    for key, rows in keyed.groupby([c for c in cols if c in keyed], dropna=False, sort=True):
        key = dict(zip(cols, key if isinstance(key, tuple) else (key,), strict=False))
        sub = key.get("dataset.subsample") if with_subsample else None
        yield (setting_label(key["dataset"], key.get("dataset.include_duration"), sub),
               setting_slug(key["dataset"], key.get("dataset.include_duration"), sub), table.loc[rows.index])


def main_k(rows: pd.DataFrame) -> int:
    """k = 4 (the paper's best) when present, else the most common k."""
    ks = rows["k"].dropna().astype(int)
    return 4 if (ks == 4).any() else int(ks.mode().iloc[0])


def largest_n(rows: pd.DataFrame) -> pd.DataFrame:
    """The rows that saw the most training data (drops the smaller subsamples of a scaling sweep)."""
    if "n_train" not in rows or rows["n_train"].isna().all():
        return rows
    sub = rows["dataset.subsample"].astype(object).where(rows["dataset.subsample"].notna(), None) \
        if "dataset.subsample" in rows else pd.Series(None, index=rows.index)
    biggest = rows.assign(_sub=sub.map(lambda s: math.inf if s is None else float(s)))["_sub"].max()
    return rows[sub.map(lambda s: math.inf if s is None else float(s)) == biggest]
