"""The paper's analyses of a run: validation, census, comparison, figures and report."""
