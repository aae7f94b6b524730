"""The layers are enforced (import-linter contracts in pyproject.toml) and the
code is lint-clean (ruff); docs/architecture.md explains both."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.factories import INSTANCES, MODELS

ROOT = Path(__file__).resolve().parent.parent
LAYERS = ("risk", "data", "economics", "calibration", "optimise", "simulation", "outputs", "execution", "studies")
TOP_LEVEL_MODULES = {"__init__.py", "errors.py", "cli.py", "__main__.py"}


def _tool(name: str) -> list[str]:
    """The console script installed beside this interpreter (the test extra)."""
    script = Path(sys.executable).parent / name
    if not script.exists():
        pytest.skip(f"{name} is not installed (pip install -e '.[test]')")
    return [str(script)]


def _lint_imports(cwd: Path, pythonpath: Path | None = None) -> subprocess.CompletedProcess:
    env = {"PATH": "/usr/bin:/bin", "LC_ALL": "C.UTF-8"}
    if pythonpath is not None:
        env["PYTHONPATH"] = str(pythonpath)
    return subprocess.run(_tool("lint-imports") + ["--no-cache"], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=120, check=False)


def test_every_module_sits_in_a_layer():
    """New code goes into a layer's subpackage; only the package root, the CLI
    and the shared exceptions live at the top."""
    package = ROOT / "pooling"
    loose = {p.name for p in package.glob("*.py")} - TOP_LEVEL_MODULES
    assert not loose, f"modules outside the layers: {sorted(loose)}"
    assert {p.name for p in package.iterdir() if p.is_dir() and p.name != "__pycache__"} == set(LAYERS)


def test_import_contracts_hold():
    run = _lint_imports(ROOT)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "0 broken" in run.stdout


@pytest.mark.parametrize(("module", "line", "contract"), [
    ("risk/measures.py", "import pyomo.environ  # forbidden", "never import a solver"),
    ("data/plan.py", "from pooling.cli import main  # forbidden", "Layers"),
    ("economics/pools.py", "from pooling.optimise import solve  # forbidden", "Layers"),
    ("optimise/bruteforce.py", "from pooling.optimise.formulations import set_partition  # forbidden",
     "brute-force oracle"),
    ("risk/direct.py", "from pooling.risk.band import BAND_MAX_POINTS  # forbidden", "Aggregate engine"),
    ("economics/group_economics.py", "from pooling.economics.pool_bounds import rate_bound  # forbidden",
     "Pool bounds"),
])
def test_a_forbidden_import_breaks_a_contract(tmp_path, module, line, contract):
    """A copy of the package with one forbidden import added fails the check."""
    shutil.copytree(ROOT / "pooling", tmp_path / "pooling", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    target = tmp_path / "pooling" / module
    target.write_text(target.read_text() + f"\n{line}\n")
    run = _lint_imports(tmp_path, pythonpath=tmp_path)
    assert run.returncode != 0, run.stdout
    broken = run.stdout.split("Broken contracts", 1)[-1]
    assert contract in broken, run.stdout


def test_ruff_is_clean():
    run = subprocess.run(_tool("ruff") + ["check", "--no-cache", "."], cwd=ROOT, capture_output=True,
                         text=True, timeout=120, check=False)
    assert run.returncode == 0, run.stdout + run.stderr


@pytest.mark.parametrize("first", ["import pooling.cli", "import pooling.data.instance"])
def test_a_solve_never_loads_scipy_stats_optimize_or_asyncio(first):
    """Pyomo preloads scipy.stats (0.5-2 s) when scipy is already imported as
    it first loads its dependency table; reading an instance imports
    scipy.special, so `pooling.load_instance` then `pooling.solve` paid it
    (pooling.optimise reads that table with scipy hidden for the moment)."""
    code = (f"{first}\nimport sys, pooling\n"
            f"i = pooling.load_instance({str(INSTANCES / 'tongliao.json')!r})\n"
            f"s = pooling.load_spec({str(MODELS / 'default.toml')!r})\n"
            "r = pooling.solve(i.restricted(['150502', '150521']), s, workers=1)\n"
            "same = sys.modules['scipy'].special is sys.modules['scipy.special']\n"
            "print(r.status, 'scipy.stats' in sys.modules, same, 'scipy.optimize' in sys.modules,\n"
            "      'asyncio' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, check=True)
    # Nor scipy.optimize (0.2-0.5 s: induced utilisation's root finder imports it when
    # an elasticity is set) nor asyncio (a --scheduler probe's): issue 21's 1-s solve.
    assert done.stdout.split() == ["optimal", "False", "True", "False", "False"], done.stdout + done.stderr


CODE_LOADERS = {"pickle", "marshal", "shelve", "dill", "cloudpickle", "_pickle"}
"""Modules that turn bytes into running code: the package never imports them
(files are data, never code; multiprocessing and Dask move work between
processes with their own transfer, which the package does not call)."""


def test_no_module_loads_code_from_bytes():
    """No `import pickle` (or marshal, shelve, ...) and no call of eval/exec
    anywhere in the package: found by walking every module's syntax tree."""
    import ast

    found = []
    for path in sorted((ROOT / "pooling").rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        for node in ast.walk(tree):
            names = []
            if isinstance(node, ast.Import):
                names = [alias.name.split(".")[0] for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module.split(".")[0]]
            elif isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in ("eval", "exec"):
                found.append(f"{path.relative_to(ROOT)}:{node.lineno}: {node.func.id}()")
            found += [f"{path.relative_to(ROOT)}:{node.lineno}: import {name}" for name in names
                      if name in CODE_LOADERS]
    assert not found, found
