"""Model spec: the pooling policy to study (DESIGN §Decisions and constraints).

A spec is a TOML file under ``models/`` with a top-level ``format =
"pooling.spec/1"`` (absent: version 1, data.formats), tables ``[pooling]``,
``[solvency]``, ``[rates]``, ``[objective]`` and optionally
``[equalisation]``, ``[network]``, ``[simulation]``, ``[uncertainty]``
(data.uncertainty), ``[benefits]`` (data.benefits), ``[welfare]``
(data.welfare), ``[adjustment_fund]`` (with ``[pooling] mode =
"adjustment_fund"``: partial pooling, issue 27). Unknown tables and keys
are errors. Defaults are stated here and in
docs/formats.md; required fields are the ones with no sensible default.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pooling.data.benefits import BenefitMenu, BenefitSchedule, read_benefits
from pooling.data.fields import FieldReader, describe, exact, require_path
from pooling.data.formats import FORMAT_FIELD, format_tag, read_version
from pooling.data.instance import read_file_bytes
from pooling.data.reading import parse_toml_bytes
from pooling.data.settlement import SETTLEMENT_CHOICES
from pooling.data.stress import StressScenario, read_stress_table
from pooling.data.uncertainty import Uncertainty, read_uncertainty
from pooling.data.welfare import WelfareTerms, read_welfare
from pooling.errors import InputError

SCOPES = ("county", "prefecture", "optimise")
WITHIN = ("prefecture", "province", "none")
MEASURES = ("cvar", "var", "ruin")
MAX_MIN_GROUP_RATE = "max_min_group_rate"
EQUITY_WEIGHTED_RATE = "max_equity_weighted_rate"
GROUP_OBJECTIVES = (MAX_MIN_GROUP_RATE, EQUITY_WEIGHTED_RATE)
"""Objectives over groups' effective rates (the residents, or the migrants, of
one county; economics.group_rates): every pool pays its highest admissible
rate and the plan is chosen by the exact group MILP (optimise.equity)."""
OBJECTIVES = ("max_mean_rate", "max_mean_effective_rate", "max_effective_coverage", "max_min_rate",
              "min_rate_dispersion", *GROUP_OBJECTIVES)
MAX_AVERSION = 10.0
"""objective.aversion: the MILP maximises sum w u(x), u(x) = x^(1-eps) / (1 - eps),
whose coefficients grow as x^(1-eps): at eps = 38 a group at rate 0.2 gives
|u| ~ 1e25, beyond HiGHS's infinite cost (1e20), and the solve failed (seen on
Xinyang; Tongliao from 40). At 10 a group at 0.02 gives 2e14. Aversion 10 is
the minimum in all but name already (it weighs a group at half another's
rate 2^9 = 512 times): for the limit use max_min_group_rate."""
DEFAULT_AVERSION = 1.0
"""objective.aversion when the Atkinson kind gives none: the geometric mean of
the groups' rates, the usual middle choice."""
GAP_SCOPES = ("instance", "province", "prefecture")
POOLING_MODES = ("unified", "adjustment_fund")
"""[pooling] mode: "unified" (default: a pool is one fund with one rate, as
always) or "adjustment_fund" (members keep their funds and rates and share an
adjustment fund: economics.adjustment_fund)."""
MAX_CONTRIBUTION_MENU = 32
"""adjustment_fund.contribution: each share on the menu prices every group
again (docs/model.md, "Adjustment funds")."""

LEVEL_RANGE = (0.5, 0.9999)
"""solvency.level. The pricing engine resolves the aggregate's upper tail down
to 1e-4 (its window holds all but 1e-12 of the mass, but VaR/CVaR error control
at span h vs 2h needs a tail with many lattice cells: at 0.999999999 it does
not converge); 0.9999 is priced within 1e-4 for every pool size in range."""
MIN_RATE_STEP = 1e-4
"""rates.step. A finer menu is finer than the pricing accuracy (~1e-4 of r*_P),
so it changes nothing real; and the menu integer k_P would reach 1/step: at
1e-7 (k ~ 6e6) HiGHS's integrality tolerance (1e-6 absolute on k) let it
return a wrong "optimal" 0.3 instead of 0.9. For a continuum, omit the step."""
MAX_COUNT = 2_000_000_000
"""Upper bound of count fields (enrollees, counties): the instance's limit."""
MAX_SCENARIOS = 10_000_000
"""simulation.scenarios: memory grows as scenarios x years x pools."""
MAX_SEED = 2 ** 64 - 1
GROWTH_RANGE = (-0.5, 1.0)
"""solvency.admissions_trend, cost_trend and revenue_growth: annual rates.
Calibrated admission trends reach +46 % a year (Henan counties 2011-13,
CALIBRATION.md); -50 % to +100 % a year holds every plausible projection
while keeping (1 + g)^t finite and positive over 100 years."""
GROWTH_FIELDS = ("admissions_trend", "cost_trend", "revenue_growth")
MAX_RATIO = 10.0
"""max_cross_subsidy and max_expected_surplus are shares of revenue: above 10
neither can bind (a county's net outflow cannot exceed its revenue ~ten times)."""


