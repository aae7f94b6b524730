"""Fuzz the command line with valid and invalid instances, specs, plans and
arguments (hypothesis). The property, for every case:

- the exit code is 0, 2, 3 or 4 (never 1: a bug), with a message and no traceback;
- on exit 2 nothing is written;
- every number written is finite, and rates, probabilities and gaps lie in
  their ranges.

The normal suite runs a small derandomised budget. The large run (issue 11:
>= 5,000 cases) is a documented command (docs/testing.md):

    POOLING_FUZZ_EXAMPLES=1000 POOLING_FUZZ_REPORT=fuzz.json pytest tests/test_fuzz.py

which draws fresh random cases and writes the outcome counts to fuzz.json.
"""

from __future__ import annotations

import contextlib
import copy
import io
import json
import math
import os
import tempfile
from collections import Counter
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pooling.cli import main
from tests.factories import spec_dict, tiny_instance_dict
from tests.tolerances import ROUNDING

EXAMPLES = int(os.environ.get("POOLING_FUZZ_EXAMPLES", "12"))
LARGE_RUN = "POOLING_FUZZ_EXAMPLES" in os.environ
FUZZ = settings(max_examples=EXAMPLES, deadline=None, derandomize=not LARGE_RUN, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                       HealthCheck.filter_too_much, HealthCheck.function_scoped_fixture])
ALLOWED_EXIT = {0, 2, 3, 4}
OUTCOMES: Counter = Counter()
"""Exit codes seen, by test: written to POOLING_FUZZ_REPORT at the end of the module."""

RATE_KEYS = {"rate", "max_rate", "objective", "bound", "mean_rate", "min_rate"}
PROBABILITY_SUFFIXES = ("probability",)

INTERESTING_NUMBERS = [0, -1, 1, 2, 0.5, -0.0, 1e-300, 5e-324, 1e-12, 1e-8, 0.999999999, 1.0000001,
                       1e6, 1e12, 1e300, 1.7976931348623157e308, 10**400, -(10**400), 2**63, 2**31]
NUMBERS = st.one_of(st.sampled_from(INTERESTING_NUMBERS), st.integers(-10**6, 10**12),
                    st.floats(allow_nan=False, allow_infinity=False))
TEXT = st.text(alphabet=st.characters(codec=None, categories=("L", "N", "P", "S", "Zs", "Cs", "Cc")),
               max_size=12)
SCALARS = st.one_of(st.none(), st.booleans(), NUMBERS, TEXT)
JSON_VALUES = st.recursive(SCALARS, lambda inner: st.one_of(st.lists(inner, max_size=3),
                                                            st.dictionaries(TEXT, inner, max_size=3)),
                           max_leaves=6)


@pytest.fixture(scope="module", autouse=True)
def _report_outcomes():
    yield
    path = os.environ.get("POOLING_FUZZ_REPORT")
    if path:
        report = {"cases": sum(OUTCOMES.values()), "by_exit_code": {}, "by_test": {}}
        for (test, code), count in sorted(OUTCOMES.items()):
            report["by_exit_code"][str(code)] = report["by_exit_code"].get(str(code), 0) + count
            report["by_test"].setdefault(test, {})[str(code)] = count
        Path(path).write_text(json.dumps(report, indent=2) + "\n")


# ---------------------------------------------------------------- mutations

def _paths(node, prefix=()):
    """Every (path, value) inside nested dicts and lists."""
    yield prefix, node
    if isinstance(node, dict):
        for key, value in node.items():
            yield from _paths(value, (*prefix, key))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from _paths(value, (*prefix, index))


def _parent(data, path):
    """The container holding the value at `path`."""
    for step in path[:-1]:
        data = data[step]
    return data


ACTIONS = ["perturb", "perturb", "perturb", "replace", "number", "delete", "add"]
SHAPE_ACTIONS = ["shorten", "lengthen", "id", "id"]
"""For files the program wrote (result, stress, evaluation): lists of the wrong
length and strings replaced by an id (a county, a pool, an unknown one)."""
IDS = ["900101", "900102", "900103", "outside", "P01", "P02", "nowhere", ""]


