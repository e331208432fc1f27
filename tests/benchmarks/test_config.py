"""The config layer: one schema per group, one refusal type, schemas in step with the code."""

from __future__ import annotations

import dataclasses
import inspect

import pytest
from omegaconf import OmegaConf

import benchmarks.run
import datasets
import methods
from benchmarks import config as C
from benchmarks import config_check as CC
from benchmarks.attacks import LeakageConfigError

from .conftest import REPO


def test_one_config_error_class():
    assert datasets.ConfigError is methods.ConfigError is benchmarks.run.ConfigError is C.ConfigError
    assert LeakageConfigError is C.ConfigError and issubclass(C.ConfigError, ValueError)


@pytest.mark.parametrize("name", sorted(methods.METHODS))
def test_each_method_schema_lists_its_constructor_parameters(name):
    accepted = set(inspect.signature(methods.method_class(name)).parameters) - {"n_clusters", "random_state"}
    fields = {f.name for f in dataclasses.fields(C.METHOD_SCHEMAS[name])} - {"name"}
    assert fields == accepted, f"benchmarks.config.{C.METHOD_SCHEMAS[name].__name__} is out of step"


def test_every_config_file_names_its_schema():
    files = {**{p: f"{p.stem}_schema" for p in (REPO / "conf" / "method").glob("*.yaml")},
             **{p: "dataset_schema" for p in (REPO / "conf" / "dataset").glob("*.yaml")},
             REPO / "conf" / "leakage" / "default.yaml": "leakage_schema",
             REPO / "conf" / "config.yaml": "base_config"}
    for path, schema in files.items():
        assert schema in OmegaConf.load(path).defaults, path


def test_the_check_returns_the_job_with_per_method_applied():
    from hydra import compose, initialize_config_dir

    with initialize_config_dir(config_dir=str(REPO / "conf"), version_base="1.3"):
        cfg = compose("config", overrides=["+experiment=smoke", "method=he"], return_hydra_config=True)
    job = CC.check(cfg, cfg.hydra.runtime.choices)
    assert "hydra" not in job and "per_method" not in job
    assert job.method.max_iter == 10 and job.method.lr_n_iter == 4


def test_a_programmatic_config_is_conformed_too():
    with pytest.raises(C.ConfigError, match=r"^method\.max_iter: Value 'many' of type 'str'"):
        C.conform(C.PlaintextConfig, {"max_iter": "many"}, "method")
    with pytest.raises(C.ConfigError, match=r"^dataset\.numeric is missing; give it a value$"):
        C.conform(C.DatasetConfig, {"name": "bank_full", "csv": "bank-full.csv", "archive": "bank.zip",
                                    "csv_sha256": "x", "archive_sha256": "y", "expected_rows": 1, "url": "u",
                                    "segment_features": ["age"], "categorical": {}}, "dataset")
