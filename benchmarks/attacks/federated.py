"""What a federated server learns from client updates.

Logistic regression: for one example, ∇_w = (p − y)·x and ∇_b = (p − y), so x = ∇_w / ∇_b exactly
and the label is the sign of ∇_b (negative for y = 1). A FedAvg update is the difference between
the client's model after local training and the global model it started from,
Δ = −η Σ_steps ∇, so the same ratio is exact whenever every local step used the same single
record (a client with one record, any number of epochs, no L2); otherwise it is a weighted mix of
the client's records, compared here with the client's mean.

K-means: a client that reports a per-cluster count of 1 hands the server that record as the
cluster's sum.

Everything takes plain numpy arrays: updates shaped ``(rounds, clients, d)`` and
``(rounds, clients)``, each client's rows as a list of arrays.
"""

from __future__ import annotations

import numpy as np
from scipy.special import expit


def reconstruct_lr_inputs(update_w: np.ndarray, update_b: np.ndarray, kind: str = "delta",
                          l2: float = 0.0, global_w: np.ndarray | None = None,
                          lr: float | None = None,
                          global_b: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """The server's reconstruction x̂ = ∇_w / ∇_b and label ŷ from the sign of ∇_b.

    Parameters
    ----------
    update_w, update_b : arrays of shape (..., d) and (...)
        Per-client updates: ``kind="gradient"`` (∇ of the client's loss), ``kind="delta"``
        (client model minus the global model it received; −η·∇ for one step) or ``kind="params"``
        (the client's model itself, as FedAvg clients send it; needs ``global_w`` and ``global_b``).
    global_w, global_b : the global model each update started from, broadcastable to the updates
        (e.g. (rounds, 1, d) and (rounds, 1)).
    l2, lr : with an L2 term (λ/2)‖w‖² in the client's loss the server removes λ·w, which it knows
        for a single step (needs ``global_w``, and for deltas the learning rate ``lr``).

    Returns ``x_hat`` (NaN where ∇_b is 0) and ``y_hat`` (0/1).
    """
    gw = np.asarray(update_w, float)
    gb = np.asarray(update_b, float)
    if gw.shape[:-1] != gb.shape:
        raise ValueError(f"update_w {gw.shape} and update_b {gb.shape} disagree on the leading shape")
    if kind not in ("gradient", "delta", "params"):
        raise ValueError(f"kind={kind!r}; expected 'gradient', 'delta' or 'params'")
    if kind == "params":
        if global_w is None or global_b is None:
            raise ValueError("kind='params' needs global_w and global_b to form the deltas")
        gw, gb, kind = gw - np.asarray(global_w, float), gb - np.asarray(global_b, float), "delta"
    if l2:
        if global_w is None or (kind == "delta" and lr is None):
            raise ValueError("removing the L2 term needs global_w (and lr for deltas)")
        if kind == "delta":
            gw, gb = -gw / lr, -gb / lr
            kind = "gradient"
        gw = gw - l2 * np.asarray(global_w, float)
    with np.errstate(divide="ignore", invalid="ignore"):
        x_hat = np.where(gb[..., None] != 0, gw / gb[..., None], np.nan)
    positive = gb > 0 if kind == "delta" else gb < 0
    return x_hat, positive.astype(np.int64)


def cosine(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Row-wise cosine similarity; 0 where either side is zero or not finite."""
    a, b = np.asarray(a, float), np.asarray(b, float)
    na, nb = np.linalg.norm(a, axis=-1), np.linalg.norm(b, axis=-1)
    with np.errstate(divide="ignore", invalid="ignore"):
        c = (a * b).sum(-1) / (na * nb)
    return np.where(np.isfinite(c), c, 0.0)


def client_truth(client_X: list[np.ndarray]) -> np.ndarray:
    """What a reconstruction is compared with: the record of a one-record client, else the mean."""
    return np.stack([np.asarray(x, float).mean(axis=0) for x in client_X])


def reconstruction_report(x_hat: np.ndarray, y_hat: np.ndarray, client_X: list[np.ndarray],
                          client_y: list[np.ndarray]) -> dict:
    """Per round, how close the server's reconstructions come to each client's true data.

    ``x_hat`` (rounds, clients, d) and ``y_hat`` (rounds, clients) from
    :func:`reconstruct_lr_inputs`. Label accuracy is over one-record clients (their label is a
    record's label); ``None`` when there are none.
    """
    x_hat = np.asarray(x_hat, float)
    y_hat = np.asarray(y_hat)
    if x_hat.ndim == 2:
        x_hat, y_hat = x_hat[None], y_hat[None]
    truth = client_truth(client_X)
    if x_hat.shape[1:] != truth.shape:
        raise ValueError(f"reconstructions {x_hat.shape[1:]} do not match the clients' data {truth.shape}")
    cos = cosine(x_hat, truth[None])
    single = np.array([len(c) == 1 for c in client_y])
    labels = np.array([int(np.asarray(c)[0]) if len(c) == 1 else -1 for c in client_y])
    acc = [float((y_hat[r, single] == labels[single]).mean()) if single.any() else None
           for r in range(len(cos))]
    return {
        "cosine_mean": float(cos.mean()),
        "cosine_min": float(cos.min()),
        "frac_cosine_ge_0_99": float((cos >= 0.99).mean()),
        "cosine_by_round": [float(c) for c in cos.mean(axis=1)],
        "label_accuracy": None if not single.any() else float(np.mean([a for a in acc])),
        "label_accuracy_by_round": acc,
        "single_record_clients": int(single.sum()),
    }


def kmeans_singletons(counts: np.ndarray, sums: np.ndarray | None = None,
                      client_X: list[np.ndarray] | None = None, atol: float = 1e-6) -> dict:
    """Federated K-means clusters that a client fills with exactly one record.

    ``counts`` (rounds, clients, k) or (clients, k); ``sums`` the matching (…, k, d). Reports, for
    the last round and over all rounds, how many (client, cluster) pairs have count 1; with sums
    and each client's rows, how many of those sums equal one of the client's records exactly.
    """
    counts = np.asarray(counts)
    if counts.ndim == 2:
        counts = counts[None]
        sums = None if sums is None else np.asarray(sums)[None]
    ones = counts == 1
    out = {
        "fl_kmeans_singletons": int(ones[-1].sum()),
        "fl_kmeans_singletons_all_rounds": int(ones.sum()),
        "fl_kmeans_clients_exposed": int(ones.any(axis=(0, 2)).sum()),
    }
    if sums is not None and client_X is not None:
        sums = np.asarray(sums, float)
        exact = 0
        for r, c, j in zip(*np.nonzero(ones), strict=True):
            rows = np.asarray(client_X[c], float)
            if np.isclose(rows, sums[r, c, j], atol=atol, rtol=0).all(axis=1).any():
                exact += 1
        out["fl_kmeans_singletons_exact_records"] = exact
    return out


def simulate_fedavg_lr(X: np.ndarray, y: np.ndarray, n_clients: int, records_per_client: int,
                       batch_size: int, local_epochs: int, rounds: int = 3, lr: float = 0.1,
                       l2: float = 0.0, seed: int = 0) -> dict:
    """FedAvg logistic regression in numpy, keeping every client's update as the server sees it.

    Each client holds ``records_per_client`` distinct rows of ``X`` and runs ``local_epochs``
    epochs of mini-batch SGD (``batch_size``, reshuffled each epoch) from the global model; the
    server averages the deltas (equal client sizes, so the plain mean is FedAvg's weighting).

    Returns ``update_w`` (rounds, clients, d), ``update_b`` (rounds, clients), ``global_w``
    (rounds, d) (the model each round started from), ``client_X``, ``client_y``.
    """
    X = np.asarray(X, float)
    y = np.asarray(y, float)
    if not 1 <= batch_size <= records_per_client:
        raise ValueError(f"batch_size={batch_size}; expected 1 <= batch_size <= records_per_client")
    if n_clients * records_per_client > len(X):
        raise ValueError(f"{n_clients} clients x {records_per_client} records exceed {len(X)} rows")
    rng = np.random.default_rng(seed)
    idx = rng.choice(len(X), n_clients * records_per_client, replace=False)
    idx = idx.reshape(n_clients, records_per_client)
    CX, Cy = X[idx], y[idx]  # (clients, n, d), (clients, n)
    d = X.shape[1]
    w, b = np.zeros(d), 0.0
    up_w = np.empty((rounds, n_clients, d))
    up_b = np.empty((rounds, n_clients))
    start_w = np.empty((rounds, d))
    rows = np.arange(n_clients)[:, None]
    for r in range(rounds):
        start_w[r] = w
        W = np.tile(w, (n_clients, 1))
        B = np.full(n_clients, b)
        for _ in range(local_epochs):
            order = rng.permuted(np.tile(np.arange(records_per_client), (n_clients, 1)), axis=1)
            for s in range(0, records_per_client, batch_size):
                sel = order[:, s:s + batch_size]
                Xb, yb = CX[rows, sel], Cy[rows, sel]
                err = expit(np.einsum("cbd,cd->cb", Xb, W) + B[:, None]) - yb
                W -= lr * (np.einsum("cb,cbd->cd", err, Xb) / sel.shape[1] + l2 * W)
                B -= lr * err.mean(axis=1)
        up_w[r], up_b[r] = W - w, B - b
        w, b = w + up_w[r].mean(axis=0), b + float(up_b[r].mean())
    return {"update_w": up_w, "update_b": up_b, "global_w": start_w,
            "client_X": list(CX), "client_y": list(Cy)}


#: (records_per_client, batch_size, local_epochs): full-batch clients of growing size, then
#: realistic mini-batch clients.
DEFAULT_GRID = tuple(
    [(n, n, e) for n in (1, 2, 8, 32, 128) for e in (1, 2, 5, 10)]
    + [(128, b, e) for b in (1, 8, 32) for e in (1, 5)]
)


def reconstruction_sweep(X: np.ndarray, y: np.ndarray, grid=DEFAULT_GRID, n_clients: int = 50,
                         rounds: int = 3, lr: float = 0.1, l2: float = 0.0, seed: int = 0) -> list[dict]:
    """Reconstruction quality across client sizes, batch sizes and local epochs (one row each)."""
    out = []
    for n, bs, ep in grid:
        n_c = min(n_clients, len(X) // n)
        sim = simulate_fedavg_lr(X, y, n_c, n, bs, ep, rounds=rounds, lr=lr, l2=l2, seed=seed)
        x_hat, y_hat = reconstruct_lr_inputs(sim["update_w"], sim["update_b"], kind="delta",
                                             l2=l2 if ep == 1 and bs == n else 0.0,
                                             global_w=sim["global_w"][:, None, :], lr=lr)
        rep = reconstruction_report(x_hat, y_hat, sim["client_X"], sim["client_y"])
        out.append({"records_per_client": n, "batch_size": bs, "local_epochs": ep, "clients": n_c,
                    "rounds": rounds, **rep})
    return out
