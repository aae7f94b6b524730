"""Output files: canonical JSON written atomically, and result.json read back."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

from pooling.data.instance import parse_json_bytes, read_file_bytes
from pooling.errors import InputError


def load_result_json(path: Path) -> dict[str, Any]:
    """Read a result.json written by `pooling solve` (validated by the simulator)."""
    data = parse_json_bytes(read_file_bytes(path, "result"), str(path))
    if not isinstance(data, dict):
        raise InputError(f"{path}: expected a result object")
    return data


def to_json(data: dict[str, Any]) -> str:
    """Canonical JSON text: key order as built, 2-space indent, no NaN, trailing newline."""
    return json.dumps(data, indent=2, ensure_ascii=False, allow_nan=False) + "\n"


def write_json_atomic(path: Path, data: dict[str, Any]) -> None:
    """Write JSON so readers never see a partial file: temp file in the same
    folder, fsync, then rename over the target."""
    path.parent.mkdir(parents=True, exist_ok=True)
    text = to_json(data)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
