"""Hostile files: zip bombs, lying size headers, oversized files and huge values are refused cheaply."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

import datasets
from datasets import DataError, _source
from datasets._source import OUTER_ARCHIVE

REPO = Path(__file__).resolve().parents[2]
ZEROS = 256 << 20  # 256 MiB of NUL bytes: deflates to about 260 KB


def _zeros_zip(path: Path, member: str, size: int = ZEROS) -> Path:
    """A zip holding ``size`` NUL bytes as ``member``, written in chunks (never all in memory)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    chunk = bytes(1 << 20)
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as zf:
        with zf.open(member, "w", force_zip64=True) as out:
            for _ in range(size // len(chunk)):
                out.write(chunk)
    return path


@pytest.fixture(scope="module")
def bombs(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("bombs")
    # bank.zip whose bank-full.csv is 256 MiB of NULs; an outer archive whose bank.zip is 256 MiB
    _zeros_zip(root / "member" / "bank.zip", "bank-full.csv")
    _zeros_zip(root / "inner" / OUTER_ARCHIVE, "bank.zip")
    return {"member": root / "member", "inner": root / "inner"}


PROBE = r"""
import json, resource, sys, time
from omegaconf import OmegaConf
import datasets


def peak_mb():
    # VmHWM starts afresh at exec; ru_maxrss would carry the forking parent's peak on Linux
    try:
        with open("/proc/self/status") as f:
            return next(int(line.split()[1]) for line in f if line.startswith("VmHWM:")) / 1024
    except (OSError, StopIteration):
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


out = {"baseline_mb": peak_mb()}
for case, directory in json.loads(sys.argv[1]).items():
    cfg = OmegaConf.load("conf/dataset/bank_full.yaml")
    cfg.data_dir, cfg.download, cfg.verify_checksum = directory, False, False
    t = time.perf_counter()
    try:
        datasets.read_frame(cfg)
        message = None
    except datasets.DataError as exc:
        message = str(exc)
    out[case] = {"seconds": time.perf_counter() - t, "message": message}
out["peak_mb"] = peak_mb()
print(json.dumps(out))
"""


def test_zip_bombs_are_refused_fast_and_in_little_memory(bombs):
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.run([sys.executable, "-c", PROBE, json.dumps({k: str(v) for k, v in bombs.items()})],
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    print(json.dumps(out, indent=1))  # shown with -s: the measured seconds and peak RSS
    for case in bombs:
        assert out[case]["message"] is not None, f"{case}: the bomb was accepted"
        assert "declared size" in out[case]["message"] and "limit" in out[case]["message"]
        assert len(out[case]["message"]) < 500
        assert out[case]["seconds"] < 2.0, out
    assert out["peak_mb"] < 300 and out["peak_mb"] - out["baseline_mb"] < 64, out


def test_a_lying_size_header_cannot_inflate_past_it(make_dataset_config, tmp_path):
    path = tmp_path / "bank.zip"
    _zeros_zip(path, "bank-full.csv", size=4 << 20)
    blob = bytearray(path.read_bytes())
    central = blob.rindex(b"PK\x01\x02")  # the central directory entry: its size field says 4 MiB
    assert int.from_bytes(blob[central + 24:central + 28], "little") == 4 << 20
    blob[central + 24:central + 28] = (1000).to_bytes(4, "little")
    path.write_bytes(bytes(blob))
    with zipfile.ZipFile(path) as zf:
        try:
            data, _ = _source._member(zf, "bank-full.csv", _source.MAX_CSV_BYTES, "bank.zip")
            assert len(data) <= 1000  # never the 4 MiB really there
        except DataError as exc:
            assert "bank.zip:bank-full.csv: cannot decompress the member" in str(exc)
    cfg = make_dataset_config("bank_full", data_dir=str(tmp_path), download=False, verify_checksum=False)
    with pytest.raises(DataError, match=r"bank\.zip:bank-full\.csv: ") as info:
        datasets.read_frame(cfg)
    assert len(str(info.value)) < 500


def test_oversized_csv_is_refused_before_reading(make_dataset_config, tmp_path):
    with open(tmp_path / "bank-full.csv", "wb") as f:
        f.truncate(_source.MAX_CSV_BYTES + 1)  # sparse: costs no disk
    cfg = make_dataset_config("bank_full", data_dir=str(tmp_path), download=False, verify_checksum=False)
    with pytest.raises(DataError, match=r"bank-full\.csv: the CSV is 67,108,865 bytes, more than the 64 MiB limit"):
        datasets.read_frame(cfg)


def test_oversized_inner_archive_file_is_refused(make_dataset_config, tmp_path):
    with open(tmp_path / "bank.zip", "wb") as f:
        f.truncate(_source.MAX_ARCHIVE_BYTES + 1)
    cfg = make_dataset_config("bank_full", data_dir=str(tmp_path), download=False, verify_checksum=False)
    with pytest.raises(DataError, match=r"bank\.zip: the archive is 16,777,217 bytes, more than the 16 MiB"):
        datasets.read_frame(cfg)


def test_oversized_download_is_refused_and_not_kept(make_dataset_config, http_root, tmp_path, monkeypatch):
    root, base = http_root
    (root / OUTER_ARCHIVE).write_bytes(bytes(3 << 20))
    monkeypatch.setattr(_source, "MAX_DOWNLOAD_BYTES", 1 << 20)
    cache = tmp_path / "cache"
    monkeypatch.setenv("PRIVMARK_CACHE_DIR", str(cache))
    cfg = make_dataset_config("bank_full", source="uci", url=f"{base}/{OUTER_ARCHIVE}")
    with pytest.raises(DataError, match=r"the download \(Content-Length\) is 3,145,728 bytes, more than the 1 MiB"):
        datasets.read_frame(cfg)
    assert not list(cache.iterdir())
