"""Format versions of the files `pooling` reads and writes.

Every file names what it is and the version of its meaning in one top-level
field, ``format``: ``"pooling.instance/3"`` (instance JSON), ``format =
"pooling.spec/1"`` (spec TOML), ``"pooling.plan/1"``, ``"pooling.result/1"``,
``"pooling.evaluation/1"``, ``"pooling.stress/1"``, ``"pooling.calibration/1"``. A kind's version rises
when a file of it would mean something else to this program than to the one
that wrote it (a default changed, a field reinterpreted); fields added with
an absent value that keeps the old meaning do not raise it.

Reading: a file without ``format`` is version 1 (what every file was before
the field existed) and every version up to the current one is read with its
own meaning (the loaders hold the rules, `CHANGES` says what they are). A
version newer than this program knows, another kind's tag, or a malformed
tag is an InputError (exit 2). Writers always write the current version.
docs/formats.md "Format versions" and CHANGELOG.md say the same for users.
"""

from __future__ import annotations

import re
from typing import Any

from pooling.data.fields import describe
from pooling.errors import InputError

FORMAT_FIELD = "format"
"""The top-level key holding a file's kind and version."""

CURRENT_VERSIONS = {"instance": 3, "spec": 1, "plan": 1, "result": 1, "evaluation": 1, "stress": 1,
                    "calibration": 1}
"""The version this program writes, and the newest it reads, of each kind."""

KIND_NAMES = {"instance": "an instance file", "spec": "a spec file", "plan": "a plan file",
              "result": "a result.json (pooling solve)", "evaluation": "an evaluation.json (pooling evaluate)",
              "stress": "a stress.json (pooling simulate)",
              "calibration": "a calibration.json (pooling calibrate)"}

CHANGES = {
    ("instance", 2): ('parameters.admin_financing, when absent, means "county_budget" (the county budget '
                      'pays the running costs F and a_c, as NRCMS rules require); in pooling.instance/1 '
                      '(and in every file without a format field) it means "risk_fund" (the fund pays '
                      "them), as before the field existed"),
    ("instance", 3): ("contract_options: contracted care costs price_factor x list price in enrollees' bills "
                      "as well as in the fund's claims (in pooling.instance/2 enrollees' bills stayed at list "
                      "price, so a discount showed as a lower effective rate), and a contract serves at most "
                      "`capacity` admissions a year (new; default data.geography.DEFAULT_CONTRACT_CAPACITY), "
                      "the rest staying out of network. A file of an earlier version with contract options is "
                      "refused, saying how to update it; one without them reads as before"),
}
"""(kind, version) -> what that version changed against the one before it."""

_TAG = re.compile(r"pooling\.([a-z]+)/([1-9][0-9]{0,8})")


def format_tag(kind: str, version: int | None = None) -> str:
    """``pooling.KIND/VERSION`` (the current version by default)."""
    return f"pooling.{kind}/{CURRENT_VERSIONS[kind] if version is None else version}"


def file_format(data: Any, where: str, expected: str) -> tuple[str | None, int]:
    """(kind, version) named by a parsed file's ``format`` field: (None, 1)
    without one. A tag that is not ``pooling.KIND/N`` with a known kind is an
    InputError naming the file and the `expected` kind's current tag."""
    if not isinstance(data, dict) or FORMAT_FIELD not in data:
        return None, 1
    value = data[FORMAT_FIELD]
    match = _TAG.fullmatch(value) if isinstance(value, str) else None
    if match is None or match.group(1) not in CURRENT_VERSIONS:
        raise InputError(f'{where}: {FORMAT_FIELD} must be "pooling.{expected}/N", N a format version (this '
                         f'pooling writes "{format_tag(expected)}"), got {describe(value)}')
    return match.group(1), int(match.group(2))


def check_version(kind: str, version: int, where: str) -> int:
    """`version` of a `kind` file, refused (InputError) when newer than this program reads."""
    current = CURRENT_VERSIONS[kind]
    if version > current:
        raise InputError(f'{where}: {FORMAT_FIELD} "{format_tag(kind, version)}" is newer than this pooling '
                         f"reads (up to {format_tag(kind)}): upgrade pooling ({_package_version()}) to read it, "
                         f"or write the file as {format_tag(kind)} (docs/formats.md, \"Format versions\")")
    return version


def read_version(data: Any, kind: str, where: str) -> int:
    """The version of a file that must be of `kind`: 1 without a ``format``
    field; another kind, a malformed tag or a newer version is an InputError."""
    found, version = file_format(data, where, kind)
    if found is not None and found != kind:
        raise InputError(f'{where}: {FORMAT_FIELD} "{format_tag(found, version)}" says this is '
                         f"{KIND_NAMES[found]}, not {KIND_NAMES[kind]}")
    return check_version(kind, version, where)


def _package_version() -> str:
    from importlib import metadata
    try:
        return f"this is {metadata.version('pooling')}"
    except metadata.PackageNotFoundError:
        return "this copy's version is unknown"
