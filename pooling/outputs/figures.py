"""Figures of a plan for the report (matplotlib Figure objects rendered by the
Agg backend: no pyplot, no global backend switch, nothing shown on screen):
the pool map, each county's rate alone against its rate in the plan, each
pool's loss distribution with budget, VaR and CVaR, the stress test's deficit
and ruin probabilities with 95% intervals, and the price of equalisation.

Every function returns a `matplotlib.figure.Figure`; `png_bytes` renders one
(deterministically: no timestamp or software tag in the file). Figures are
built and drawn under `PLAIN_FIGURE_TEXT` (`plain_text`): names, ids and the
currency come from input files and are drawn as written, never parsed as
mathtext or LaTeX. They take the report's validated records
(`pooling.data.report_inputs`). The map's
county patches carry ``gid = "county:ID"`` and the pool id as their label, so
a test (or a reader) can check one colour per pool from the figure itself.

The map is not a map of county boundaries: instances carry no coordinates or
shapes, only the adjacency graph, so each county is a cell placed by a
deterministic layout of that graph (`graph_layout`): neighbours sit next to
each other, but positions, shapes and areas are not geographic.
"""

from __future__ import annotations

import colorsys
import functools
import io
import math
from collections.abc import Sequence

import matplotlib
import numpy as np
from matplotlib.figure import Figure
from matplotlib.patches import Patch, Polygon
from scipy.linalg import eigh
from scipy.sparse import csr_matrix
from scipy.sparse.csgraph import connected_components, shortest_path
from scipy.spatial import Voronoi

from pooling.data.instance import Instance
from pooling.data.report_inputs import PoolRecord, SensitivityRecord, StressRecord, SubsidyRecord
from pooling.outputs.escaping import PLAIN_FIGURE_TEXT
from pooling.outputs.fonts import cjk_family, figure_font, has_cjk
from pooling.risk.claims import LatticeLaw

NO_PLAN_COLOUR = (0.86, 0.86, 0.86, 1.0)
GAIN, LOSS, SAME = "#1a9850", "#d73027", "#7f7f7f"
MAX_LABELLED_COUNTIES = 60
"""Above this many counties the map and the rate chart drop per-county labels."""
MAX_LOSS_PANELS = 12
"""Loss distributions drawn: the largest pools by enrollees, at most this many."""
MEASURE_NAMES = {"cvar": "CVaR", "var": "VaR", "ruin": "CVaR"}
MAX_TORNADO_ROWS = 20
"""Parameters drawn in the tornado chart: the largest swings, at most this many."""
SCALE_COLOURS = {0.5: "#3b6ea8", 1.5: "#e08214"}
"""Tornado bars by scale; other scales and spec scenarios are grey."""
REFINE_LIMIT = 800
"""Components up to this many counties get force-directed refinement (O(n^2) per step)."""


# ---------------------------------------------------------------- colours

def pool_colours(count: int) -> list[tuple[float, float, float, float]]:
    """`count` distinct RGBA colours: matplotlib's tab10 / tab20 when they
    suffice, else hues spaced by the golden angle with alternating lightness
    (distinct after 8-bit rounding for any realistic count)."""
    if count <= 10:
        base = matplotlib.colormaps["tab10"]
        return [tuple(base(i)) for i in range(count)]
    if count <= 20:
        base = matplotlib.colormaps["tab20"]
        return [tuple(base(i)) for i in range(count)]
    colours = []
    for i in range(count):
        hue = (i * 0.618033988749895) % 1.0
        lightness = (0.45, 0.62, 0.36, 0.72)[i % 4]
        saturation = (0.75, 0.55, 0.9)[i % 3]
        colours.append((*colorsys.hls_to_rgb(hue, lightness, saturation), 1.0))
    return colours


def plain_text(draw):
    """Run a figure function under `PLAIN_FIGURE_TEXT`: every text it creates
    (and every tick label made while drawing) is shown as written, in a font
    that draws CJK names where one is available (`pooling.outputs.fonts`)."""
    @functools.wraps(draw)
    def wrapped(*args, **kwargs):
        with matplotlib.rc_context({**PLAIN_FIGURE_TEXT, **figure_font()}):
            return draw(*args, **kwargs)
    return wrapped


