"""Find the raw CSV bytes: a data dir, the shipped copy, the cache, or a download from UCI.

``locate`` only looks (and downloads when it has to); ``fetch_csv`` reads what it found with every
size bounded before anything is inflated, verifies it, and keeps the result by path and mtime so a
second call for the same file costs a few ``stat`` calls.
"""

from __future__ import annotations

import errno
import hashlib
import io
import lzma
import os
import stat
import urllib.error
import urllib.request
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path

from tqdm.auto import tqdm

from benchmarks.config import ConfigError
from datasets.errors import DataError, quote, shorten
from methods._util import atomic_path

OUTER_ARCHIVE = "bank+marketing.zip"
SHIPPED_DIR = Path(__file__).resolve().parent / "data"
SHIPPED_SUFFIX = ".xz"
SOURCES = ("auto", "shipped", "uci")

# Size limits, checked on the declared size before anything is inflated and again while reading.
# UCI's CSVs are about 5 MB, its inner archives under 1 MB, its outer archive about 1 MB.
MAX_CSV_BYTES = 64 << 20  # a CSV: extracted, inside an archive, or the shipped copy decompressed
MAX_ARCHIVE_BYTES = 16 << 20  # an inner archive (bank.zip, bank-additional.zip) or a shipped .xz
MAX_DOWNLOAD_BYTES = 64 << 20  # the outer archive, downloaded or found on disk

_MIB = 1 << 20


def cache_dir() -> Path:
    """Where downloads go: ``$PRIVMARK_CACHE_DIR`` or the user cache dir (never the data dir)."""
    env = os.environ.get("PRIVMARK_CACHE_DIR")
    if env:
        return Path(env).expanduser()
    from platformdirs import user_cache_dir

    return Path(user_cache_dir("privmark")) / "bank-marketing"


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


# -- looking --------------------------------------------------------------------------------


def _stat(path: Path) -> os.stat_result | None:
    """``path.stat()``, None when nothing is there; a symlink loop or broken link is an error."""
    try:
        return path.stat()
    except (FileNotFoundError, NotADirectoryError):
        if path.is_symlink():
            raise DataError(f"{path} is a broken symbolic link; point it at the data or remove it") from None
        return None
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise DataError(f"{path} is a symbolic link loop; point it at the data or remove it") from exc
        raise DataError(f"{path} cannot be read ({exc.strerror})") from exc


def _is_file(path: Path) -> bool:
    st = _stat(path)
    return st is not None and stat.S_ISREG(st.st_mode)


def _is_dir(path: Path) -> bool:
    st = _stat(path)
    return st is not None and stat.S_ISDIR(st.st_mode)


@dataclass(frozen=True)
class Found:
    """A file that holds the CSV, and how to get the CSV out of it."""

    path: Path
    kind: str  # "csv" | "shipped" (xz) | "inner" (bank.zip) | "outer" (bank+marketing.zip)
    origin: str  # "data_dir" | "shipped" | "cache" | "download"
    label: str  # how messages name it


def find_csv(directory: Path, spec, origin: str = "data_dir") -> Found | None:
    """The file in ``directory`` holding the CSV (extracted CSV, inner or outer archive), or None."""
    stem = Path(spec.archive).stem
    for candidate in (directory / spec.csv, directory / stem / spec.csv):
        if _is_file(candidate):
            return Found(candidate, "csv", origin, str(candidate))
    for name, kind in ((spec.archive, "inner"), (OUTER_ARCHIVE, "outer")):
        if _is_file(directory / name):
            return Found(directory / name, kind, origin, str(directory / name))
    return None


def shipped_path(spec) -> Path:
    return SHIPPED_DIR / (Path(spec.csv).name + SHIPPED_SUFFIX)


def _shipped(spec) -> Found | None:
    path = shipped_path(spec)
    return Found(path, "shipped", "shipped", str(path)) if _is_file(path) else None


def source_of(spec) -> str:
    source = spec.get("source", "auto")
    if source not in SOURCES:
        raise ConfigError(f"dataset.source={quote(source)}; expected one of {', '.join(SOURCES)}")
    return source


