"""crossmatch.py --online: CDS X-Match against SIMBAD, replaced at the HTTP transport.

The X-Match answer is the hand-made fixture tests/data/xmatch_simbad.vot (real format,
made-up values, today's SIMBAD labels and the short code ``otype``; see
tests/data/README.md): for the five uploaded rows it lists two candidates for row 0,
one for row 1, three for row 3 and none for rows 2 and 4. The
fake service answers each upload with the candidates of the rows it contains.
"""

import json
import math
import re

import numpy as np
import pandas as pd
import pytest
from fake_http import DATA, REFUSED, TIMEOUT, Reply, html, server, text, votable, waits  # noqa: F401

from xrayclass.cli.stages import crossmatch_main
from xrayclass.io.tables import InputError, read_table
from xrayclass.services import MAX_RETRY_AFTER, ServiceError
from xrayclass.services.xmatch import DEFAULT_RETRIES, DEFAULT_TIMEOUT, XMatchConfig, check_radius
from xrayclass.workflow.stages import crossmatch_online

#: The current X-Match host (not astroquery 0.4.11's default, cdsxmatch.u-strasbg.fr).
SYNC = r"^https://cdsxmatch\.cds\.unistra\.fr/xmatch/api/v1/sync$"
TABLES = r"^https://cdsxmatch\.cds\.unistra\.fr/xmatch/api/v1/sync/tables\?"
#: The best match of each of the five rows, in today's SIMBAD labels (see the fixture).
BEST_TYPES = ["QSO", "Seyfert1", "NaN", "TTauri*", "NaN"]


def synthetic_stage1():
    """SYNTHETIC stage-1 rows (not real detections) at the positions the fixture answers for."""
    return pd.DataFrame(
        {
            "name": [f"SYNTHETIC J{i}" for i in range(5)],
            "obsid": [101, 102, 103, 104, 105],
            "ra": [150.1, 150.2, 150.3, 210.5, 210.6],
            "dec": [2.2, 2.3, 2.4, -30.1, -30.2],
            "hard_hm": [0.1, 0.2, 0.3, 0.4, 0.5],
            "cluster": [0, 1, 0, 1, 2],
            "prob_0": [0.9, 0.1, 0.8, 0.2, 0.0],
        }
    )


def uploaded_rows(request):
    filename, content = request.parts()["cat1"]
    lines = content.decode().splitlines()
    assert filename == "cat1.csv" and lines[0] == "row_index,csc_ra,csc_dec"  # nothing else uploaded
    return [int(line.split(",")[0]) for line in lines[1:]]


def xmatch_service(name="xmatch_simbad.vot"):
    """The fixture answer, cut down to the candidates of the uploaded rows."""
    lines = (DATA / name).read_text().splitlines()

    def answer(request):
        form = request.form()
        assert form["request"] == "xmatch" and form["RESPONSEFORMAT"] == "votable"
        assert form["colRA1"] == "csc_ra" and form["colDec1"] == "csc_dec"
        assert form["cat2"] in ("simbad", "vizier:simbad")
        rows = set(uploaded_rows(request))
        kept = [
            line for line in lines if not line.startswith("<TR>") or int(re.findall(r"<TD>(.*?)</TD>", line)[1]) in rows
        ]
        return Reply(200, "\n".join(kept).encode(), {"Content-Type": "application/x-votable+xml"})

    return answer


def serve(server, *replies):
    server.add("GET", TABLES, text((DATA / "xmatch_tables.txt").read_bytes()))
    server.add("POST", SYNC, *(replies or (xmatch_service(),)))
    return server