@plain_text
def png_bytes(fig: Figure, dpi: int = 110) -> bytes:
    """The figure as PNG bytes (no timestamp or software tag: same figure, same bytes)."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi, metadata={"Software": None}, bbox_inches="tight",
                facecolor="white")
    return buffer.getvalue()


# ---------------------------------------------------------------- layout

def _component_layout(distances: np.ndarray, adjacency: np.ndarray) -> np.ndarray:
    """2-D positions of one connected component: classical MDS of the graph
    distances, then force-directed refinement so that no two cells sit on top
    of each other; scaled so that the typical neighbour distance is 1."""
    m = len(distances)
    if m == 1:
        return np.zeros((1, 2))
    if m == 2:
        return np.array([[0.0, 0.0], [1.0, 0.0]])
    squared = distances ** 2
    centred = squared - squared.mean(axis=0) - squared.mean(axis=1)[:, None] + squared.mean()
    values, vectors = eigh(-0.5 * centred, subset_by_index=[m - 2, m - 1])
    pos = vectors[:, ::-1] * np.sqrt(np.maximum(values[::-1], 0.0))
    for axis in range(2):  # eigenvector signs are arbitrary: fix them
        column = pos[:, axis]
        if column[np.argmax(np.abs(column))] < 0:
            pos[:, axis] = -column
    if np.ptp(pos[:, 1]) < 1e-9 * max(np.ptp(pos[:, 0]), 1.0):  # a path: bend it a little
        pos[:, 1] = 0.15 * np.sin(np.linspace(0.0, math.pi, m))
    if m <= REFINE_LIMIT:
        pos = _refine(pos, adjacency)
    return _normalise(pos, adjacency)


def _normalise(pos: np.ndarray, adjacency: np.ndarray) -> np.ndarray:
    rows, cols = np.nonzero(np.triu(adjacency))
    if len(rows):
        scale = float(np.median(np.linalg.norm(pos[rows] - pos[cols], axis=1)))
    else:
        scale = 1.0
    return (pos - pos.mean(axis=0)) / (scale if scale > 1e-12 else 1.0)


def _refine(pos: np.ndarray, adjacency: np.ndarray, steps: int = 150) -> np.ndarray:
    """Fruchterman-Reingold steps from the MDS start, with a small cooling
    temperature so that the start's overall shape is kept."""
    pos = _normalise(pos, adjacency)
    temperature = 0.3
    for _ in range(steps):
        delta = pos[:, None, :] - pos[None, :, :]
        dist = np.sqrt((delta ** 2).sum(axis=2))
        np.fill_diagonal(dist, 1.0)
        dist = np.maximum(dist, 1e-3)
        repulsion = 1.0 / dist ** 2                      # k^2 / d, along delta / d
        np.fill_diagonal(repulsion, 0.0)
        attraction = adjacency * dist                    # d^2 / k, along -delta / d
        force = ((repulsion - attraction)[:, :, None] * delta).sum(axis=1)
        length = np.maximum(np.linalg.norm(force, axis=1), 1e-12)
        pos = pos + force / length[:, None] * np.minimum(length, temperature)[:, None]
        temperature = max(temperature * 0.97, 0.01)
    return pos


