"""The instance builders' model, shared by instances/build.py and
instances/build_tongliao.py (scripts, not part of the `pooling` package).

Modules, each importing only those above it:
- calibration: every constant, tagged S (sourced), D (derived) or A (assumed);
- cases: romanised names and the named cases (Zouping, Gushi, contracts);
- census: reading the 2010 census table, writing files, bad-input exits;
- coordinates: seats and distances; adjacency: Delaunay adjacency;
- migration: the gravity model of migrant destinations;
- national: the national model (places, care-seeking, calibration, records);
- reports: what the builders print;
- urrbmi2023: the 2020s prefecture-fund files (china2023.json, henan2023.json)
  from the national model, rescaled to the 2023 URRBMI totals (also a script).
"""
