"""Output files: canonical JSON, text and bytes written atomically, and result.json read back."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pooling.data.formats import KIND_NAMES, read_version
from pooling.data.instance import parse_json_bytes, read_file_bytes
from pooling.errors import InputError
from pooling.execution.atomic import write_bytes_atomic

if TYPE_CHECKING:
    from pooling.optimise.result import Result


def load_output_json(path: Path, kind: str) -> dict[str, Any]:
    """Read a file `pooling` wrote, of `kind` ("result", "evaluation" or
    "stress"): a JSON object whose format tag, if any, names that kind in a
    version this program reads (data.formats); its fields are checked by
    whoever reads them."""
    data = parse_json_bytes(read_file_bytes(path, kind), str(path))
    if not isinstance(data, dict):
        raise InputError(f"{path}: expected {KIND_NAMES[kind]}, an object, got {type(data).__name__}")
    read_version(data, kind, str(path))
    return data


def load_result_json(path: Path) -> dict[str, Any]:
    """Read a result.json written by `pooling solve` (validated by the simulator)."""
    return load_output_json(path, "result")


def read_result(path: str | Path) -> Result:
    """Reload a result.json into a `Result` whose `to_dict()` equals the file's
    content exactly (fields the file does not hold, such as each pool's
    per-county expected costs, are left empty: see `PoolOutcome.from_dict`).
    A file that is not a result.json is an InputError naming the field."""
    from pooling.optimise.result import Result  # on first use: the output checks stay light
    path = Path(path)
    return Result.from_dict(load_result_json(path), source=str(path))


def to_json(data: dict[str, Any]) -> str:
    """Canonical JSON text: key order as built, 2-space indent, no NaN, trailing
    newline. Text that UTF-8 cannot encode (a lone surrogate, e.g. from an
    undecodable file name) is written with ASCII escapes instead."""
    text = json.dumps(data, indent=2, ensure_ascii=False, allow_nan=False) + "\n"
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        text = json.dumps(data, indent=2, ensure_ascii=True, allow_nan=False) + "\n"
    return text


def check_writable_folder(folder: Path, flag: str = "--out") -> None:
    """Refuse, before any work, an output folder that cannot be written: a path
    through a file, or a place where a file cannot be created. Nothing is left
    behind (the probe file is removed; no folder is created)."""
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise InputError(f"{flag} {folder}: exists and is not a folder")
    existing = folder
    while not existing.exists():
        if existing.parent == existing:
            break
        existing = existing.parent
    if not existing.is_dir():
        raise InputError(f"{flag} {folder}: {existing} is a file, not a folder")
    _probe(existing, f"{flag} {folder}")


def check_writable_file(path: Path, flag: str = "--out") -> None:
    """As `check_writable_folder`, for an output file: not a folder, and its
    folder writable."""
    path = Path(path)
    if path.is_dir():
        raise InputError(f"{flag} {path}: is a folder; give a file name, e.g. {path / 'generated.json'}")
    check_writable_folder(path.parent if str(path.parent) else Path("."), flag)


def _probe(folder: Path, where: str) -> None:
    try:
        fd, name = tempfile.mkstemp(prefix=".pooling-probe.", dir=folder)
    except OSError as exc:
        raise InputError(f"{where}: cannot write in {folder}: {exc.strerror or exc}") from None
    os.close(fd)
    os.unlink(name)


def write_text_atomic(path: Path, text: str) -> None:
    """UTF-8 text written atomically (`write_bytes_atomic`)."""
    write_bytes_atomic(path, text.encode("utf-8", errors="backslashreplace"))


def write_json_atomic(path: Path, data: dict[str, Any]) -> None:
    """Write JSON so readers never see a partial file (`write_bytes_atomic`:
    temp file, fsync, rename; the usual mode, 0666 less the umask, not
    mkstemp's 0600; a failed write is an InputError and leaves nothing)."""
    write_bytes_atomic(path, to_json(data).encode("utf-8"))


def write_csv_atomic(path: Path, rows: list[dict[str, Any]]) -> None:
    """Rows of one table as CSV (columns of the first row, in order), written
    atomically; the standard library's csv module, so no pandas is needed."""
    import csv
    import io
    buffer = io.StringIO(newline="")
    writer = csv.DictWriter(buffer, fieldnames=list(rows[0]) if rows else [], lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    write_text_atomic(path, buffer.getvalue())