def graph_layout(instance: Instance) -> dict[str, np.ndarray]:
    """A deterministic 2-D position per county from the adjacency graph alone
    (the instance has no coordinates): each connected component laid out by
    MDS of its graph distances and refined, components packed in rows,
    largest first. Neighbours are about 1 apart."""
    ids = list(instance.ids)
    index = {cid: i for i, cid in enumerate(ids)}
    n = len(ids)
    rows, cols = [], []
    for county in instance.counties:
        for other in county.adjacent:
            if other in index:
                rows.append(index[county.id])
                cols.append(index[other])
    graph = csr_matrix((np.ones(len(rows)), (rows, cols)), shape=(n, n))
    graph = ((graph + graph.T) > 0).astype(float)
    count, labels = connected_components(graph, directed=False)
    members = [np.flatnonzero(labels == k) for k in range(count)]
    members.sort(key=lambda nodes: (-len(nodes), int(nodes[0])))
    pieces = []
    for nodes in members:
        sub = graph[nodes][:, nodes]
        distances = shortest_path(sub, unweighted=True, directed=False)
        pieces.append((nodes, _component_layout(distances, sub.toarray())))
    positions = np.zeros((n, 2))
    total_area = sum((np.ptp(p[:, 0]) + 2) * (np.ptp(p[:, 1]) + 2) for _, p in pieces)
    row_width = max(math.sqrt(total_area) * 1.3, max(np.ptp(p[:, 0]) + 2 for _, p in pieces))
    x = y = row_height = 0.0
    for nodes, p in pieces:
        width, height = np.ptp(p[:, 0]) + 2.0, np.ptp(p[:, 1]) + 2.0
        if x > 0 and x + width > row_width:
            x, y, row_height = 0.0, y - row_height, 0.0
        positions[nodes] = p - p.min(axis=0) + np.array([x + 1.0, y - height + 1.0])
        x += width
        row_height = max(row_height, height)
    return {cid: positions[index[cid]] for cid in ids}


# ---------------------------------------------------------------- cells

def _clip(polygon: np.ndarray, clip: np.ndarray) -> np.ndarray:
    """Sutherland-Hodgman: the part of a convex polygon inside a convex,
    counter-clockwise clip polygon."""
    output = polygon
    for i in range(len(clip)):
        a, b = clip[i], clip[(i + 1) % len(clip)]
        edge = b - a
        if len(output) == 0:
            break
        side = edge[0] * (output[:, 1] - a[1]) - edge[1] * (output[:, 0] - a[0])
        kept = []
        for j in range(len(output)):
            p, q = output[j], output[(j + 1) % len(output)]
            sp, sq = side[j], side[(j + 1) % len(output)]
            if sp >= 0:
                kept.append(p)
            if (sp >= 0) != (sq >= 0):
                t = sp / (sp - sq)
                kept.append(p + t * (q - p))
        output = np.array(kept) if kept else np.zeros((0, 2))
    return output


def county_cells(positions: dict[str, np.ndarray], radius: float = 0.75) -> dict[str, np.ndarray]:
    """One convex cell per county: its Voronoi cell among the laid-out
    positions, clipped to a disc of `radius` (neighbours are about 1 apart), so
    inner cells tile like a map and outer ones end in a rounded edge."""
    ids = list(positions)
    points = np.array([positions[c] for c in ids], dtype=float)
    centre = points.mean(axis=0)
    span = float(np.max(np.linalg.norm(points - centre, axis=1))) + 10.0
    ring = np.array([[math.cos(a), math.sin(a)] for a in np.linspace(0, 2 * math.pi, 16, endpoint=False)])
    voronoi = Voronoi(np.vstack([points, centre + 3.0 * span * ring]))
    disc = np.array([[math.cos(a), math.sin(a)] for a in np.linspace(0, 2 * math.pi, 48, endpoint=False)])
    cells = {}
    for i, cid in enumerate(ids):
        region = voronoi.regions[voronoi.point_region[i]]
        polygon = voronoi.vertices[region]
        order = np.argsort(np.arctan2(polygon[:, 1] - points[i, 1], polygon[:, 0] - points[i, 0]))
        cells[cid] = _clip(polygon[order], points[i] + radius * disc)
    return cells


# ---------------------------------------------------------------- figures

