"""The residents-migrants frontier's files: DIR/frontier.csv and
DIR/frontier.png (pooling.optimise.equity.frontier gives the rows)."""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any

from pooling.execution.atomic import write_bytes_atomic
from pooling.outputs.escaping import PLAIN_FIGURE_TEXT, escape_spreadsheet_cell


def write_frontier_csv(rows: list[dict[str, Any]], fields: tuple[str, ...], out: Path) -> Path:
    """frontier.csv, one row per weight, text cells escaped for spreadsheets."""
    text = io.StringIO(newline="")
    writer = csv.DictWriter(text, fieldnames=list(fields))
    writer.writeheader()
    writer.writerows({f: escape_spreadsheet_cell(row[f]) for f in fields} for row in rows)
    path = out / "frontier.csv"
    write_bytes_atomic(path, text.getvalue().encode("utf-8"))
    return path


def plot_frontier(rows: list[dict[str, Any]], title: str, out: Path) -> Path | None:
    """frontier.png: migrants' effective rate against residents', each point
    labelled with its weight; None without matplotlib (the report extra).
    Text is drawn as written (`title` is the instance's name, user text)."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    with matplotlib.rc_context(PLAIN_FIGURE_TEXT):
        fig, ax = plt.subplots(figsize=(6, 4.5))
        xs = [r["resident_effective_rate"] for r in rows]
        ys = [r["migrant_effective_rate"] for r in rows]
        ax.plot(xs, ys, "o-", color="tab:blue")
        labels: dict[tuple[float, float], list[str]] = {}   # one label per point, its weights joined
        for row, x, y in zip(rows, xs, ys):
            labels.setdefault((x, y), []).append(f"{row['weight']:.2f}")
        for (x, y), weights in labels.items():
            ax.annotate("w=" + ", ".join(weights), (x, y), textcoords="offset points", xytext=(4, 4), fontsize=7)
        ax.set_xlabel("residents' effective rate (people-weighted mean over counties)")
        ax.set_ylabel("migrants' effective rate")
        ax.set_title(f"Residents-migrants frontier: {title}")
        fig.tight_layout()
        path = out / "frontier.png"
        buffer = io.BytesIO()
        fig.savefig(buffer, format="png", dpi=120)
        plt.close(fig)
    write_bytes_atomic(path, buffer.getvalue())
    return path
