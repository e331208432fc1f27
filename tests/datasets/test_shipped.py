"""The CSVs shipped in datasets/data/: read offline, verified, and named by their checksum."""

from __future__ import annotations

import lzma
import os
import urllib.request

import pytest

import datasets
from datasets import ConfigError, DataError, _source


@pytest.fixture
def offline(monkeypatch, tmp_path):
    """No data dir, an empty cache, and any attempt to use the network fails the test."""
    monkeypatch.delenv("PRIVMARK_DATA_DIR", raising=False)
    monkeypatch.setenv("PRIVMARK_CACHE_DIR", str(tmp_path / "cache"))

    def no_network(*args, **kwargs):
        raise AssertionError("the shipped copy must load without the network")

    monkeypatch.setattr(urllib.request, "urlopen", no_network)


@pytest.mark.parametrize("source", ["auto", "shipped"])
@pytest.mark.parametrize("name, rows", [("bank_full", 45211), ("bank_additional", 41188)])
def test_shipped_copy_loads_with_no_data_dir_and_no_network(make_dataset_config, offline, name, rows,
                                                            source):
    cfg = make_dataset_config(name, data_dir=None, download=False, source=source)
    frame, label = datasets.read_frame(cfg)
    assert len(frame) == rows
    assert label == str(_source.SHIPPED_DIR / f"{cfg.csv}.xz")
    assert datasets.data_identity(cfg) == {"sha256": cfg.csv_sha256, "source": "shipped", "location": label}


def test_split_carries_the_data_checksum(small_split, make_dataset_config):
    assert small_split.data_sha256 == make_dataset_config("bank_full").csv_sha256


def test_an_empty_data_dir_falls_back_to_the_shipped_copy(make_dataset_config, offline, tmp_path):
    cfg = make_dataset_config("bank_full", data_dir=str(tmp_path), download=False)
    assert datasets.data_identity(cfg)["source"] == "shipped"


def _ship(monkeypatch, tmp_path, data: bytes, name: str = "bank-full.csv.xz"):
    shipped = tmp_path / "shipped"
    shipped.mkdir(exist_ok=True)
    (shipped / name).write_bytes(data)
    monkeypatch.setattr(_source, "SHIPPED_DIR", shipped)


@pytest.mark.parametrize("verify", [True, False])
def test_a_damaged_shipped_copy_is_refused(make_dataset_config, offline, monkeypatch, tmp_path, verify):
    csv = lzma.decompress((_source.SHIPPED_DIR / "bank-full.csv.xz").read_bytes())
    _ship(monkeypatch, tmp_path, lzma.compress(csv.replace(b"58;", b"59;", 1), preset=0))
    cfg = make_dataset_config("bank_full", data_dir=None, download=False, verify_checksum=verify)
    with pytest.raises(DataError, match=r"bank-full\.csv\.xz: the shipped copy is damaged .*dataset\.source=uci"):
        datasets.read_frame(cfg)


def test_a_shipped_copy_that_is_not_xz_is_refused(make_dataset_config, offline, monkeypatch, tmp_path):
    _ship(monkeypatch, tmp_path, b"this is not xz" * 100)
    cfg = make_dataset_config("bank_full", data_dir=None, download=False)
    with pytest.raises(DataError, match=r"bank-full\.csv\.xz: cannot decompress the shipped copy"):
        datasets.read_frame(cfg)


def test_source_shipped_without_a_shipped_copy_is_refused(make_dataset_config, offline, monkeypatch,
                                                          tmp_path):
    monkeypatch.setattr(_source, "SHIPPED_DIR", tmp_path)
    cfg = make_dataset_config("bank_full", data_dir=None, source="shipped")
    with pytest.raises(DataError, match=r"dataset\.source=shipped but there is no shipped copy"):
        datasets.read_frame(cfg)


def test_unknown_source_is_refused(make_dataset_config):
    with pytest.raises(ConfigError, match=r"dataset\.source='web'; expected one of auto, shipped, uci"):
        datasets.data_identity(make_dataset_config("bank_full", source="web"))


def test_data_identity_reads_a_file_once_until_it_changes(make_dataset_config, offline, monkeypatch,
                                                          tmp_path):
    packed = (_source.SHIPPED_DIR / "bank-full.csv.xz").read_bytes()
    _ship(monkeypatch, tmp_path, packed)
    reads = []
    extract = _source._extract
    monkeypatch.setattr(_source, "_extract", lambda found, spec: reads.append(found) or extract(found, spec))
    cfg = make_dataset_config("bank_full", data_dir=None, download=False)
    first = datasets.data_identity(cfg)
    assert datasets.data_identity(cfg) == first and len(reads) == 1
    path = tmp_path / "shipped" / "bank-full.csv.xz"
    st = path.stat()
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
    assert datasets.data_identity(cfg) == first and len(reads) == 2


def test_prepare_verifies_and_parses_once(make_dataset_config, offline):
    cfg = make_dataset_config("bank_additional", data_dir=None, download=False)
    assert datasets.prepare(cfg) == {**datasets.data_identity(cfg), "rows": 41188}
