"""Studies: many solves as one piece of work (design sweeps), run on the
execution layer and summarised as tables and trade-off plots."""
