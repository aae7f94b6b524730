"""Reading the 2010 census county table and writing instance files.

Every error a user can cause (no table, a missing column or value, a bad
selection) stops the builder with exit code 2 and a message naming the file,
the county and the column: `fail`.
"""

from __future__ import annotations

import csv
import json
import os
import sys
import tempfile
from pathlib import Path
from typing import NoReturn

from builders import calibration as cal

REPO_ROOT = Path(__file__).resolve().parent.parent.parent
DEFAULT_CENSUS = REPO_ROOT / ".." / "shared" / "data" / "china_counties_census.csv"
INSTANCES_DIR = REPO_ROOT / "instances"
CENSUS_ORIGIN = (
    "the table is the project's shared data, ../shared/data/china_counties_census.csv next to the "
    "repository (it does not ship with a clone; instances/README.md, 'How the files are built'); "
    "give another copy with --census PATH"
)
BAD_INPUT_EXIT = 2
"""Exit code for input the user can fix (as the `pooling` CLI): no traceback, nothing written."""


def fail(msg: str) -> NoReturn:
    """Stop with `error: msg` on stderr and exit code 2 (bad input)."""
    print(f"error: {msg}", file=sys.stderr)
    raise SystemExit(BAD_INPUT_EXIT)


def read_census(path: Path, required: list[str] | None = None) -> list[dict]:
    """The table's rows as dicts of strings; `required` columns must all be present."""
    try:
        with open(path, newline="", encoding="utf-8") as fh:
            rows = list(csv.DictReader(fh))
    except OSError as exc:
        fail(f"cannot read census file {path}: {exc.strerror or exc}; {CENSUS_ORIGIN}")
    except (UnicodeDecodeError, csv.Error) as exc:
        fail(f"census file {path} is not a UTF-8 CSV table: {exc}")
    if not rows:
        fail(f"census file {path} is empty")
    missing = [c for c in required or [] if c not in rows[0]]
    if missing:
        fail(f"census file {path}: missing columns {missing}")
    for row in rows:
        if row.get("name_zh"):
            row["name_zh"] = normalise_name(row["name_zh"])
    return rows


MISREAD_CITY = "\u5dff"
"""巿 (U+5DFF, fu2, an apron), which the census table has in place of 市 (U+5E02, city)
in 25 unit names (禹州巿, 巿中区, ...): a look-alike left by digitisation. No county-level
name uses 巿, so every one is read as 市."""


def normalise_name(name: str) -> str:
    """A census unit name as it is written: MISREAD_CITY replaced by 市."""
    return name.replace(MISREAD_CITY, "\u5e02")


def num(row: dict, key: str, path: Path) -> float:
    val = row.get(key, "")
    if val is None or val.strip() == "":
        fail(f"{path}: county {row.get('code')}: missing value in column {key!r}")
    try:
        return float(val)
    except ValueError:
        fail(f"{path}: county {row.get('code')}: bad number {val!r} in column {key!r}")


def agri_hukou(row: dict, path: Path) -> float:
    return num(row, "pop_registered_2010", path) * (1.0 - num(row, "nonagri_hukou_pct_2010", path) / 100.0)


def agri_share(row: dict, path: Path) -> float:
    return 1.0 - num(row, "nonagri_hukou_pct_2010", path) / 100.0


def net_absence(row: dict, path: Path) -> float:
    reg = num(row, "pop_registered_2010", path)
    res = num(row, "pop_resident_2010", path)
    return max(0.0, (reg - res) / reg)


def runs_fund(row: dict, path: Path, districts: str) -> bool:
    """Whether the unit ran an NRCMS fund (calibration.DISTRICT_MIN_AGRI_SHARE)."""
    if row["level"] != "district":
        return True
    if districts == "all":
        return True
    if districts == "none":
        return False
    return agri_share(row, path) >= cal.DISTRICT_MIN_AGRI_SHARE


def r6(x: float) -> float:
    return round(float(x), 6)


def dumps(instance: dict) -> str:
    """The file's text: keys in build order, `indent=2`, UTF-8 as is, a final newline."""
    return json.dumps(instance, indent=2, ensure_ascii=False) + "\n"


def write_atomic(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as fh:
            fh.write(text)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)   # mkstemp creates 0600; use normal file permissions
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