@dataclass(frozen=True)
class PoolingRules:
    """Which pools are allowed. `within` and the limits apply to scope "optimise"."""

    scope: str
    within: str = "prefecture"
    contiguous: bool = False
    max_counties: int | None = None
    min_enrollees: int = 0


@dataclass(frozen=True)
class Solvency:
    """Risk measure rho at level alpha; u = reserve_share of reserves enters the
    budget (var, cvar) or the starting reserves of the ruin simulation (ruin:
    P(reserves < 0 at some year end within horizon_years) <= 1 - level).

    Growth over the ruin horizon (measure "ruin" only; 0 = today's meaning):
    in year t = 1..horizon_years admissions per enrollee are the instance's
    times (1 + admissions_trend)^t, cost per admission times (1 +
    cost_trend)^t, and revenue and fixed costs times (1 + revenue_growth)^t
    (docs/model.md, "Multi-year ruin")."""

    measure: str
    level: float
    reserve_share: float
    horizon_years: int = 1
    admissions_trend: float = 0.0
    cost_trend: float = 0.0
    revenue_growth: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        """The fields as stored in results; the growth rates only when not 0,
        so that specs without them write (and hash) what they always did."""
        data = dataclasses.asdict(self)
        for name in GROWTH_FIELDS:
            if data[name] == 0.0:
                del data[name]
        return data


@dataclass(frozen=True)
class Rates:
    """Rates lie in [min, max]; with `step`, on the menu min + k step."""

    min: float
    max: float
    step: float | None = None


@dataclass(frozen=True)
class Equalisation:
    """Fairness rules (docs/model.md §Equalisation). None / False: rule off."""

    max_rate_gap: float | None = None
    gap_scope: str = "instance"
    no_county_worse_off: bool = False
    tolerance: float = 0.0
    max_cross_subsidy: float | None = None
    max_expected_surplus: float | None = None


@dataclass(frozen=True)
class AdjustmentFund:
    """[pooling] mode = "adjustment_fund": each member pays `contribution`
    (one share of its revenue, chosen from the menu per group) into its
    group's adjustment fund and bears deficits up to `retention` x revenue
    beyond its own budget first (docs/model.md, "Adjustment funds")."""

    contribution: tuple[float, ...]
    retention: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return {"contribution": list(self.contribution), "retention": self.retention}


@dataclass(frozen=True)
class Objective:
    """`aversion` (Atkinson's eps) belongs to kind "max_equity_weighted_rate"
    only; None for every other kind."""

    kind: str = "max_mean_rate"
    aversion: float | None = None

    def to_dict(self) -> dict[str, Any]:
        """The table as results store it: `aversion` only for the Atkinson kind
        (so the resolved specs, and digests, of the other kinds are unchanged)."""
        return {"kind": self.kind} | ({"aversion": self.aversion} if self.aversion is not None else {})


@dataclass(frozen=True)
class Network:
    """`settlement`: the out-of-network rules priced (data.settlement):
    "instance" (the file's tiers), "2012" or "2020"."""

    settlement: str = "instance"


@dataclass(frozen=True)
class Simulation:
    """Stress-test defaults; `stress` holds the spec's named scenarios
    (``[simulation.stress.NAME]``), which add to or override the presets."""

    scenarios: int = 10_000
    years: int = 1
    seed: int = 0
    stress: dict[str, StressScenario] = field(default_factory=dict)


