"""Pure Pyomo model builders: set partitioning (main) and compact assignment
(reference, on sampled scenarios)."""