def test_best_match_kept_and_every_row_kept(server, waits):
    serve(server)
    stage1 = synthetic_stage1()
    stage2, provenance = crossmatch_online(stage1, XMatchConfig())

    assert len(stage2) == 5
    assert stage2["main_type"].tolist() == BEST_TYPES
    # the short code arrives as its own column, beside SIMBAD's label
    assert stage2["otype"].tolist()[:2] == ["QSO", "Sy1"] and stage2["otype"][3] == "TT*"
    assert stage2["otype"].isna().tolist() == [False, False, True, False, True]
    assert stage2["main_id"].tolist()[:2] == ["FAKE OBJ A1", "FAKE OBJ B1"]
    assert stage2["main_id"].isna().tolist() == [False, False, True, False, True]
    np.testing.assert_allclose(stage2["angDist"], [0.254, 0.431, np.nan, 0.120, np.nan])
    assert stage2["other_types"][0] == "QSO|X|G"
    # stage-1 columns kept as they were, SIMBAD's position named as in the frozen file
    pd.testing.assert_frame_equal(stage2[stage1.columns], stage1)
    assert {"ra_x", "dec_x", "nbref", "redshift"} <= set(stage2.columns)
    assert not {"row_index", "csc_ra", "csc_dec"} & set(stage2.columns)

    (post,) = server.requests_to("POST", SYNC)
    assert uploaded_rows(post) == [0, 1, 2, 3, 4]
    assert float(post.form()["distMaxArcsec"]) == 1.0
    assert post.timeout == 300.0
    assert provenance["rows_matched"] == 3 and provenance["rows_unmatched"] == 2
    assert provenance["chunks"] == 1 and provenance["candidates"] == 6 and provenance["radius_arcsec"] == 1.0
    assert provenance["service_url"] == "https://cdsxmatch.cds.unistra.fr/xmatch/api/v1/sync"
    assert provenance["astroquery_version"] and provenance["started_utc"].endswith("+00:00")
    assert waits == []


def test_two_chunks_give_the_same_result_one_after_the_other(server):
    serve(server)
    whole, _ = crossmatch_online(synthetic_stage1(), XMatchConfig())
    chunked, provenance = crossmatch_online(synthetic_stage1(), XMatchConfig(chunk_size=2))

    pd.testing.assert_frame_equal(chunked, whole)
    posts = server.requests_to("POST", SYNC)
    # every chunk reached the service (cache=False: no answer came from a cache), in order
    assert [uploaded_rows(p) for p in posts] == [[0, 1, 2, 3, 4], [0, 1], [2, 3], [4]]
    assert server.max_in_flight == 1  # never two requests at once
    assert provenance["chunks"] == 3


def test_empty_answer_leaves_every_row_unmatched(server):
    serve(server, votable("xmatch_simbad_empty.vot"))
    stage2, provenance = crossmatch_online(synthetic_stage1(), XMatchConfig())
    assert stage2["main_type"].tolist() == ["NaN"] * 5
    assert stage2["main_id"].isna().all() and stage2["angDist"].isna().all()
    assert provenance["rows_matched"] == 0 and provenance["rows_unmatched"] == 5


def test_time_out_is_retried_then_reported(server, waits):
    serve(server, TIMEOUT)
    config = XMatchConfig(retries=2, chunk_size=2, backoff=0.01)
    with pytest.raises(
        ServiceError,
        match=r"did not answer within 300 s \(chunk 1 of 3 after 3 attempts\)"
        r".*--frozen PATH",
    ):
        crossmatch_online(synthetic_stage1(), config)
    # urllib3's schedule: the first retry at once, then 2 x, 4 x ... the back-off factor
    assert len(server.requests_to("POST", SYNC)) == 3 and waits == [2 * config.backoff]


@pytest.mark.parametrize(
    "reply, detail",
    [
        (votable("xmatch_error.vot", status=500), "Internal error while processing the job"),
        (html("http_503.html", 503), "HTTP 503"),
    ],
)
def test_server_error_is_retried_then_reported(server, waits, reply, detail):
    serve(server, reply)
    config = XMatchConfig(backoff=0.01)
    with pytest.raises(ServiceError) as error:
        crossmatch_online(synthetic_stage1(), config)
    message = str(error.value)
    assert "after 4 attempts" in message and detail in message and "answered HTTP 5" in message
    assert len(server.requests_to("POST", SYNC)) == 1 + config.retries
    assert waits == [2 * config.backoff, 4 * config.backoff]


def test_server_error_then_success(server, waits, caplog):
    serve(server, html("http_503.html", 503), xmatch_service())
    stage2, _ = crossmatch_online(synthetic_stage1(), XMatchConfig())
    assert stage2["main_type"].tolist() == BEST_TYPES
    assert len(server.requests_to("POST", SYNC)) == 2 and waits == []  # the first retry is at once
    assert "(HTTP 503); attempt 2 of 4" in caplog.text