@st.composite
def mutated(draw, base: dict, max_mutations: int = 3, shapes: bool = False, min_mutations: int = 0):
    """`base` with a few random edits: a value replaced (by an extreme number,
    a wrong type, a nested value), a key deleted, or an unknown key added;
    with `shapes` also a list shortened or lengthened, or a string replaced
    by an id."""
    data = copy.deepcopy(base)
    for _ in range(draw(st.integers(min_mutations, max_mutations))):
        paths = [p for p, _ in _paths(data) if p]
        if not paths:
            break
        path = draw(st.sampled_from(paths))
        parent = _parent(data, path)
        action = draw(st.sampled_from(ACTIONS + SHAPE_ACTIONS if shapes else ACTIONS))
        if action in SHAPE_ACTIONS:
            _reshape(draw, data, action)
            continue
        if action == "perturb":
            numeric = [p for p, v in _paths(data) if p and isinstance(v, int | float) and not isinstance(v, bool)]
            if not numeric:
                continue
            path = draw(st.sampled_from(numeric))
            parent = _parent(data, path)
            factor = draw(st.sampled_from([0.0, 0.01, 0.1, 0.5, 0.9, 1.1, 2.0, 10.0, 1000.0]))
            old = parent[path[-1]]
            if isinstance(old, int):
                parent[path[-1]] = old * round(factor * 100) // 100
            else:
                parent[path[-1]] = old * factor
        elif action == "replace":
            parent[path[-1]] = draw(JSON_VALUES)
        elif action == "number":
            parent[path[-1]] = draw(NUMBERS)
        elif action == "delete":
            del parent[path[-1]]
        elif isinstance(parent, dict):
            parent[draw(TEXT)] = draw(SCALARS)
    return data


def _reshape(draw, data, action: str) -> None:
    """A list one item shorter or longer (its last item repeated), or a string made an id."""
    if action == "id":
        strings = [p for p, v in _paths(data) if p and isinstance(v, str)]
        if strings:
            path = draw(st.sampled_from(strings))
            _parent(data, path)[path[-1]] = draw(st.sampled_from(IDS))
        return
    lists = [p for p, v in _paths(data) if p and isinstance(v, list) and v]
    if lists:
        path = draw(st.sampled_from(lists))
        items = _parent(data, path)[path[-1]]
        if action == "shorten":
            items.pop()
        else:
            items.append(copy.deepcopy(items[-1]))


def _json_text(data) -> str:
    """JSON as a user could write it: NaN/Infinity spelled as Python writes them
    (the loader must refuse them), any string escaped."""
    return json.dumps(data, ensure_ascii=True)


def _toml_value(value) -> str | None:
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf") if math.isinf(value) else repr(value)
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, list):
        items = [_toml_value(v) for v in value]
        return "[" + ", ".join(i for i in items if i is not None) + "]"
    if isinstance(value, dict):
        items = [(json.dumps(str(k)), _toml_value(v)) for k, v in value.items()]
        return "{" + ", ".join(f"{k} = {v}" for k, v in items if v is not None) + "}"
    return json.dumps(str(value))


def _toml_text(data) -> str:
    """A spec dict as TOML: one table per top-level dict, scalars at the top."""
    if not isinstance(data, dict):
        return f"value = {_toml_value(data)}\n"
    top, tables = [], []
    for key, value in data.items():
        name = json.dumps(str(key))
        if isinstance(value, dict):
            tables.append(f"[{name}]")
            for k, v in value.items():
                text = _toml_value(v)
                if text is not None:
                    tables.append(f"{json.dumps(str(k))} = {text}")
        else:
            text = _toml_value(value)
            if text is not None:
                top.append(f"{name} = {text}")
    return "\n".join(top + tables) + "\n"


def _write(path: Path, text: str) -> None:
    path.write_bytes(text.encode("utf-8", "surrogatepass"))


# ---------------------------------------------------------------- the property

def _walk_numbers(node, key=None):
    if isinstance(node, dict):
        for k, v in node.items():
            yield from _walk_numbers(v, k)
    elif isinstance(node, list):
        for v in node:
            yield from _walk_numbers(v, key)
    elif isinstance(node, int | float) and not isinstance(node, bool):
        yield key, node


def _reject_constant(name):
    raise AssertionError(f"non-finite number {name} written")


def run_cli(test: str, argv: list[str], out: Path) -> tuple[int, str, str]:
    """Run the CLI in-process and check the property; returns (code, stdout, stderr)."""
    stdout, stderr = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
        code = main(argv)
    OUTCOMES[(test, code)] += 1
    err = stderr.getvalue()
    assert code in ALLOWED_EXIT, f"exit {code} for {argv}:\n{err}"
    assert "Traceback" not in err, err
    if code == 2:
        assert err.strip(), f"exit 2 without a message for {argv}"
        written = [p for p in out.rglob("*")] if out.exists() else []
        assert not written, f"exit 2 but wrote {written}"
    else:
        for path in out.rglob("*.json") if out.exists() else []:
            data = json.loads(path.read_text(encoding="utf-8"), parse_constant=_reject_constant)
            _check_ranges(data, path)
    return code, stdout.getvalue(), err


