"""UCI Bank Marketing: locate or download, verify, parse, preprocess, split.

``load(cfg.dataset, split_seed)`` returns a :class:`Split`; everything a method sees comes from it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from omegaconf import DictConfig, OmegaConf
from sklearn.model_selection import train_test_split

from datasets._parse import TARGET, read_checked
from datasets._preprocess import Preprocessor
from datasets._source import cache_dir, fetch_csv, sha256
from datasets.errors import DataError

__all__ = ["DataError", "Part", "Split", "Preprocessor", "cache_dir", "load", "read_frame"]


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
    source: str  # where the CSV came from


_FRAMES: dict[tuple, pd.DataFrame] = {}


def _spec(cfg) -> DictConfig:
    return cfg if isinstance(cfg, DictConfig) else OmegaConf.create(dict(cfg))


def read_frame(cfg) -> tuple[pd.DataFrame, str]:
    """The full validated raw frame of the configured variant and where it was read from."""
    spec = _spec(cfg)
    data, label = fetch_csv(spec)
    key = (sha256(data), bool(spec.verify_checksum), repr(OmegaConf.to_container(spec.numeric)),
           repr(OmegaConf.to_container(spec.categorical)))
    if key not in _FRAMES:
        _FRAMES.clear()  # keep one variant in memory at most
        _FRAMES[key] = read_checked(data, label, spec)
    return _FRAMES[key].copy(), label


def load(cfg, split_seed: int = 0) -> Split:
    """Load, subsample, split (stratified on ``y``) and preprocess (fitted on train only)."""
    spec = _spec(cfg)
    frame, label = read_frame(spec)
    numeric = {c: tuple(b) for c, b in OmegaConf.to_container(spec.numeric).items()}
    if not spec.include_duration:
        numeric.pop("duration", None)
        frame = frame.drop(columns=["duration"], errors="ignore")
    heavy = list(spec.get("heavy_tailed") or [])
    unknown = [c for c in heavy if c not in spec.numeric]
    if unknown:
        raise DataError(f"dataset.heavy_tailed has {unknown}, which are not numeric columns; "
                        f"expected a subset of {list(spec.numeric)}")
    log_heavy = spec.get("log_heavy_tailed", False)
    if not isinstance(log_heavy, bool):
        raise DataError(f"dataset.log_heavy_tailed={log_heavy!r}; expected true or false")
    log1p = [c for c in heavy if c in numeric] if log_heavy else []
    y = frame[TARGET].to_numpy()
    if spec.subsample is not None:
        n = int(spec.subsample)
        if not 10 <= n <= len(frame):
            raise DataError(f"dataset.subsample={n}; expected between 10 and {len(frame):,} rows (or null)")
        if n < len(frame):
            frame, _ = train_test_split(frame, train_size=n, stratify=y, random_state=split_seed)
            y = frame[TARGET].to_numpy()
    if not 0 < spec.test_size < 1:
        raise DataError(f"dataset.test_size={spec.test_size}; expected a fraction in (0, 1)")
    train, test = train_test_split(frame, test_size=spec.test_size, stratify=y, random_state=split_seed)
    pre = Preprocessor(
        numeric=numeric,
        categorical={c: list(v) for c, v in OmegaConf.to_container(spec.categorical).items()},
        segment_features=list(spec.segment_features),
        scaling=spec.scaling,
        clip=bool(spec.clip),
        never_contacted=OmegaConf.to_container(spec.never_contacted) if spec.never_contacted else None,
        log1p=log1p,
    ).fit(train)

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
    )
