"""Risk numerics: severity laws, exact aggregate claim distributions, risk
measures, samplers and the multi-year ruin measure.

The lowest layer: numpy and scipy only. It knows nothing of instances, specs
or solvers, so it can be checked against closed forms and other libraries on
its own."""
