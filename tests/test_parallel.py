"""Stage 3's rows scored in blocks on threads (xrayclass.core.parallel): same results as one pass."""

import pandas as pd
import pytest

from xrayclass.core.parallel import THREADS_VARIABLE, map_row_blocks
from xrayclass.stages.classification import ClassificationConfig, run_classification


@pytest.mark.parametrize(("n_rows", "threads"), [(0, 2), (1, 2), (7, 3), (10, 1), (1000, 4)])
def test_blocks_cover_every_row_once_in_order(n_rows, threads):
    blocks = map_row_blocks(lambda rows: list(range(n_rows))[rows], n_rows, threads)
    assert [row for block in blocks for row in block] == list(range(n_rows))
    assert len(blocks) == min(threads, max(n_rows, 1))


@pytest.mark.parametrize("method", ["mahalanobis", "naive-bayes"])
def test_threads_give_the_one_thread_table(mock_crossmatched, monkeypatch, method):
    """SYNTHETIC mock; every column equal, bit for bit, with 1 and with 3 threads."""
    config = ClassificationConfig(method=method)
    monkeypatch.setenv(THREADS_VARIABLE, "1")
    one, _ = run_classification(mock_crossmatched, config)
    monkeypatch.setenv(THREADS_VARIABLE, "3")
    three, _ = run_classification(mock_crossmatched, config)
    pd.testing.assert_frame_equal(one, three, check_exact=True)
