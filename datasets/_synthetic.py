"""Synthetic bank-like customers (``format: synthetic``): any number of rows with bank_full's columns,
types, public bounds and target, drawn from a generator fitted on the source data's training split.

The generator is one Gaussian copula per stratum, a stratum being a class of ``y`` crossed with the
"never contacted" flag of the source (bank_full: ``pdays == -1``, which is exactly ``previous == 0``
and, but for 5 rows, ``poutcome == unknown``). In a stratum every column gets a latent normal score
(numeric columns by their randomised ranks, categorical columns by their categories' cumulative
frequencies, categories ordered by their share of ``y = 1`` in the training split); the copula is the
correlation matrix of those scores. Drawing a row: a correlated normal vector, each coordinate mapped
back through its column's stored quantile function (numeric, on a grid of ``QUANTILES`` + 1 points,
rounded where the column holds whole numbers, clipped to the public bounds) or its cumulative
frequencies (categorical). What the fitted generator holds, and so what it can leak of the training
rows, is documented in docs/data.md ("Synthetic customers").

Only the training split of ``source_dataset`` (split with the job's ``split_seed`` and ``test_size``)
is read to fit it; the test split is the source's real test rows, so metrics compare with a run on the
real data. Rows are drawn in chunks of ``CHUNK`` with a seed per (stratum, chunk): the same
``dataset.seed`` and ``dataset.n_rows`` give the same rows on every machine, and memory stays a few
arrays of the output's size.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from omegaconf import OmegaConf
from scipy.special import ndtr, ndtri

from benchmarks.config import ConfigError
from datasets._parse import TARGET
from datasets.errors import DataError, quote

#: bump when the fitted model or the drawing changes: it is part of the rows' identity (config hash)
GENERATOR_VERSION = "copula-strata-1"
QUANTILES = 1000  # stored quantiles per numeric column and stratum (plus the minimum)
CHUNK = 1 << 18  # rows drawn per random stream
MIN_ROWS = 1_000
MAX_ROWS = 10_000_000
SOURCES = ("bank_full",)  # sources whose columns the generator is written for (numeric + categorical)
_FIT_SEED = 20_240_518  # the tie-breaking jitter of the fit: fixed, the model depends on the data only
_EPS = 1e-12


def source_path(spec) -> Path:
    from datasets._config import CONF_DIR

    return CONF_DIR / f"{spec.source_dataset}.yaml"


def source_spec(spec):
    """The source dataset's config (conf/dataset/<source_dataset>.yaml on its schema)."""
    from benchmarks.config import DatasetConfig

    raw = OmegaConf.load(source_path(spec))
    raw.pop("defaults", None)
    return OmegaConf.merge(OmegaConf.structured(DatasetConfig), raw)


def n_rows_of(spec) -> int:
    value = spec.get("n_rows")
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or not MIN_ROWS <= value <= MAX_ROWS:
        raise ConfigError(
            f"dataset.n_rows={quote(value)}; expected a whole number of synthetic training "
            f"rows between {MIN_ROWS:,} and {MAX_ROWS:,}"
        )
    return value


def seed_of(spec) -> int:
    value = spec.get("seed")
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < 2**32:
        raise ConfigError(
            f"dataset.seed={quote(value)}; expected a whole number in [0, 2**32) (the generator's seed)"
        )
    return value


def check_config(spec) -> None:
    """The synthetic keys, none of which needs the data: source, n_rows, seed, and that the columns,
    categories, public bounds and sentinel are the source's (the generator draws the source's)."""
    source = spec.get("source_dataset")
    if source not in SOURCES:
        raise ConfigError(
            f"dataset.source_dataset={quote(source)}; expected one of {list(SOURCES)} (the "
            "real data the generator is fitted on)"
        )
    n_rows_of(spec)
    seed_of(spec)
    if spec.get("subsample") is not None:
        raise ConfigError(
            f"dataset.subsample={quote(spec.subsample)}; a synthetic dataset is sized by "
            "dataset.n_rows (synthetic training rows), leave subsample null"
        )
    real = source_spec(spec)
    for key in ("numeric", "categorical", "never_contacted"):
        mine, theirs = (
            OmegaConf.to_container(s[key]) if OmegaConf.is_config(s[key]) else s[key] for s in (spec, real)
        )
        if mine != theirs:
            raise ConfigError(
                f"dataset.{key}={quote(mine)} differs from conf/dataset/{source}.yaml "
                f"({quote(theirs)}); the synthetic rows have the source's columns, "
                "categories and public bounds"
            )


