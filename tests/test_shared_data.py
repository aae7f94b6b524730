"""Instances built from ../shared/data are reproduced exactly by their builders.

A user's clone has no ../shared/; these tests then skip with the reason.
"""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.factories import INSTANCES, SHARED

CENSUS = SHARED / "data" / "china_counties_census.csv"
needs_shared = pytest.mark.skipif(not CENSUS.exists(),
                                  reason=f"{CENSUS} not present (../shared/ ships only with CI)")


@needs_shared
def test_tongliao_builder_reproduces_committed_file(tmp_path):
    out = tmp_path / "tongliao.json"
    done = subprocess.run([sys.executable, str(INSTANCES / "build_tongliao.py"),
                           "--census", str(CENSUS), "--out", str(out)],
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert out.read_bytes() == (INSTANCES / "tongliao.json").read_bytes()
