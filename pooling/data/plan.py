"""Pooling plans given by the user: ``{"pools": [["id", ...], ...]}``, and
optionally ``"format": "pooling.plan/1"`` and ``"contracts": [{"pool": ["id",
...], "option": "ID"}, ...]``.

A plan must partition the instance's counties: every county exactly once,
no unknown ids, no empty pools. A contract names one of the plan's pools (its
counties, in any order) and a contract option of the instance whose origin
includes one of them.

Under a spec whose `[benefits]` is a menu, a plan names each pool's schedule:
``"benefits": [{"pool": ["id", ...], "schedule": {"deductible": 400, ...}}]``
(`plan_schedules`; a result.json's pools carry theirs as `benefits`).

A result.json (or evaluation.json) is a plan too: its pools' counties and the
contracts it takes (`plan_of_output`); the rest of it (rates, bound, figures)
is what `evaluate` computes again. It is recognised by its format tag, or,
written before tags existed, by the `status` and `provenance` every result
and evaluation holds.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pooling.data.fields import FieldReader, describe
from pooling.data.formats import FORMAT_FIELD, check_version, file_format, read_version
from pooling.data.instance import Instance, parse_json_bytes, read_file_bytes
from pooling.errors import InputError


def load_plan(path: str | Path, instance: Instance) -> list[list[str]]:
    """The pools of a plan file (with its contracts: `read_plan`)."""
    return read_plan(path, instance)[0]


def read_plan(path: str | Path, instance: Instance) -> tuple[list[list[str]], list[tuple[frozenset[str], str]]]:
    """(pools, contracts as (pool's counties, option id)) of a plan file."""
    path = Path(path)
    data = parse_json_bytes(read_file_bytes(path, "plan"), str(path))
    output = _output_kind(data, str(path))
    if output is not None:
        pools, contracts = plan_of_output(data, output, str(path))
    else:
        read_version(data, "plan", str(path))
        reader = FieldReader(data, str(path))
        reader.raw(FORMAT_FIELD, None)
        pools = reader.raw("pools")
        contracts = reader.raw("contracts", [])
        reader.raw("benefits", None)   # read by plan_schedules
        reader.finish()
    plan = validate_plan(pools, instance, str(path))
    return plan, validate_contracts(contracts, plan, instance, str(path))


def plan_schedules(path: str | Path) -> list[dict[str, Any]]:
    """The benefit schedules a plan file names, as [{"pool": [ids], "schedule":
    {table}}] (validated by `evaluate` against the spec's menu): its
    `benefits` list, or a result's (evaluation's) pools' `benefits`."""
    return [item for _, item in labelled_plan_schedules(path)]


def labelled_plan_schedules(path: str | Path) -> list[tuple[str, dict[str, Any]]]:
    """`plan_schedules` with the field each came from (`benefits[k]`, or a
    result's `pools[i].benefits`), for errors that name file and field."""
    path = Path(path)
    data = parse_json_bytes(read_file_bytes(path, "plan"), str(path))
    if _output_kind(data, str(path)) is not None:
        return [(f"pools[{i}].benefits", {"pool": pool["counties"], "schedule": pool["benefits"]})
                for i, pool in enumerate(data.get("pools", [])) if isinstance(pool, dict) and "benefits" in pool]
    found = data.get("benefits", []) if isinstance(data, dict) else []
    if not isinstance(found, list):
        raise InputError(f'{path}: benefits must be a list of {{"pool": [ids], "schedule": {{...}}}}, '
                         f"got {describe(found)}")
    return [(f"benefits[{k}]", item) for k, item in enumerate(found)]


OUTPUT_KINDS = ("result", "evaluation")
"""Files `pooling` writes that hold a plan a user may evaluate again."""


def _output_kind(data: Any, where: str) -> str | None:
    """"result" or "evaluation" when `data` is one (by its tag; untagged, by
    the `status` and `provenance` no plan file has), else None."""
    kind, version = file_format(data, where, "plan")
    if kind in OUTPUT_KINDS:
        check_version(kind, version, where)
        return kind
    if kind is None and isinstance(data, dict) and "status" in data and "provenance" in data:
        return "result" if "bound" in data else "evaluation"
    return None


def refuse_adjustment_fund(data: Any, where: str, reader: str) -> None:
    """An InputError when `data` is an adjustment-fund result.json (groups
    sharing a fund, economics.adjustment_fund): `reader` takes unified pools only."""
    if isinstance(data, dict) and data.get("mode") == "adjustment_fund":
        raise InputError(f"{where}: an adjustment-fund result (groups sharing a fund, not unified pools): "
                         f"{reader} reads unified-pool results only; its groups, rates and transfers are in the "
                         f"file itself")


def plan_of_output(data: dict, kind: str, where: str) -> tuple[Any, list]:
    """(pools, contracts) of a result.json or evaluation.json, in a plan
    file's shape: each pool's counties, each contract's pool counties and
    option. Everything else in the file is ignored: `evaluate` gives the pools
    the rates the spec's rules give them."""
    refuse_adjustment_fund(data, where, "`evaluate`")
    pools = data.get("pools")
    if not isinstance(pools, list):
        raise InputError(f"{where}: a {kind} file used as a plan must have a list of pools, got {describe(pools)}")
    if not pools:
        raise InputError(f"{where}: the {kind} has no plan (status {describe(data.get('status'))}); "
                         f"nothing to evaluate")
    counties = []
    for index, pool in enumerate(pools):
        if not isinstance(pool, dict) or "counties" not in pool:
            raise InputError(f"{where}: pools[{index}] must be a pool of a {kind} file (an object with counties), "
                             f"got {describe(pool)}")
        counties.append(pool["counties"])
    contracts = data.get("contracts", [])
    if not isinstance(contracts, list):
        raise InputError(f"{where}: contracts must be a list, got {describe(contracts)}")
    taken = []
    for index, contract in enumerate(contracts):
        if not isinstance(contract, dict) or "counties" not in contract or "option" not in contract:
            raise InputError(f"{where}: contracts[{index}] must name its pool's counties and its option, "
                             f"got {describe(contract)}")
        taken.append({"pool": contract["counties"], "option": contract["option"]})
    return counties, taken


def validate_contracts(contracts: Any, plan: list[list[str]], instance: Instance,
                       where: str = "plan") -> list[tuple[frozenset[str], str]]:
    """Contracts of a plan: each names a pool of the plan and an option it may take."""
    if contracts is None:
        return []
    if not isinstance(contracts, (list, tuple)):
        raise InputError(f'{where}: contracts must be a list of {{"pool": [ids], "option": ID}}, '
                         f"got {describe(contracts)}")
    pools = {frozenset(p) for p in plan}
    options = {o.id: o for o in instance.contract_options}
    out, seen = [], set()
    for index, item in enumerate(contracts):
        reader = FieldReader(item, where, f"contracts[{index}].")
        pool, option = reader.raw("pool"), reader.string("option")
        reader.finish()
        if not isinstance(pool, (list, tuple)) or not all(isinstance(c, str) for c in pool):
            raise InputError(f"{where}: contracts[{index}].pool must be a list of county ids, got {describe(pool)}")
        members = frozenset(pool)
        if members not in pools:
            raise InputError(f"{where}: contracts[{index}].pool [{', '.join(pool)}] is not a pool of the plan")
        if option not in options:
            known = ", ".join(sorted(options)) or "none"
            raise InputError(f'{where}: contracts[{index}].option "{option}" is not a contract option of '
                             f"instance {instance.source} (it has: {known})")
        if not options[option].origin & members:
            raise InputError(f'{where}: contracts[{index}]: option "{option}" needs a county of its origin '
                             f"({', '.join(sorted(options[option].origin))}) in the pool")
        if (members, option) in seen:
            raise InputError(f'{where}: contracts[{index}]: option "{option}" is listed twice for one pool')
        seen.add((members, option))
        out.append((members, option))
    return out


def validate_plan(pools: Any, instance: Instance, where: str = "plan", *,
                  complete: bool = True) -> list[list[str]]:
    """Check that `pools` is a partition of the instance's county ids (not
    `complete`: disjoint pools of its ids, maybe none, as in a partial result)."""
    if not isinstance(pools, (list, tuple)) or (complete and not pools):
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
    missing = sorted(known - set(seen)) if complete else []
    if missing:
        shown = ", ".join(f'"{m}"' for m in missing[:10])
        raise InputError(f"{where}: {len(missing)} counties are in no pool: {shown}"
                         f"{' ...' if len(missing) > 10 else ''}")
    return plan
