"""No silent wrong result (issue 11): the pricing self-checks are enforced,
a tiny shock cv prices like none, rate menus are either right or refused, and
inputs the loaders used to let through (lone surrogates, duplicate ids behind
other errors, byte-order marks, levels the engine cannot reach) get a clear
InputError."""

from __future__ import annotations

import copy
import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import pooling
from pooling import instance_from_dict, spec_from_dict
from pooling.cli import main
from pooling.data.fields import MIN_SHARE
from pooling.data.instance import load_instance
from pooling.data.plan import load_plan
from pooling.data.spec import load_spec
from pooling.economics.pools import NO_SOLVENT_RATE, PoolPricer
from pooling.errors import InputError, NumericsError
from pooling.risk import band, compound, direct, law_checks
from pooling.risk import claims as claims_module
from pooling.risk.claims import ClaimStream, CompoundModel, aggregate
from pooling.risk.severity import Severity
from tests.factories import INSTANCES, MODELS, county, instance_dict, spec_dict, tiny_instance_dict
from tests.tolerances import ROUNDING

THETA_AGREEMENT = 1e-4
"""Max rates at theta in {0, 1e-12, ..., 1e-5} must agree this closely
(relative): the shock's own effect at 1e-5 is ~3e-5 of a rate here, and the
engine's accuracy is ~1e-4."""
TINY_THETAS = (0.0, 1e-12, 1e-8, 1e-6, 1e-5)


def _tongliao(theta: float):
    """Tongliao with one national shock of cv theta (no regional parts: these
    tests are about the single negative-binomial count at tiny theta)."""
    data = json.loads((INSTANCES / "tongliao.json").read_text())
    data["parameters"]["frequency_shock_cv"] = theta
    data["parameters"].pop("regional_shocks", None)
    return instance_from_dict(data, source=f"tongliao(theta={theta:g})")


def _max_rates(instance, pools, spec=None):
    spec = spec or load_spec(MODELS / "default.toml")
    pricer = PoolPricer(instance, spec)
    return np.array([pricer.price(pool).max_rate for pool in pools])


def test_tiny_shock_cv_prices_like_none():
    """Old code: theta = 1e-8 priced county 150502 at 0.009 instead of 0.585
    (numpy's complex log1p lost the tiny argument); 1e-6 was off by 1.2%."""
    base = _tongliao(0.0)
    pools = [[base.ids[0]], base.ids[:3], list(base.ids)]
    reference = _max_rates(base, pools)
    for theta in TINY_THETAS[1:]:
        rates = _max_rates(_tongliao(theta), pools)
        assert np.all(np.abs(rates - reference) <= THETA_AGREEMENT * np.abs(reference)), (theta, rates, reference)


def test_tiny_shock_cv_solves_like_none():
    """End to end: the solve status and objective do not move with a tiny theta."""
    objectives = []
    for theta in TINY_THETAS:
        data = tiny_instance_dict()
        data["parameters"]["frequency_shock_cv"] = theta
        result = pooling.solve(instance_from_dict(data), spec_from_dict(spec_dict()))
        assert result.status == "optimal"
        objectives.append(result.objective)
    assert max(objectives) - min(objectives) <= THETA_AGREEMENT * objectives[0]


@settings(max_examples=12, deadline=None)
@given(exponent=st.floats(min_value=-12.0, max_value=-5.0), level=st.sampled_from([0.9, 0.99, 0.999]))
def test_shock_cvar_is_continuous_at_zero(exponent, level):
    """CVaR of a compound negative binomial tends to the Poisson one as theta -> 0:
    |CVaR_theta - CVaR_0| is O(theta), never the old blow-up."""
    streams = (ClaimStream(800.0, Severity("lognormal", 5000.0, 1.0)),
               ClaimStream(50.0, Severity("gamma", 12000.0, 1.5), 0.6))
    theta = 10.0 ** exponent
    poisson = aggregate(CompoundModel(streams, 0.0), level).cvar
    mixed = aggregate(CompoundModel(streams, theta), level)
    assert abs(mixed.cvar - poisson) <= THETA_AGREEMENT * poisson
    assert mixed.mean_rel_error <= law_checks.MEAN_TOLERANCE
    assert mixed.variance_rel_error <= law_checks.VARIANCE_TOLERANCE


