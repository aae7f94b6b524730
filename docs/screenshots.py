"""Regenerate the README's screenshots of the map page (docs/page-henan.png, docs/page-china.png).

Needs the extras ``pooling[maps]`` and headless Chromium (``chromium``). Henan is solved with
models/default.toml (about half a minute), the nation with models/prefecture.toml (one fund per
prefecture, about ten seconds); `pooling report` writes each page.html, which Chromium shoots at
1400 x 900 pixels. Run from the repository's root: ``python docs/screenshots.py`` (a few minutes).
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CASES = (("henan", "default.toml"), ("china", "prefecture.toml"))
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--no-first-run",
         "--disable-background-networking", "--host-resolver-rules=MAP * ~NOTFOUND", "--window-size=1400,900",
         "--virtual-time-budget=10000"]


def main() -> int:
    from pooling.cli import main as pooling
    from pooling.outputs import maps
    chromium = shutil.which("chromium")
    if chromium is None or not maps.maps_available():
        print("needs headless Chromium (chromium) and the extra pooling[maps]", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory() as folder:
        for name, spec in CASES:
            out = Path(folder) / name
            instance = ROOT / "instances" / f"{name}.json"
            if pooling(["solve", str(instance), "--spec", str(ROOT / "models" / spec), "--out", str(out),
                        "--workers", "1", "--quiet"]) not in (0, 3):
                return 1
            if pooling(["report", str(out / "result.json"), "--instance", str(instance)]) != 0:
                return 1
            shot = ROOT / "docs" / f"page-{name}.png"
            subprocess.run([chromium, *FLAGS, f"--user-data-dir={Path(folder) / 'profile'}", f"--screenshot={shot}",
                            (out / "page.html").as_uri()], check=True, capture_output=True, timeout=300)
            print(f"wrote {shot.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
