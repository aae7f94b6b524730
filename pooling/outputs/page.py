"""The interactive map page (`page.html`, written by `pooling report` beside report.html).

One self-contained file, no network: a Content-Security-Policy in the page forbids every fetch
(only inline script and style, and the embedded font as a data: URI). Every county is an SVG path
carrying its code (``data-id``); hovering or tapping it shows its name, pool, rate alone and in the
plan and its migrants' in-network share; a search box finds a county by name or code and zooms to
it; a select zooms to a province; a legend explains the colours (pool, rate change or in-network
share). The script is ours and short (`SCRIPT`); the data it reads is JSON escaped for a script
element (`pooling.outputs.escaping.escape_json_for_html`) and it writes text only as textContent.

Geometry: with the extra ``pooling[maps]`` the county boundaries (`maps.match_boundaries`,
simplified to `PAGE_SIMPLIFY_FRACTION` of the map's side), projected so that distances look equal
at the map's middle latitude and rounded to integers on a `COORDINATE_UNITS`-wide grid, written as
relative path steps; without it the adjacency layout's cells (`figures.county_cells`), and the page
says so. Chinese names render with no system font: the page embeds Noto Sans CJK SC cut down to
exactly its CJK characters (`fonts.page_font`).
"""

from __future__ import annotations

import base64
import json
import math
from collections.abc import Sequence

import numpy as np

from pooling.data.instance import Instance
from pooling.data.report_inputs import PoolRecord
from pooling.outputs.escaping import escape_html, escape_json_for_html

PAGE_NAME = "page.html"
PAGE_SIMPLIFY_FRACTION = 1.0 / 4000
"""Boundary simplification for the page, as a fraction of the map's larger side: finer than the
report's figures (a reader zooms in), coarse enough that the nation stays a few MB."""
COORDINATE_UNITS = 20000
"""The map's larger side in SVG units; coordinates are rounded to whole units (1/20,000 of the side,
below the simplification tolerance)."""
CSP = ("default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; font-src data:; "
       "img-src data:; connect-src 'none'; base-uri 'none'; form-action 'none'")
"""The page may run its own inline script and style and read its embedded font, and fetch nothing."""
MAX_LEGEND_POOLS = 20
GRADIENT_STOPS = 11


def _hex(colour) -> str:
    r, g, b = (int(round(255 * float(v))) for v in tuple(colour)[:3])
    return f"#{r:02x}{g:02x}{b:02x}"


def _rings(geometry) -> list[np.ndarray]:
    from pooling.outputs.maps import _polygons
    return [np.asarray(ring.coords, dtype=float)[:, :2] for polygon in _polygons(geometry)
            for ring in (polygon.exterior, *polygon.interiors)]


def _path_data(rings: Sequence[np.ndarray]) -> str:
    """SVG path data of integer rings: an absolute move, then relative steps, repeats dropped."""
    out = []
    for ring in rings:
        points = np.round(ring).astype(np.int64)
        keep = np.ones(len(points), dtype=bool)
        keep[1:] = np.any(points[1:] != points[:-1], axis=1)
        points = points[keep]
        if len(points) > 1 and (points[0] == points[-1]).all():
            points = points[:-1]
        if len(points) < 3:
            continue
        steps = np.diff(points, axis=0)
        out.append(f"M{points[0, 0]} {points[0, 1]}l" + " ".join(f"{dx} {dy}" for dx, dy in steps.tolist()) + "z")
    return "".join(out)


class _Projection:
    """Longitude/latitude (or layout x/y) to the page's integer grid, y downwards."""

    def __init__(self, left: float, bottom: float, right: float, top: float, geographic: bool):
        self.squeeze = math.cos(math.radians((bottom + top) / 2)) if geographic else 1.0
        width, height = (right - left) * self.squeeze, top - bottom
        self.scale = COORDINATE_UNITS / max(width, height, 1e-12)
        self.left, self.top = left, top
        self.width, self.height = int(math.ceil(width * self.scale)), int(math.ceil(height * self.scale))

    def __call__(self, xy: np.ndarray) -> np.ndarray:
        return np.column_stack([(xy[:, 0] - self.left) * self.squeeze * self.scale, (self.top - xy[:, 1]) * self.scale])