def test_failed_self_check_raises_naming_pool_and_field(monkeypatch):
    """With the old (inaccurate) complex log1p the law fails its mean and
    variance checks: the pricer must refuse, naming the pool, the shock cv
    field and its value, not return a rate."""
    # Patched where it is used: this pool has no parts, so both engines take
    # the count exponent from compound._count_exponent.
    monkeypatch.setattr(compound, "_log1p", np.log1p)
    instance = _tongliao(1e-8)
    pricer = PoolPricer(instance, load_spec(MODELS / "default.toml"))
    with pytest.raises(NumericsError) as err:
        pricer.price([instance.ids[0]])
    message = str(err.value)
    assert f"pool [{instance.ids[0]}]" in message
    assert "self-checks" in message and "mean off by" in message
    assert "parameters.frequency_shock_cv = 1e-08" in message
    assert "tongliao(theta=1e-08)" in message


def test_retry_on_a_wider_window_rescues_a_failed_check(monkeypatch):
    """Checks failing on every law of the first window are retried once on a
    window WIDER_WINDOW times wider, whose law is accepted. (Failing only the
    first law computed, as this test once did, exercised the band engine's
    fallback to the direct lattice on the same window, not the retry.)"""
    widens = []
    real_checks, real_aggregate = law_checks.law_check_failures, claims_module._aggregate

    def recording(model, level, widen):
        widens.append(widen)
        return real_aggregate(model, level, widen)

    def first_window_fails(law, model):
        return ["forced"] if widens[-1] == 1.0 else real_checks(law, model)
    monkeypatch.setattr(claims_module, "_aggregate", recording)
    for engine in (band, direct):         # the modules that call law_check_failures
        monkeypatch.setattr(engine, "law_check_failures", first_window_fails)
    streams = (ClaimStream(300.0, Severity("lognormal", 5000.0, 1.0)),)
    result = aggregate(CompoundModel(streams, 0.05), 0.99)
    assert widens == [1.0, law_checks.WIDER_WINDOW]
    assert result.mean_rel_error <= law_checks.MEAN_TOLERANCE


@pytest.mark.parametrize("theta", [0.0, 0.5])
def test_few_admissions_price_exactly(theta):
    """P(no claim) >= level: VaR = 0 and CVaR = E[Y] / (1 - level) exactly
    (old code: no convergence within the lattice limit)."""
    streams = (ClaimStream(2e-8, Severity("lognormal", 4000.0, 1.0)),)
    result = aggregate(CompoundModel(streams, theta), 0.99)
    assert result.var == 0.0
    assert result.cvar == pytest.approx(2e-8 * 4000.0 / 0.01, rel=ROUNDING)
    assert result.mean_rel_error <= law_checks.MEAN_TOLERANCE


def test_huge_pool_passes_its_mass_check():
    """1.6e8 admissions: the severity lattice's rounding (x E[N]) no longer
    leaves the law's mass visibly off 1."""
    streams = (ClaimStream(1.6e8, Severity("lognormal", 4000.0, 1.0)),)
    result = aggregate(CompoundModel(streams, 0.0), 0.99)
    assert result.mass_error <= law_checks.MASS_TOLERANCE


# -- rate menu --------------------------------------------------------------

def test_rate_step_below_the_formulation_limit_is_refused():
    """Old code: step 1e-7 solved to a wrong 'optimal' 0.3 (vs 0.9)."""
    with pytest.raises(InputError) as err:
        spec_from_dict(spec_dict(rates={"step": 1e-7}), source="menu.toml")
    assert str(err.value).startswith("menu.toml: rates.step must be in [0.0001, 1]")
    assert "got 1e-07" in str(err.value)


