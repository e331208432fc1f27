"""Find the raw CSV bytes: a local CSV, an inner UCI zip, the outer UCI archive, or a download."""

from __future__ import annotations

import hashlib
import io
import os
import tempfile
import urllib.error
import urllib.request
import zipfile
from pathlib import Path

from tqdm.auto import tqdm

from datasets.errors import DataError

OUTER_ARCHIVE = "bank+marketing.zip"


def cache_dir() -> Path:
    """Where downloads go: ``$PRIVMARK_CACHE_DIR`` or the user cache dir (never the data dir)."""
    env = os.environ.get("PRIVMARK_CACHE_DIR")
    if env:
        return Path(env).expanduser()
    from platformdirs import user_cache_dir

    return Path(user_cache_dir("privmark")) / "bank-marketing"


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _member(zf: zipfile.ZipFile, name: str) -> str | None:
    """The archive member whose base name is ``name`` (ignoring macOS ``__MACOSX`` shadows)."""
    for info in zf.infolist():
        if info.filename.startswith("__MACOSX") or info.is_dir():
            continue
        if Path(info.filename).name == name:
            return info.filename
    return None


def _read_zip(source: Path | bytes, label: str) -> zipfile.ZipFile:
    try:
        return zipfile.ZipFile(io.BytesIO(source) if isinstance(source, bytes) else source)
    except (zipfile.BadZipFile, OSError) as exc:
        raise DataError(f"{label}: not a readable zip archive ({exc})") from exc


def _csv_from_inner(data: bytes, label: str, spec) -> tuple[bytes, str]:
    if spec.verify_checksum and sha256(data) != spec.archive_sha256:
        raise DataError(
            f"{label}: sha256 mismatch (expected {spec.archive_sha256}, got {sha256(data)}); "
            "the archive is corrupted or not the UCI original"
        )
    zf = _read_zip(data, label)
    member = _member(zf, spec.csv)
    if member is None:
        raise DataError(f"{label}: no {spec.csv} inside the archive")
    return zf.read(member), f"{label}:{member}"


def _csv_from_outer(path: Path | bytes, label: str, spec) -> tuple[bytes, str]:
    zf = _read_zip(path, label)
    member = _member(zf, spec.archive)
    if member is None:
        raise DataError(f"{label}: no {spec.archive} inside the UCI archive")
    return _csv_from_inner(zf.read(member), f"{label}:{member}", spec)


def find_csv(directory: Path, spec) -> tuple[bytes, str] | None:
    """CSV bytes and a label naming where they came from, or None when ``directory`` has nothing.

    Read-only: archives are read in memory, nothing is written into ``directory``.
    """
    stem = Path(spec.archive).stem
    for candidate in (directory / spec.csv, directory / stem / spec.csv):
        if candidate.is_file():
            return candidate.read_bytes(), str(candidate)
    inner = directory / spec.archive
    if inner.is_file():
        return _csv_from_inner(inner.read_bytes(), str(inner), spec)
    outer = directory / OUTER_ARCHIVE
    if outer.is_file():
        return _csv_from_outer(outer, str(outer), spec)
    return None


def download(url: str, target: Path, timeout: float = 60.0) -> Path:
    """Download ``url`` to ``target`` atomically (temp file + rename), with a progress bar."""
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=target.name, suffix=".part")
    try:
        with os.fdopen(fd, "wb") as out, urllib.request.urlopen(url, timeout=timeout) as resp:
            total = int(resp.headers.get("Content-Length") or 0) or None
            with tqdm(total=total, unit="B", unit_scale=True, desc=f"download {target.name}") as bar:
                while chunk := resp.read(1 << 16):
                    out.write(chunk)
                    bar.update(len(chunk))
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return target


def fetch_csv(spec) -> tuple[bytes, str]:
    """Locate the dataset's CSV: ``spec.data_dir`` first, then the cache, then a download."""
    cache = cache_dir()
    searched = []
    if spec.data_dir:
        data_dir = Path(spec.data_dir).expanduser()
        if not data_dir.is_dir():
            raise DataError(f"dataset.data_dir={data_dir} is not a directory")
        searched.append(data_dir)
    searched.append(cache)
    for directory in searched:
        found = find_csv(directory, spec) if directory.is_dir() else None
        if found is not None:
            return found
    looked = ", ".join(str(d) for d in searched)
    wanted = f"{spec.csv}, {spec.archive} or {OUTER_ARCHIVE}"
    if not spec.download:
        raise DataError(f"{wanted} not found in {looked} and dataset.download=false")
    target = cache / OUTER_ARCHIVE
    try:
        download(spec.url, target)
    except (urllib.error.URLError, OSError, TimeoutError) as exc:
        raise DataError(
            f"{wanted} not found in {looked}, and downloading {spec.url} failed ({exc}). "
            "Set PRIVMARK_DATA_DIR (or dataset.data_dir) to a folder holding one of them."
        ) from exc
    try:
        return _csv_from_outer(target, f"{target} (downloaded from {spec.url})", spec)
    except DataError:
        target.unlink(missing_ok=True)  # a bad download must not be found again next time
        raise
