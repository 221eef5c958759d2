"""Engines that run stages 3 and 4 beyond one in-memory table.

They read and write files themselves (the science in :mod:`xrayclass.stages` never
does): :mod:`.streaming` in record batches on one machine, :mod:`.dask` on a Dask
cluster.
"""
