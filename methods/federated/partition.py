"""Client splits of a training set (numpy only, seeded): ``iid``, ``dirichlet`` over the label,
and ``natural`` by a categorical column.

Each function returns one index array per client; the arrays are disjoint, sorted and cover every
row, so ``X[parts[i]]`` is client ``i``'s data.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

PARTITIONS = ("iid", "dirichlet", "natural")


def iid(n_rows: int, num_clients: int, seed: int) -> list[np.ndarray]:
    """A seeded shuffle cut into ``num_clients`` near-equal parts."""
    _check_num_clients(num_clients, n_rows)
    perm = np.random.default_rng(seed).permutation(n_rows)
    return [np.sort(p) for p in np.array_split(perm, num_clients)]


def dirichlet(y: np.ndarray, num_clients: int, alpha: float, seed: int, min_size: int = 10,
              max_tries: int = 100) -> list[np.ndarray]:
    """Label skew: each class's rows are shared among clients in Dirichlet(``alpha``) proportions.

    Small ``alpha`` gives clients dominated by one label; large ``alpha`` approaches ``iid``. Draws
    are repeated (same generator, so still deterministic) until every client has ``min_size`` rows.
    """
    y = np.asarray(y)
    _check_num_clients(num_clients, len(y))
    if not (isinstance(alpha, int | float) and not isinstance(alpha, bool) and alpha > 0):
        raise ValueError(f"method.alpha={alpha!r}; expected a Dirichlet concentration > 0")
    if num_clients * min_size > len(y):
        raise ValueError(f"method.num_clients={num_clients} leaves fewer than {min_size} rows per "
                         f"client on {len(y)} rows")
    rng = np.random.default_rng(seed)
    classes = np.unique(y)
    for _ in range(max_tries):
        parts: list[list[np.ndarray]] = [[] for _ in range(num_clients)]
        for c in classes:
            rows = rng.permutation(np.flatnonzero(y == c))
            share = rng.dirichlet(np.full(num_clients, float(alpha)))
            cuts = (np.cumsum(share)[:-1] * len(rows)).astype(int)
            for i, chunk in enumerate(np.split(rows, cuts)):
                parts[i].append(chunk)
        out = [np.sort(np.concatenate(p)) for p in parts]
        if min(len(p) for p in out) >= min_size:
            return out
    raise ValueError(f"method.alpha={alpha} with method.num_clients={num_clients}: no draw in "
                     f"{max_tries} gave every client {min_size} rows; raise alpha or lower num_clients")


def natural(groups: np.ndarray) -> list[np.ndarray]:
    """One client per distinct value of ``groups`` (e.g. the customer's job), in sorted value order."""
    groups = np.asarray(groups)
    values = np.unique(groups)
    if len(values) < 2:
        raise ValueError(f"a natural partition needs at least 2 distinct groups; got {len(values)}")
    return [np.flatnonzero(groups == v) for v in values]


def onehot_groups(X: np.ndarray, feature_names: Sequence[str], column: str) -> tuple[np.ndarray, list[str]]:
    """Group codes of a categorical ``column`` recovered from its one-hot block ``column=value`` in ``X``.

    Returns the per-row code (index into the returned category names) and the category names; only
    categories present in ``X`` are kept, so codes are dense.
    """
    names = list(feature_names)
    if len(names) != X.shape[1]:
        raise ValueError(f"feature_names has {len(names)} names for {X.shape[1]} columns of X")
    cols = [j for j, n in enumerate(names) if n.startswith(f"{column}=")]
    if not cols:
        cats = sorted({n.split("=", 1)[0] for n in names if "=" in n})
        raise ValueError(f"method.partition_column={column!r} has no one-hot columns '{column}=...' in "
                         f"the features; expected one of {cats}")
    block = X[:, cols]
    if not np.all((block == 0) | (block == 1)) or not np.all(block.sum(1) == 1):
        raise ValueError(f"the '{column}=...' columns are not a one-hot block (each row needs exactly one 1)")
    code = block.argmax(1)
    present = np.unique(code)
    dense = np.searchsorted(present, code)
    return dense, [names[cols[j]].split("=", 1)[1] for j in present]


def make_partition(scheme: str, y: np.ndarray, num_clients: int | None, seed: int, alpha: float = 0.5,
                   groups: np.ndarray | None = None) -> list[np.ndarray]:
    """Dispatch on ``scheme`` (``method.partition``); ``groups`` is needed for ``natural``."""
    if scheme == "iid":
        return iid(len(y), _required(num_clients), seed)
    if scheme == "dirichlet":
        return dirichlet(y, _required(num_clients), alpha, seed)
    if scheme == "natural":
        if groups is None:
            raise ValueError("method.partition='natural' needs the group of every row")
        parts = natural(groups)
        if num_clients is not None and num_clients != len(parts):
            raise ValueError(f"method.num_clients={num_clients} but the natural partition has "
                             f"{len(parts)} groups; set method.num_clients=null (or {len(parts)})")
        return parts
    raise ValueError(f"method.partition={scheme!r}; expected one of {list(PARTITIONS)}")


def _required(num_clients: int | None) -> int:
    if num_clients is None:
        raise ValueError("method.num_clients is null; iid and dirichlet partitions need a client count")
    return num_clients


def _check_num_clients(num_clients, n_rows: int) -> None:
    if not isinstance(num_clients, int) or isinstance(num_clients, bool) or not 2 <= num_clients <= n_rows:
        raise ValueError(f"method.num_clients={num_clients!r}; expected an integer in [2, {n_rows}] "
                         f"(n_samples={n_rows}: every client holds at least one row)")