@dataclass(frozen=True)
class Spec:
    """A validated model spec; `sha256` hashes the source file's bytes."""

    name: str
    pooling: PoolingRules
    solvency: Solvency
    rates: Rates
    equalisation: Equalisation
    objective: Objective
    simulation: Simulation
    source: str
    sha256: str
    network: Network = Network()
    uncertainty: Uncertainty | None = None
    """Parameter scenarios the plan must survive (data.uncertainty); None: the instance as given."""
    benefits: BenefitSchedule | BenefitMenu | None = None
    """What the fund pays per admission (data.benefits), or a menu of schedules
    the optimiser chooses from per pool; None: the eligible cost in full."""

    def schedule_specs(self) -> list[tuple[BenefitSchedule | None, Spec]]:
        """(schedule, spec paying it) for each schedule of a benefit menu, in
        order; [(None, self)] without a menu (the spec prices as it is)."""
        if not isinstance(self.benefits, BenefitMenu):
            return [(None, self)]
        return [(s, dataclasses.replace(self, benefits=s)) for s in self.benefits.schedules]
    welfare: WelfareTerms | None = None
    """Income and thresholds of the per-group welfare records (data.welfare); None: no records."""
    adjustment_fund: AdjustmentFund | None = None
    """[pooling] mode = "adjustment_fund" and its terms; None: mode "unified" (pools as always)."""

    @property
    def mode(self) -> str:
        return "unified" if self.adjustment_fund is None else "adjustment_fund"

    def to_dict(self) -> dict[str, Any]:
        """The resolved spec (defaults filled in, the current format tag), as
        stored in results."""
        data = {FORMAT_FIELD: format_tag("spec")} | {
            section: dataclasses.asdict(getattr(self, section))
            for section in ("pooling", "solvency", "rates", "equalisation", "objective", "network", "simulation")}
        # Their own to_dict leaves out what is at its default; the key order stays
        # the one result files always had.
        data["objective"] = self.objective.to_dict()
        data["solvency"] = self.solvency.to_dict()
        if self.uncertainty is not None:   # absent otherwise: specs without it hash as before
            data["uncertainty"] = self.uncertainty.to_dict()
        if self.benefits is not None:     # likewise
            data["benefits"] = self.benefits.to_dict()
        if self.welfare is not None:      # likewise
            data["welfare"] = self.welfare.to_dict()
        if self.adjustment_fund is not None:   # likewise: unified specs write what they always wrote
            data["pooling"]["mode"] = "adjustment_fund"
            data["adjustment_fund"] = self.adjustment_fund.to_dict()
        return data


def load_spec(path: str | Path) -> Spec:
    """Load and validate a spec TOML file."""
    require_path(path, "load_spec", "spec_from_dict(data)")
    path = Path(path)
    raw = read_file_bytes(path, "spec")
    data = parse_toml_bytes(raw, str(path))
    return spec_from_dict(data, source=str(path), name=path.stem,
                          sha256=hashlib.sha256(raw).hexdigest())


def spec_from_dict(data: Any, source: str = "<memory>", name: str = "spec",
                   sha256: str | None = None) -> Spec:
    """Validate parsed spec data (a dict shaped like the TOML file)."""
    if sha256 is None:
        canonical = json.dumps(data, sort_keys=True, default=str)
        sha256 = hashlib.sha256(canonical.encode("utf-8")).hexdigest()
    read_version(data, "spec", source)   # every version so far means the same (data.formats.CHANGES)
    top = FieldReader(data, source)
    top.raw(FORMAT_FIELD, None)
    pooling_table = top.table("pooling")
    mode = pooling_table.string("mode", choices=POOLING_MODES, default="unified")
    pooling = _read_pooling(pooling_table)
    solvency = _read_solvency(top.table("solvency"))
    rates = _read_rates(top.table("rates"))
    equalisation = _read_equalisation(top.table("equalisation", default=None))
    objective = _read_objective(top.table("objective", default=None))
    network_table = top.table("network", default=None)
    network = Network(settlement=network_table.string("settlement", choices=SETTLEMENT_CHOICES,
                                                      default="instance"))
    network_table.finish()
    simulation = _read_simulation(top.table("simulation", default=None))
    uncertainty = read_uncertainty(top.table("uncertainty", default=None))
    benefits = read_benefits(top.table("benefits", default=None))
    welfare = read_welfare(top.table("welfare", default=None), top.has("welfare"))
    adjustment_fund = _read_adjustment_fund(top, mode)
    top.finish()
    spec = Spec(name=name, pooling=pooling, solvency=solvency, rates=rates,
                equalisation=equalisation, objective=objective,
                simulation=simulation, source=source, sha256=sha256, network=network,
                uncertainty=uncertainty, benefits=benefits, welfare=welfare, adjustment_fund=adjustment_fund)
    if adjustment_fund is not None:
        _check_adjustment_fund_spec(spec, top)
    elif objective.kind in GROUP_OBJECTIVES:
        _check_group_objective_spec(spec)
    if isinstance(benefits, BenefitMenu) and uncertainty is not None:
        raise InputError(f"{source}: benefits is a menu, which [uncertainty] does not price (its scenarios "
                         f"would each need every schedule): give one value per [benefits] field or remove "
                         f"[uncertainty]")
    return spec


