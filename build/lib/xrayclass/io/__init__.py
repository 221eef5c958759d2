"""Reading and writing tables and artifacts, and where a run's files live."""
