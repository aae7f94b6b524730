"""Pool economics: what a pool of counties can pay (budget, maximum solvent
rate, portability), equalisation rules as rate bounds, the price of
equalisation, valid bounds over many pools, sampled loss scenarios. Numerics
only: never imports a solver."""
