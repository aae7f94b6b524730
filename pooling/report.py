"""Outputs: atomic JSON files and readable plan tables for the terminal."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

from pooling.instance import Instance


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


def _fmt(value: float | None, digits: int = 4) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def plan_table(pools: list[dict[str, Any]], instance: Instance) -> str:
    """Fixed-width table of pools: id, counties, rate, max rate, enrollees."""
    header = ("pool", "rate", "max rate", "enrollees", "counties")
    rows = []
    for pool in pools:
        names = ", ".join(f"{instance.county(c).name} ({c})" for c in pool["counties"])
        rows.append((pool["id"], _fmt(pool["rate"]), _fmt(pool["max_rate"]),
                     f"{pool['enrollees']:,}", names))
    widths = [max(len(str(r[i])) for r in rows + [header]) for i in range(4)]
    lines = ["  ".join(h.ljust(w) if i == 0 else h.rjust(w) for i, (h, w) in enumerate(zip(header, widths)))
             + "  " + header[4]]
    for row in rows:
        lines.append("  ".join(str(v).ljust(w) if i == 0 else str(v).rjust(w)
                               for i, (v, w) in enumerate(zip(row[:4], widths))) + "  " + row[4])
    return "\n".join(lines)


def result_summary(result: dict[str, Any], instance: Instance) -> str:
    """Readable summary of result.json for the terminal."""
    lines = [f"instance {instance.name} ({len(instance.counties)} counties, "
             f"{instance.total_enrollees:,} enrollees); spec scope {result['spec']['pooling']['scope']}"]
    lines.append(f"status {result['status']}; objective (mean rate) {_fmt(result['objective'])}; "
                 f"bound {_fmt(result['bound'])}; gap {_fmt(result['gap'], 6)}; "
                 f"{result['columns']} usable columns of {result['candidate_pools']} candidates; "
                 f"{result['wall_seconds']:.2f} s")
    if result["pools"]:
        lines.append(plan_table(result["pools"], instance))
    for line in result.get("diagnosis", []):
        lines.append(f"diagnosis: {line}")
    return "\n".join(lines)


def evaluation_summary(evaluation: dict[str, Any], instance: Instance) -> str:
    lines = [f"plan on {instance.name}: {evaluation['status']}; mean rate {_fmt(evaluation['objective'])}",
             plan_table(evaluation["pools"], instance)]
    lines.extend(f"violation: {v}" for v in evaluation["violations"])
    return "\n".join(lines)
