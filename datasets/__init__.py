"""The data sets: locate, verify, parse, preprocess, split.

``dataset.format`` picks the source: ``uci`` (Bank Marketing: data dir, shipped copy, cache, download),
``cdnow`` (CDNOW purchase histories, a file of an installed package, one row per customer), ``csv``
(a researcher's own table, ``dataset.file``) or ``synthetic`` (``dataset.n_rows`` bank-like training
rows drawn from a generator fitted on a real dataset's training split, tested on its real test rows).

``load(cfg.dataset, split_seed)`` returns a :class:`Split`; everything a method sees comes from it.
``data_identity(cfg.dataset)`` names the CSV bytes a job would read without parsing them;
``prepare(cfg.dataset)`` locates, verifies and parses once, so a sweep can fail early.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from omegaconf import DictConfig, ListConfig, OmegaConf, open_dict
from sklearn.model_selection import train_test_split

from benchmarks.config import ConfigError
from datasets import _cdnow, _synthetic
from datasets._config import (
    check_config,
    check_split,
    format_of,
    holdout_fraction,
    preprocessor,
    subsample_of,
)
from datasets._parse import TARGET, layout_of, read_checked
from datasets._preprocess import Preprocessor
from datasets._source import CSV, SOURCES, cache_dir, fetch_csv, fetch_file
from datasets.errors import DataError

__all__ = ["SOURCES", "ConfigError", "DataError", "Part", "Split", "Preprocessor", "cache_dir",
           "check_config", "data_identity", "load", "prepare", "read_frame"]


@dataclass(frozen=True)
class Part:
    """One side of the split. ``frame`` keeps the raw rows (for segment profiles)."""

    X: np.ndarray
    X_segment: np.ndarray
    y: np.ndarray
    frame: pd.DataFrame

    def __len__(self) -> int:
        return len(self.y)


@dataclass(frozen=True)
class Split:
    name: str
    train: Part
    test: Part
    feature_names: list[str]
    segment_names: list[str]
    bounds: np.ndarray  # (n_features, 2) public bounds of X columns, transformed
    segment_bounds: np.ndarray  # (n_segment_features, 2)
    preprocessor: Preprocessor
    source: str  # where the data file came from
    data_sha256: str  # sha256 of the data file's bytes the split was made from


_FRAMES: dict[tuple, pd.DataFrame] = {}


def _spec(cfg) -> DictConfig:
    return cfg if isinstance(cfg, DictConfig) else OmegaConf.create(dict(cfg))


def _fetch(spec) -> CSV:
    fmt = format_of(spec)
    if fmt == "cdnow":
        return _cdnow.fetch(spec)
    return fetch_file(spec) if fmt == "csv" else fetch_csv(spec)


def _checked(csv: CSV, spec) -> pd.DataFrame:
    reader = _cdnow.read_checked if format_of(spec) == "cdnow" else read_checked
    return reader(csv.data, csv.label, spec, csv.sha256)


def _synthetic_identity(spec) -> dict:
    source = _synthetic.source_spec(spec)
    real = data_identity(source)
    ident = _synthetic.identity(spec, real["sha256"])
    return {"sha256": ident["sha256"], "source": "synthetic",
            "location": f"{_synthetic.GENERATOR_VERSION} fitted on {real['location']}", "synthetic": ident}


def data_identity(cfg) -> dict:
    """``{"sha256", "source", "location"}`` of the bytes ``load(cfg)`` would read, unparsed.

    ``sha256`` is that of the data file itself (whichever file or archive holds it), ``source`` one
    of ``data_dir``, ``shipped``, ``cache``, ``download`` (UCI), ``package`` (cdnow) or ``file`` (csv),
    and ``location`` the file it came from. It uses the same search as :func:`load` (downloading if
    that is the only way), verifies the archive and shipped checksums and, with
    ``dataset.verify_checksum``, the file's (a ``csv`` table only when ``csv_sha256`` is given). Kept
    by path, size and mtime: a second call for the same file costs a few ``stat`` calls.

    ``format: synthetic``: ``source`` is ``synthetic``, ``sha256`` the hash of what names the rows
    (generator version, the source file's sha256, ``seed``, ``n_rows``, ``test_size``), listed under
    ``synthetic``; nothing is generated.
    """
    spec = _spec(cfg)
    check_config(spec)
    if format_of(spec) == "synthetic":
        return _synthetic_identity(spec)
    csv = _fetch(spec)
    if spec.verify_checksum and spec.get("csv_sha256") is not None and csv.sha256 != spec.csv_sha256:
        _checked(csv, spec)  # raises, saying what differs
    return {"sha256": csv.sha256, "source": csv.origin, "location": csv.label}


def prepare(cfg) -> dict:
    """Locate, verify and parse the configured data once (a :class:`DataError` says what is wrong).

    Returns :func:`data_identity` plus ``rows``; the parsed frame stays in memory for :func:`load`.
    """
    spec = _spec(cfg)
    if format_of(spec) == "synthetic":
        check_config(spec)
        frame, _ = read_frame(_synthetic.source_spec(spec))
        return {**data_identity(spec), "rows": _synthetic.n_rows_of(spec)}
    frame, _ = read_frame(cfg)
    return {**data_identity(cfg), "rows": len(frame)}


def _frame_key(spec) -> str:
    """Everything of the config that shapes the parsed frame (not the split or the preprocessing)."""
    keys = ("format", "verify_checksum", "numeric", "categorical", "separator", "target",
            "calibration_weeks", "holdout_weeks", "expected_rows", "csv_sha256")
    return repr({k: OmegaConf.to_container(v) if isinstance(v := spec.get(k), DictConfig | ListConfig) else v
                 for k in keys})


def _read(spec) -> tuple[pd.DataFrame, str, str]:
    check_config(spec)
    csv = _fetch(spec)
    key = (csv.sha256, csv.label, _frame_key(spec))
    if key not in _FRAMES:
        _FRAMES.clear()  # keep one variant in memory at most
        _FRAMES[key] = _checked(csv, spec)
    return _FRAMES[key].copy(), csv.label, csv.sha256


def read_frame(cfg) -> tuple[pd.DataFrame, str]:
    """The full validated raw frame of the configured variant and where it was read from."""
    frame, label, _ = _read(_spec(cfg))
    return frame, label


_GENERATORS: dict[tuple, _synthetic.Generator] = {}


def _synthetic_frames(spec, split_seed: int) -> tuple[pd.DataFrame, pd.DataFrame, str, str]:
    """Synthetic training rows from a generator fitted on the source's real training split (the split
    ``split_seed`` and ``test_size`` make of it), and that split's real test rows."""
    check_config(spec)
    source = _synthetic.source_spec(spec)
    with open_dict(source):
        source.test_size = spec.test_size
    frame, label, digest = _read(source)
    y = frame[TARGET].to_numpy()
    check_split(tuple(int(c) for c in np.bincount(y, minlength=2)), None, holdout_fraction(source), label)
    real_train, test = train_test_split(frame, test_size=holdout_fraction(source), stratify=y,
                                        random_state=split_seed)
    key = (digest, split_seed, float(spec.test_size), _synthetic.GENERATOR_VERSION)
    if key not in _GENERATORS:
        _GENERATORS.clear()
        _GENERATORS[key] = _synthetic.fit(real_train, source)
    train = _synthetic.generate(_GENERATORS[key], _synthetic.n_rows_of(spec), _synthetic.seed_of(spec))
    ident = _synthetic.identity(spec, digest)
    return train, test, f"{_synthetic.GENERATOR_VERSION} fitted on {label}", ident["sha256"]


