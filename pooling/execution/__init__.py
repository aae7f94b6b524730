"""Execution: run independent tasks serially, on a local process pool or on a
Dask distributed cluster, with progress on stderr. The same tasks give the same
results on every backend: results are returned in task order, whatever order
they finish in. Knows nothing of pooling's model (stdlib, tqdm, optional dask)."""
