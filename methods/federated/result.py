"""The server's result file: JSON, with NumPy arrays tagged by dtype and shape, written atomically.

The ServerApp may run in another process (the Deployment Engine's ``flwr-serverapp``) or on
another host; a plain data file is what crosses over, never a pickle.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

RESULT = "result.json"
ERROR = "error.json"
_TAG = "__ndarray__"


def _encode(value: Any) -> Any:
    if isinstance(value, np.ndarray):
        return {_TAG: value.ravel().tolist(), "dtype": value.dtype.str, "shape": list(value.shape)}
    if isinstance(value, dict):
        return {str(k): _encode(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_encode(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    return value


def _decode(value: Any) -> Any:
    if isinstance(value, dict):
        if _TAG in value:
            return np.asarray(value[_TAG], dtype=np.dtype(value["dtype"])).reshape(value["shape"])
        return {k: _decode(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_decode(v) for v in value]
    return value


def dumps(result: dict) -> str:
    """JSON text of ``result``; floats keep every bit (Python writes the shortest exact repr)."""
    return json.dumps(_encode(result))


def loads(text: str) -> dict:
    return _decode(json.loads(text))


def write(run_dir: Path, result: dict, name: str = RESULT) -> Path:
    from methods._util import write_atomic

    return write_atomic(Path(run_dir) / name, dumps(result))


def read(run_dir: Path, name: str = RESULT) -> dict | None:
    path = Path(run_dir) / name
    return loads(path.read_text()) if path.exists() else None