def _read_objective(reader: FieldReader) -> Objective:
    kind = reader.string("kind", choices=OBJECTIVES, default="max_mean_rate")
    if kind == EQUITY_WEIGHTED_RATE:
        aversion = reader.number("aversion", low=0.0, high=MAX_AVERSION, default=DEFAULT_AVERSION)
    elif reader.has("aversion"):
        raise reader.fail("aversion", f'applies only with kind = "{EQUITY_WEIGHTED_RATE}", got kind "{kind}"')
    else:
        aversion = None
    reader.finish()
    return Objective(kind=kind, aversion=aversion)


def _check_group_objective_spec(spec: Spec) -> None:
    """What the group objectives do not support, refused by field: every pool
    pays its highest admissible rate, which a rule coupling pools' rates or a
    scenario's rates would change (optimise.equity)."""
    kind = spec.objective.kind
    if spec.equalisation.max_rate_gap is not None:
        raise InputError(f'{spec.source}: equalisation.max_rate_gap is not supported with objective.kind "{kind}" '
                         f"(it couples pools' rates; the group objectives give every pool its highest "
                         f"admissible rate): remove it or choose another kind")
    if spec.uncertainty is not None:
        raise InputError(f'{spec.source}: uncertainty is not supported with objective.kind "{kind}": remove the '
                         f"[uncertainty] table or choose another kind")


def _read_adjustment_fund(top: FieldReader, mode: str) -> AdjustmentFund | None:
    """The [adjustment_fund] table: required with mode "adjustment_fund", refused without it."""
    if mode != "adjustment_fund":
        if top.has("adjustment_fund"):
            raise top.fail("adjustment_fund", 'applies only with [pooling] mode = "adjustment_fund"')
        return None
    if not top.has("adjustment_fund"):
        raise top.fail("adjustment_fund", 'is missing: [pooling] mode = "adjustment_fund" needs its '
                                          "contribution menu, e.g. contribution = [0.0, 0.03, 0.05]")
    reader = top.table("adjustment_fund")
    raw = reader.raw("contribution")
    if not isinstance(raw, list) or not raw or len(raw) > MAX_CONTRIBUTION_MENU:
        raise reader.fail("contribution", f"must be a list of 1 to {MAX_CONTRIBUTION_MENU} shares of revenue in "
                                          f"[0, 1], got {'an empty list' if raw == [] else describe(raw)}")
    shares = []
    for k, value in enumerate(raw):
        item = FieldReader({"": value}, reader.where, f"{reader.path}contribution[{k}]")
        share = item.number("", low=0.0, high=1.0)
        if share in shares:
            raise reader.fail("contribution", f"lists {exact(share)} twice")
        shares.append(share)
    retention = reader.number("retention", low=0.0, high=1.0, default=0.0)
    reader.finish()
    return AdjustmentFund(contribution=tuple(sorted(shares)), retention=retention)


def _check_adjustment_fund_spec(spec: Spec, top: FieldReader) -> None:
    """What the adjustment-fund mode does not price (yet), refused by field."""
    where = spec.source
    refused = []
    if spec.objective.kind != "max_mean_rate":
        refused.append(("objective.kind", 'must be "max_mean_rate" with mode "adjustment_fund", '
                                          f'got "{spec.objective.kind}"'))
    eq = spec.equalisation
    for name, value in (("max_rate_gap", eq.max_rate_gap), ("no_county_worse_off", eq.no_county_worse_off or None),
                        ("max_cross_subsidy", eq.max_cross_subsidy),
                        ("max_expected_surplus", eq.max_expected_surplus)):
        if value is not None:
            refused.append((f"equalisation.{name}", 'is not applied with mode "adjustment_fund"; remove it'))
    if spec.uncertainty is not None:
        refused.append(("uncertainty", 'is not priced with mode "adjustment_fund"; remove the table'))
    if spec.rates.step is not None:
        refused.append(("rates.step", 'is not applied with mode "adjustment_fund" (rates are continuous); '
                                      "remove it"))
    if refused:
        field_name, message = refused[0]
        raise InputError(f"{where}: {field_name} {message}")