def load(cfg, split_seed: int = 0) -> Split:
    """Load, subsample, split (stratified on ``y``) and preprocess (fitted on train only).

    ``format: synthetic``: the training rows are synthetic, the test rows the source's real ones."""
    spec = _spec(cfg)
    if format_of(spec) == "synthetic":
        train, test, label, digest = _synthetic_frames(spec, split_seed)
        if not spec.include_duration:
            train, test = (f.drop(columns=["duration"], errors="ignore") for f in (train, test))
        return _split(spec, train, test, label, digest)
    frame, label, digest = _read(spec)
    if format_of(spec) == "uci" and not spec.include_duration:
        frame = frame.drop(columns=["duration"], errors="ignore")
    y = frame[TARGET].to_numpy()
    n, test_size = subsample_of(spec), holdout_fraction(spec)
    layout = layout_of(spec)
    negative = "not " + layout.positive if layout.negative is None else layout.negative
    classes = ("no", "yes") if format_of(spec) != "csv" else (negative, layout.positive)
    check_split(tuple(int(c) for c in np.bincount(y, minlength=2)), n, test_size, label,
                layout.target, classes)
    if n is not None and n < len(frame):
        frame, _ = train_test_split(frame, train_size=n, stratify=y, random_state=split_seed)
        y = frame[TARGET].to_numpy()
    train, test = train_test_split(frame, test_size=test_size, stratify=y, random_state=split_seed)
    return _split(spec, train, test, label, digest)


def _split(spec, train: pd.DataFrame, test: pd.DataFrame, label: str, digest: str) -> Split:
    pre = preprocessor(spec).fit(train)

    def part(f: pd.DataFrame) -> Part:
        f = f.reset_index(drop=True)
        X, X_seg = pre.transform(f)
        return Part(X=X, X_segment=X_seg, y=f[TARGET].to_numpy().astype(np.int64), frame=f)

    X_bounds, seg_bounds = pre.bounds()
    return Split(
        name=spec.name,
        train=part(train),
        test=part(test),
        feature_names=pre.feature_names,
        segment_names=list(spec.segment_features),
        bounds=X_bounds,
        segment_bounds=seg_bounds,
        preprocessor=pre,
        source=label,
        data_sha256=digest,
    )