def test_finest_allowed_step_matches_no_step_within_one_step():
    instance = instance_from_dict(tiny_instance_dict())
    free = pooling.solve(instance, spec_from_dict(spec_dict()))
    step = 1e-4
    menu = pooling.solve(instance, spec_from_dict(spec_dict(rates={"step": step})))
    assert free.status == menu.status == "optimal"
    assert free.objective - step - 1e-9 <= menu.objective <= free.objective + 1e-9


# -- loaders ------------------------------------------------------------------

def test_level_too_close_to_one_is_an_input_error():
    """Old code: accepted, then 'aggregate did not converge' without the level;
    then refused as 'got 1' (printed with :g): the value is printed exactly."""
    with pytest.raises(InputError, match=r"x\.toml: solvency\.level must be in \[0\.5, 0\.9999\], "
                                         r"got 0\.999999999$"):
        spec_from_dict(spec_dict(solvency={"level": 0.999999999}), source="x.toml")


@pytest.mark.parametrize("where,edit", [
    ('county "900101": name', lambda d: d["counties"][0].update(name="\ud800")),
    ('county "900102": prefecture', lambda d: d["counties"][1].update(prefecture="p\udfff")),
    ('county "900103": province', lambda d: d["counties"][2].update(province="\ud800")),
    ('county "\\ud800": id', lambda d: d["counties"][0].update(id="\ud800")),
    ('county "900101": adjacent', lambda d: d["counties"][0].update(adjacent=["900102", "\ud800"])),
    ("name", lambda d: d.update(name="\ud800x")),
    ("description", lambda d: d.update(description="\udc00")),
    ("currency", lambda d: d.update(currency="\ud800")),
])
def test_lone_surrogates_are_rejected_at_load(tmp_path, where, edit):
    """Old code: accepted, then UnicodeEncodeError writing result.json."""
    data = tiny_instance_dict()
    edit(data)
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(data))    # ensure_ascii: the file holds \ud800 escapes
    with pytest.raises(InputError) as err:
        load_instance(path)
    message = str(err.value)
    assert message.startswith(f"{path}: {where} must ")
    assert "lone surrogate" in message
    message.encode("utf-8")              # the message itself can be printed anywhere


def test_surrogate_destination_key_is_rejected():
    data = tiny_instance_dict()
    data["counties"][0]["migrant_destinations"] = {"\ud800": 0.5, "outside": 0.5}
    with pytest.raises(InputError, match=r'county "900101": migrant_destinations\.\\ud800 must be valid'):
        instance_from_dict(data, source="x.json")


def test_duplicate_id_is_reported_before_other_errors():
    """Old code: a duplicate that names itself as destination reported the destination."""
    data = tiny_instance_dict()
    data["counties"][2]["id"] = "900101"
    with pytest.raises(InputError) as err:
        instance_from_dict(data, source="dup.json")
    assert str(err.value) == ('dup.json: county "900101": id appears more than once (counties #1 and #3); '
                              'county ids must be unique')


def test_byte_order_marks_are_accepted(tmp_path):
    bom = b"\xef\xbb\xbf"
    spec_path = tmp_path / "bom.toml"
    spec_path.write_bytes(bom + (MODELS / "default.toml").read_bytes())
    assert load_spec(spec_path).solvency.level == 0.99
    inst_path = tmp_path / "bom.json"
    inst_path.write_bytes(bom + json.dumps(tiny_instance_dict()).encode("utf-8"))
    instance = load_instance(inst_path)
    assert instance.ids == ("900101", "900102", "900103")
    plan_path = tmp_path / "plan.json"
    plan_path.write_bytes(bom + json.dumps({"pools": [["900101", "900102"], ["900103"]]}).encode("utf-8"))
    assert load_plan(plan_path, instance) == [["900101", "900102"], ["900103"]]


def test_shock_cv_below_the_minimum_is_refused():
    data = instance_dict([county("1")], frequency_shock_cv=1e-13)
    with pytest.raises(InputError, match=r"x\.json: parameters\.frequency_shock_cv must be 0 or in "
                                         r"\[1e-12, 0\.5\] .*got 1e-13"):
        instance_from_dict(copy.deepcopy(data), source="x.json")


# -- issue 22: inputs inside the documented ranges that used to fail -----------------

