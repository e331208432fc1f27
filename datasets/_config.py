"""Checks of the dataset config that need no data (name, format and its keys, source, subsample,
test_size; each a :class:`~benchmarks.config.ConfigError`), and of the split that needs the class
counts."""

from __future__ import annotations

import functools
import itertools
import math
import re
from pathlib import Path

import numpy as np
from omegaconf import OmegaConf

from benchmarks.config import ConfigError
from datasets._parse import TARGET
from datasets._preprocess import Preprocessor
from datasets._source import source_of
from datasets.errors import DataError, quote
from methods._util import CONF

CONF_DIR = CONF / "dataset"
NAME = re.compile(r"[A-Za-z0-9_]+")
SHA256 = re.compile(r"[0-9a-f]{64}")
FORMATS = ("uci", "cdnow", "csv", "synthetic")
#: keys that say which data a dataset name stands for: an override of one is another dataset
IDENTITY_KEYS = ("format", "csv", "archive", "package", "package_file", "source_dataset")


def known_names() -> list[str]:
    return sorted(p.stem for p in CONF_DIR.glob("*.yaml"))


@functools.lru_cache(maxsize=8)
def _declared(path: Path, mtime_ns: int):
    return OmegaConf.load(path)


def check_name(spec) -> None:
    """``dataset.name`` must be the stem of its config file in conf/dataset/ and describe the same files.

    The name labels records and run directories, so a free-form one would mislabel them (or, with
    ``/`` or ``..``, put a run directory outside results/).
    """
    name = spec.get("name")
    known = known_names()
    if not isinstance(name, str) or not NAME.fullmatch(name) or name not in known:
        raise ConfigError(f"dataset.name={quote(name)}; expected the name of a config in {CONF_DIR} "
                        f"({', '.join(known)})")
    declared = _declared(CONF_DIR / f"{name}.yaml", (CONF_DIR / f"{name}.yaml").stat().st_mtime_ns)
    for key in IDENTITY_KEYS:
        default = "uci" if key == "format" else None
        if spec.get(key, default) != declared.get(key, default):
            raise ConfigError(f"dataset.name={name} but dataset.{key}={quote(spec.get(key))}, while "
                            f"conf/dataset/{name}.yaml has {key}: {declared.get(key)}; "
                            "name a dataset by its own config file")


def subsample_of(spec) -> int | None:
    """``dataset.subsample`` as a whole number of rows, or None."""
    value = spec.subsample
    if value is None:
        return None
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConfigError(f"dataset.subsample={quote(value)}; expected a whole number of rows (or null)")
    return value


def holdout_fraction(spec) -> float:
    value = spec.test_size
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value < 1:
        raise ConfigError(f"dataset.test_size={quote(value)}; expected a fraction in (0, 1)")
    return float(value)


def preprocessor(spec) -> Preprocessor:
    """The (unfitted) preprocessing the config describes; building it checks the columns, bounds,
    scaling and log1p settings, none of which needs the data."""
    numeric = {c: tuple(b) for c, b in OmegaConf.to_container(spec.numeric).items()}
    if format_of(spec) in ("uci", "synthetic") and not spec.include_duration:
        numeric.pop("duration", None)
    heavy = list(spec.get("heavy_tailed") or [])
    unknown = [c for c in heavy if c not in spec.numeric]
    if unknown:
        raise ConfigError(f"dataset.heavy_tailed has {quote(unknown)}, which are not numeric columns; "
                          f"expected a subset of {list(spec.numeric)}")
    never = spec.get("never_contacted")
    if never is not None:
        never = OmegaConf.to_container(never) if not isinstance(never, dict) else never
        sentinel = never.get("sentinel") if isinstance(never, dict) else None
        if (not isinstance(never, dict) or set(never) != {"column", "sentinel"}
                or never["column"] not in numeric
                or isinstance(sentinel, bool) or not isinstance(sentinel, int | float)):
            raise ConfigError(f"dataset.never_contacted={quote(never)}; expected null or {{column: a numeric "
                              f"column of {list(numeric)}, sentinel: a number}}")
    log_heavy = spec.get("log_heavy_tailed", False)
    if not isinstance(log_heavy, bool):
        raise ConfigError(f"dataset.log_heavy_tailed={log_heavy!r}; expected true or false")
    return Preprocessor(
        numeric=numeric,
        categorical={c: list(v) for c, v in (OmegaConf.to_container(spec.categorical) or {}).items()},
        segment_features=list(spec.segment_features),
        scaling=spec.scaling,
        clip=bool(spec.clip),
        never_contacted=never,
        log1p=[c for c in heavy if c in numeric] if log_heavy else [],
    )


def format_of(spec) -> str:
    value = spec.get("format", "uci")
    if value not in FORMATS:
        raise ConfigError(f"dataset.format={quote(value)}; expected one of {', '.join(FORMATS)}")
    return value


def _check_uci(spec) -> None:
    source_of(spec)
    for key in ("csv", "archive", "csv_sha256", "archive_sha256", "expected_rows", "url"):
        if spec.get(key) is None:
            raise ConfigError(f"dataset.{key} is missing; dataset.format=uci needs it to find and verify "
                              "the UCI files")