def test_rate_limit_waits_as_asked(server, waits):
    serve(server, Reply(429, b"", {"Retry-After": "7"}), Reply(503, b"", {"Retry-After": "3"}), xmatch_service())
    stage2, _ = crossmatch_online(synthetic_stage1(), XMatchConfig(backoff=0.01))
    assert stage2["main_type"].tolist() == BEST_TYPES
    assert waits == [7.0, 3.0]  # what the service asked for, not the back-off


def test_a_long_retry_after_is_capped(server, waits):
    serve(server, Reply(503, b"", {"Retry-After": "86400"}), xmatch_service())
    crossmatch_online(synthetic_stage1(), XMatchConfig())
    assert waits == [MAX_RETRY_AFTER]


def test_no_retries_means_one_attempt(server, waits):
    serve(server, html("http_503.html", 503))
    with pytest.raises(ServiceError, match=r"answered HTTP 503 \(chunk 1 of 1\)"):
        crossmatch_online(synthetic_stage1(), XMatchConfig(retries=0))
    assert len(server.requests_to("POST", SYNC)) == 1 and waits == []


def test_no_network(server, waits):
    server.add("GET", TABLES, REFUSED)
    with pytest.raises(ServiceError, match=r"^cannot connect to CDS X-Match .*after 2 attempts; no network"):
        crossmatch_online(synthetic_stage1(), XMatchConfig(retries=1))


def test_a_programming_error_is_not_reported_as_a_failed_service(server, waits):
    server.add("GET", TABLES, TypeError("a bug in the code under test"))
    with pytest.raises(TypeError, match="a bug"):
        crossmatch_online(synthetic_stage1(), XMatchConfig(retries=1))
    assert waits == []  # nor retried


@pytest.mark.parametrize("radius", [0, -1, 180.01, 181, math.nan, math.inf])
def test_radius_is_checked_before_any_request(radius):
    with pytest.raises(InputError, match="--radius must be more than 0 and at most 180 arcsec"):
        XMatchConfig(radius=radius)


def test_valid_radii():
    assert check_radius(180) == 180.0 and check_radius(0.5) == 0.5
    with pytest.raises(InputError, match="--chunk-size"):
        XMatchConfig(chunk_size=0)


# -- the command line --------------------------------------------------------------------------


@pytest.fixture
def stage1_csv(tmp_path):
    path = tmp_path / "cluster_csc.csv"
    synthetic_stage1().to_csv(path, index=False)
    return path


def test_online_command_writes_output_and_provenance(server, stage1_csv, tmp_path, capsys):
    serve(server)
    output = tmp_path / "stage2.csv"
    assert (
        crossmatch_main(
            ["--input", str(stage1_csv), "--online", "--chunk-size", "2", "--radius", "1.5", "--output", str(output)]
        )
        == 0
    )
    stage2 = read_table(output)
    written = pd.read_csv(output, keep_default_na=False)["main_type"]  # 'NaN' is text in the file
    assert written.tolist() == BEST_TYPES
    assert stage2["otype"].tolist()[:2] == ["QSO", "Sy1"] and stage2["otype"].isna().sum() == 2
    assert stage2["cluster"].tolist() == [0, 1, 0, 1, 2]  # this run's clusters
    provenance = json.loads((tmp_path / "stage2.csv.provenance.json").read_text())
    assert provenance["radius_arcsec"] == 1.5 and provenance["chunks"] == 3
    assert provenance["rows_matched"] == 3 and provenance["input"] == str(stage1_csv)
    assert "chunk 3 of 3" in capsys.readouterr().err
    assert {float(p.form()["distMaxArcsec"]) for p in server.requests_to("POST", SYNC)} == {1.5}