def _read_pooling(reader: FieldReader) -> PoolingRules:
    scope = reader.string("scope", choices=SCOPES)
    within = reader.string("within", choices=WITHIN, default="prefecture")
    contiguous = reader.boolean("contiguous", default=False)
    max_counties = reader.integer("max_counties", low=1, high=MAX_COUNT, default=None)
    min_enrollees = reader.integer("min_enrollees", low=0, high=MAX_COUNT, default=0)
    reader.finish()
    return PoolingRules(scope=scope, within=within, contiguous=contiguous,
                        max_counties=max_counties, min_enrollees=min_enrollees)


def _read_solvency(reader: FieldReader) -> Solvency:
    measure = reader.string("measure", choices=MEASURES)
    level = reader.number("level", low=LEVEL_RANGE[0], high=LEVEL_RANGE[1])
    reserve_share = reader.number("reserve_share", low=0.0, high=1.0)
    horizon = reader.integer("horizon_years", low=1, high=100, default=1)
    growth = {name: reader.number(name, low=GROWTH_RANGE[0], high=GROWTH_RANGE[1], default=0.0)
              for name in GROWTH_FIELDS}
    reader.finish()
    if horizon != 1 and measure != "ruin":
        raise reader.fail("horizon_years", f"must be 1 for measure \"{measure}\" "
                          f"(one-year VaR/CVaR), got {horizon}")
    for name, value in growth.items():
        if value != 0.0 and measure != "ruin":
            raise reader.fail(name, f'applies only with measure "ruin" (the one-year {measure} prices the '
                                    f"instance's year as given), got {exact(value)}")
    return Solvency(measure=measure, level=level, reserve_share=reserve_share, horizon_years=horizon, **growth)


def _read_rates(reader: FieldReader) -> Rates:
    low = reader.number("min", low=0.0, high=1.0)
    high = reader.number("max", low=0.0, high=1.0, low_open=True)
    step = reader.number("step", low=0.0, high=1.0, low_open=True, default=None)
    reader.finish()
    if step is not None and step < MIN_RATE_STEP:
        raise reader.fail("step", f"must be in [{MIN_RATE_STEP:g}, 1] (a finer menu is below the pricing "
                                  f"accuracy and breaks the MILP's integer menu; omit step for any rate), "
                                  f"got {exact(step)}")
    if low > high:
        raise reader.fail("min", f"must be <= rates.max ({high:g}), got {exact(low)}")
    return Rates(min=low, max=high, step=step)


def _read_equalisation(reader: FieldReader) -> Equalisation:
    eq = Equalisation(
        max_rate_gap=reader.number("max_rate_gap", low=0.0, high=1.0, default=None),
        gap_scope=reader.string("gap_scope", choices=GAP_SCOPES, default="instance"),
        no_county_worse_off=reader.boolean("no_county_worse_off", default=False),
        tolerance=reader.number("tolerance", low=0.0, high=1.0, default=0.0),
        max_cross_subsidy=reader.number("max_cross_subsidy", low=0.0, high=MAX_RATIO, default=None),
        max_expected_surplus=reader.number("max_expected_surplus", low=0.0, high=MAX_RATIO, default=None))
    reader.finish()
    if eq.tolerance and not eq.no_county_worse_off:
        raise reader.fail("tolerance", "applies only with no_county_worse_off = true")
    if reader.has("gap_scope") and eq.max_rate_gap is None and eq.gap_scope != "instance":
        # The default scope is accepted (a resolved spec, as results store it, reloads).
        raise reader.fail("gap_scope", "applies only with max_rate_gap")
    return eq


def _read_simulation(reader: FieldReader) -> Simulation:
    stress = {}
    if reader.has("stress"):
        table = reader.table("stress")
        for name in sorted(table.data):
            stress[name] = read_stress_table(table.table(name), name)
        table.finish()
    simulation = Simulation(scenarios=reader.integer("scenarios", low=100, high=MAX_SCENARIOS, default=10_000),
                            years=reader.integer("years", low=1, high=100, default=1),
                            seed=reader.integer("seed", low=0, high=MAX_SEED, default=0), stress=stress)
    reader.finish()
    return simulation