def _check_csv(spec) -> None:
    """A researcher's table: the file, its separator, the target and its values, the optional sha256."""
    if not spec.get("file"):
        raise ConfigError("dataset.file is missing; expected the path of the table "
                          "(dataset.file=PATH on the command line)")
    sep = spec.get("separator")
    if not isinstance(sep, str) or len(sep) != 1 or sep in "\r\n\"":
        raise ConfigError(f"dataset.separator={quote(sep)}; expected one character (',', ';', '\\t', ...)")
    target = spec.get("target")
    if target is None or not target.get("column") or target.get("positive") in (None, ""):
        raise ConfigError("dataset.target is missing; expected {column: NAME, positive: VALUE} "
                          "(and optionally negative: VALUE)")
    if target.get("negative") is not None and str(target.negative) == str(target.positive):
        raise ConfigError(f"dataset.target.negative={quote(target.negative)} is the positive value too; "
                          "expected two different values")
    features = list(spec.numeric) + list(spec.categorical or {})
    both = sorted(set(spec.numeric) & set(spec.categorical or {}))
    if both:
        raise ConfigError(f"dataset.numeric and dataset.categorical both have {quote(both)}; expected "
                          "each column under one type")
    if target.column in features:
        raise ConfigError(f"dataset.target.column={quote(target.column)} is a feature column too; expected "
                          "the label apart from dataset.numeric and dataset.categorical")
    if TARGET in features:
        raise ConfigError(f"dataset has a feature column named {TARGET!r}, the name the loader gives the "
                          "target; rename it in the file and the config")
    for col, cats in (OmegaConf.to_container(spec.categorical) or {}).items():
        if not cats or len({str(c) for c in cats}) != len(cats):
            raise ConfigError(f"dataset.categorical.{col}={quote(cats)}; expected its categories, each once")
    digest = spec.get("csv_sha256")
    if digest is not None and not (isinstance(digest, str) and SHA256.fullmatch(digest)):
        raise ConfigError(f"dataset.csv_sha256={quote(digest)}; expected 64 lowercase hex digits or null")
    if spec.get("include_duration"):
        raise ConfigError("dataset.include_duration=true; it applies to the UCI Bank Marketing data only "
                          "(leave it null and list the columns to use)")


def check_config(spec) -> None:
    """Every check that needs no data; run before anything is read."""
    fmt = format_of(spec)
    check_name(spec)
    if fmt == "uci":
        _check_uci(spec)
    elif fmt == "cdnow":
        from datasets import _cdnow

        _cdnow.check_config(spec)
    elif fmt == "synthetic":
        from datasets import _synthetic

        _synthetic.check_config(spec)
    else:
        _check_csv(spec)
    subsample_of(spec)
    holdout_fraction(spec)
    preprocessor(spec)


def _draws(counts: tuple[int, ...], n: int) -> list[tuple[int, ...]]:
    """Every per-class count a stratified draw of ``n`` from ``counts`` can give.

    The rounding of scikit-learn's stratified splits: floor of each class's share of ``n``, the rows
    left over going to the largest remainders; only a tie among remainders leaves a choice.
    """
    continuous = np.asarray(counts, dtype=float) / sum(counts) * n
    floored = np.floor(continuous)
    need = int(n - floored.sum())
    remainder = continuous - floored
    sure, tied = [], []
    for value in np.sort(np.unique(remainder))[::-1]:
        if need == 0:
            break
        (inds,) = np.nonzero(remainder == value)
        if len(inds) <= need:
            sure += list(inds)
            need -= len(inds)
        else:
            tied = list(itertools.combinations(inds, need))
            break
    draws = []
    for extra in tied or [()]:
        draw = floored.copy()
        draw[sure + list(extra)] += 1
        draws.append(tuple(int(d) for d in draw))
    return draws


def _splits_ok(counts: tuple[int, ...], n: int, test_size: float, subsampled: bool) -> bool:
    """Whether every stratified subsample of ``n`` rows, split with ``test_size``, leaves train and
    test each at least one row of every class."""
    n_test = math.ceil(test_size * n)
    n_train = n - n_test
    if n_train < 1 or n_test < 1:
        return False
    for sub in (_draws(counts, n) if subsampled else [counts]):
        for train in _draws(sub, n_train):
            if min(train) < 1 or min(s - t for s, t in zip(sub, train, strict=True)) < 1:
                return False
    return True


@functools.lru_cache(maxsize=8)
def min_subsample(counts: tuple[int, ...], test_size: float) -> int | None:
    """The smallest subsample from which every larger one splits with each class on both sides.

    Above ``safe`` rounding cannot empty a class on either side (each draw rounds a class count by
    less than one row, so a side gets at least its share minus two rows); below it, every size is tried.
    """
    total = sum(counts)
    share = min(counts) / total
    safe = math.ceil(max(3 / (share * test_size), (3 / share + 1) / (1 - test_size))) + 1
    smallest = None
    for n in range(min(total - 1, safe), 1, -1):
        if not _splits_ok(counts, n, test_size, subsampled=True):
            break
        smallest = n
    return smallest


def check_split(counts: tuple[int, ...], subsample: int | None, test_size: float, label: str,
                column: str = TARGET, classes: tuple[str, str] = ("no", "yes")) -> None:
    """Refuse a subsample or test_size that would leave train or test without a row of some class."""
    total = sum(counts)
    if min(counts) < 2:
        raise DataError(f"{label}: column {column!r} has {min(counts)} row(s) of one class "
                        f"({'/'.join(classes)}: {counts[0]:,}/{counts[1]:,}); a stratified split needs 2 "
                        "or more of each")
    share = min(counts) / total
    if subsample is None or subsample == total:
        if not _splits_ok(counts, total, test_size, subsampled=False):
            raise DataError(f"dataset.test_size={test_size} leaves train or test without a row of each "
                            f"class ({total:,} rows, {share:.1%} in the smallest class)")
        return
    least = min_subsample(counts, test_size)
    if least is None or not least <= subsample <= total:
        shown = f"between {least:,} and {total:,}" if least else f"at most {total:,}"
        raise DataError(
            f"dataset.subsample={subsample}; expected {shown} rows (or null): with test_size={test_size} "
            f"and {share:.1%} in the smallest class, fewer rows leave train or test without a row of "
            "each class"
        )
