"""Output files: canonical JSON, text and bytes written atomically, and result.json read back."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pooling.data.instance import parse_json_bytes, read_file_bytes
from pooling.errors import InputError

if TYPE_CHECKING:
    from pooling.optimise.result import Result


def load_result_json(path: Path) -> dict[str, Any]:
    """Read a result.json written by `pooling solve` (validated by the simulator)."""
    data = parse_json_bytes(read_file_bytes(path, "result"), str(path))
    if not isinstance(data, dict):
        raise InputError(f"{path}: expected a result object")
    return data


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


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


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


def write_bytes_atomic(path: Path, content: bytes) -> None:
    """Write bytes as `write_json_atomic` writes JSON: temp file in the same
    folder, fsync, rename; usual mode; failures are InputErrors naming the
    file, and nothing is left behind."""
    tmp = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        os.fchmod(fd, 0o666 & ~_umask())
        with os.fdopen(fd, "wb") as handle:
            handle.write(content)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
        tmp = None
    except OSError as exc:
        raise InputError(f"cannot write {path}: {exc.strerror or exc}; nothing was written") from None
    finally:
        if tmp is not None and os.path.exists(tmp):
            os.unlink(tmp)


def write_text_atomic(path: Path, text: str) -> None:
    """UTF-8 text written atomically (`write_bytes_atomic`)."""
    write_bytes_atomic(path, text.encode("utf-8", errors="backslashreplace"))


def write_json_atomic(path: Path, data: dict[str, Any]) -> None:
    """Write JSON so readers never see a partial file (`write_bytes_atomic`:
    temp file, fsync, rename; the usual mode, 0666 less the umask, not
    mkstemp's 0600; a failed write is an InputError and leaves nothing)."""
    write_bytes_atomic(path, to_json(data).encode("utf-8"))
