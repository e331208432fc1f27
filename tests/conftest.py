"""Shared fixtures: small, fast configs on the shipped data, and UCI's archives for the archive tests.

Tests read the CSVs shipped in ``datasets/data/`` unless ``PRIVMARK_DATA_DIR`` is set (then that
folder, as in a real run). Only tests of the archive and download paths ask for the ``data_dir``
fixture: UCI's original archives, from ``PRIVMARK_DATA_DIR`` or ``../shared/datasets/bank-marketing``.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from omegaconf import OmegaConf

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "datasets" / "bank-marketing"


def _env_data_dir() -> str | None:
    return os.environ.get("PRIVMARK_DATA_DIR") or None


def _archive_dir() -> Path:
    env = _env_data_dir()
    for path in ([Path(env)] if env else []) + [SHARED_DATA]:
        if (path / "bank.zip").is_file():
            return path
    pytest.fail(f"UCI Bank Marketing archives (bank.zip, bank-additional.zip) not found in "
                f"{env or SHARED_DATA}; the archive tests need them: set PRIVMARK_DATA_DIR")


@pytest.fixture(scope="session")
def data_dir() -> Path:
    """UCI's original archives (bank.zip, bank-additional.zip), for tests of the archive paths."""
    return _archive_dir()


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path_factory, monkeypatch):
    """Tests never read or write the user's cache."""
    monkeypatch.setenv("PRIVMARK_CACHE_DIR", str(tmp_path_factory.getbasetemp() / "cache"))


def dataset_config(name: str = "bank_full", **overrides):
    """The dataset config, reading ``$PRIVMARK_DATA_DIR`` when set and the shipped copy otherwise."""
    cfg = OmegaConf.load(REPO / "conf" / "dataset" / f"{name}.yaml")
    cfg.data_dir = _env_data_dir()
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
    """``make_dataset_config(name, **dotted_overrides)`` -> a dataset config (see ``dataset_config``)."""
    return dataset_config
