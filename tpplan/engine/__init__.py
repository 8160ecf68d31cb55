"""The math: workloads, the layout grid, memory, time (per kernel), collectives, cost and the load
model, as pure functions over numpy arrays. Imports only the catalog and the base modules."""