def page_geometry(instance: Instance) -> tuple[dict[str, list[np.ndarray]], list[list[np.ndarray]], int, int, bool]:
    """Each county's rings on the page grid, province outlines, the grid's width and height, and
    whether they are real boundaries (extra pooling[maps]) or the adjacency layout."""
    from pooling.outputs import maps
    if maps.maps_available():
        import shapely
        match = maps.match_boundaries(instance, PAGE_SIMPLIFY_FRACTION)
        if match.shapes:
            shapes = match.shapes
            project = _Projection(*shapely.total_bounds(np.array(list(shapes.values()), dtype=object)), True)
            rings = {cid: [project(r) for r in _rings(g)] for cid, g in shapes.items()}
            outlines = []
            provinces: dict[str, list] = {}
            for cid, geometry in shapes.items():
                provinces.setdefault(instance.county(cid).province, []).append(geometry)
            if len(provinces) > 1:
                for key in sorted(provinces):
                    union = shapely.union_all(provinces[key], grid_size=match.tolerance / 10)
                    outlines.append([project(np.asarray(p.exterior.coords)[:, :2]) for p in maps._polygons(union)
                                     if p.area > match.tolerance ** 2 * 50])
            return rings, outlines, project.width, project.height, True
    from pooling.outputs.figures import county_cells, graph_layout
    cells = {cid: np.asarray(cell, dtype=float) for cid, cell in county_cells(graph_layout(instance)).items()}
    every = np.concatenate(list(cells.values()))
    project = _Projection(every[:, 0].min(), every[:, 1].min(), every[:, 0].max(), every[:, 1].max(), False)
    return {cid: [project(cell)] for cid, cell in cells.items()}, [], project.width, project.height, False


def _fills(instance: Instance, pools: Sequence[PoolRecord], values: dict[str, float], norm, cmap_name: str) -> dict:
    from matplotlib import colormaps
    cmap = colormaps[cmap_name]
    return {cid: _hex(cmap(norm(v))) for cid, v in values.items()}


def build_page(instance: Instance, pools: Sequence[PoolRecord], alone: dict[str, float],
               shares: dict[str, float | None], title: str, layout_note: str) -> str:
    """The page's HTML for a plan (`pools`), each county's rate alone and migrants' in-network share."""
    from matplotlib.colors import Normalize

    from pooling.outputs import fonts, maps
    rings, outlines, width, height, real = page_geometry(instance)
    pool_of = {cid: k for k, pool in enumerate(pools) for cid in pool.counties}
    neighbours = maps.pool_neighbours(instance, pools)
    if real:  # pools that touch on the map, not only in the adjacency lists, get different colours
        touching = maps.pool_neighbours(instance, pools, maps.match_boundaries(instance, PAGE_SIMPLIFY_FRACTION)
                                        .shapes, 1e-6)
        neighbours = [a | b for a, b in zip(neighbours, touching)]
    colouring = maps.pool_colouring(neighbours)
    palette = [_hex(c) for c in maps._palette(max(colouring, default=-1) + 1)]
    plan_rate = {cid: pools[k].rate for cid, k in pool_of.items()}
    changes = {cid: plan_rate[cid] - alone[cid] for cid in plan_rate if cid in alone}
    limit = max((abs(v) for v in changes.values()), default=0.0) or 0.01
    share_values = {cid: v for cid, v in shares.items() if v is not None and cid in pool_of}
    modes = {
        "pool": {cid: palette[colouring[k]] for cid, k in pool_of.items()},
        "change": _fills(instance, pools, changes, Normalize(-limit, limit), "RdYlGn"),
        "share": _fills(instance, pools, share_values, Normalize(0.0, 1.0), "viridis"),
    }
    from matplotlib import colormaps
    gradients = {"change": [_hex(colormaps["RdYlGn"](i / (GRADIENT_STOPS - 1))) for i in range(GRADIENT_STOPS)],
                 "share": [_hex(colormaps["viridis"](i / (GRADIENT_STOPS - 1))) for i in range(GRADIENT_STOPS)]}
    drawn = [c for c in instance.counties if c.id in rings]
    counties = [[c.id, c.name, c.name_en or "", c.prefecture, c.province,
                 pools[pool_of[c.id]].id if c.id in pool_of else None, plan_rate.get(c.id), alone.get(c.id),
                 shares.get(c.id)] for c in instance.counties]
    data = {"counties": counties, "drawn": [c.id for c in drawn],
            "fills": {mode: [fill.get(c.id) for c in instance.counties] for mode, fill in modes.items()},
            "pools": {p.id: [len(p.counties), p.rate] for p in pools}, "gradients": gradients,
            "limits": {"change": limit}, "legend": [[p.id, palette[colouring[k]], p.rate, len(p.counties)]
                                                    for k, p in enumerate(pools)][:MAX_LEGEND_POOLS],
            "poolCount": len(pools)}
    paths = "".join(f'<path data-id="{escape_html(c.id)}" d="{_path_data(rings[c.id])}" '
                    f'fill="{modes["pool"].get(c.id, "url(#noplan)")}"/>' for c in drawn)
    borders = "".join(f'<path d="{_path_data(r)}"/>' for r in outlines)
    provinces = sorted({c.province for c in drawn})
    options = "".join(f'<option value="{escape_html(p)}">{escape_html(p)}</option>' for p in provinces)
    missing = len(instance.counties) - len(drawn)
    source = (f"County boundaries from {maps.BOUNDARY_SOURCE}, simplified for the page; {len(drawn)} of "
              f"{len(instance.counties)} counties drawn" + (f" ({missing} have no boundary: the search still "
                                                            f"finds them)" if missing else "") + "."
              if real else layout_note)
    font_css = ""
    text = "".join(str(v) for row in counties for v in row[1:5] if v) + title
    font = fonts.page_font(text)
    if font is not None:
        body, flavor = font
        font_css = (f'@font-face {{ font-family: "Pooling CJK"; font-weight: 100 900; src: url(data:font/{flavor};'
                    f'base64,{base64.b64encode(body).decode("ascii")}) format("{flavor}"); }}')
    return PAGE_TEMPLATE.format(
        csp=CSP, title=escape_html(title), font_css=font_css, css=PAGE_CSS, source=escape_html(source),
        real="yes" if real else "no", width=width, height=height, paths=paths, borders=borders, options=options,
        data=escape_json_for_html(json.dumps(data, ensure_ascii=False, allow_nan=False)), script=SCRIPT)