def locate(spec) -> Found:
    """Where the CSV is, by ``dataset.source``; downloads into the cache when that is the only way.

    ``auto``: ``dataset.data_dir`` (when set), the shipped copy, the cache, a download.
    ``shipped``: the shipped copy only. ``uci``: the cache, else a download from ``dataset.url``.
    """
    source = source_of(spec)
    if source in ("auto", "shipped"):
        if source == "auto" and spec.data_dir:
            data_dir = Path(spec.data_dir).expanduser()
            if not _is_dir(data_dir):
                raise DataError(f"dataset.data_dir={data_dir} is not a directory")
            found = find_csv(data_dir, spec)
            if found is not None:
                return found
        found = _shipped(spec)
        if found is not None:
            return found
        if source == "shipped":
            raise DataError(f"dataset.source=shipped but there is no shipped copy {shipped_path(spec)}; "
                            "use dataset.source=auto or uci")
    cache = cache_dir()
    found = find_csv(cache, spec, "cache") if _is_dir(cache) else None
    if found is not None:
        return found
    looked = [str(cache)]
    if source == "auto":
        looked[:0] = ([str(Path(spec.data_dir).expanduser())] if spec.data_dir else []) + [str(SHIPPED_DIR)]
    wanted = f"{spec.csv}, {spec.archive} or {OUTER_ARCHIVE}"
    if not spec.download:
        raise DataError(f"{wanted} not found in {', '.join(looked)} and dataset.download=false")
    target = cache / OUTER_ARCHIVE
    try:
        download(spec.url, target)
    except (urllib.error.URLError, OSError, TimeoutError) as exc:
        raise DataError(
            f"{wanted} not found in {', '.join(looked)}, and downloading {spec.url} failed ({exc}). "
            "Set PRIVMARK_DATA_DIR (or dataset.data_dir) to a folder holding one of them."
        ) from exc
    return Found(target, "outer", "download", f"{target} (downloaded from {spec.url})")


# -- reading, bounded -----------------------------------------------------------------------


def _too_large(label: str, what: str, size: int, cap: int) -> DataError:
    return DataError(f"{label}: {what} is {size:,} bytes, more than the {cap // _MIB} MiB limit "
                     f"(UCI's files are a few MB); refusing to read it")


def _read_bounded(stream, cap: int, label: str, what: str) -> bytes:
    """At most ``cap`` bytes from ``stream``; more than that (a lying size header) is refused."""
    try:
        data = stream.read(cap + 1)
    except (zipfile.BadZipFile, zlib.error, lzma.LZMAError, EOFError, OSError) as exc:
        raise DataError(f"{label}: cannot decompress {what} ({shorten(str(exc))})") from exc
    if len(data) > cap:
        raise _too_large(label, what, len(data), cap)
    return data


def _read_file(path: Path, cap: int, label: str, what: str) -> bytes:
    try:
        f = open(path, "rb")  # closed by the with below
    except OSError as exc:
        raise DataError(f"{label} cannot be read ({exc.strerror})") from exc
    with f:
        size = os.fstat(f.fileno()).st_size
        if size > cap:
            raise _too_large(label, what, size, cap)
        return _read_bounded(f, cap, label, what)


def _open_zip(source: Path | bytes, label: str) -> zipfile.ZipFile:
    try:
        return zipfile.ZipFile(io.BytesIO(source) if isinstance(source, bytes) else source)
    except (zipfile.BadZipFile, OSError) as exc:
        raise DataError(f"{label}: not a readable zip archive ({shorten(str(exc))})") from exc


def _member(zf: zipfile.ZipFile, name: str, cap: int, label: str) -> tuple[bytes, str]:
    """The bytes of the member whose base name is ``name`` (ignoring ``__MACOSX`` shadows)."""
    for info in zf.infolist():
        if info.filename.startswith("__MACOSX") or info.is_dir() or Path(info.filename).name != name:
            continue
        where = f"{label}:{shorten(info.filename)}"
        if info.file_size > cap:
            raise _too_large(where, "the member (declared size)", info.file_size, cap)
        try:
            stream = zf.open(info)
        except (zipfile.BadZipFile, NotImplementedError, RuntimeError, OSError) as exc:
            raise DataError(f"{where}: cannot open the member ({shorten(str(exc))})") from exc
        with stream:
            return _read_bounded(stream, cap, where, "the member"), where
    raise DataError(f"{label}: no {name} inside the archive")


def _csv_from_inner(data: bytes, label: str, spec) -> tuple[bytes, str]:
    if spec.verify_checksum and sha256(data) != spec.archive_sha256:
        raise DataError(
            f"{label}: sha256 mismatch (expected {spec.archive_sha256}, got {sha256(data)}); "
            "the archive is corrupted or not the UCI original"
        )
    with _open_zip(data, label) as zf:
        return _member(zf, spec.csv, MAX_CSV_BYTES, label)