def _var_spec(level: float, **rates) -> dict:
    return spec_dict(solvency={"measure": "var", "level": level}, rates=rates or {"min": 0.3, "max": 0.9})


def test_var_of_zero_prices_at_the_rate_cap():
    """Old code: 10 enrollees at 0.05 admissions each and level 0.5 have VaR 0
    (P(no claim) = e^-0.5 = 0.61 >= 0.5) and budget / VaR raised ZeroDivisionError.
    Claims paid at that level are 0 whatever the rate: every rate is solvent."""
    data = instance_dict([county("1", enrollees=10, admission_rate=0.05, adjacent=["2"]), county("2", adjacent=["1"])])
    instance = instance_from_dict(data)
    pricing = PoolPricer(instance, spec_from_dict(_var_spec(0.5))).price(["1"])
    assert pricing.var == 0.0 and pricing.budget >= 0.0
    assert pricing.max_rate == 0.9 and pricing.usable
    result = pooling.solve(instance, spec_from_dict(_var_spec(0.5)))
    assert result.status == "optimal"


def test_var_of_zero_with_a_negative_budget_has_no_solvent_rate():
    data = instance_dict([county("1", enrollees=10, admission_rate=0.05, contribution_per_capita=0.0, reserves=0.0,
                                 adjacent=["2"]), county("2", adjacent=["1"])])
    instance = instance_from_dict(data)
    pricing = PoolPricer(instance, spec_from_dict(_var_spec(0.5, min=0.0, max=1.0))).price(["1"])
    assert pricing.var == 0.0 and pricing.budget < 0.0
    assert pricing.max_rate == NO_SOLVENT_RATE and not pricing.usable


def test_explain_refuses_a_var_of_zero(tmp_path, capsys):
    """Old code: ZeroDivisionError (exit 1) in the decomposition's B / rho."""
    data = instance_dict([county("1", enrollees=10, admission_rate=0.05, adjacent=["2"]), county("2", adjacent=["1"])])
    (tmp_path / "i.json").write_text(json.dumps(data))
    (tmp_path / "s.toml").write_text('[pooling]\nscope = "optimise"\n[solvency]\nmeasure = "var"\nlevel = 0.5\n'
                                     'reserve_share = 0.5\n[rates]\nmin = 0.3\nmax = 0.9\n')
    (tmp_path / "p.json").write_text(json.dumps({"pools": [["1"], ["2"]]}))
    argv = ["evaluate", str(tmp_path / "i.json"), "--spec", str(tmp_path / "s.toml"), "--plan",
            str(tmp_path / "p.json"), "--out", str(tmp_path / "out")]
    assert main(argv + ["--explain"]) == 2
    err = capsys.readouterr().err
    assert "explain: a var of 0 at level 0.5" in err and "Traceback" not in err
    assert main(argv) == 0


def test_a_pool_that_pays_no_claim_prices_as_zero():
    """Old code: NumericsError 'pool has no claim streams with positive cost' for a
    county whose residents all buy care out of network where nothing is claimed."""
    data = instance_dict([county("1", adjacent=["2"], resident_care={"1": 0.0, "2": 1.0}),
                          county("2", adjacent=["1"])], out_of_network_claim_share=0.0)
    instance = instance_from_dict(data)
    pricing = PoolPricer(instance, spec_from_dict(spec_dict())).price(["1"])
    assert (pricing.expected_cost, pricing.var, pricing.cvar) == (0.0, 0.0, 0.0)
    assert pricing.max_rate == 0.9


def test_spliced_tails_at_infinity_are_zero():
    """Old code: 0 * inf = nan in E[X; X > x] / E[X] at x = inf (a lattice divided by
    a subnormal share phi), then 'cannot convert float NaN to integer'."""
    sev = Severity("spliced", 4000.0, 1.0, threshold=20_000.0, tail_index=3.0, tail_probability=0.01)
    surv, surv1 = sev.tails(np.array([1e300, np.inf]))
    assert surv[1] == 0.0 and surv1[1] == 0.0 and np.all(np.isfinite(surv1))


