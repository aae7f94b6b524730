"""Adjacency between fund units: Delaunay triangulation of their seats.

Within each province: Delaunay edges, the long ones (> DELAUNAY_MAX_RATIO x
the median) dropped, the graph reconnected by the shortest dropped edges;
then each prefecture made connected on its own (contiguity is checked on
induced subgraphs), and units without coordinates linked to their
prefecture's central units (all A, instances/README.md).
"""

from __future__ import annotations

import itertools
from collections import defaultdict
from pathlib import Path

import numpy as np
from scipy.spatial import Delaunay

from builders import calibration as cal
from builders.coordinates import RECOVERED_COORDS, coords, project_km


class UnionFind:
    def __init__(self, items):
        self.parent = {i: i for i in items}

    def find(self, i):
        while self.parent[i] != i:
            self.parent[i] = self.parent[self.parent[i]]
            i = self.parent[i]
        return i

    def union(self, a, b) -> bool:
        ra, rb = self.find(a), self.find(b)
        if ra == rb:
            return False
        self.parent[ra] = rb
        return True


def delaunay_edges(ids: list[str], xy: np.ndarray) -> tuple[dict, float, set]:
    """All Delaunay edges with lengths, the median length, and the kept set."""
    tri = Delaunay(xy)
    lengths = {}
    for simplex in tri.simplices:
        for i in range(3):
            a, b = sorted((int(simplex[i]), int(simplex[(i + 1) % 3])))
            lengths[(ids[a], ids[b])] = float(np.hypot(*(xy[a] - xy[b])))
    median = float(np.median(list(lengths.values())))
    kept = {e for e, d in lengths.items() if d <= cal.DELAUNAY_MAX_RATIO * median}
    # Reconnect if the length rule split the graph: add the shortest dropped
    # edges that join two components (Kruskal on the dropped edges).
    comp = {i: i for i in ids}

    def find(i):
        while comp[i] != i:
            comp[i] = comp[comp[i]]
            i = comp[i]
        return i

    for a, b in kept:
        comp[find(a)] = find(b)
    for e in sorted(set(lengths) - kept, key=lambda e: (lengths[e], e)):
        ra, rb = find(e[0]), find(e[1])
        if ra != rb:
            comp[ra] = rb
            kept.add(e)
    return lengths, median, kept


def is_connected(ids: list[str], edges: set) -> bool:
    nbr = {i: set() for i in ids}
    for a, b in edges:
        nbr[a].add(b)
        nbr[b].add(a)
    seen, stack = {ids[0]}, [ids[0]]
    while stack:
        for j in nbr[stack.pop()]:
            if j not in seen:
                seen.add(j)
                stack.append(j)
    return len(seen) == len(ids)



def province_adjacency(units: list[dict], path: Path) -> tuple[set, dict]:
    """Edges among one province's fund-running units (see module docstring)."""
    seat = {r["code"]: coords(r, path) for r in units}
    known = [r for r in units if seat[r["code"]] is not None]
    ids = [r["code"] for r in known]
    stats = {"dropped": 0, "reconnected": 0, "prefecture_links": 0, "missing": 0, "missing_path": 0,
             "recovered": sum(1 for r in units if r["code"] in RECOVERED_COORDS)}
    edges: set = set()
    pos = {}
    if known:
        lon = np.array([seat[r["code"]][0] for r in known])
        lat = np.array([seat[r["code"]][1] for r in known])
        xy = project_km(lon, lat)
        pos = {cid: xy[i] for i, cid in enumerate(ids)}
    if len(known) >= 3:
        # The Tongliao builder's rule: Delaunay, long edges dropped, graph
        # reconnected by the shortest dropped edges (Kruskal).
        lengths, median, edges = delaunay_edges(ids, xy)
        short = sum(1 for d in lengths.values() if d <= cal.DELAUNAY_MAX_RATIO * median)
        stats["dropped"] = len(lengths) - short
        stats["reconnected"] = len(edges) - short
    elif len(known) == 2:
        edges = {tuple(sorted(ids))}

    # Each prefecture connected on its own (contiguity is checked within pools,
    # i.e. on induced subgraphs): join components by their shortest seat-to-seat pairs.
    by_pref = defaultdict(list)
    for r in units:
        by_pref[r["prefecture_code"]].append(r)
    for _pref, members in sorted(by_pref.items()):
        kids = sorted(r["code"] for r in members if seat[r["code"]] is not None)
        if len(kids) >= 2:
            uf = UnionFind(kids)
            kset = set(kids)
            for a, b in edges:
                if a in kset and b in kset:
                    uf.union(a, b)
            pairs = sorted(((float(np.hypot(*(pos[a] - pos[b]))), a, b)
                            for i, a in enumerate(kids) for b in kids[i + 1:]))
            for _, a, b in pairs:
                if uf.union(a, b):
                    edges.add((a, b))
                    stats["prefecture_links"] += 1
        missing = sorted(r["code"] for r in members if seat[r["code"]] is None)
        stats["missing"] += len(missing)
        if not missing:
            continue
        if kids:
            centre = np.mean([pos[k] for k in kids], axis=0)
            nearest = sorted(kids, key=lambda k: (float(np.hypot(*(pos[k] - centre))), k))
            for m in missing:
                for k in nearest[:cal.MISSING_COORD_LINKS]:
                    edges.add(tuple(sorted((m, k))))
        else:   # no unit of the prefecture has coordinates: a path in code order (A)
            stats["missing_path"] += len(missing)
            for a, b in itertools.pairwise(missing):
                edges.add((a, b))
    return edges, stats
