"""The arrays the server and the clients exchange, one array per message where one will do.

Under the Deployment Engine every array of a message travels as two objects (the array and its
chunk), each moved by one HTTP request on every hop (ServerApp → SuperLink → SuperNode → ClientApp
and back), so two arrays where one would do cost four requests per client and hop. Kept free of
Flower imports: the estimators read the server's view with these helpers.
"""

from __future__ import annotations

import numpy as np

MODEL = "model"  # FedAvg: the logistic-regression coefficients with the intercept last, (d + 1,)
SUMS = "sums-counts"  # K-means reply: per-cluster sums with the row counts as last column, (k, d + 1)


def pack_model(coef: np.ndarray, intercept: float) -> np.ndarray:
    return np.append(np.asarray(coef, float).ravel(), float(intercept))


def unpack_model(model: np.ndarray) -> tuple[np.ndarray, float]:
    """``(coef, intercept)`` of a :data:`MODEL` array."""
    return model[:-1], float(model[-1])


def pack_sums(sums: np.ndarray, counts: np.ndarray) -> np.ndarray:
    return np.column_stack([sums, counts.astype(float)])


def unpack_sums(packed: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(sums, counts)`` of a :data:`SUMS` array; counts are row counts, exact in a float64."""
    return packed[:, :-1], packed[:, -1].astype(np.int64)
