"""Refusals of values the parser and the config checks used to let through."""

from __future__ import annotations

import os
import urllib.request

import numpy as np
import pytest

import datasets
from datasets import ConfigError, DataError


@pytest.mark.parametrize("value", ["abc", 2000.7, True, "2000", [2000]])
def test_subsample_must_be_a_whole_number(make_dataset_config, value):
    with pytest.raises(ConfigError, match=r"dataset\.subsample=.*; expected a whole number of rows \(or null\)"):
        datasets.load(make_dataset_config("bank_full", subsample=value))


def test_an_integral_float_subsample_is_accepted(make_dataset_config):
    split = datasets.load(make_dataset_config("bank_full", subsample=2000.0))
    assert len(split.train) + len(split.test) == 2000


@pytest.mark.parametrize("name, least", [("bank_full", 22), ("bank_additional", 23)])
def test_subsample_too_small_to_split_names_the_real_minimum(make_dataset_config, name, least):
    for n in (10, 12, least - 1):
        with pytest.raises(DataError, match=rf"dataset\.subsample={n}; expected between {least} and "
                                            r"4\d,\d{3} rows .*test_size=0\.2 and 11\.\d% in the smallest class"):
            datasets.load(make_dataset_config(name, subsample=n))
    for seed in range(5):
        split = datasets.load(make_dataset_config(name, subsample=least), split_seed=seed)
        for part in (split.train, split.test):
            assert set(np.unique(part.y)) == {0, 1}


def test_test_size_that_empties_a_class_is_refused(make_dataset_config):
    with pytest.raises(DataError, match=r"dataset\.subsample=100; expected between \d{3} and"):
        datasets.load(make_dataset_config("bank_full", subsample=100, test_size=0.01))


def test_data_with_one_class_is_refused(make_dataset_config, tmp_path):
    header = '"age";"job";"marital";"education";"default";"balance";"housing";"loan";"contact";"day";"month";"duration";"campaign";"pdays";"previous";"poutcome";"y"\n'
    row = '58;"management";"married";"tertiary";"no";2143;"yes";"no";"unknown";5;"may";261;1;-1;0;"unknown";"no"\n'
    (tmp_path / "bank-full.csv").write_text(header + row * 50)
    cfg = make_dataset_config("bank_full", data_dir=str(tmp_path), download=False, verify_checksum=False,
                              subsample=30)
    with pytest.raises(DataError, match=r"bank-full\.csv: column 'y' has 0 row\(s\) of one class"):
        datasets.load(cfg)


@pytest.mark.parametrize("value", ["abc", True, None, 0, 1])
def test_test_size_must_be_a_fraction(make_dataset_config, value):
    with pytest.raises(ConfigError, match=r"dataset\.test_size=.*; expected a fraction in \(0, 1\)"):
        datasets.load(make_dataset_config("bank_full", subsample=500, test_size=value))


@pytest.mark.parametrize(
    "name", ["x/../../..", "Bank Full", "bank_fulll", "bank_additional", 3],
    ids=["traversal", "space", "typo", "other-variant", "number"],
)
def test_dataset_name_must_be_its_config_file(make_dataset_config, name):
    cfg = make_dataset_config("bank_full", subsample=500)
    cfg.name = name
    with pytest.raises(ConfigError, match=r"dataset\.name=") as info:
        datasets.load(cfg)
    assert "conf/dataset" in str(info.value)
    with pytest.raises(ConfigError, match=r"dataset\.name="):
        datasets.data_identity(cfg)


@pytest.fixture
def no_network(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("a symlink problem must not trigger a download")

    monkeypatch.setattr(urllib.request, "urlopen", refuse)


@pytest.mark.parametrize("where", ["csv", "archive", "data_dir"])
def test_a_symlink_loop_is_named_not_taken_for_missing(make_dataset_config, tmp_path, no_network, where):
    name = {"csv": "bank-full.csv", "archive": "bank.zip", "data_dir": "data"}[where]
    loop = tmp_path / name
    os.symlink(loop, loop)
    directory = loop if where == "data_dir" else tmp_path
    cfg = make_dataset_config("bank_full", data_dir=str(directory), download=True, source="auto")
    with pytest.raises(DataError, match=rf"{loop}: symbolic link loop|{loop} is a symbolic link loop"):
        datasets.read_frame(cfg)


def test_a_broken_symlink_is_named(make_dataset_config, tmp_path, no_network):
    os.symlink(tmp_path / "gone.csv", tmp_path / "bank-full.csv")
    cfg = make_dataset_config("bank_full", data_dir=str(tmp_path), download=True)
    with pytest.raises(DataError, match=r"bank-full\.csv is a broken symbolic link"):
        datasets.read_frame(cfg)