def identity(spec, source_sha256: str) -> dict:
    """What names the rows: generator version, source file sha256, seed and n_rows. ``sha256`` is the
    hash of those (the rows are a function of them and the job's split_seed and test_size)."""
    facts = {
        "generator": GENERATOR_VERSION,
        "source_dataset": spec.source_dataset,
        "source_sha256": source_sha256,
        "seed": seed_of(spec),
        "n_rows": n_rows_of(spec),
        "test_size": float(spec.test_size),
    }
    blob = json.dumps(facts, sort_keys=True).encode()
    return {**facts, "sha256": hashlib.sha256(blob).hexdigest()}


# -- the model ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Stratum:
    y: int
    never: bool
    share: float  # of the training rows
    columns: list[str]  # latent coordinates (non-constant columns)
    chol: np.ndarray  # Cholesky factor of the latent correlation
    quantiles: dict[str, np.ndarray]  # numeric column -> values at the grid
    cumulative: dict[str, np.ndarray]  # categorical column -> cumulative frequencies (ordered codes)
    constant: dict[str, float | int]  # column -> its one value (numeric value or category code)


@dataclass(frozen=True)
class Generator:
    numeric: list[str]
    categorical: dict[str, list[str]]
    order: dict[str, np.ndarray]  # categorical column -> category codes by rising share of y = 1
    integral: dict[str, bool]
    bounds: dict[str, tuple[float, float]]
    sentinel: tuple[str, float] | None
    strata: list[Stratum]


def _scores(codes: np.ndarray, n_levels: int, rng: np.random.Generator) -> np.ndarray:
    """Latent normal scores of a column given as 0-based ordered codes: a uniform draw inside each
    value's interval of the empirical CDF (randomised ranks), mapped through the normal quantile."""
    counts = np.bincount(codes, minlength=n_levels) / len(codes)
    upper = np.cumsum(counts)
    lower = upper - counts
    u = lower[codes] + rng.random(len(codes)) * counts[codes]
    return ndtri(np.clip(u, _EPS, 1 - _EPS))


def fit(train: pd.DataFrame, spec) -> Generator:
    """Fit the generator on ``train`` (the source's training split, raw columns and ``y``)."""
    numeric = list(spec.numeric)
    categorical = {c: list(v) for c, v in OmegaConf.to_container(spec.categorical).items()}
    never = spec.get("never_contacted")
    sentinel = (never["column"], float(never["sentinel"])) if never else None
    y = train[TARGET].to_numpy()
    codes = {c: pd.Categorical(train[c], categories=cats).codes for c, cats in categorical.items()}
    order = {}
    for c, cats in categorical.items():
        rate = np.array([y[codes[c] == j].mean() if (codes[c] == j).any() else 0.0 for j in range(len(cats))])
        order[c] = np.argsort(rate, kind="stable")
    rank = {c: np.argsort(order[c]) for c in categorical}  # code -> position in the order
    values = {c: train[c].to_numpy(dtype=float) for c in numeric}
    integral = {c: bool(np.all(values[c] == np.round(values[c]))) for c in numeric}
    never_mask = values[sentinel[0]] == sentinel[1] if sentinel else np.zeros(len(train), dtype=bool)
    grid = np.linspace(0.0, 1.0, QUANTILES + 1)
    rng = np.random.default_rng(_FIT_SEED)
    strata = []
    for cls in (0, 1):
        for flag in (False, True) if sentinel else (False,):
            rows = (y == cls) & (never_mask == flag)
            if rows.sum() < 2:
                continue
            columns, latent, quantiles, cumulative, constant = [], [], {}, {}, {}
            for c in numeric:
                v = values[c][rows]
                if v.min() == v.max():
                    constant[c] = float(v[0])
                    continue
                levels, inverse = np.unique(v, return_inverse=True)
                latent.append(_scores(inverse, len(levels), rng))
                quantiles[c] = np.quantile(v, grid)
                columns.append(c)
            for c, cats in categorical.items():
                ordered = rank[c][codes[c][rows]]
                present = np.unique(ordered)
                if len(present) == 1:
                    constant[c] = int(order[c][present[0]])
                    continue
                latent.append(_scores(ordered, len(cats), rng))
                cumulative[c] = np.cumsum(np.bincount(ordered, minlength=len(cats))) / len(ordered)
                columns.append(c)
            corr = np.corrcoef(np.vstack(latent)) if len(latent) > 1 else np.ones((1, 1))
            corr = (corr + 1e-9 * np.eye(len(corr))) / (1 + 1e-9)
            strata.append(
                Stratum(
                    cls,
                    flag,
                    float(rows.mean()),
                    columns,
                    np.linalg.cholesky(corr),
                    quantiles,
                    cumulative,
                    constant,
                )
            )
    if {s.y for s in strata} != {0, 1}:
        raise DataError("the training split has fewer than 2 rows of a class; the generator needs both")
    bounds = {c: (float(spec.numeric[c][0]), float(spec.numeric[c][1])) for c in numeric}
    return Generator(numeric, categorical, order, integral, bounds, sentinel, strata)


