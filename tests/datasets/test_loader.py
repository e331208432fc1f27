"""Loader: sources, download, checksums and every refusal, on the real UCI files."""

from __future__ import annotations

import io
import lzma
import shutil
import zipfile
from pathlib import Path

import numpy as np
import pytest

import datasets
from datasets import DataError, _source
from datasets._source import OUTER_ARCHIVE


@pytest.fixture(scope="module")
def full_csv() -> bytes:
    """bank-full.csv as UCI ships it (from the shipped copy: no archives needed)."""
    return lzma.decompress((_source.SHIPPED_DIR / "bank-full.csv.xz").read_bytes())


def _write_csv(tmp_path: Path, text: bytes | str) -> Path:
    path = tmp_path / "bank-full.csv"
    path.write_bytes(text.encode() if isinstance(text, str) else text)
    return tmp_path


def _load(make_dataset_config, directory: Path, **kw):
    cfg = make_dataset_config("bank_full", download=False, **kw)
    cfg.data_dir = str(directory)
    return datasets.read_frame(cfg)[0]


@pytest.mark.parametrize(
    "name, rows, positives",
    [("bank_full", 45211, 5289), ("bank_additional", 41188, 4640)],
)
def test_both_variants_have_the_documented_rows_and_classes(make_dataset_config, name, rows, positives):
    frame, source = datasets.read_frame(make_dataset_config(name))
    assert len(frame) == rows
    assert int(frame["y"].sum()) == positives
    assert ".csv" in source


def test_bank_additional_has_the_economic_indicators_and_999_sentinel(make_dataset_config):
    frame, _ = datasets.read_frame(make_dataset_config("bank_additional"))
    for col in ("emp.var.rate", "cons.price.idx", "cons.conf.idx", "euribor3m", "nr.employed"):
        assert col in frame
    assert (frame["pdays"] == 999).mean() > 0.9


def test_reads_an_extracted_csv_and_the_outer_archive(make_dataset_config, data_dir, full_csv, tmp_path):
    extracted = tmp_path / "extracted"
    extracted.mkdir()
    assert len(_load(make_dataset_config, _write_csv(extracted, full_csv))) == 45211
    outer_dir = tmp_path / "outer"
    outer_dir.mkdir()
    with zipfile.ZipFile(outer_dir / OUTER_ARCHIVE, "w") as zf:
        zf.write(data_dir / "bank.zip", "bank.zip")
        zf.write(data_dir / "bank-additional.zip", "bank-additional.zip")
    assert len(_load(make_dataset_config, outer_dir)) == 45211


def test_missing_data_without_network_is_refused(make_dataset_config, tmp_path, monkeypatch):
    monkeypatch.setenv("PRIVMARK_CACHE_DIR", str(tmp_path / "empty-cache"))
    with pytest.raises(DataError, match=r"bank-full\.csv, bank\.zip or bank\+marketing\.zip not found"
                       r".*empty-cache and dataset\.download=false"):
        _load(make_dataset_config, tmp_path, source="uci")


def test_truncated_csv_is_refused_with_row_count(make_dataset_config, full_csv, tmp_path):
    lines = full_csv.splitlines(keepends=True)
    with pytest.raises(DataError, match=r"sha256 mismatch.*45,000 data rows, expected 45,211"):
        _load(make_dataset_config, _write_csv(tmp_path, b"".join(lines[:45001])))


