"""Reading input files with bounds: every file a user names (instance, spec,
plan, sweep, result, stress, evaluation) is read through here.

- Size: at most MAX_FILE_BYTES, and only a regular file: a device
  (``/dev/zero``), a FIFO or a socket could be read without end, or block
  for ever, so it is refused before a byte is read.
- Nesting: JSON and TOML values nested more than MAX_NESTING deep are refused
  (Python's parsers recurse once per level: 2,000 levels raised RecursionError).
- Text: UTF-8 with or without a leading byte-order mark; JSON objects with a
  repeated key are refused.

Every refusal is an InputError naming the file (docs/formats.md, "Limits").
"""

from __future__ import annotations

import json
import os
import stat
import sys
import tomllib
from pathlib import Path
from typing import Any

from pooling.errors import InputError

MAX_FILE_BYTES = 256 * 1024 * 1024
"""256 MiB. The largest bundled instance (china.json, 2,853 counties) is 4 MB
and a generated 100,000-county instance about 60 MB; parsed JSON takes several
times its size in memory, so a file beyond this is a mistake, not data."""
MAX_NESTING = 64
"""Deepest nesting of lists and tables/objects a file may hold. The formats
need at most 6 (a result's groups -> pools -> county_care -> ...); Python's
JSON and TOML parsers recurse once per level and fail near 1,000."""


def read_file_bytes(path: Path, what: str) -> bytes:
    """The bytes of a regular file of at most MAX_FILE_BYTES. The file is opened
    without blocking (a FIFO would otherwise wait for a writer) and checked on
    the open descriptor, so what is checked is what is read."""
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    except FileNotFoundError:
        raise InputError(f"{path}: {what} file not found") from None
    except IsADirectoryError:
        raise InputError(f"{path}: expected a {what} file, found a directory") from None
    except OSError as exc:
        raise InputError(f"{path}: cannot read {what} file ({exc.strerror})") from None
    try:
        info = os.fstat(fd)
        if stat.S_ISDIR(info.st_mode):
            raise InputError(f"{path}: expected a {what} file, found a directory")
        if not stat.S_ISREG(info.st_mode):
            raise InputError(f"{path}: expected a {what} file, found {_kind(info.st_mode)}; "
                             f"only regular files are read")
        if info.st_size > MAX_FILE_BYTES:
            raise InputError(f"{path}: {what} file is {info.st_size:,} bytes, larger than the limit of "
                             f"{MAX_FILE_BYTES:,} bytes (256 MiB)")
        chunks, size = [], 0
        while True:     # at most one byte more than the limit (a file growing while read)
            chunk = os.read(fd, min(1 << 20, MAX_FILE_BYTES + 1 - size))
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
            if size > MAX_FILE_BYTES:
                raise InputError(f"{path}: {what} file is larger than the limit of {MAX_FILE_BYTES:,} bytes "
                                 f"(256 MiB)")
        return b"".join(chunks)
    except OSError as exc:
        raise InputError(f"{path}: cannot read {what} file ({exc.strerror})") from None
    finally:
        os.close(fd)


def _kind(mode: int) -> str:
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    if stat.S_ISFIFO(mode):
        return "a FIFO (named pipe)"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "not a regular file"


def nesting_depth(value: Any) -> int:
    """Levels of lists and dicts in `value` (a scalar: 0), without recursion."""
    deepest = 0
    stack = [(value, 0)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, dict):
            node = node.values()
        elif not isinstance(node, list):
            continue
        depth += 1
        if depth > MAX_NESTING:
            return depth
        deepest = max(deepest, depth)
        stack.extend((child, depth) for child in node)
    return deepest


def _too_deep(where: str) -> InputError:
    return InputError(f"{where}: lists and tables/objects nested more than {MAX_NESTING} deep "
                      f"(the limit of every input file)")


def _checked_depth(data: Any, where: str) -> Any:
    if nesting_depth(data) > MAX_NESTING:
        raise _too_deep(where)
    return data


def _text(raw: bytes, where: str) -> str:
    try:
        return raw.decode("utf-8-sig")   # a leading byte-order mark is allowed
    except UnicodeDecodeError as exc:
        raise InputError(f"{where}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None


def _reject_duplicate_keys(where: str):
    def hook(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key, value in pairs:
            if key in out:
                raise InputError(f"{where}: key \"{key}\" appears twice in the same object")
            out[key] = value
        return out
    return hook


def parse_json_bytes(raw: bytes, where: str) -> Any:
    """Parse JSON with clear errors (broken syntax, duplicate keys, bad encoding,
    nesting beyond MAX_NESTING)."""
    text = _text(raw, where)
    try:
        data = json.loads(text, object_pairs_hook=_reject_duplicate_keys(where))
    except json.JSONDecodeError as exc:
        raise InputError(f"{where}: not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}") from None
    except RecursionError:
        raise _too_deep(where) from None
    except ValueError:  # Python reads integers of up to 4,300 digits (sys.get_int_max_str_digits)
        raise InputError(f"{where}: not valid JSON: a number with more digits than can be read "
                         f"(over {sys.get_int_max_str_digits():,})") from None
    return _checked_depth(data, where)


def parse_toml_bytes(raw: bytes, where: str) -> dict[str, Any]:
    """Parse TOML with clear errors (broken syntax, bad encoding, nesting beyond
    MAX_NESTING, counting dotted keys and table headers as levels too)."""
    text = _text(raw, where)
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise InputError(f"{where}: not valid TOML: {exc}") from None
    except RecursionError:
        raise _too_deep(where) from None
    return _checked_depth(data, where)