@plain_text
def pool_map(instance: Instance, pools: Sequence[PoolRecord], title: str = "") -> Figure:
    """Counties as cells of the adjacency layout, coloured by pool (grey,
    hatched: no plan); up to 60 counties each cell is labelled with the
    county's name, its pool and rate, above that each pool's id and rate are
    written at its centre (up to 40 pools); a legend for up to 20 pools."""
    positions = graph_layout(instance)
    cells = county_cells(positions)
    colours = pool_colours(len(pools))
    pool_of = {cid: k for k, pool in enumerate(pools) for cid in pool.counties}
    n = len(instance.counties)
    size = min(11.0, 5.0 + 0.9 * math.sqrt(n))
    fig = Figure(figsize=(size, size * 0.8))
    ax = fig.add_subplot()
    for county in instance.counties:
        k = pool_of.get(county.id)
        face = colours[k] if k is not None else NO_PLAN_COLOUR
        ax.add_patch(Polygon(cells[county.id], closed=True, facecolor=face, edgecolor="white",
                             linewidth=1.2 if n <= 200 else 0.3, hatch=None if k is not None else "//",
                             gid=f"county:{county.id}", label=pools[k].id if k is not None else "no plan"))
        if n <= MAX_LABELLED_COUNTIES:
            x, y = positions[county.id]
            small = 7 if n <= 20 else 5
            ax.text(x, y + 0.02, _short(figure_name(county), county.id), ha="center", va="bottom",
                    fontsize=small, color="#111111")
            ax.text(x, y - 0.02, f"{pools[k].id} {pools[k].rate:.4f}" if k is not None else "no plan",
                    ha="center", va="top", fontsize=small, fontweight="bold", color="#111111",
                    bbox={"boxstyle": "round,pad=0.15", "facecolor": "white", "alpha": 0.75, "linewidth": 0})
    if n > MAX_LABELLED_COUNTIES and len(pools) <= 40:
        for pool in pools:
            xy = np.mean([positions[c] for c in pool.counties], axis=0)
            ax.text(xy[0], xy[1] + 0.05, f"{pool.id}\n{pool.rate:.4f}", ha="center", va="bottom",
                    fontsize=9 if len(pools) <= 12 else 7, fontweight="bold",
                    bbox={"boxstyle": "round,pad=0.2", "facecolor": "white", "alpha": 0.85, "linewidth": 0})
    handles = [Patch(facecolor=colours[k], label=f"{p.id}  rate {p.rate:.4f}  ({len(p.counties)} "
                     f"{'county' if len(p.counties) == 1 else 'counties'})") for k, p in enumerate(pools)]
    if len(pool_of) < n:
        handles.append(Patch(facecolor=NO_PLAN_COLOUR, hatch="//", label="no plan"))
    if handles and len(handles) <= 21:
        ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8, frameon=False)
    ax.set_aspect("equal")
    ax.autoscale_view()
    ax.set_axis_off()
    ax.set_title(title or "Pools (approximate layout from the adjacency graph, not county boundaries)",
                 fontsize=10)
    return fig


def figure_name(county) -> str:
    """The name a figure shows: the county's own `name` when a font can draw
    it (always for Latin names; CJK names need `cjk_family`), else its
    `name_en` where the file gives one."""
    if has_cjk(county.name) and cjk_family() is None:
        return county.name_en or county.name
    return county.name


def _short(name: str, county_id: str = "") -> str:
    """A county's name for a figure, without its administrative suffix. Names
    in scripts the bundled DejaVu fonts cannot draw (e.g. Chinese characters)
    would show as empty boxes when no CJK font is available
    (`pooling.outputs.fonts.cjk_family`): the county id is used instead
    (callers pass the county's `name_en` first where the file gives one)."""
    if county_id and has_cjk(name) and cjk_family() is None:
        return county_id
    for suffix in (" Autonomous County", " County", " District", " Banner", " City"):
        if name.endswith(suffix) and len(name) > len(suffix) + 2:
            return name[: -len(suffix)]
    return name