@pytest.mark.parametrize("tiny", [5e-324, 1e-310, 1e-300, 0.99e-9])
def test_shares_below_a_billionth_are_refused(tiny):
    """Old code: out_of_network_factor 1e-300 with a spliced severity receiving
    migrants raised ValueError (NaN -> int); a subnormal weight gave a span of 0."""
    data = instance_dict([county("1", migrant_share=0.2, migrant_destinations={"2": 1.0}, adjacent=["2"]),
                          county("2", adjacent=["1"], severity={"dist": "spliced", "mean": 4000.0, "cv": 1.0,
                                                                "threshold": 20_000.0, "tail_index": 3.0,
                                                                "tail_probability": 0.01})],
                         out_of_network_factor=tiny)
    with pytest.raises(InputError, match=r"parameters\.out_of_network_factor must be 0 or in \[1e-09, 1\]"):
        instance_from_dict(data, source="x.json")
    data["parameters"]["out_of_network_factor"] = MIN_SHARE
    pricer = PoolPricer(instance_from_dict(data), spec_from_dict(spec_dict()))
    assert np.isfinite(pricer.price(["1"]).max_rate)


def test_streams_of_far_apart_scales_price_by_the_band_engine():
    """Old code: a stream at a share of 1e-9 beside 1e6 admissions of cv 0.01 made
    the band engine's single grid too fine (step 1e-9 / 16), so the pool went to
    the direct lattice, whose VaR_0.9999 was 35 (3.5e-5) above the band's (claims
    of cv 0.01 alias with its span; the Poisson quantile is the band's). Each
    (severity, factor) now has its own grid: the tiny stream changes nothing seen."""
    main = ClaimStream(1e6, Severity("lognormal", 1.0, 0.01))
    tiny = ClaimStream(0.01, Severity("lognormal", 1.0, 20.0), 1e-9)
    both, alone = aggregate(CompoundModel((main, tiny), 0.0), 0.9999), aggregate(CompoundModel((main,), 0.0), 0.9999)
    assert both.points <= band.BAND_MAX_POINTS
    assert both.var == pytest.approx(alone.var, rel=1e-6) and both.cvar == pytest.approx(alone.cvar, rel=1e-6)


def _log1p_as_one_expression(z: np.ndarray) -> np.ndarray:
    """compound._log1p as written before it reused scratch arrays."""
    x, y = z.real, z.imag
    return 0.5 * np.log1p(2.0 * x + x * x + y * y) + 1j * np.arctan2(y, 1.0 + x)


_PARTS = st.one_of(st.sampled_from((0.0, -0.0, 1e-300, -1e-300, 5e-324, 1e-17, -1e-17, 0.94, -0.94, 1e6)),
                   st.floats(-0.94, 1e6, allow_nan=False))


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(_PARTS, _PARTS), min_size=1, max_size=40))
def test_log1p_in_scratch_arrays_gives_the_one_expression_s_bits(pairs):
    """The engine's complex log1p (a speed-up: two scratch arrays, not ten
    temporaries) returns the same bits, signed zeros included, as the single
    expression it replaced, over the arguments the count transforms pass
    (|z| <= 0.94 or Re z >= 0) and beyond."""
    z = np.array([complex(a, b) for a, b in pairs])
    assert compound._log1p(z).tobytes() == _log1p_as_one_expression(z).tobytes()
    assert z.tobytes() == np.array([complex(a, b) for a, b in pairs]).tobytes()   # the input is left alone


def test_log1p_in_scratch_arrays_gives_the_one_expression_s_bits_on_a_transform():
    """The same on 10^5 arguments as a count transform makes them, -c (phi - 1)
    with phi on the unit disc, where any change in the order of the sums
    would show in the last bits."""
    rng = np.random.default_rng(5)
    phi = rng.uniform(0.0, 1.0, 100_000) * np.exp(1j * rng.uniform(-np.pi, np.pi, 100_000))
    for c in (1e-9, 0.3, 0.94 / 2.0, 40.0):
        z = -c * (phi - 1.0)
        assert compound._log1p(z).tobytes() == _log1p_as_one_expression(z).tobytes()
