"""Shared fixtures: the local UCI copy (``PRIVMARK_DATA_DIR``) and small, fast configs."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from omegaconf import OmegaConf

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "datasets" / "bank-marketing"


def _data_dir() -> Path:
    env = os.environ.get("PRIVMARK_DATA_DIR")
    path = Path(env) if env else SHARED_DATA
    if not (path / "bank.zip").is_file():
        pytest.fail(f"UCI Bank Marketing archives not found in {path}; set PRIVMARK_DATA_DIR")
    return path


@pytest.fixture(scope="session")
def data_dir() -> Path:
    return _data_dir()


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path_factory, monkeypatch):
    """Tests never read or write the user's cache, and find the data through the env var."""
    monkeypatch.setenv("PRIVMARK_CACHE_DIR", str(tmp_path_factory.getbasetemp() / "cache"))
    monkeypatch.setenv("PRIVMARK_DATA_DIR", str(_data_dir()))


def dataset_config(name: str = "bank_full", **overrides):
    cfg = OmegaConf.load(REPO / "conf" / "dataset" / f"{name}.yaml")
    cfg.data_dir = str(_data_dir())
    for key, value in overrides.items():
        OmegaConf.update(cfg, key, value)
    return cfg


@pytest.fixture(scope="session")
def small_split():
    """A stratified 2,000-row subsample of bank_full, split 80/20 with split_seed 0."""
    import datasets

    return datasets.load(dataset_config("bank_full", subsample=2000), split_seed=0)


@pytest.fixture(scope="session")
def make_dataset_config():
    """``make_dataset_config(name, **dotted_overrides)`` -> a dataset config reading the local copy."""
    return dataset_config