@plain_text
def rate_change(instance: Instance, plan_rates: dict[str, float], alone: dict[str, float],
                pool_ids: dict[str, str] | None = None) -> Figure:
    """Each county's rate alone (the status quo) against its rate in the plan:
    a dumbbell per county, sorted by the change, green for a gain and red for a
    loss; above 60 counties a scatter of plan against alone with the diagonal."""
    counties = [c for c in instance.counties if c.id in plan_rates and c.id in alone]
    if len(counties) > MAX_LABELLED_COUNTIES:
        fig = Figure(figsize=(7.5, 6.5))
        ax = fig.add_subplot()
        x = np.array([alone[c.id] for c in counties])
        y = np.array([plan_rates[c.id] for c in counties])
        colour = np.where(y > x + 1e-9, GAIN, np.where(y < x - 1e-9, LOSS, SAME))
        ax.scatter(x, y, s=8, c=list(colour))
        low, high = float(min(x.min(), y.min())), float(max(x.max(), y.max()))
        ax.plot([low, high], [low, high], color="#444444", linewidth=0.8, linestyle="--")
        ax.set_xlabel("rate alone (status quo)")
        ax.set_ylabel("rate in the plan")
        ax.set_title("Rate per county: above the diagonal gains, below loses", fontsize=10)
        return fig
    counties.sort(key=lambda c: (plan_rates[c.id] - alone[c.id], c.id))
    fig = Figure(figsize=(8.5, 1.2 + 0.38 * max(len(counties), 1)))
    ax = fig.add_subplot()
    for row, county in enumerate(counties):
        a, p = alone[county.id], plan_rates[county.id]
        colour = GAIN if p > a + 1e-9 else LOSS if p < a - 1e-9 else SAME
        ax.plot([a, p], [row, row], color=colour, linewidth=2.5, solid_capstyle="round")
        ax.scatter([a], [row], color="white", edgecolor="#444444", zorder=3, s=36)
        ax.scatter([p], [row], color=colour, zorder=3, s=44)
        ax.text(max(a, p) + 0.002, row, f"{p - a:+.4f}", va="center", fontsize=7, color=colour)
    labels = [(f"{_short(figure_name(c))} ({c.id})" if _short(figure_name(c), c.id) != c.id else c.id)
              + (f" {pool_ids[c.id]}" if pool_ids and c.id in pool_ids else "") for c in counties]
    ax.set_yticks(range(len(counties)), labels, fontsize=8)
    ax.set_xlabel("reimbursement rate")
    ax.margins(x=0.15)
    ax.grid(axis="x", alpha=0.3)
    handles = [Patch(facecolor="white", edgecolor="#444444", label="alone (status quo)"),
               Patch(facecolor=GAIN, label="plan: gains"), Patch(facecolor=LOSS, label="plan: loses")]
    height = fig.get_figheight()
    fig.subplots_adjust(bottom=0.85 / height, top=1.0 - 0.35 / height)
    fig.legend(handles=handles, loc="lower center", ncol=3, fontsize=7, frameon=False)
    ax.set_title("Rate per county: alone (open circle) and in the plan (dot)", fontsize=10)
    return fig


@plain_text
def loss_distributions(panels: Sequence[tuple[PoolRecord, LatticeLaw]], currency: str, measure: str,
                       level: float) -> Figure:
    """One panel per pool: the law of claims paid (rate x Y_P, exact lattice
    law) as a density, with the pool's budget, expected claims, VaR and CVaR of
    claims paid marked. Each panel: the pool (its budget, var, cvar and
    expected_cost of Y_P, as in result.json) and the law of its Y_P."""
    count = max(len(panels), 1)
    columns = min(3, count)
    rows = math.ceil(count / columns)
    fig = Figure(figsize=(max(4.2 * columns, 7.0), 3.0 * rows + 0.4))
    axes = fig.subplots(rows, columns, squeeze=False)
    for ax in axes.flat[len(panels):]:
        ax.set_axis_off()
    scale = 1e6
    for ax, (panel, law) in zip(axes.flat, panels):
        rate = panel.rate
        pmf = np.asarray(law.pmf, dtype=float)
        paid = rate * (law.start + law.span * np.arange(len(pmf))) / scale
        cdf = np.cumsum(pmf)
        lo = int(np.searchsorted(cdf, 1e-6))
        hi = int(min(len(pmf) - 1, np.searchsorted(cdf, 1 - 1e-7)))
        density = pmf / (rate * law.span / scale) if rate > 0 else pmf
        ax.plot(paid[lo:hi + 1], density[lo:hi + 1], color="#3b6ea8", linewidth=1.2)
        ax.fill_between(paid[lo:hi + 1], density[lo:hi + 1], color="#3b6ea8", alpha=0.2)
        marks = [("budget", panel.budget, "#000000", "-", 2.6),
                 ("expected", rate * panel.expected_cost, "#7f7f7f", ":", 1.3),
                 (f"VaR {level:g}", rate * panel.var, "#e08214", "--", 1.3),
                 (f"CVaR {level:g}", rate * panel.cvar, "#d6604d", (0, (3, 2)), 1.5)]
        for label, value, colour, style, width in marks:
            ax.axvline(value / scale, color=colour, linestyle=style, linewidth=width, label=label)
        left = min(paid[lo], panel.budget / scale)
        right = max(paid[hi], panel.budget / scale, rate * panel.cvar / scale)
        pad = 0.04 * (right - left) if right > left else 1.0
        ax.set_xlim(left - pad, right + pad)
        ax.set_ylim(bottom=0)
        ax.set_yticks([])
        ax.set_title(f"{panel.id}: rate {rate:.4f}", fontsize=9)
        ax.set_xlabel(f"claims paid (million {currency})", fontsize=8)
        ax.tick_params(labelsize=7)
    if panels:
        axes.flat[0].legend(fontsize=6.5, loc="upper left")
    fig.suptitle(f"Loss distribution of each pool: claims paid = rate x Y; solvent when rate x "
                 f"{MEASURE_NAMES.get(measure, measure)} <= budget", fontsize=10)
    fig.tight_layout()
    return fig


