"""dataset=synthetic: bank-like training rows drawn from a generator fitted on bank_full's training
split, tested on bank_full's real test rows."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from omegaconf import OmegaConf
from sklearn.model_selection import train_test_split

import datasets
from benchmarks.config import ConfigError
from benchmarks.perf.synthetic import dataset_cfg, plaintext_auc
from datasets import _synthetic


def same(a: pd.DataFrame, b: pd.DataFrame) -> bool:
    """Same columns, dtypes and values (categoricals by categories and codes); assert_frame_equal
    takes seconds on categoricals of this size."""
    if list(a.columns) != list(b.columns) or len(a) != len(b):
        return False
    for col in a.columns:
        x, z = a[col], b[col]
        cats = [isinstance(v.dtype, pd.CategoricalDtype) for v in (x, z)]
        if all(cats):
            if list(x.cat.categories) != list(z.cat.categories):
                return False
            x, z = x.cat.codes, z.cat.codes
        elif any(cats):
            x, z = x.astype(str).to_numpy(), z.astype(str).to_numpy()
        elif x.dtype != z.dtype:
            return False
        if not np.array_equal(np.asarray(x), np.asarray(z)):
            return False
    return True


@pytest.fixture(scope="module")
def source():
    return _synthetic.source_spec(dataset_cfg())


@pytest.fixture(scope="module")
def real_train(source):
    frame, _ = datasets.read_frame(source)
    train, _ = train_test_split(frame, test_size=source.test_size, stratify=frame["y"], random_state=0)
    return train


@pytest.fixture(scope="module")
def model(real_train, source):
    return _synthetic.fit(real_train, source)


def test_same_seed_same_rows_other_seed_other_rows(model):
    a, b = _synthetic.generate(model, 4000, 7), _synthetic.generate(model, 4000, 7)
    assert same(a, b)
    assert not same(a, _synthetic.generate(model, 4000, 8))
    # chunks of CHUNK rows with their own seeds: a draw longer than one chunk is still reproducible
    big = _synthetic.generate(model, _synthetic.CHUNK + 5000, 7)
    assert same(big, _synthetic.generate(model, _synthetic.CHUNK + 5000, 7))


def test_columns_types_bounds_and_class_share_are_bank_full(model, real_train, source):
    rows = _synthetic.generate(model, 20_000, 0)
    assert list(rows.columns) == list(real_train.columns)
    assert rows["y"].dtype == np.int8 and set(np.unique(rows["y"])) == {0, 1}
    assert abs(rows["y"].mean() - real_train["y"].mean()) < 1e-4  # class counts by rounding, not drawn
    for col, (lo, hi) in source.numeric.items():
        v = rows[col].to_numpy()
        assert v.dtype == np.float64 and np.all(v == np.round(v)), col  # whole numbers, as in the file
        inside = (v >= lo) & (v <= hi)
        if col == "pdays":
            inside |= v == -1  # the never-contacted sentinel
        assert inside.all(), col
    for col, cats in source.categorical.items():
        assert set(rows[col].astype(str)) <= set(cats), col
    # the never-contacted stratum keeps bank_full's exact link pdays == -1 <=> previous == 0
    assert np.array_equal(rows["pdays"] == -1, rows["previous"] == 0)
    assert (rows.loc[rows["pdays"] == -1, "poutcome"] == "unknown").mean() > 0.999
    # marginals and one dependence the copula keeps
    assert abs(rows["age"].median() - real_train["age"].median()) <= 1
    for frame in (rows, real_train):
        frame_rate = frame.groupby(frame["poutcome"].astype(str))["y"].mean()
        assert frame_rate["success"] > 0.5 > frame_rate["unknown"]

    def spearman(frame, a, b):
        contacted = frame[frame["pdays"] != -1]
        return contacted[a].rank().corr(contacted[b].rank())

    for a, b in (("pdays", "previous"), ("age", "balance"), ("campaign", "day")):
        assert abs(spearman(rows, a, b) - spearman(real_train, a, b)) < 0.05, (a, b)


def test_load_trains_on_synthetic_rows_and_tests_on_the_real_split(model, source):
    split = datasets.load(dataset_cfg(n_rows=5000), split_seed=0)
    real = datasets.load(source, split_seed=0)
    assert len(split.train) == 5000 and split.feature_names == real.feature_names
    assert same(split.test.frame, real.test.frame)  # the real test rows
    # fitted on the training split only: the rows are those of a generator fitted on it alone
    expected = _synthetic.generate(model, 5000, 0).drop(columns=["duration"])
    assert same(split.train.frame, expected)
    # AUC on the real test split of a model trained on 5,000 synthetic rows, against the real split's
    assert abs(plaintext_auc(split) - plaintext_auc(real)) < 0.03


def test_identity_names_the_rows():
    base = datasets.data_identity(dataset_cfg())
    assert base["source"] == "synthetic"
    facts = base["synthetic"]
    assert facts["generator"] == _synthetic.GENERATOR_VERSION and facts["n_rows"] == 36_168
    assert facts["source_sha256"] == "d1513ec63b385506f7cfce9f2c5caa9fe99e7ba4e8c3fa264b3aaf0f849ed32d"
    others = {
        datasets.data_identity(dataset_cfg(**change))["sha256"]
        for change in ({"seed": 1}, {"n_rows": 36_169}, {"test_size": 0.3})
    }
    assert base["sha256"] not in others and len(others) == 3
    assert datasets.prepare(dataset_cfg(n_rows=2000))["rows"] == 2000


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            {"n_rows": 999},
            "dataset.n_rows=999; expected a whole number of synthetic training rows between 1,000",
        ),
        ({"n_rows": 10_000_001}, "dataset.n_rows=10000001"),
        ({"n_rows": 1500.5}, "dataset.n_rows=1500.5"),
        ({"n_rows": True}, "dataset.n_rows=True"),
        ({"n_rows": None}, "dataset.n_rows=None"),
        ({"seed": -1}, "dataset.seed=-1; expected a whole number in [0, 2**32)"),
        ({"subsample": 5000}, "a synthetic dataset is sized by dataset.n_rows"),
        (
            {"source_dataset": "cdnow"},
            "dataset.source_dataset='cdnow', while conf/dataset/synthetic.yaml has",
        ),
        ({"numeric": {"age": [18, 90]}}, "dataset.numeric="),
        ({"categorical": {"job": ["admin."]}}, "dataset.categorical="),
    ],
)
def test_refusals(change, message):
    cfg = OmegaConf.create(OmegaConf.to_container(dataset_cfg()))  # untyped, as a YAML file read alone
    for key, value in change.items():
        if isinstance(value, dict):  # replace the whole table (a merge would keep bank_full's other keys)
            cfg[key] = OmegaConf.merge(cfg[key], value) if key == "categorical" else value
        else:
            OmegaConf.update(cfg, key, value)
    with pytest.raises(ConfigError) as info:
        datasets.check_config(cfg)
    assert message in str(info.value)


def test_the_runner_records_the_rows_identity(tmp_path):
    from hydra import compose, initialize_config_dir

    from benchmarks.run import run_job, validate
    from methods._util import CONF

    with initialize_config_dir(str(CONF), version_base="1.3"):
        cfg = compose(
            "config",
            overrides=[
                "method=plaintext",
                "dataset=synthetic",
                "dataset.n_rows=2000",
                "leakage.enabled=false",
                f"results_dir={tmp_path}",
            ],
        )
    record = run_job(validate(cfg), tmp_path / "run")
    assert record["data"]["synthetic"]["n_rows"] == 2000
    assert record["data"]["n_train"] == 2000 and record["data"]["n_test"] == 9043
    assert record["data"]["sha256"] == datasets.data_identity(cfg.dataset)["sha256"]
    other = compose_hash(cfg, seed=1)
    assert other != record["config_hash"]


def compose_hash(cfg, **dataset_changes):
    from benchmarks.record import config_hash

    cfg = cfg.copy()
    for key, value in dataset_changes.items():
        OmegaConf.update(cfg, f"dataset.{key}", value)
    return config_hash(
        OmegaConf.to_container(cfg, resolve=True), datasets.data_identity(cfg.dataset)["sha256"]
    )
