"""Optimisation: candidate pools, MILP columns, column generation, Pyomo
formulations, HiGHS runs and the status map, the brute-force oracle,
baselines, and `solve` / `evaluate` with their result objects."""
