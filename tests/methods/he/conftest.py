"""Shared fitted HE models on a small subsample (fitted once per session, reused by many tests)."""

from __future__ import annotations

import numpy as np
import pytest

from methods.he import HEKMeans
from methods.plaintext import reference_init


@pytest.fixture(scope="session")
def seg_X(small_split) -> np.ndarray:
    """The 2,000-row subsample's segment features (1,600 training rows: one CKKS chunk)."""
    return small_split.train.X_segment


@pytest.fixture(scope="session")
def ckks_fit(seg_X):
    """CKKS HE K-means, 4 iterations from the plaintext reference's initial centers, transcript kept."""
    init = reference_init(seg_X, 3, 0)
    model = HEKMeans(n_clusters=3, init=init, max_iter=4, tol=0.0, random_state=0,
                     keep_transcript=True).fit(seg_X)
    return model, init
