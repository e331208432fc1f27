"""Preprocessing fitted on the training split only: one-hot categoricals, scaled numerics."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from benchmarks.config import ConfigError


@dataclass
class Preprocessor:
    """Turns a raw frame into model features ``X`` and segment features ``X_segment``.

    Parameters come from the dataset config; ``fit`` learns only the z-score statistics
    (``scaling="standard"``) from the frame it is given -- the training split. Columns listed in
    ``log1p`` go through the public monotone map ``sign(x) * log1p(|x|)`` (after the ``never_contacted``
    substitution and clipping, before scaling); their public bounds go through the same map, so
    ``scaling="public"`` still puts every such column in [0, 1] without reading the data.
    """

    numeric: dict[str, tuple[float, float]]
    categorical: dict[str, list[str]]
    segment_features: list[str]
    scaling: str = "standard"
    clip: bool = False
    never_contacted: dict | None = None
    log1p: list[str] = field(default_factory=list)
    mean_: np.ndarray | None = field(default=None, init=False)
    scale_: np.ndarray | None = field(default=None, init=False)

    def __post_init__(self):
        if self.scaling not in ("standard", "public"):
            raise ConfigError(f"dataset.scaling={self.scaling!r}; expected 'standard' or 'public'")
        unknown = [c for c in self.segment_features if c not in self.numeric]
        if unknown:
            raise ConfigError(
                f"dataset.segment_features has {unknown}, which are not numeric model columns; "
                f"expected a subset of {list(self.numeric)}"
            )
        not_numeric = [c for c in self.log1p if c not in self.numeric]
        if not_numeric:
            raise ConfigError(f"log1p columns {not_numeric} are not numeric model columns; "
                            f"expected a subset of {list(self.numeric)}")
        if not self.segment_features:
            raise ConfigError("dataset.segment_features is empty; K-means needs at least one column")
        for col, bounds in self.numeric.items():
            if len(bounds) != 2 or not bounds[0] < bounds[1]:
                raise ConfigError(f"dataset.numeric.{col}={list(bounds)}; expected [low, high] with "
                                  "low < high")

    # -- names -----------------------------------------------------------------------------
    @property
    def indicator(self) -> str | None:
        return f"{self.never_contacted['column']}_never" if self.never_contacted else None

    @property
    def feature_names(self) -> list[str]:
        names = list(self.numeric)
        if self.indicator:
            names.append(self.indicator)
        for col, cats in self.categorical.items():
            names += [f"{col}={c}" for c in cats]
        return names

    # -- work ------------------------------------------------------------------------------
    def _numeric(self, frame: pd.DataFrame) -> tuple[np.ndarray, np.ndarray | None]:
        values = frame[list(self.numeric)].to_numpy(dtype=float, copy=True)
        never = None
        if self.never_contacted:
            j = list(self.numeric).index(self.never_contacted["column"])
            never = values[:, j] == self.never_contacted["sentinel"]
            values[never, j] = self.numeric[self.never_contacted["column"]][0]
        if self.clip:
            lo, hi = self.raw_bounds.T
            values = np.clip(values, lo, hi)
        return self._log(values), never

    def _log(self, values: np.ndarray) -> np.ndarray:
        if not self.log1p:
            return values
        values = np.array(values, dtype=float, copy=True)
        idx = [list(self.numeric).index(c) for c in self.log1p]
        values[..., idx] = np.sign(values[..., idx]) * np.log1p(np.abs(values[..., idx]))
        return values

    @property
    def raw_bounds(self) -> np.ndarray:
        """Public bounds of the numeric columns as stated in the dataset config, (d_num, 2)."""
        return np.array([self.numeric[c] for c in self.numeric], dtype=float)

    @property
    def public_bounds(self) -> np.ndarray:
        """Public bounds after the ``log1p`` map (a monotone map keeps low < high), (d_num, 2)."""
        return self._log(self.raw_bounds.T).T

    def fit(self, frame: pd.DataFrame) -> Preprocessor:
        values, _ = self._numeric(frame)
        if self.scaling == "standard":
            self.mean_ = values.mean(axis=0)
            std = values.std(axis=0)
            self.scale_ = np.where(std > 0, std, 1.0)
        else:  # public bounds only: nothing is learned from the data
            lo, hi = self.public_bounds.T
            self.mean_, self.scale_ = lo, hi - lo
        return self

    def _scale(self, values: np.ndarray) -> np.ndarray:
        if self.mean_ is None:
            raise RuntimeError("Preprocessor.fit must be called before transform")
        return (values - self.mean_) / self.scale_

    def transform(self, frame: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
        values, never = self._numeric(frame)
        scaled = self._scale(values)
        # filled in place: at a million rows a one-hot block per column and their concatenation
        # would hold several copies of X at once
        n, d = len(frame), len(self.numeric)
        X = np.zeros((n, len(self.feature_names)))
        X[:, :d] = scaled
        if never is not None:
            X[:, d] = never
            d += 1
        rows = np.arange(n)
        for col, cats in self.categorical.items():
            codes = pd.Categorical(frame[col], categories=cats).codes.astype(np.int64)
            X[rows, d + codes % len(cats)] = 1.0  # -1 (not a category; the parsers refuse it) as before
            d += len(cats)
        seg_idx = [list(self.numeric).index(c) for c in self.segment_features]
        return X, np.ascontiguousarray(scaled[:, seg_idx])

    def bounds(self) -> tuple[np.ndarray, np.ndarray]:
        """Bounds of every ``X`` and ``X_segment`` column in the transformed space.

        They follow from the public bounds and the fitted scaling; they hold for every row only
        when ``clip`` is true (otherwise rows outside the public domain exceed them).
        """
        num = self._scale(self.public_bounds.T).T  # (d_num, 2)
        rest = len(self.feature_names) - len(self.numeric)
        X_bounds = np.vstack([num, np.tile([0.0, 1.0], (rest, 1))])
        seg_idx = [list(self.numeric).index(c) for c in self.segment_features]
        return X_bounds, num[seg_idx]