def _check_ranges(data, path: Path) -> None:
    spec_max = 1.0
    if isinstance(data.get("spec"), dict):
        spec_max = float(data["spec"].get("rates", {}).get("max", 1.0))
    for key, value in _walk_numbers(data):
        assert math.isfinite(value), f"{path}: {key} = {value}"
        if key in ("rate", "objective", "mean_rate") and value is not None:
            assert -1e-9 <= value <= spec_max + ROUNDING, f"{path}: {key} = {value!r} outside [0, {spec_max}]"
        if key == "gap":
            assert value >= 0, f"{path}: gap {value}"
        if isinstance(key, str) and key.endswith(PROBABILITY_SUFFIXES):
            assert 0.0 <= value <= 1.0, f"{path}: {key} = {value}"


# ---------------------------------------------------------------- the fuzz tests

BASE_SPEC = spec_dict(pooling={"contiguous": True})


@FUZZ
@given(instance=mutated(tiny_instance_dict()), spec=mutated(BASE_SPEC, max_mutations=1))
def test_fuzzed_instances_and_specs(instance, spec):
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        _write(tmp / "i.json", _json_text(instance))
        _write(tmp / "s.toml", _toml_text(spec))
        out = tmp / "out"
        run_cli("solve", ["solve", str(tmp / "i.json"), "--spec", str(tmp / "s.toml"), "--out", str(out),
                          "--time-limit", "30"], out)


@FUZZ
@given(spec=mutated(BASE_SPEC, max_mutations=3))
def test_fuzzed_specs(spec):
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        _write(tmp / "i.json", _json_text(tiny_instance_dict()))
        _write(tmp / "s.toml", _toml_text(spec))
        out = tmp / "out"
        run_cli("solve-spec", ["solve", str(tmp / "i.json"), "--spec", str(tmp / "s.toml"), "--out", str(out),
                               "--time-limit", "30"], out)


@FUZZ
@given(plan=mutated({"pools": [["900101", "900102"], ["900103"]]}, max_mutations=2), subsidy=st.booleans())
def test_fuzzed_plans(plan, subsidy):
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        _write(tmp / "i.json", _json_text(tiny_instance_dict()))
        _write(tmp / "s.toml", _toml_text(BASE_SPEC))
        _write(tmp / "p.json", _json_text(plan))
        out = tmp / "out"
        argv = ["evaluate", str(tmp / "i.json"), "--spec", str(tmp / "s.toml"), "--plan", str(tmp / "p.json"),
                "--out", str(out)] + (["--subsidy"] if subsidy else [])
        run_cli("evaluate", argv, out)


@FUZZ
@given(raw=st.binary(max_size=200), as_spec=st.booleans())
def test_garbage_files(raw, as_spec):
    """Arbitrary bytes as an instance or a spec file."""
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        _write(tmp / "i.json", _json_text(tiny_instance_dict()))
        _write(tmp / "s.toml", _toml_text(BASE_SPEC))
        (tmp / ("s.toml" if as_spec else "i.json")).write_bytes(raw)
        out = tmp / "out"
        run_cli("garbage", ["solve", str(tmp / "i.json"), "--spec", str(tmp / "s.toml"), "--out", str(out)], out)


FLAG_VALUES = st.one_of(st.sampled_from(["0", "-1", "1", "2", "inf", "nan", "-inf", "1e400", "100000",
                                         "60", "0.001", "x", "", "auto", "generate", "99999999999999999999"]),
                        TEXT.filter(lambda s: "\x00" not in s))
SOLVE_FLAGS = ["--time-limit", "--mip-rel-gap", "--mip-abs-gap", "--threads", "--random-seed",
               "--candidates", "--enumeration-limit"]


@FUZZ
@given(flags=st.lists(st.tuples(st.sampled_from(SOLVE_FLAGS), FLAG_VALUES), max_size=3))
def test_fuzzed_solve_flags(flags):
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        _write(tmp / "i.json", _json_text(tiny_instance_dict()))
        _write(tmp / "s.toml", _toml_text(BASE_SPEC))
        out = tmp / "out"
        argv = ["solve", str(tmp / "i.json"), "--spec", str(tmp / "s.toml"), "--out", str(out)]
        for flag, value in flags:
            argv += [f"{flag}={value}"]
        run_cli("solve-flags", argv, out)


@pytest.fixture(scope="module")
def solved(tmp_path_factory):
    """A solved tiny instance for the simulate fuzz."""
    tmp = tmp_path_factory.mktemp("solved")
    _write(tmp / "i.json", _json_text(tiny_instance_dict()))
    _write(tmp / "s.toml", _toml_text(BASE_SPEC))
    assert main(["solve", str(tmp / "i.json"), "--spec", str(tmp / "s.toml"), "--out", str(tmp)]) == 0
    return tmp


SIMULATE_FLAGS = st.sampled_from(["--years", "--scenarios", "--seed", "--stress"])
SIMULATE_VALUES = st.one_of(st.sampled_from(["1", "2", "0", "-5", "100", "1000", "2.5", "epidemic", "inflation",
                                             "heavy", "volatile", "migrant_surge", "x"]), TEXT)


