"""Parse and validate a Bank Marketing CSV against the schema in the dataset config."""

from __future__ import annotations

import io

import numpy as np
import pandas as pd

from datasets.errors import DataError

TARGET = "y"


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
        raise DataError(f"{label}: malformed CSV ({exc}); expected ';'-separated UCI format") from exc
    if frame.empty:
        raise DataError(f"{label}: the file has a header but no data rows")

    numeric, categorical = list(spec.numeric), list(spec.categorical)
    expected = numeric + categorical + [TARGET]
    missing = [c for c in expected if c not in frame.columns]
    extra = [c for c in frame.columns if c not in expected]
    if missing or extra:
        parts = []
        if missing:
            parts.append(f"missing columns {missing}")
        if extra:
            parts.append(f"unexpected columns {extra}")
        raise DataError(f"{label}: {'; '.join(parts)}; expected {expected}")

    out = pd.DataFrame(index=frame.index)
    for col in numeric:
        raw = frame[col].str.strip()
        values = pd.to_numeric(raw, errors="coerce")
        bad = values.isna().to_numpy()
        if bad.any():
            shown = raw[bad].iloc[0]
            raise DataError(
                f"{label}: column {col!r} has {int(bad.sum())} missing or non-numeric value(s) "
                f"(e.g. {shown!r} on line {_first_rows(bad)}); expected numbers"
            )
        out[col] = values.astype(float)
    for col in categorical:
        values = frame[col].str.strip()
        allowed = list(spec.categorical[col])
        bad = ~values.isin(allowed).to_numpy()
        if bad.any():
            unknown = sorted(set(values[bad]))[:5]
            raise DataError(
                f"{label}: column {col!r} has unknown value(s) {unknown} (line {_first_rows(bad)}); "
                f"expected one of {allowed}"
            )
        out[col] = values
    y = frame[TARGET].str.strip()
    bad = ~y.isin(["yes", "no"]).to_numpy()
    if bad.any():
        raise DataError(
            f"{label}: column 'y' has value(s) {sorted(set(y[bad]))[:5]} (line {_first_rows(bad)}); "
            "expected 'yes' or 'no'"
        )
    out[TARGET] = (y == "yes").astype(np.int8)
    return out


def read_checked(data: bytes, label: str, spec) -> pd.DataFrame:
    """Verify the checksum (when asked) and parse; a mismatch says what differs where it can."""
    from datasets._source import sha256

    if spec.verify_checksum and sha256(data) != spec.csv_sha256:
        got = sha256(data)
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
