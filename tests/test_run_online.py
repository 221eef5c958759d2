"""`make run RUN_ARGS=--fetch`'s stage 2 (X-Match online) writes what `crossmatch.py --online` writes.

cli/run.py drives the stages through the library's functions rather than the command
lines; this checks, on a SYNTHETIC mock catalog and the recorded X-Match answer, that its
online stage 2 gives the same table, model and provenance as the command line.
"""

import json
import shutil

from fake_http import server, waits  # noqa: F401
from test_xmatch import serve

from xrayclass.cli import run
from xrayclass.cli.stages import crossmatch_main
from xrayclass.io.paths import RunLayout
from xrayclass.workflow.mock import write_mock


def test_online_stage2_of_make_run_matches_the_command_line(server, tmp_path):
    ours, theirs = tmp_path / "run", tmp_path / "command_line"
    ours.mkdir()
    write_mock(2_000, 7, ours / "mock.parquet", ours / "mock_simbad.parquet")
    layout = RunLayout(ours)
    assert run._stage("clustering", run._clustering, ours / "mock.parquet", layout) == 0
    shutil.copytree(ours, theirs)
    other = RunLayout(theirs)

    serve(server)
    assert run._stage("crossmatch", run._crossmatch, layout) == 0
    serve(server)
    argv = ["--input", str(other.clusters), "--online", "--output", str(other.crossmatch), "--model", str(other.model)]
    assert crossmatch_main(argv) == 0

    assert layout.crossmatch.read_bytes() == other.crossmatch.read_bytes()
    assert layout.model.read_bytes() == other.model.read_bytes()
    provenances = [
        json.loads(path.with_name(path.name + ".provenance.json").read_text())
        for path in (layout.crossmatch, other.crossmatch)
    ]
    assert provenances[0]["input"] == str(layout.clusters) and provenances[1]["input"] == str(other.clusters)
    assert provenances[0]["rows_matched"] > 0
    differing = {key for key in provenances[0] if provenances[0][key] != provenances[1].get(key)}
    assert differing <= {"input", "started_utc", "finished_utc"}, differing
