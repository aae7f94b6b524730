"""Typed, strict reading of parsed JSON/TOML tables.

Instance, spec and plan loaders all read through `FieldReader`, so every
error has the same shape: ``<where>: <field> must be <expected>, got <found>``,
where ``<where>`` names the file and the county or table. Unknown keys are
errors (they are usually typos), booleans are never numbers, and non-finite
numbers are rejected (Python's json module accepts NaN and Infinity).
"""

from __future__ import annotations

import math
from typing import Any

from pooling.errors import InputError

_MISSING = object()


def describe(value: Any) -> str:
    """Short, readable description of a found value for error messages."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    if isinstance(value, dict):
        return "a table/object"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, str):
        text = value if len(value) <= 40 else value[:37] + "..."
        return f'"{text}"'
    return repr(value)


def _interval(low, high, low_open, high_open) -> str:
    if low is not None and high is not None:
        return f"in {'(' if low_open else '['}{low:g}, {high:g}{')' if high_open else ']'}"
    if low is not None:
        return f"{'>' if low_open else '>='} {low:g}"
    return f"{'<' if high_open else '<='} {high:g}"


class FieldReader:
    """Reads fields of one table, tracking which keys were consumed."""

    def __init__(self, data: Any, where: str, path: str = "", what: str = "a table/object"):
        if not isinstance(data, dict):
            label = f"{path.rstrip('.')} must be {what}" if path else f"expected {what}"
            raise InputError(f"{where}: {label}, got {describe(data)}")
        self.data = data
        self.where = where
        self.path = path
        self._seen: set[str] = set()

    def fail(self, key: str, message: str) -> InputError:
        """Build an error for field `key` (message completes 'field ...')."""
        return InputError(f"{self.where}: {self.path}{key} {message}")

    def has(self, key: str) -> bool:
        return key in self.data

    def raw(self, key: str, default: Any = _MISSING) -> Any:
        self._seen.add(key)
        if key not in self.data:
            if default is _MISSING:
                raise self.fail(key, "is missing")
            return default
        return self.data[key]

    def number(self, key: str, *, low: float | None = None, high: float | None = None,
               low_open: bool = False, high_open: bool = False,
               default: Any = _MISSING) -> float:
        value = self.raw(key, default)
        if value is default and default is not _MISSING:
            return default
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise self.fail(key, f"must be a number, got {describe(value)}")
        if not math.isfinite(value):
            raise self.fail(key, f"must be a finite number, got {describe(value)}")
        bad_low = low is not None and (value <= low if low_open else value < low)
        bad_high = high is not None and (value >= high if high_open else value > high)
        if bad_low or bad_high:
            raise self.fail(key, f"must be {_interval(low, high, low_open, high_open)}, got {value:g}")
        return float(value)

    def integer(self, key: str, *, low: int | None = None, high: int | None = None,
                default: Any = _MISSING) -> int:
        value = self.raw(key, default)
        if value is default and default is not _MISSING:
            return default
        if isinstance(value, float) and value.is_integer():
            raise self.fail(key, f"must be an integer (write {int(value)}), got {value!r}")
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.fail(key, f"must be an integer, got {describe(value)}")
        if low is not None and value < low:
            raise self.fail(key, f"must be >= {low}, got {value}")
        if high is not None and value > high:
            raise self.fail(key, f"must be <= {high}, got {value}")
        return value

    def string(self, key: str, *, choices: tuple[str, ...] | None = None,
               default: Any = _MISSING) -> str:
        value = self.raw(key, default)
        if value is default and default is not _MISSING:
            return default
        if not isinstance(value, str):
            raise self.fail(key, f"must be a string, got {describe(value)}")
        if choices is not None and value not in choices:
            options = " | ".join(f'"{c}"' for c in choices)
            raise self.fail(key, f"must be one of {options}, got {describe(value)}")
        if choices is None and not value.strip():
            raise self.fail(key, "must be a non-empty string, got an empty string")
        return value

    def boolean(self, key: str, *, default: Any = _MISSING) -> bool:
        value = self.raw(key, default)
        if not isinstance(value, bool):
            raise self.fail(key, f"must be true or false, got {describe(value)}")
        return value

    def table(self, key: str, *, default: Any = _MISSING) -> FieldReader:
        value = self.raw(key, {} if default is not _MISSING else _MISSING)
        return FieldReader(value, self.where, f"{self.path}{key}.")

    def string_list(self, key: str) -> list[str]:
        value = self.raw(key)
        if not isinstance(value, list):
            raise self.fail(key, f"must be a list of strings, got {describe(value)}")
        for item in value:
            if not isinstance(item, str):
                raise self.fail(key, f"must be a list of strings, got an item {describe(item)}")
        return list(value)

    def finish(self) -> None:
        """Raise if the table has keys nobody read (typos, unsupported options)."""
        unknown = sorted(set(self.data) - self._seen)
        if unknown:
            known = ", ".join(sorted(self._seen))
            raise self.fail(unknown[0], f"is not a known field (known fields here: {known})")
