"""Parse and validate a Bank Marketing CSV against the schema in the dataset config."""

from __future__ import annotations

import io

import numpy as np
import pandas as pd

from datasets.errors import DataError, quote, shorten

TARGET = "y"
# Larger magnitudes are refused as implausible: no column of this data comes near, and squares and
# sums of such values stay far from float overflow downstream (distances, HE encodings, gradients).
MAX_ABS_VALUE = 1e15


def _first_rows(mask: np.ndarray, n: int = 3) -> str:
    # +2: one for the header line, one for 1-based line numbers
    return ", ".join(str(i + 2) for i in np.flatnonzero(mask)[:n])


def parse(data: bytes, label: str, spec) -> pd.DataFrame:
    """The validated frame (numerics as float, categoricals as str, ``y`` as 0/1 int)."""
    if not data.strip():
        raise DataError(f"{label}: the file is empty")
    try:
        frame = pd.read_csv(io.BytesIO(data), sep=";", dtype=str, keep_default_na=False)
    except (pd.errors.ParserError, UnicodeDecodeError) as exc:
        raise DataError(f"{label}: malformed CSV ({shorten(str(exc))}); "
                        "expected ';'-separated UCI format") from exc
    if frame.empty:
        raise DataError(f"{label}: the file has a header but no data rows")

    numeric, categorical = list(spec.numeric), list(spec.categorical)
    expected = numeric + categorical + [TARGET]
    missing = [c for c in expected if c not in frame.columns]
    extra = [c for c in frame.columns if c not in expected]
    if missing or extra:
        parts = []
        if missing:
            parts.append(f"missing columns {quote(missing)}")
        if extra:
            parts.append(f"unexpected columns {quote(extra)}")
        raise DataError(f"{label}: {'; '.join(parts)}; expected {expected}")

    out = pd.DataFrame(index=frame.index)
    for col in numeric:
        raw = frame[col].str.strip()
        values = pd.to_numeric(raw, errors="coerce").to_numpy(dtype=float)
        nan = np.isnan(values)
        for bad, problem, expected in (
            (nan, "missing or non-numeric", "numbers"),
            (~nan & ~np.isfinite(values), "non-finite", "finite numbers"),
            (np.abs(values) > MAX_ABS_VALUE, "implausibly large",
             f"numbers of magnitude at most {MAX_ABS_VALUE:g}"),
        ):
            if bad.any():
                raise DataError(
                    f"{label}: column {col!r} has {int(bad.sum())} {problem} value(s) "
                    f"(e.g. {quote(raw[bad].iloc[0])} on line {_first_rows(bad)}); expected {expected}"
                )
        out[col] = values
    for col in categorical:
        values = frame[col].str.strip()
        allowed = list(spec.categorical[col])
        bad = ~values.isin(allowed).to_numpy()
        if bad.any():
            unknown = sorted(set(values[bad]))[:5]
            raise DataError(
                f"{label}: column {col!r} has unknown value(s) {quote(unknown)} (line {_first_rows(bad)}); "
                f"expected one of {allowed}"
            )
        out[col] = values
    y = frame[TARGET].str.strip()
    bad = ~y.isin(["yes", "no"]).to_numpy()
    if bad.any():
        raise DataError(
            f"{label}: column 'y' has value(s) {quote(sorted(set(y[bad]))[:5])} (line {_first_rows(bad)}); "
            "expected 'yes' or 'no'"
        )
    out[TARGET] = (y == "yes").astype(np.int8)
    return out


def read_checked(data: bytes, label: str, spec, digest: str | None = None) -> pd.DataFrame:
    """Verify the checksum (when asked) and parse; a mismatch says what differs where it can.

    ``digest`` is the sha256 of ``data`` when the caller has it already.
    """
    from datasets._source import sha256

    got = digest or sha256(data)
    if spec.verify_checksum and got != spec.csv_sha256:
        problem = f"sha256 mismatch (expected {spec.csv_sha256}, got {got})"
        try:
            frame = parse(data, label, spec)
        except DataError as exc:
            raise DataError(f"{exc} [{problem}]") from exc
        rows = len(frame)
        if rows != spec.expected_rows:
            raise DataError(
                f"{label}: {problem}; it has {rows:,} data rows, expected {spec.expected_rows:,} "
                "(truncated or edited?)"
            )
        raise DataError(
            f"{label}: {problem}; the file parses but its contents were altered. "
            "Restore the UCI original, or set dataset.verify_checksum=false for your own data."
        )
    return parse(data, label, spec)
