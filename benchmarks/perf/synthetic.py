"""Synthetic customers (``dataset=synthetic``): generation time and memory, and the plaintext AUC
of a model trained on synthetic rows against one trained on the real training split.

    python -m benchmarks.perf synthetic [--rows 1000000] [--runs 3] [--seed 0] [--split-seed 0]
                                        [--auc-rows 36168] [--no-auc]

Fits the generator on bank_full's training split once (``fit_s``), then draws ``--rows`` rows
``--runs`` times (``generate_s``: median and each run; the rows of every run are checked to be the
same) and builds the model features from the last draw (``features_s``). ``peak_rss_mb`` is the
process's peak resident set after all of it (libraries and the real data included);
``frame_mb`` the drawn frame's own size. ``--auc-rows``: the plaintext logistic regression (the
plaintext method's predictor, without segments) trained on that many synthetic rows and on the real
training split, both scored on the real test split.
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import pandas as pd
from omegaconf import OmegaConf

from methods._util import CONF
from methods.base import peak_rss_mb


def dataset_cfg(**overrides):
    from benchmarks.config import DatasetConfig

    raw = OmegaConf.load(CONF / "dataset" / "synthetic.yaml")
    raw.pop("defaults", None)
    cfg = OmegaConf.merge(OmegaConf.structured(DatasetConfig), raw)
    for key, value in overrides.items():
        OmegaConf.update(cfg, key, value)
    return cfg


def plaintext_auc(split) -> float:
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import roc_auc_score

    model = LogisticRegression(max_iter=1000).fit(split.train.X, split.train.y)
    return float(roc_auc_score(split.test.y, model.predict_proba(split.test.X)[:, 1]))


def main(argv: list[str]) -> dict:
    import datasets
    from datasets import _synthetic

    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.perf synthetic", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--split-seed", type=int, default=0)
    parser.add_argument("--auc-rows", type=int, default=36_168)
    parser.add_argument("--no-auc", action="store_true")
    args = parser.parse_args(argv)
    cfg = dataset_cfg(n_rows=args.rows, seed=args.seed)
    datasets.check_config(cfg)

    t = time.perf_counter()
    source = _synthetic.source_spec(cfg)
    frame, _ = datasets.read_frame(source)
    from sklearn.model_selection import train_test_split

    real_train, _ = train_test_split(
        frame, test_size=source.test_size, stratify=frame["y"], random_state=args.split_seed
    )
    model = _synthetic.fit(real_train, source)
    fit_s = time.perf_counter() - t

    times, first = [], None
    for _ in range(args.runs):
        t = time.perf_counter()
        rows = _synthetic.generate(model, args.rows, args.seed)
        times.append(time.perf_counter() - t)
        if first is None:
            first = pd.util.hash_pandas_object(rows, index=False).to_numpy()
        elif not np.array_equal(first, pd.util.hash_pandas_object(rows, index=False).to_numpy()):
            raise AssertionError("two draws with the same seed differ")
        print(f"generated {args.rows:,} rows in {times[-1]:.2f} s", flush=True)
    frame_mb = rows.memory_usage(deep=True).sum() / 2**20
    pre = datasets.preprocessor(cfg).fit(rows)
    t = time.perf_counter()
    X, _ = pre.transform(rows)
    features_s = time.perf_counter() - t
    out = {
        "rows": args.rows,
        "generator": _synthetic.GENERATOR_VERSION,
        "seed": args.seed,
        "fit_s": round(fit_s, 3),
        "generate_s": round(statistics.median(times), 3),
        "generate_runs_s": [round(x, 3) for x in times],
        "features_s": round(features_s, 3),
        "n_features": X.shape[1],
        "frame_mb": round(frame_mb, 1),
        "X_mb": round(X.nbytes / 2**20, 1),
        "peak_rss_mb": round(peak_rss_mb(), 1),
    }
    del X, rows
    if not args.no_auc:
        synthetic = datasets.load(dataset_cfg(n_rows=args.auc_rows, seed=args.seed), args.split_seed)
        real_split = datasets.load(source, args.split_seed)
        out["auc_synthetic"] = round(plaintext_auc(synthetic), 4)
        out["auc_real"] = round(plaintext_auc(real_split), 4)
        out["auc_gap"] = round(out["auc_real"] - out["auc_synthetic"], 4)
        out["auc_rows"] = args.auc_rows
    return out
