"""The fixed set of pools the pricing engine is checked on (issue 12, item 3), and
the script that stored their prices by the frozen old engine.

`python benchmarks/pricing_reference.py` prices every case with
benchmarks/reference_engine.py (the engine of commit 86b707d) and writes
benchmarks/results/pricing_reference.json: per pool its VaR, CVaR, mean and
max solvent rate, with the commit they came from. tests/test_pricing_accuracy.py
compares the package's engine with a subset of it, benchmarks/bench_pricing.py
with all of it. Regenerating it is only meaningful with the frozen engine.

Cases (deterministic: no clock, fixed seeds):
- tongliao: every candidate pool of models/default.toml and models/optimise_any.toml;
- henan: the 17 prefecture pools, the whole province, 60 single counties and
  random subsets within prefectures (200 in all);
- china: 200 single-county pools, the 30 with fewest expected admissions (Tibet),
  the 10 with most, the rest evenly spaced by expected admissions;
- variants of Tongliao and Henan: frequency_shock_cv 0 and 0.1, and spliced
  Pareto tails (tail probability 0.01, index 2.5 and 3.5) on every severity.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from functools import cache
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from pooling import instance_from_dict, load_spec  # noqa: E402
from pooling.risk.severity import Severity, with_pareto_tail  # noqa: E402

REFERENCE_FILE = ROOT / "benchmarks" / "results" / "pricing_reference.json"
LEVEL_SPECS = {0.99: "models/default.toml"}
SEED = 20261124

VARIANTS = {
    "base": {},
    "theta0": {"frequency_shock_cv": 0.0},
    "theta0.1": {"frequency_shock_cv": 0.1},
    "pareto2.5": {"tail": (0.01, 2.5)},
    "pareto3.5": {"tail": (0.01, 3.5)},
}


def _severity_dict(sev: Severity) -> dict:
    out = {"dist": sev.dist, "mean": sev.mean, "cv": sev.cv}
    if sev.dist == "spliced":
        out.update(threshold=sev.threshold, tail_index=sev.tail_index, tail_probability=sev.tail_probability)
    return out


def _with_tail(table: dict, p: float, a: float) -> dict:
    return _severity_dict(with_pareto_tail(Severity(table["dist"], table["mean"], table["cv"]), p, a))


REFERENCE_INSTANCES = ROOT / "benchmarks" / "reference_instances"
"""The instance files as they were when the reference was stored (commit
0dd805f, before issue 13 rebuilt them with places of care and regional
shocks), gzipped. Their running costs were charged to the fund (the format's
default then), so `instance` says so explicitly. One later edit, to names only
(no price depends on them): 巿 (U+5DFF) read as 市 in 24 county names of china
and 2 of henan, as the builders now do (instances/builders/census.py)."""


@cache
def instance(name: str, variant: str = "base"):
    """Instance `name` (the frozen copy of instances/<name>.json) under a variant of VARIANTS."""
    import gzip
    data = json.loads(gzip.decompress((REFERENCE_INSTANCES / f"{name}.json.gz").read_bytes()).decode("utf-8"))
    data["parameters"]["admin_financing"] = "risk_fund"
    change = VARIANTS[variant]
    if "frequency_shock_cv" in change:
        data["parameters"]["frequency_shock_cv"] = change["frequency_shock_cv"]
    if "tail" in change:
        p, a = change["tail"]
        data["parameters"]["outside_severity"] = _with_tail(data["parameters"]["outside_severity"], p, a)
        for c in data["counties"]:
            c["severity"] = _with_tail(c["severity"], p, a)
    return instance_from_dict(data, source=f"{name}[{variant}]")


@cache
def spec(path: str = "models/default.toml"):
    return load_spec(ROOT / path)


def _tongliao_pools() -> list[list[str]]:
    from pooling.optimise.candidates import candidate_pools

    inst = instance("tongliao")
    pools = {frozenset(p) for model in ("default", "optimise_any")
             for p in candidate_pools(inst, spec(f"models/{model}.toml"))}
    return sorted((sorted(p) for p in pools), key=lambda p: (len(p), p))


def _henan_pools() -> list[list[str]]:
    inst = instance("henan")
    rng = np.random.default_rng(SEED)
    by_pref: dict[str, list[str]] = {}
    for c in inst.counties:
        by_pref.setdefault(c.prefecture, []).append(c.id)
    pools = [sorted(ids) for _, ids in sorted(by_pref.items())]
    pools.append(sorted(inst.ids))
    singles = sorted(inst.ids)
    pools += [[singles[int(i)]] for i in np.linspace(0, len(singles) - 1, 60).round()]
    prefs = sorted(pref for pref, ids in by_pref.items() if len(ids) >= 2)
    while len(pools) < 200:
        ids = sorted(by_pref[prefs[int(rng.integers(len(prefs)))]])
        size = int(rng.integers(2, len(ids) + 1))
        pool = sorted(rng.choice(ids, size=size, replace=False).tolist())
        if pool not in pools:
            pools.append(pool)
    return pools


def _china_pools() -> list[list[str]]:
    inst = instance("china")
    ids = sorted(inst.ids, key=lambda c: (inst.county(c).enrollees * inst.county(c).admission_rate, c))
    chosen = ids[:30] + ids[-10:]
    rest = ids[30:-10]
    chosen += [rest[int(i)] for i in np.linspace(0, len(rest) - 1, 160).round()]
    return [[c] for c in chosen]


def cases() -> list[dict]:
    """Every reference case: instance, variant, spec, members (deterministic order)."""
    out = []
    for members in _tongliao_pools():
        out.append({"set": "tongliao", "instance": "tongliao", "variant": "base", "members": members})
    for members in _henan_pools():
        out.append({"set": "henan", "instance": "henan", "variant": "base", "members": members})
    for members in _china_pools():
        out.append({"set": "china", "instance": "china", "variant": "base", "members": members})
    tong = _tongliao_pools()
    henan = _henan_pools()
    picks = tong[:8] + tong[-4:] + tong[40:44] + henan[:3] + henan[17:18] + henan[20:24]
    for variant in ("theta0", "theta0.1", "pareto2.5", "pareto3.5"):
        for members in picks:
            name = "tongliao" if members[0].startswith("1505") else "henan"
            out.append({"set": "variants", "instance": name, "variant": variant, "members": members})
    for case in out:
        case["spec"] = "models/default.toml"
    return out


def load_reference() -> dict:
    return json.loads(REFERENCE_FILE.read_text("utf-8"))


def main() -> None:
    sys.path.insert(0, str(ROOT / "benchmarks"))
    import reference_engine

    commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True).stdout.strip()
    started = time.perf_counter()
    rows = []
    for case in cases():
        price = reference_engine.price(instance(case["instance"], case["variant"]), spec(case["spec"]),
                                       case["members"])
        rows.append({**case, **price})
    data = {
        "description": "VaR/CVaR (level 0.99), mean and max solvent rate (models/default.toml budget) "
                       "of each pool by the frozen engine benchmarks/reference_engine.py; written by "
                       "benchmarks/pricing_reference.py",
        "reference_commit": commit,
        "reference_engine": f"benchmarks/reference_engine.py (frozen copy of pooling/risk/claims.py at "
                            f"{reference_engine.REFERENCE_COMMIT})",
        "level": 0.99,
        "seconds": round(time.perf_counter() - started, 1),
        "pools": rows,
    }
    REFERENCE_FILE.parent.mkdir(parents=True, exist_ok=True)
    lines = ",\n".join("    " + json.dumps(r, separators=(",", ":")) for r in rows)
    head = {k: v for k, v in data.items() if k != "pools"}
    text = json.dumps(head, indent=2)[:-2] + ',\n  "pools": [\n' + lines + "\n  ]\n}\n"
    json.loads(text)
    REFERENCE_FILE.write_text(text, "utf-8")
    print(f"{len(rows)} pools in {data['seconds']} s -> {REFERENCE_FILE}")


if __name__ == "__main__":
    main()