PAGE_CSS = """
body { font-family: "Pooling CJK", system-ui, -apple-system, "Segoe UI", Roboto, "DejaVu Sans", sans-serif;
       margin: 0; color: #1f1f1f; }
header { padding: 0.5em 1em; border-bottom: 1px solid #ddd; } h1 { font-size: 1.2em; margin: 0 0 0.3em; }
.controls { display: flex; flex-wrap: wrap; gap: 0.5em; align-items: center; font-size: 0.9em; }
.controls input, .controls select, .controls button { font: inherit; padding: 0.15em 0.4em; }
#results button { margin: 0 0.2em 0 0; } #results { font-size: 0.85em; margin-top: 0.3em; min-height: 1.4em; }
main { display: flex; } #map { flex: 1; height: calc(100vh - 9em); min-height: 420px; background: #f7f9fb;
       touch-action: none; cursor: grab; }
#counties path { stroke: #fff; stroke-width: 0.4; vector-effect: non-scaling-stroke; }
#counties path:hover, #counties path.hit { stroke: #000; stroke-width: 2; }
#borders path { fill: none; stroke: #222; stroke-width: 1; vector-effect: non-scaling-stroke; pointer-events: none; }
aside { width: 16em; padding: 0.5em 1em; font-size: 0.85em; overflow: auto; max-height: calc(100vh - 9em); }
.swatch { display: inline-block; width: 1em; height: 0.8em; margin-right: 0.4em; vertical-align: middle; }
.bar { height: 0.9em; margin: 0.3em 0; } p.note { color: #555; font-size: 0.85em; }
#tip { position: fixed; display: none; background: #fff; border: 1px solid #888; padding: 0.4em 0.6em;
       font-size: 0.85em; pointer-events: none; box-shadow: 0 1px 4px #0003; max-width: 22em; }
#tip div:first-child { font-weight: bold; }
"""

PAGE_TEMPLATE = """<!DOCTYPE html>
<html lang="zh-Hans">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="{csp}">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title}</title>
<style>{font_css}{css}</style>
</head>
<body data-boundaries="{real}">
<header><h1>{title}</h1>
<div class="controls">
<form id="search" autocomplete="off"><input id="query" type="search" placeholder="County name or code"
 aria-label="Find a county"> <button type="submit">Find</button></form>
<label>Province <select id="province"><option value="">All</option>{options}</select></label>
<label>Colour <select id="mode"><option value="pool">Pool</option><option value="change">Rate change vs alone
</option><option value="share">Migrants in network</option></select></label>
<button id="zoom-in" type="button">+</button><button id="zoom-out" type="button">&minus;</button>
<button id="reset" type="button">Whole map</button>
</div><div id="results"></div></header>
<main>
<svg id="map" viewBox="0 0 {width} {height}" preserveAspectRatio="xMidYMid meet" role="img" aria-label="{title}">
<defs><pattern id="noplan" width="8" height="8" patternUnits="userSpaceOnUse" patternTransform="rotate(45)">
<rect width="8" height="8" fill="#dcdcdc"/><line x1="0" y1="0" x2="0" y2="8" stroke="#aaa" stroke-width="3"/>
</pattern></defs>
<g id="counties">{paths}</g><g id="borders">{borders}</g></svg>
<aside><div id="legend"></div><p class="note">{source}</p>
<p class="note">Hover or tap a county for its pool and rates; scroll or use +/&minus; to zoom, drag to move.</p></aside>
</main>
<div id="tip" role="status"></div>
<script type="application/json" id="page-data">{data}</script>
<script>{script}</script>
</body>
</html>
"""

