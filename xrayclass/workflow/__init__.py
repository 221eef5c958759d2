"""What reads a run directory and writes into it: the analyses' steps, the report, the
explorer page and the reproduction of the published tables.

Like the command lines (:mod:`xrayclass.cli`), this layer knows the run's files
(:class:`xrayclass.io.paths.RunLayout`); the science it calls takes tables and returns
tables and figures (:mod:`xrayclass.analysis`, :mod:`xrayclass.stages`).
"""