def _extract(found: Found, spec) -> tuple[bytes, str]:
    """The CSV bytes in ``found`` and the label naming them; archives are read in memory."""
    path, label = found.path, found.label
    if found.kind == "csv":
        return _read_file(path, MAX_CSV_BYTES, label, "the CSV"), label
    if found.kind == "inner":
        return _csv_from_inner(_read_file(path, MAX_ARCHIVE_BYTES, label, "the archive"), label, spec)
    if found.kind == "outer":
        size = path.stat().st_size
        if size > MAX_DOWNLOAD_BYTES:
            raise _too_large(label, "the archive", size, MAX_DOWNLOAD_BYTES)
        with _open_zip(path, label) as zf:
            inner, where = _member(zf, spec.archive, MAX_ARCHIVE_BYTES, label)
        return _csv_from_inner(inner, where, spec)
    packed = _read_file(path, MAX_ARCHIVE_BYTES, label, "the shipped copy")
    with lzma.LZMAFile(io.BytesIO(packed)) as f:
        data = _read_bounded(f, MAX_CSV_BYTES, label, "the shipped copy")
    if sha256(data) != spec.csv_sha256:
        raise DataError(
            f"{label}: the shipped copy is damaged (sha256 of the decompressed CSV is {sha256(data)}, "
            f"expected {spec.csv_sha256}); restore it (git checkout -- datasets/data) "
            "or use dataset.source=uci"
        )
    return data, label


@dataclass(frozen=True)
class CSV:
    """The located CSV bytes, their sha256, where they came from (``origin``) and a label."""

    data: bytes
    sha256: str
    origin: str
    label: str


_READ: dict[tuple, CSV] = {}


def fetch_csv(spec) -> CSV:
    """Locate and read the dataset's CSV (bounded; archive and shipped checksums verified).

    The result is kept by path, size and mtime of the file it came from (two variants at most).
    """
    found = locate(spec)
    st = found.path.stat()
    key = (str(found.path), st.st_mtime_ns, st.st_size, found.kind, found.origin, spec.csv, spec.archive,
           bool(spec.verify_checksum), spec.archive_sha256, spec.csv_sha256)
    if key in _READ:
        return _READ[key]
    try:
        data, label = _extract(found, spec)
    except DataError:
        if found.origin == "download":
            found.path.unlink(missing_ok=True)  # a bad download must not be found again next time
        raise
    if len(_READ) >= 2:
        _READ.pop(next(iter(_READ)))
    _READ[key] = CSV(data, sha256(data), found.origin, label)
    return _READ[key]


def download(url: str, target: Path, timeout: float = 60.0, max_bytes: int | None = None) -> Path:
    """Download ``url`` to ``target`` atomically (temp file + rename), with a progress bar.

    More than ``max_bytes`` (default :data:`MAX_DOWNLOAD_BYTES`) is refused, announced or not.
    """
    cap = MAX_DOWNLOAD_BYTES if max_bytes is None else max_bytes
    with atomic_path(target, prefix=target.name, suffix=".part") as tmp, open(tmp, "wb") as out, \
            urllib.request.urlopen(url, timeout=timeout) as resp:
        total = int(resp.headers.get("Content-Length") or 0) or None
        if total is not None and total > cap:
            raise _too_large(url, "the download (Content-Length)", total, cap)
        got = 0
        with tqdm(total=total, unit="B", unit_scale=True, desc=f"download {target.name}") as bar:
            while chunk := resp.read(1 << 16):
                got += len(chunk)
                if got > cap:
                    raise _too_large(url, "the download", got, cap)
                out.write(chunk)
                bar.update(len(chunk))
    return target


def fetch_file(spec) -> CSV:
    """The table ``dataset.file`` of a ``format: csv`` dataset (read bounded, at most 64 MiB)."""
    path = Path(str(spec.file)).expanduser()
    st = _stat(path)
    if st is None:
        raise DataError(f"dataset.file={path}: no such file; expected the path of a table to read")
    if not stat.S_ISREG(st.st_mode):
        raise DataError(f"dataset.file={path} is not a regular file")
    data = _read_file(path, MAX_CSV_BYTES, str(path), "the table")
    return CSV(data, sha256(data), "file", str(path))