@plain_text
def stress_figure(stress: StressRecord, pool_ids: list[str]) -> Figure:
    """Left: each pool's probability of ruin by the end of each year, with 95%
    Wilson intervals (shaded) and the target 1 - level; right: year-1 deficit
    and ruin-over-the-horizon probabilities per pool with their intervals.
    At most 12 pools, those with the highest ruin probability."""
    from pooling.simulation.stress_test import wilson_interval
    pools = list(zip(pool_ids, stress.pools))
    shown = sorted(pools, key=lambda item: (-item[1].ruin_probability, item[0]))[:12]
    shown.sort(key=lambda item: item[0])
    n = stress.scenarios
    target = stress.ruin_target
    colours = pool_colours(len(shown))
    fig = Figure(figsize=(11, 4.2))
    left, right = fig.subplots(1, 2)
    for colour, (pid, pool) in zip(colours, shown):
        by_year = pool.ruin_by_year
        years = np.arange(1, len(by_year) + 1)
        bands = np.array([wilson_interval(int(round(p * n)), n) for p in by_year])
        left.plot(years, by_year, marker="o", color=colour, label=pid, linewidth=1.4, markersize=4)
        left.fill_between(years, bands[:, 0], bands[:, 1], color=colour, alpha=0.2)
    left.axhline(target, color="#b2182b", linestyle="--", linewidth=1.2, label=f"target {target:.3g}")
    left.set_xlabel("year")
    left.set_ylabel("P(ruined by the end of the year)")
    left.set_xticks(range(1, stress.years + 1) if stress.years <= 20 else
                    range(1, stress.years + 1, max(1, stress.years // 10)))
    left.set_ylim(bottom=0)
    left.grid(alpha=0.3)
    left.legend(fontsize=7)
    left.set_title("Ruin by year (95% intervals)", fontsize=10)
    x = np.arange(len(shown))
    width = 0.38
    for offset, key, colour, label in ((-width / 2, "deficit", "#e08214", "deficit in year 1"),
                                       (width / 2, "ruin", "#b2182b", f"ruin within {stress.years} year(s)")):
        values = np.array([getattr(pool, f"{key}_probability") for _, pool in shown])
        intervals = np.array([getattr(pool, f"{key}_interval") for _, pool in shown]).reshape(-1, 2)
        errors = np.vstack([values - intervals[:, 0], intervals[:, 1] - values]) if len(shown) else None
        right.bar(x + offset, values, width, color=colour, label=label, yerr=errors, capsize=3)
    right.axhline(target, color="#b2182b", linestyle="--", linewidth=1.0)
    right.set_xticks(x, [pid for pid, _ in shown], fontsize=8)
    right.set_ylabel("probability")
    right.legend(fontsize=7)
    right.grid(axis="y", alpha=0.3)
    right.set_title("Deficit and ruin per pool (95% intervals)", fontsize=10)
    fig.tight_layout()
    return fig


@plain_text
def subsidy_figure(subsidy: SubsidyRecord, currency: str) -> Figure:
    """The price of equalisation per pool: rate without subsidy and the rate
    the equalisation requires (left), and the top-up that pays for it (right)."""
    pools = subsidy.pools
    fig = Figure(figsize=(11, 1.5 + 0.35 * max(len(pools), 3)))
    left, right = fig.subplots(1, 2)
    rows = np.arange(len(pools))
    for row, pool in zip(rows, pools):
        a, b = pool.rate_without_subsidy, pool.rate_required
        colour = LOSS if b > a + 1e-12 else GAIN
        left.plot([a, b], [row, row], color=colour, linewidth=2)
        left.scatter([a], [row], color="white", edgecolor="#444444", zorder=3, s=30)
        left.scatter([b], [row], color=colour, zorder=3, s=36)
    left.set_yticks(rows, [p.id for p in pools], fontsize=8)
    left.set_xlabel("rate")
    left.grid(axis="x", alpha=0.3)
    left.set_title("Rate without subsidy (circle) and required (dot)", fontsize=10)
    top_ups = [p.top_up / 1e6 for p in pools]
    right.barh(rows, top_ups, color="#3b6ea8")
    right.set_xlim(0.0, max(top_ups, default=0.0) * 1.1 or 1.0)
    right.set_yticks(rows, [p.id for p in pools], fontsize=8)
    right.set_xlabel(f"top-up (million {currency} per year)")
    right.grid(axis="x", alpha=0.3)
    right.set_title(f"Top-up per pool; total {subsidy.total_top_up / 1e6:,.2f}M, county "
                    f"compensation {subsidy.total_compensation / 1e6:,.2f}M", fontsize=10)
    fig.tight_layout()
    return fig


@plain_text
def tornado(sensitivity: SensitivityRecord, base: float, objective_kind: str) -> Figure:
    """The plan's objective in each sensitivity case against its value as
    given (the vertical line): one row per parameter, largest swing first
    (outputs.summaries.sensitivity_groups), a bar per case from the base to
    the case's objective; hatched when the plan is infeasible in that case."""
    from pooling.outputs.summaries import scale_label, sensitivity_groups
    groups = sensitivity_groups(list(sensitivity.cases), base)[:MAX_TORNADO_ROWS]
    fig = Figure(figsize=(10, 1.4 + 0.38 * max(len(groups), 3)))
    ax = fig.subplots()
    rows = np.arange(len(groups))[::-1]
    seen: dict[str, Patch] = {}
    for row, (_, cases, _) in zip(rows, groups):
        height = 0.8 / max(len(cases), 1)
        for k, case in enumerate(cases):
            colour = SCALE_COLOURS.get(case.scale, "#7f7f7f")
            offset = row + 0.4 - height * (k + 0.5)
            ax.barh(offset, case.objective - base, left=base, height=height * 0.9, color=colour,
                    hatch=None if case.feasible else "//", edgecolor="#333333" if not case.feasible else colour)
            label = scale_label(case.scale)
            seen.setdefault(label, Patch(color=colour, label=label))
    ax.axvline(base, color="#222222", linewidth=1)
    ax.set_yticks(rows, [_short_parameter(p) for p, _, _ in groups], fontsize=8)
    ax.set_xlabel(f"{objective_kind} (the plan as given: {base:.4f})")
    ax.grid(axis="x", alpha=0.3)
    ax.legend(handles=list(seen.values()), fontsize=8, loc="lower right")
    ax.set_title("Sensitivity of the plan's objective, one parameter at a time", fontsize=10)
    fig.tight_layout()
    return fig


def _short_parameter(parameter: str, width: int = 60) -> str:
    return parameter if len(parameter) <= width else "..." + parameter[-(width - 3):]