@FUZZ
@given(flags=st.lists(st.tuples(SIMULATE_FLAGS, SIMULATE_VALUES), max_size=3),
       result_edit=st.one_of(st.none(), JSON_VALUES))
def test_fuzzed_simulate(solved, flags, result_edit):
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        result = json.loads((solved / "result.json").read_text())
        if result_edit is not None:
            result["pools"] = result_edit
        _write(tmp / "r.json", _json_text(result))
        out = tmp / "out"
        argv = ["simulate", str(solved / "i.json"), "--spec", str(solved / "s.toml"), "--result",
                str(tmp / "r.json"), "--out", str(out), "--scenarios", "200"]
        for flag, value in flags:
            if flag == "--scenarios":
                continue  # keep the run small; --scenarios ranges are in test_cli
            argv += [f"{flag}={value}"]
        run_cli("simulate", argv, out)


@pytest.fixture(scope="module")
def reported(solved):
    """The simulate fuzz's solved plan, also stress-tested and evaluated with
    the price of equalisation: the three files `pooling report` reads."""
    common = ["--spec", str(solved / "s.toml"), "--out", str(solved)]
    assert main(["simulate", str(solved / "i.json"), *common, "--result", str(solved / "result.json"),
                 "--scenarios", "200", "--years", "2"]) in (0, 3)
    _write(solved / "p.json", _json_text({"pools": [["900101", "900102"], ["900103"]]}))
    assert main(["evaluate", str(solved / "i.json"), *common, "--plan", str(solved / "p.json"), "--subsidy"]) in (0, 3)
    return {name: json.loads((solved / name).read_text(encoding="utf-8"))
            for name in ("result.json", "stress.json", "evaluation.json")}


REPORT_FUZZ = settings(FUZZ, max_examples=max(1, EXAMPLES // 4))
"""A report that renders draws five figures (1.5-4 s here): a quarter of the budget, every case edited."""


@REPORT_FUZZ
@given(which=st.sampled_from(["result.json", "stress.json", "evaluation.json"]), data=st.data())
def test_fuzzed_report_inputs(reported, which, data):
    """`pooling report` on a result, stress and evaluation file, one of them
    edited (wrong types, lengths, ids): a report (0) or a message (2)."""
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        for name, content in reported.items():
            edited = data.draw(mutated(content, max_mutations=3, shapes=True, min_mutations=1)) \
                if name == which else content
            _write(tmp / name, _json_text(edited))
        out = tmp / "out"
        code, _, _ = run_cli("report", ["report", str(tmp / "result.json"), "--stress", str(tmp / "stress.json"),
                                        "--evaluation", str(tmp / "evaluation.json"), "--out", str(out)], out)
        assert code in (0, 2)


@FUZZ
@given(depth=st.integers(1, 3000), as_spec=st.booleans(), objects=st.booleans())
def test_deeply_nested_files(depth, as_spec, objects):
    """Lists or tables nested up to 3,000 deep as an instance or a spec (old
    code: RecursionError, exit 1, from 1,000 or so): exit 2 with a message."""
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        _write(tmp / "i.json", _json_text(tiny_instance_dict()))
        _write(tmp / "s.toml", _toml_text(BASE_SPEC))
        if as_spec:
            inner = "{a = " * depth + "1" + "}" * depth if objects else "[" * depth + "]" * depth
            _write(tmp / "s.toml", f"x = {inner}\n")
        else:
            inner = '{"a": ' * depth + "1" + "}" * depth if objects else "[" * depth + "]" * depth
            _write(tmp / "i.json", inner)
        out = tmp / "out"
        code, _, err = run_cli("nested", ["solve", str(tmp / "i.json"), "--spec", str(tmp / "s.toml"),
                                          "--out", str(out)], out)
        assert code == 2
        if depth > 64:
            assert "nested more than 64 deep" in err, err


def test_the_documented_large_run_counts_are_its_report():
    """docs/testing.md quotes the last large run: its numbers are the report's."""
    report = json.loads((Path(__file__).parent.parent / "benchmarks/results/fuzz_large.json").read_text())
    text = " ".join((Path(__file__).parent.parent / "docs/testing.md").read_text().split())
    codes = report["by_exit_code"]
    quoted = (f"{report['cases']:,} cases in {round(report['seconds'] / 60)} minutes on one core of a loaded "
              f"machine; exit 0: {codes.get('0', 0):,}, exit 2: {codes.get('2', 0):,}, exit 3: {codes.get('3', 0):,}, "
              f"exit 4: {codes.get('4', 0):,}, exit 1 (a traceback or a NumericsError): {codes.get('1', 0):,}.")
    assert quoted in text
    assert f"main at {report['commit']}" in text and codes.get("1", 0) == 0