SCRIPT = r"""
(() => {
  "use strict";
  const data = JSON.parse(document.getElementById("page-data").textContent);
  const svg = document.getElementById("map"), tip = document.getElementById("tip");
  const rows = new Map(data.counties.map((row, i) => [row[0], {row, i}]));
  const paths = new Map([...document.querySelectorAll("#counties path")].map(p => [p.dataset.id, p]));
  const whole = svg.viewBox.baseVal, home = [whole.x, whole.y, whole.width, whole.height];
  let view = home.slice(), mode = "pool", pinned = null;
  const fmt = v => (v === null || v === undefined) ? "-" : v.toFixed(4);
  const show = v => { svg.setAttribute("viewBox", v.map(x => x.toFixed(1)).join(" ")); view = v; };
  function line(parent, text) { const d = document.createElement("div"); d.textContent = text; parent.appendChild(d); }
  function describe(id) {
    const [cid, name, nameEn, prefecture, province, pool, rate, alone, share] = rows.get(id).row;
    tip.replaceChildren();
    line(tip, name + (nameEn && nameEn !== name ? " (" + nameEn + ")" : "") + "  " + cid);
    line(tip, "Prefecture " + prefecture + ", province " + province);
    line(tip, pool === null ? "Pool: no plan" : "Pool " + pool + " (" + data.pools[pool][0] + " counties)");
    line(tip, "Rate alone " + fmt(alone) + "; in the plan " + fmt(rate) +
              (rate !== null && alone !== null
                ? " (" + (rate - alone >= 0 ? "+" : "") + (rate - alone).toFixed(4) + ")" : ""));
    line(tip, "Migrants' admissions in network: " + (share === null || share === undefined
              ? "- (no migrants or no plan)" : (100 * share).toFixed(1) + "%"));
    if (!paths.has(id)) line(tip, "No boundary: not drawn on the map");
    tip.dataset.id = cid;
  }
  function place(x, y) {
    tip.style.display = "block";
    tip.style.left = Math.min(x + 14, window.innerWidth - tip.offsetWidth - 4) + "px";
    tip.style.top = Math.min(y + 14, window.innerHeight - tip.offsetHeight - 4) + "px";
  }
  function zoomTo(box, pad) {
    const w = Math.max(box.width, home[2] / 200) * pad, h = Math.max(box.height, home[3] / 200) * pad;
    show([box.x + box.width / 2 - w / 2, box.y + box.height / 2 - h / 2, w, h]);
  }
  function union(elements) {
    let x0 = Infinity, y0 = Infinity, x1 = -Infinity, y1 = -Infinity;
    for (const e of elements) { const b = e.getBBox(); x0 = Math.min(x0, b.x); y0 = Math.min(y0, b.y);
      x1 = Math.max(x1, b.x + b.width); y1 = Math.max(y1, b.y + b.height); }
    return {x: x0, y: y0, width: x1 - x0, height: y1 - y0};
  }
  function select(id) {
    document.querySelectorAll("#counties path.hit").forEach(p => p.classList.remove("hit"));
    pinned = id; describe(id);
    const path = paths.get(id);
    if (path) {
      path.classList.add("hit"); path.parentNode.appendChild(path); zoomTo(path.getBBox(), 6);
      const r = path.getBoundingClientRect(); place(r.left + r.width / 2, r.top + r.height / 2);
    } else { const r = svg.getBoundingClientRect(); place(r.left + 20, r.top + 20); }
  }
  svg.addEventListener("pointerover", e => { const id = e.target.dataset && e.target.dataset.id;
    if (id && pinned === null) { describe(id); place(e.clientX, e.clientY); } });
  svg.addEventListener("pointermove", e => {
    if (pinned === null && tip.style.display === "block") place(e.clientX, e.clientY); });
  svg.addEventListener("pointerout", e => { if (pinned === null) tip.style.display = "none"; });
  svg.addEventListener("click", e => { const id = e.target.dataset && e.target.dataset.id;
    if (id) { pinned = id; describe(id); place(e.clientX, e.clientY); }
    else { pinned = null; tip.style.display = "none"; } });
  const query = document.getElementById("query"), results = document.getElementById("results");
  function matches(text) {
    const q = text.trim().toLowerCase();
    if (!q) return [];
    const found = [];
    for (const {row} of rows.values()) {
      if (row[0] === q || row[1].toLowerCase() === q) found.unshift(row);
      else if (row[0].startsWith(q) || row[1].toLowerCase().includes(q) ||
               row[2].toLowerCase().includes(q)) found.push(row);
    }
    return found.slice(0, 12);
  }
  query.addEventListener("input", () => {
    results.replaceChildren();
    for (const row of matches(query.value)) { const b = document.createElement("button"); b.type = "button";
      b.textContent = row[1] + " " + row[0]; b.addEventListener("click", () => select(row[0]));
      results.appendChild(b); }
  });
  document.getElementById("search").addEventListener("submit", e => { e.preventDefault();
    const found = matches(query.value);
    if (found.length) select(found[0][0]); else results.textContent = "No county matches.";
  });
  document.getElementById("province").addEventListener("change", e => {
    const chosen = [...paths.values()].filter(p => rows.get(p.dataset.id).row[4] === e.target.value);
    if (chosen.length) zoomTo(union(chosen), 1.08); else show(home.slice());
  });
  function zoom(factor, cx, cy) { const [x, y, w, h] = view;
    cx = cx === undefined ? x + w / 2 : cx; cy = cy === undefined ? y + h / 2 : cy;
    show([cx - (cx - x) * factor, cy - (cy - y) * factor, w * factor, h * factor]); }
  function toMap(e) { const p = svg.createSVGPoint(); p.x = e.clientX; p.y = e.clientY;
    return p.matrixTransform(svg.getScreenCTM().inverse()); }
  svg.addEventListener("wheel", e => {
    e.preventDefault(); const p = toMap(e); zoom(e.deltaY > 0 ? 1.25 : 0.8, p.x, p.y); },
                       {passive: false});
  let drag = null;
  svg.addEventListener("pointerdown", e => { drag = {p: toMap(e), view: view.slice()}; });
  svg.addEventListener("pointerup", () => { drag = null; });
  svg.addEventListener("pointermove", e => { if (!drag || !e.buttons) return; const p = toMap(e);
    const [x, y, w, h] = view; show([x - (p.x - drag.p.x), y - (p.y - drag.p.y), w, h]); });
  document.getElementById("zoom-in").addEventListener("click", () => zoom(0.67));
  document.getElementById("zoom-out").addEventListener("click", () => zoom(1.5));
  document.getElementById("reset").addEventListener("click", () => {
    show(home.slice()); pinned = null; tip.style.display = "none"; });
  const legend = document.getElementById("legend");
  function drawLegend() {
    legend.replaceChildren();
    const head = document.createElement("strong"); legend.appendChild(head);
    if (mode === "pool") {
      head.textContent = data.poolCount + " pools";
      line(legend, "Neighbouring pools have different colours; a colour repeats only for pools that do not touch.");
      for (const [id, colour, rate, n] of data.legend) { const d = document.createElement("div");
        const s = document.createElement("span"); s.className = "swatch"; s.style.background = colour; d.appendChild(s);
        d.appendChild(document.createTextNode(id + "  rate " + rate.toFixed(4) + " (" + n + ")"));
        legend.appendChild(d); }
      if (data.poolCount > data.legend.length)
        line(legend, "(" + (data.poolCount - data.legend.length) + " more: hover a county)");
    } else {
      head.textContent = mode === "change" ? "Rate in the plan minus rate alone"
                                           : "Share of migrants' admissions in network";
      const bar = document.createElement("div"); bar.className = "bar";
      bar.style.background = "linear-gradient(to right, " + data.gradients[mode].join(", ") + ")";
      legend.appendChild(bar);
      line(legend, mode === "change"
        ? (-data.limits.change).toFixed(4) + "  to  +" + data.limits.change.toFixed(4) : "0%  to  100%");
    }
    line(legend, "Grey, hatched: no plan" + (mode === "share" ? " or no migrants" : "") + ".");
  }
  document.getElementById("mode").addEventListener("change", e => { mode = e.target.value;
    for (const [id, path] of paths) { const fill = data.fills[mode][rows.get(id).i];
      path.setAttribute("fill", fill === null ? "url(#noplan)" : fill); }
    drawLegend(); });
  drawLegend();
})();
"""