def test_dry_run_describes_the_upload_and_sends_nothing(server, stage1_csv, tmp_path, capsys):
    output = tmp_path / "stage2.csv"
    assert (
        crossmatch_main(
            ["--input", str(stage1_csv), "--online", "--dry-run", "--chunk-size", "2", "--output", str(output)]
        )
        == 0
    )
    out = capsys.readouterr().out
    assert "upload: 5 of 5 rows" in out and "in 3 sequential chunk(s) of at most 2 rows" in out
    assert "radius: 1 arcsec" in out and "POST https://cdsxmatch.cds.unistra.fr/xmatch/api/v1/sync" in out
    # the fields come from astroquery's own get_query_payload=True: the ones it adds itself
    # (RESPONSEFORMAT, area) and the file name it gives the upload are there
    fields = re.search(r"form fields: (.*)", out).group(1)
    assert "request=xmatch" in fields and "distMaxArcsec=1.0" in fields and "RESPONSEFORMAT=votable" in fields
    assert "colRA1=csc_ra" in fields and "colDec1=csc_dec" in fields and "area=allsky" in fields
    assert re.search(r"cat2=(vizier:)?simbad", fields) and "cat1=(uploaded file cat1.csv" in fields
    assert "first lines of cat1.csv" in out and "row_index,csc_ra,csc_dec" in out and "nothing sent" in out
    assert not out.startswith("Could not import")  # astroquery's notice kept out of the output
    assert server.requests == [] and not output.exists()


def test_dry_run_payload_is_what_a_real_run_posts(server, stage1_csv, tmp_path, capsys):
    """The fields described by the dry run are those the real run then sends, chunk 1."""
    assert (
        crossmatch_main(
            [
                "--input",
                str(stage1_csv),
                "--online",
                "--dry-run",
                "--chunk-size",
                "2",
                "--output",
                str(tmp_path / "o.csv"),
            ]
        )
        == 0
    )
    described = dict(
        item.split("=", 1) for item in re.search(r"form fields: (.*)", capsys.readouterr().out).group(1).split(", ")
    )
    serve(server)
    assert (
        crossmatch_main(
            ["--input", str(stage1_csv), "--online", "--chunk-size", "2", "--output", str(tmp_path / "o.csv")]
        )
        == 0
    )
    sent = server.requests_to("POST", SYNC)[0].form()
    assert sent.keys() == described.keys()
    assert {k: v for k, v in sent.items() if k != "cat1"} == {k: v for k, v in described.items() if k != "cat1"}


def test_service_failure_exits_3_and_writes_nothing(server, stage1_csv, tmp_path, capsys, waits):
    serve(server, TIMEOUT)
    output = tmp_path / "stage2.csv"
    assert crossmatch_main(["--input", str(stage1_csv), "--online", "--output", str(output)]) == 3
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("crossmatch.py: error: CDS X-Match at https://cdsxmatch.cds.unistra.fr")
    assert f"did not answer within {DEFAULT_TIMEOUT:g} s (chunk 1 of 1 after {1 + DEFAULT_RETRIES} attempts)" in err[-1]
    assert len(server.requests_to("POST", SYNC)) == 1 + DEFAULT_RETRIES
    assert len(waits) == DEFAULT_RETRIES - 1  # recorded, not waited
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cluster_csc.csv"]


def test_banned_address_is_not_retried(server, stage1_csv, tmp_path, capsys):
    serve(server, Reply(403, b""))
    output = tmp_path / "stage2.csv"
    assert crossmatch_main(["--input", str(stage1_csv), "--online", "--output", str(output)]) == 3
    assert "HTTP 403" in capsys.readouterr().err
    assert len(server.requests_to("POST", SYNC)) == 1 and not output.exists()


@pytest.mark.parametrize(
    "args, message",
    [
        (["--online", "--radius", "181"], "--radius must be more than 0 and at most 180"),
        (["--online", "--radius", "0"], "--radius must be more than 0"),
        (["--radius", "2"], "--radius: only with --online"),
        (["--dry-run"], "--dry-run: only with --online"),
    ],
)
def test_bad_online_arguments_fail_before_any_request(server, stage1_csv, tmp_path, capsys, args, message):
    assert crossmatch_main(["--input", str(stage1_csv), *args, "--output", str(tmp_path / "o.csv")]) == 2
    assert message in capsys.readouterr().err
    assert server.requests == [] and not (tmp_path / "o.csv").exists()


def test_frozen_and_online_exclude_each_other(stage1_csv, capsys):
    with pytest.raises(SystemExit) as exit_:
        crossmatch_main(["--input", str(stage1_csv), "--online", "--frozen", "x.csv"])
    assert exit_.value.code == 2 and "not allowed with argument" in capsys.readouterr().err