def test_file_cut_mid_line_is_refused_naming_the_line(make_dataset_config, full_csv, tmp_path):
    cut = full_csv[: len(full_csv) // 2]
    cut = cut[: cut.rindex(b";") ]  # ends inside a row
    line = cut.count(b"\n") + 1
    with pytest.raises(DataError, match=rf"bank-full\.csv: line {line} has fewer fields than the header's 17; "
                                        r"the file is truncated or a row is cut short \[sha256 mismatch"):
        _load(make_dataset_config, _write_csv(tmp_path, cut))


def test_altered_value_is_refused_by_checksum(make_dataset_config, full_csv, tmp_path):
    altered = full_csv.replace(b'58;"management"', b'59;"management"', 1)
    with pytest.raises(DataError, match=r"sha256 mismatch.*contents were altered"):
        _load(make_dataset_config, _write_csv(tmp_path, altered))


def test_altered_inner_archive_is_refused(make_dataset_config, data_dir, tmp_path):
    blob = bytearray((data_dir / "bank.zip").read_bytes())
    blob[1000] ^= 0xFF
    (tmp_path / "bank.zip").write_bytes(bytes(blob))
    with pytest.raises(DataError, match=r"bank\.zip: sha256 mismatch"):
        _load(make_dataset_config, tmp_path)


HEADER = '"age";"job";"marital";"education";"default";"balance";"housing";"loan";"contact";"day";"month";"duration";"campaign";"pdays";"previous";"poutcome";"y"\n'
ROW = '58;"management";"married";"tertiary";"no";2143;"yes";"no";"unknown";5;"may";261;1;-1;0;"unknown";"no"\n'


@pytest.mark.parametrize(
    "text, message",
    [
        ("", r"the file is empty"),
        (HEADER, r"header but no data rows"),
        (HEADER.replace('"age";', "") + ROW.replace("58;", "", 1), r"missing columns \['age'\]"),
        (HEADER.replace('"y"', '"y";"extra"') + ROW.replace('"no"\n', '"no";1\n'), r"unexpected columns \['extra'\]"),
        (HEADER + ROW.replace('"management"', '"astronaut"'), r"column 'job' has unknown value\(s\) \['astronaut'\]"),
        (HEADER + ROW.replace("2143", "NaN"), r"column 'balance' has 1 missing or non-numeric"),
        (HEADER + ROW.replace("2143", "lots"), r"column 'balance' .*'lots'.*line 2"),
        (HEADER + ROW.replace('"unknown";"no"\n', '"unknown";"maybe"\n'), r"column 'y' has value\(s\) \['maybe'\]"),
        (HEADER + ROW + '1;2;3;4;5;6;7;8;9;10;11;12;13;14;15;16;17;18;19;20\n', r"malformed CSV"),
    ],
    ids=["empty", "no-rows", "missing-col", "extra-col", "unknown-category", "nan", "non-numeric",
         "bad-y", "too-many-fields"],
)
def test_malformed_files_are_refused_with_a_specific_message(make_dataset_config, tmp_path, text, message):
    with pytest.raises(DataError, match=message) as info:
        _load(make_dataset_config, _write_csv(tmp_path, text), verify_checksum=False)
    assert "bank-full.csv" in str(info.value)


def test_data_dir_is_never_written(make_dataset_config, data_dir, tmp_path):
    ro = tmp_path / "ro"
    ro.mkdir()
    shutil.copy(data_dir / "bank.zip", ro / "bank.zip")
    ro.chmod(0o555)
    try:
        before = sorted(p.name for p in ro.iterdir())
        assert len(_load(make_dataset_config, ro)) == 45211
        assert sorted(p.name for p in ro.iterdir()) == before
    finally:
        ro.chmod(0o755)


# -- download ------------------------------------------------------------------------------


def _outer_archive(data_dir: Path, corrupt: bool = False) -> bytes:
    buf = io.BytesIO()
    inner = bytearray((data_dir / "bank.zip").read_bytes())
    if corrupt:
        inner[5000] ^= 0xFF
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("bank.zip", bytes(inner))
        zf.write(data_dir / "bank-additional.zip", "bank-additional.zip")
    return buf.getvalue()


def _download_cfg(make_dataset_config, tmp_path, url):
    cfg = make_dataset_config("bank_full", source="uci", download=True, url=url)
    empty = tmp_path / "empty"
    empty.mkdir(exist_ok=True)
    cfg.data_dir = str(empty)
    return cfg


def test_download_verifies_and_caches(make_dataset_config, data_dir, http_root, tmp_path, monkeypatch):
    root, base = http_root
    (root / OUTER_ARCHIVE).write_bytes(_outer_archive(data_dir))
    cache = tmp_path / "cache"
    monkeypatch.setenv("PRIVMARK_CACHE_DIR", str(cache))
    cfg = _download_cfg(make_dataset_config, tmp_path, f"{base}/{OUTER_ARCHIVE}")
    frame, source = datasets.read_frame(cfg)
    assert len(frame) == 45211 and "downloaded from" in source
    assert (cache / OUTER_ARCHIVE).is_file()
    assert not list(cache.glob("*.part"))
    (root / OUTER_ARCHIVE).unlink()  # the second load comes from the cache
    frame, source = datasets.read_frame(cfg)
    assert len(frame) == 45211 and source.startswith(str(cache))


def test_corrupted_download_is_refused_and_not_kept(make_dataset_config, data_dir, http_root, tmp_path,
                                                    monkeypatch):
    root, base = http_root
    (root / OUTER_ARCHIVE).write_bytes(_outer_archive(data_dir, corrupt=True))
    cache = tmp_path / "cache"
    monkeypatch.setenv("PRIVMARK_CACHE_DIR", str(cache))
    cfg = _download_cfg(make_dataset_config, tmp_path, f"{base}/{OUTER_ARCHIVE}")
    with pytest.raises(DataError, match=r"bank\.zip: sha256 mismatch"):
        datasets.read_frame(cfg)
    assert not (cache / OUTER_ARCHIVE).exists()


def test_unreachable_download_says_where_to_put_the_data(make_dataset_config, http_root, tmp_path):
    _, base = http_root
    cfg = _download_cfg(make_dataset_config, tmp_path, f"{base}/nothing-here.zip")
    with pytest.raises(DataError, match=r"downloading .* failed .*PRIVMARK_DATA_DIR"):
        datasets.read_frame(cfg)


def test_subsample_larger_than_data_is_refused(make_dataset_config):
    with pytest.raises(DataError, match=r"dataset\.subsample=50000"):
        datasets.load(make_dataset_config("bank_full", subsample=50000))


def test_loaded_arrays_are_finite(small_split):
    assert np.isfinite(small_split.train.X).all() and np.isfinite(small_split.test.X).all()


def test_source_uci_downloads_and_ignores_the_data_dir(make_dataset_config, data_dir, http_root, tmp_path,
                                                       monkeypatch):
    root, base = http_root
    (root / OUTER_ARCHIVE).write_bytes(_outer_archive(data_dir))
    cache = tmp_path / "cache"
    monkeypatch.setenv("PRIVMARK_CACHE_DIR", str(cache))
    cfg = make_dataset_config("bank_full", source="uci", download=True, url=f"{base}/{OUTER_ARCHIVE}")
    cfg.data_dir = str(data_dir)  # holds bank.zip, but source=uci reads only the cache or UCI
    frame, source = datasets.read_frame(cfg)
    assert len(frame) == 45211 and "downloaded from" in source
    assert datasets.data_identity(cfg)["sha256"] == cfg.csv_sha256
    (root / OUTER_ARCHIVE).unlink()
    cfg.download = False  # now in the cache: no network needed
    identity = datasets.data_identity(cfg)
    assert identity["source"] == "cache" and identity["location"].startswith(str(cache))
