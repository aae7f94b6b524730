"""Pooling plans given by the user: ``{"pools": [["id", ...], ...]}``.

A plan must partition the instance's counties: every county exactly once,
no unknown ids, no empty pools.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pooling.data.fields import FieldReader, describe
from pooling.data.instance import Instance, parse_json_bytes, read_file_bytes
from pooling.errors import InputError


def load_plan(path: str | Path, instance: Instance) -> list[list[str]]:
    path = Path(path)
    data = parse_json_bytes(read_file_bytes(path, "plan"), str(path))
    reader = FieldReader(data, str(path))
    pools = reader.raw("pools")
    reader.finish()
    return validate_plan(pools, instance, str(path))


def validate_plan(pools: Any, instance: Instance, where: str = "plan") -> list[list[str]]:
    """Check that `pools` is a partition of the instance's county ids."""
    if not isinstance(pools, (list, tuple)) or not pools:
        raise InputError(f"{where}: pools must be a non-empty list of lists of county ids, got {describe(pools)}")
    known = set(instance.ids)
    seen: dict[str, int] = {}
    plan: list[list[str]] = []
    for index, pool in enumerate(pools):
        if not isinstance(pool, (list, tuple)) or not pool:
            raise InputError(f"{where}: pools[{index}] must be a non-empty list of county ids, got {describe(pool)}")
        members = []
        for cid in pool:
            if not isinstance(cid, str):
                raise InputError(f"{where}: pools[{index}] holds {describe(cid)}; county ids are strings")
            if cid not in known:
                raise InputError(f'{where}: pools[{index}]: county "{cid}" is not in instance {instance.source}')
            if cid in seen:
                raise InputError(f'{where}: county "{cid}" is in pools[{seen[cid]}] and pools[{index}]; '
                                 f"each county belongs to exactly one pool")
            seen[cid] = index
            members.append(cid)
        plan.append(members)
    missing = sorted(known - set(seen))
    if missing:
        shown = ", ".join(f'"{m}"' for m in missing[:10])
        raise InputError(f"{where}: {len(missing)} counties are in no pool: {shown}"
                         f"{' ...' if len(missing) > 10 else ''}")
    return plan
