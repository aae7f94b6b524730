"""Terminal tables stay aligned with Chinese names: columns are counted in
terminal cells (a wide character takes two), not in characters."""

from __future__ import annotations

import subprocess
import sys

from hypothesis import given
from hypothesis import strategies as st

from pooling.outputs.summaries import display_width, pad
from tests.factories import INSTANCES


def test_display_width_counts_wide_characters_twice():
    assert display_width("abc") == 3
    assert display_width("科尔沁区") == 8
    assert display_width("\uff46\uff55\uff4c\uff4c") == 8   # fullwidth forms of "full"
    assert display_width("e\u0301") == 1             # a combining accent takes no cell


@given(st.text(alphabet=st.sampled_from("ab1 科尔沁区旗县\uff46"), max_size=12), st.integers(0, 30))
def test_pad_fills_to_the_width_and_keeps_the_text(text, width):
    padded = pad(text, width)
    assert padded.startswith(text) and padded[len(text):].strip() == ""
    assert display_width(padded) == max(width, display_width(text))


def test_check_lists_counties_with_their_figures_in_one_column():
    done = subprocess.run([sys.executable, "-m", "pooling.cli", "check", str(INSTANCES / "tongliao.json")],
                          capture_output=True, text=True, timeout=300, check=True)
    rows = [line for line in done.stdout.splitlines() if line.startswith("  15")]
    assert len(rows) == 8 and any(display_width(r) != len(r) for r in rows)   # Chinese names
    # Where each row's enrollees end, in terminal cells: the same for every row.
    ends = {display_width(row[:row.index(",") + 4]) for row in rows}
    assert len(ends) == 1, rows
