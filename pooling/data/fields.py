"""Typed, strict reading of parsed JSON/TOML tables.

Instance, spec and plan loaders all read through `FieldReader`, so every
error has the same shape: ``<where>: <field> must be <expected>, got <found>``,
where ``<where>`` names the file and the county or table. Unknown keys are
errors (they are usually typos), booleans are never numbers, and non-finite
numbers are rejected (Python's json module accepts NaN and Infinity), so are
integers too large for a float (JSON and TOML allow any number of digits) and
strings holding lone UTF-16 surrogates (JSON's "\ud800" escapes), which no
output file could encode. Numeric fields state their range: the loaders pass
the range where the engine is known to be right (docs/formats.md).
"""

from __future__ import annotations

import math
import os
from typing import Any

from pooling.errors import InputError

_MISSING = object()
FLOAT_MAX = 1.7976931348623157e308
"""Largest finite float: an integer literal beyond it cannot become a number."""
MIN_SHARE = 1e-9
"""Smallest non-zero share, weight or factor (migrant shares, destination and
care weights, out-of-network claim shares and factors, regional shock
weights). Their products scale claim rates and costs: a 5e-324 weight made a
stream's expected cost underflow (a span of 0: ZeroDivisionError; a
subnormal tail probability gave NaN). A billionth of a county's care is below
anything a report shows; 0 is always allowed."""


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
        return f'"{text.encode("utf-8", "backslashreplace").decode("utf-8")}"'
    if isinstance(value, int) and abs(value) >= 10 ** 20:
        return f"an integer of {len(str(abs(value)))} digits"
    return repr(value)


def exact(value: float) -> str:
    """A number as short as it can be written and still read back as itself:
    `:g` when that is exact and no longer (1e+07, 0.5), else repr (0.999999999
    and 1 - 1e-16 must not read "1" in a message saying they are out of range)."""
    if isinstance(value, int) and not isinstance(value, bool):
        return describe(value)
    text, full = f"{value:g}", repr(float(value))
    return text if float(text) == value and len(text) <= len(full) else full


def encodable(text: str) -> bool:
    """True when `text` can be written as UTF-8 (no lone surrogates)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _interval(low, high, low_open, high_open) -> str:
    if low is not None and high is not None:
        return f"in {'(' if low_open else '['}{exact(low)}, {exact(high)}{')' if high_open else ']'}"
    if low is not None:
        return f"{'>' if low_open else '>='} {exact(low)}"
    return f"{'<' if high_open else '<='} {exact(high)}"


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
        if isinstance(value, int) and abs(value) > FLOAT_MAX:
            raise self.fail(key, f"must be {_interval(low, high, low_open, high_open)}, got {describe(value)}"
                            if low is not None or high is not None
                            else f"must be a finite number, got {describe(value)}")
        if not math.isfinite(value):
            raise self.fail(key, f"must be a finite number, got {describe(value)}")
        bad_low = low is not None and (value <= low if low_open else value < low)
        bad_high = high is not None and (value >= high if high_open else value > high)
        if bad_low or bad_high:
            raise self.fail(key, f"must be {_interval(low, high, low_open, high_open)}, got {exact(value)}")
        return float(value)

    def share(self, key: str, *, high: float | None = 1.0, high_open: bool = False,
              default: Any = _MISSING) -> float:
        """A share, weight or factor: 0, or in [MIN_SHARE, high] (see MIN_SHARE)."""
        value = self.number(key, low=0.0, high=high, high_open=high_open, default=default)
        if value is not None and 0.0 < value < MIN_SHARE:
            upper = "" if high is None else f", {exact(high)}{')' if high_open else ']'}"
            expected = f"0 or in [{exact(MIN_SHARE)}{upper}" if high is not None else f"0 or >= {exact(MIN_SHARE)}"
            raise self.fail(key, f"must be {expected} (a non-zero share below {exact(MIN_SHARE)} changes no "
                                 f"figure but takes claims toward float underflow: write 0), got {exact(value)}")
        return value

    def integer(self, key: str, *, low: int | None = None, high: int | None = None,
                default: Any = _MISSING) -> int:
        value = self.raw(key, default)
        if value is default and default is not _MISSING:
            return default
        if isinstance(value, float) and value.is_integer():
            raise self.fail(key, f"must be an integer (write {int(value)}), got {value!r}")
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.fail(key, f"must be an integer, got {describe(value)}")
        if (low is not None and value < low) or (high is not None and value > high):
            if low is not None and high is not None:
                expected = f"in [{low}, {high}]"
            else:
                expected = f">= {low}" if low is not None else f"<= {high}"
            raise self.fail(key, f"must be {expected}, got {describe(value)}")
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
        if not encodable(value):
            raise self.fail(key, f"must be valid Unicode text, got {describe(value)} "
                                 f"(a lone surrogate, e.g. a \\ud800 escape)")
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
            if not encodable(item):
                raise self.fail(key, f"must hold valid Unicode text, got an item {describe(item)} "
                                     f"(a lone surrogate, e.g. a \\ud800 escape)")
        return list(value)

    def finish(self) -> None:
        """Raise if the table has keys nobody read (typos, unsupported options)."""
        unknown = sorted(set(self.data) - self._seen)
        if unknown:
            known = ", ".join(sorted(self._seen))
            raise self.fail(unknown[0], f"is not a known field (known fields here: {known})")


def require_path(value: Any, who: str, from_dict: str) -> None:
    """A file argument must be a path (str or os.PathLike); a dict gets a hint
    to the function that takes one."""
    if not isinstance(value, str | os.PathLike):
        hint = f"; for a dict use pooling.{from_dict}" if isinstance(value, dict) else ""
        raise InputError(f"{who}: path must be a path to a file (str or os.PathLike), "
                         f"got {type(value).__name__}{hint}")
