"""Builders of small test instances and specs (plain dicts, validated by the loaders)."""

from __future__ import annotations

import copy
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
SHARED = REPO.parent / "shared"
INSTANCES = REPO / "instances"
MODELS = REPO / "models"


def county(cid: str, prefecture: str = "9001", **overrides) -> dict:
    """A valid county record; override any field."""
    record = {
        "id": cid, "name": f"County {cid}", "prefecture": prefecture, "province": "900000",
        "enrollees": 20_000, "contribution_per_capita": 400.0, "reserves": 1_000_000.0,
        "admin_per_capita": 2.0, "outpatient_per_capita": 40.0, "admission_rate": 0.08,
        "severity": {"dist": "lognormal", "mean": 4000.0, "cv": 1.0},
        "migrant_share": 0.0, "migrant_destinations": {}, "adjacent": [],
    }
    record.update(copy.deepcopy(overrides))
    return record


def instance_dict(counties: list[dict], **parameters) -> dict:
    params = {
        "admin_fixed_per_fund": 500_000.0, "out_of_network_factor": 0.6,
        "out_of_network_claim_share": 0.6, "migrant_admission_factor": 1.0,
        "outside_severity": {"dist": "lognormal", "mean": 8000.0, "cv": 1.0},
        "frequency_shock_cv": 0.0,
        # Test instances keep running costs in the fund so pooling's fixed-cost
        # saving stays exercised (real instances: the county budget pays them).
        "admin_financing": "risk_fund",
    }
    params.update(parameters)
    return {"name": "test", "year": 2012, "currency": "CNY", "parameters": params,
            "counties": counties}


def tiny_instance_dict() -> dict:
    """Three counties in one prefecture, a path 900101 - 900102 - 900103, with migrants."""
    return instance_dict([
        county("900101", enrollees=15_000, migrant_share=0.2,
               migrant_destinations={"900102": 0.5, "outside": 0.5}, adjacent=["900102"]),
        county("900102", enrollees=40_000, contribution_per_capita=450.0,
               adjacent=["900101", "900103"]),
        county("900103", enrollees=8_000, migrant_share=0.1,
               migrant_destinations={"900101": 1.0}, adjacent=["900102"]),
    ])


def spec_dict(scope: str = "optimise", **sections) -> dict:
    data = {
        "pooling": {"scope": scope},
        "solvency": {"measure": "cvar", "level": 0.99, "reserve_share": 0.5},
        "rates": {"min": 0.3, "max": 0.9},
        "objective": {"kind": "max_mean_rate"},
    }
    for name, values in sections.items():
        data.setdefault(name, {}).update(values)
    return data


def random_instance_dict(seed: int, n_counties: int, n_prefectures: int = 1,
                         contribution_range: tuple[float, float] = (330.0, 520.0)) -> dict:
    """A random small instance: sizes 2k-60k enrollees (tens to thousands of
    admissions, so pricing is fast), mixed finances so that some pools gain
    from pooling and some do not, random connected adjacency per prefecture
    plus a few cross edges, random migrant destinations."""
    rng = np.random.default_rng(seed)
    ids = [f"9{seed % 100:02d}{i + 1:03d}" for i in range(n_counties)]
    prefs = [f"p{(i * n_prefectures) // n_counties}" for i in range(n_counties)]
    adjacency = {cid: set() for cid in ids}
    for i in range(1, n_counties):
        j = int(rng.integers(0, i))
        adjacency[ids[i]].add(ids[j])
        adjacency[ids[j]].add(ids[i])
    for _ in range(n_counties // 2):
        i, j = rng.choice(n_counties, size=2, replace=False)
        adjacency[ids[i]].add(ids[j])
        adjacency[ids[j]].add(ids[i])
    counties = []
    for i, cid in enumerate(ids):
        share = float(rng.choice([0.0, round(float(rng.uniform(0.05, 0.4)), 3)]))
        dests = {}
        if share > 0:
            others = [o for o in ids if o != cid]
            picks = rng.choice(len(others), size=min(2, len(others)), replace=False)
            raw = rng.dirichlet(np.ones(len(picks) + 1))
            for k, pick in enumerate(picks):
                dests[others[int(pick)]] = float(raw[k])
            dests["outside"] = 1.0 - sum(dests.values())
        counties.append(county(
            cid, prefecture=prefs[i],
            enrollees=int(rng.integers(2_000, 60_000)),
            contribution_per_capita=float(np.round(rng.uniform(*contribution_range), 2)),
            reserves=float(np.round(rng.uniform(0.0, 3e6), 0)),
            admission_rate=float(np.round(rng.uniform(0.05, 0.11), 4)),
            severity={"dist": str(rng.choice(["lognormal", "gamma"])),
                      "mean": float(np.round(rng.uniform(3000.0, 5000.0), 1)),
                      "cv": float(np.round(rng.uniform(0.6, 1.4), 2))},
            migrant_share=share, migrant_destinations=dests,
            adjacent=sorted(adjacency[cid])))
    return instance_dict(counties, admin_fixed_per_fund=float(rng.choice([2e5, 1e6])),
                         frequency_shock_cv=float(rng.choice([0.0, 0.05])))
