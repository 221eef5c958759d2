"""Engines that run stages beyond one process (Dask)."""