def _counts(shares: list[float], n: int) -> list[int]:
    """Rows per stratum: the shares of ``n``, rounded by largest remainder (deterministic)."""
    exact = np.asarray(shares) / sum(shares) * n
    counts = np.floor(exact).astype(int)
    for i in np.argsort(-(exact - counts), kind="stable")[: n - counts.sum()]:
        counts[i] += 1
    return [int(c) for c in counts]


def generate(model: Generator, n_rows: int, seed: int) -> pd.DataFrame:
    """``n_rows`` synthetic rows (raw columns, categoricals as pandas categoricals, ``y`` int8),
    shuffled; the same model, ``n_rows`` and ``seed`` give the same rows."""
    num = np.empty((n_rows, len(model.numeric)))
    cat = np.empty((n_rows, len(model.categorical)), dtype=np.int8)
    y = np.empty(n_rows, dtype=np.int8)
    grid = np.linspace(0.0, 1.0, QUANTILES + 1)
    col_num = {c: j for j, c in enumerate(model.numeric)}
    col_cat = {c: j for j, c in enumerate(model.categorical)}
    start = 0
    for s_idx, (stratum, count) in enumerate(
        zip(model.strata, _counts([s.share for s in model.strata], n_rows), strict=True)
    ):
        for c, value in stratum.constant.items():
            if c in col_num:
                num[start : start + count, col_num[c]] = value
            else:
                cat[start : start + count, col_cat[c]] = value
        y[start : start + count] = stratum.y
        for chunk, lo in enumerate(range(0, count, CHUNK)):
            m = min(CHUNK, count - lo)
            rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(s_idx, chunk)))
            u = ndtr(rng.standard_normal((m, len(stratum.columns))) @ stratum.chol.T)
            rows = slice(start + lo, start + lo + m)
            for j, c in enumerate(stratum.columns):
                if c in col_num:
                    v = np.interp(u[:, j], grid, stratum.quantiles[c])
                    if model.integral[c]:
                        v = np.round(v)
                    num[rows, col_num[c]] = v
                else:
                    pos = np.minimum(
                        np.searchsorted(stratum.cumulative[c], u[:, j], side="right"),
                        len(stratum.cumulative[c]) - 1,
                    )
                    cat[rows, col_cat[c]] = model.order[c][pos]
        start += count
    for c, j in col_num.items():  # public bounds hold for every row (the sentinel apart)
        lo, hi = model.bounds[c]
        keep = num[:, j] == model.sentinel[1] if model.sentinel and model.sentinel[0] == c else None
        clipped = np.clip(num[:, j], lo, hi)
        num[:, j] = clipped if keep is None else np.where(keep, num[:, j], clipped)
    shuffle = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(len(model.strata),)))
    perm = shuffle.permutation(n_rows)
    frame = {c: num[perm, j] for c, j in col_num.items()}
    for c, j in col_cat.items():
        frame[c] = pd.Categorical.from_codes(cat[perm, j], categories=model.categorical[c])
    frame[TARGET] = y[perm]
    return pd.DataFrame(frame)
