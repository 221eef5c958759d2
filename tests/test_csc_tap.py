"""fetch_csc.py: the ADQL of the paper, and the CSC TAP service replaced at the HTTP transport.

The answers are the hand-made fixtures of tests/data/ (see its README): real formats,
made-up values. Nothing here touches the network.
"""

import itertools
import json
import math
import re

import numpy as np
import pytest
from astropy.io.votable import parse_single_table
from fake_http import DATA, REFUSED, TIMEOUT, Reply, html, redirect, server, votable, waits, xml  # noqa: F401

from xrayclass.cli.fetch import main
from xrayclass.io.tables import InputError, read_table
from xrayclass.services import DEFAULT_BACKOFF
from xrayclass.services.csc_tap import Cone, FetchConfig, build_query, cone_box_clause, fetch

BASE = "https://cda.cfa.harvard.edu/csc2tap"
JOB = f"{BASE}/async/FIXTUREJOB1"

#: The paper's query, written out by hand (not by the code under test).
PAPER_QUERY = (
    "SELECT DISTINCT m.name, o.obsid, o.region_id, o.theta, m.ra, m.dec, m.significance, m.likelihood, "
    "o.src_area_b, o.flux_aper_b, o.hard_hm, o.hard_hs, o.hard_ms, o.powlaw_gamma, o.powlaw_gamma_lolim, "
    "o.powlaw_gamma_hilim, o.bb_kt, o.bb_kt_lolim, o.bb_kt_hilim, "
    "o.var_prob_b, o.var_sigma_b, o.var_mean_b, o.var_min_b, o.var_max_b, "
    "o.var_prob_h, o.var_sigma_h, o.var_mean_h, o.var_min_h, o.var_max_h, "
    "o.var_prob_m, o.var_sigma_m, o.var_mean_m, o.var_min_m, o.var_max_m, "
    "o.var_prob_s, o.var_sigma_s, o.var_mean_s, o.var_min_s, o.var_max_s, "
    "o.ks_prob_b, o.ks_prob_h, o.ks_prob_m, o.ks_prob_s, o.kp_prob_b, o.kp_prob_h, o.kp_prob_m, o.kp_prob_s, "
    "o.gti_start, o.gti_stop, o.gti_elapse "
    "FROM master_source m, master_stack_assoc a, observation_source o, stack_observation_assoc b, stack_source s "
    "WHERE (o.flux_significance_b > 5) AND (o.powlaw_gamma IS NOT NULL) AND (o.bb_kt IS NOT NULL) "
    "AND m.name = a.name AND s.detect_stack_id = a.detect_stack_id AND s.region_id = a.region_id "
    "AND s.detect_stack_id = b.detect_stack_id AND s.region_id = b.region_id AND o.obsid = b.obsid "
    "AND o.obi = b.obi AND o.region_id = b.region_id "
    "ORDER BY m.name"
)


def flat(query):
    return " ".join(query.split())


class Clock:
    """A clock that moves only when the code under test sleeps."""

    def __init__(self):
        self.now = 0.0
        self.waits = []

    def sleep(self, seconds):
        self.waits.append(seconds)
        self.now += seconds

    def __call__(self):
        return self.now


def async_job(server, phases=("EXECUTING", "COMPLETED"), result="csc_tap_result.vot", finished="uws_job_completed.xml"):
    """Route a UWS job: PENDING until run, then ``phases`` (the last repeats)."""
    documents = {"EXECUTING": "uws_job_executing.xml", "COMPLETED": finished, "ERROR": "uws_job_error.xml"}
    state = {"running": False, "looks": 0}

    def run(request):
        assert request.form() == {"PHASE": "RUN"}
        state["running"] = True
        return redirect(JOB)

    def job(request):
        if not state["running"]:
            return xml("uws_job_pending.xml")
        phase = phases[min(state["looks"], len(phases) - 1)]
        state["looks"] += 1
        return xml(documents[phase])

    server.add("POST", r"/csc2tap/async$", redirect(JOB))
    server.add("POST", r"/async/FIXTUREJOB1/phase$", run)
    server.add("GET", r"/async/FIXTUREJOB1$", job)
    server.add("GET", r"/async/FIXTUREJOB1/results/result$", votable(result))
    server.add("DELETE", r"/async/FIXTUREJOB1$", redirect(f"{BASE}/async"))


def sidecar(path):
    return json.loads(path.with_name(path.name + ".provenance.json").read_text())


def nothing_written(directory):
    return not any(directory.iterdir())


# -- the query -------------------------------------------------------------------------------


def test_builder_writes_the_papers_query():
    assert flat(build_query()) == PAPER_QUERY


def test_release_schema_qualifies_the_tables():
    query = build_query(schema="csc2")
    assert (
        "FROM csc2.master_source m, csc2.master_stack_assoc a, csc2.observation_source o, "
        "csc2.stack_observation_assoc b, csc2.stack_source s" in flat(query)
    )
    assert flat(query).replace("csc2.", "") == PAPER_QUERY


def test_options_change_the_selection():
    query = flat(build_query(min_significance=3.5, require_powlaw_gamma=False, columns=["m.name", "o.obsid"]))
    assert query.startswith("SELECT DISTINCT m.name, o.obsid FROM ")
    assert "WHERE (o.flux_significance_b > 3.5) AND (o.bb_kt IS NOT NULL) AND m.name = a.name" in query
    assert "powlaw_gamma" not in query
    assert "IS NOT NULL" not in build_query(require_powlaw_gamma=False, require_bb_kt=False)


# -- cones: an RA/Dec box in plain ADQL, then the exact circle here ------------------------------

#: Columns of the CSC 2.0/2.1 tables the query may name, by table, written out by hand
#: from the CSC column definitions (not taken from the code under test).
CSC_TABLE_COLUMNS = {
    "master_source": {"name", "ra", "dec", "significance", "likelihood"},
    "master_stack_assoc": {"name", "detect_stack_id", "region_id"},
    "observation_source": {
        "obsid",
        "obi",
        "region_id",
        "theta",
        "src_area_b",
        "flux_aper_b",
        "flux_significance_b",
        "hard_hm",
        "hard_hs",
        "hard_ms",
        "powlaw_gamma",
        "powlaw_gamma_lolim",
        "powlaw_gamma_hilim",
        "bb_kt",
        "bb_kt_lolim",
        "bb_kt_hilim",
        "gti_start",
        "gti_stop",
        "gti_elapse",
        *(f"var_{q}_{band}" for band in "bhms" for q in ("prob", "sigma", "mean", "min", "max")),
        *(f"{test}_prob_{band}" for band in "bhms" for test in ("ks", "kp")),
    },
    "stack_observation_assoc": {"detect_stack_id", "region_id", "obsid", "obi"},
    "stack_source": {"detect_stack_id", "region_id"},
}
#: The ADQL 2.0 reserved words a query of ours may use: no geometry (CONTAINS, POINT,
#: CIRCLE, DISTANCE), no functions at all, nothing service-specific (dbo.*).
ADQL_WORDS = {"SELECT", "DISTINCT", "FROM", "WHERE", "AND", "OR", "NOT", "BETWEEN", "IS", "NULL", "ORDER", "BY"}
TOKEN = re.compile(
    r"\s*(?:(?P<number>-?\d+(?:\.\d+)?)|(?P<name>[A-Za-z_]\w*(?:\.[A-Za-z_]\w*)?)"
    r"|(?P<op>>=|<=|<>|=|<|>|,|\(|\)))"
)


def check_plain_adql(query):
    """Fail unless ``query`` is made of ADQL 2.0 words, numbers, comparisons and CSC columns."""
    tokens, position = [], 0
    while position < len(query.rstrip()):
        match = TOKEN.match(query, position)
        assert match and match.end() > position, f"not ADQL 2.0 here: {query[position : position + 40]!r}"
        tokens.append((match.lastgroup, match.group(match.lastgroup)))
        position = match.end()
    aliases = {}
    words = [value for kind, value in tokens if kind == "name"]
    for table, alias in itertools.pairwise(words):
        bare = table.split(".")[-1]
        if bare in CSC_TABLE_COLUMNS and alias not in ADQL_WORDS:
            aliases[alias] = bare
    assert set(aliases.values()) <= set(CSC_TABLE_COLUMNS)
    for (kind, value), following in zip(tokens, tokens[1:] + [("end", "")], strict=False):
        if kind != "name":
            continue
        assert following[1] != "(" or value.upper() in ADQL_WORDS, f"a function call: {value}("
        if "." in value and value.split(".")[-1] not in CSC_TABLE_COLUMNS:
            alias, column = value.split(".")
            assert alias in aliases, f"unknown table alias in {value}"
            assert column in CSC_TABLE_COLUMNS[aliases[alias]], f"{column} is not a column of {aliases[alias]}"
        elif "." not in value:
            assert value.upper() in ADQL_WORDS or value in aliases or value in CSC_TABLE_COLUMNS, value


def box_predicate(query):
    """The box of ``query`` as a Python function of (ra, dec): what a TAP service evaluates."""
    where = flat(query).split(" WHERE ", 1)[1]
    box = re.search(r"\((m\.dec [^()]*(?:\([^()]*\))?[^()]*)\)", where)
    if box is None:
        return lambda ra, dec: True
    text = re.sub(r"(m\.\w+) BETWEEN (\S+) AND (\S+)", r"(\2 <= \1 <= \3)", box.group(1))
    text = text.replace("m.ra", "ra").replace("m.dec", "dec").replace(" AND ", " and ").replace(" OR ", " or ")
    code = compile(text, "<box>", "eval")
    return lambda ra, dec: eval(code, {}, {"ra": ra, "dec": dec})


def separation_deg(ra1, dec1, ra2, dec2):
    """Great-circle distance by the haversine formula (independent of astropy)."""
    ra1, dec1, ra2, dec2 = map(np.radians, (ra1, dec1, ra2, dec2))
    h = np.sin((dec2 - dec1) / 2) ** 2 + np.cos(dec1) * np.cos(dec2) * np.sin((ra2 - ra1) / 2) ** 2
    return np.degrees(2 * np.arcsin(np.sqrt(np.minimum(1.0, h))))


def test_cone_is_a_plain_box_on_the_master_source_position():
    query = flat(build_query(cone=Cone(150.5, -2.25, 6)))
    assert "(o.bb_kt IS NOT NULL) AND (m.dec BETWEEN " in query
    dec = re.search(r"m\.dec BETWEEN (\S+) AND (\S+) AND", query)
    assert float(dec.group(1)) == pytest.approx(-2.35, abs=2e-6) and float(dec.group(1)) < -2.35
    assert float(dec.group(2)) == pytest.approx(-2.15, abs=2e-6) and float(dec.group(2)) > -2.15
    ra = re.search(r"m\.ra BETWEEN (\S+) AND (\S+)\)", query)
    half = math.degrees(math.asin(math.sin(math.radians(0.1)) / math.cos(math.radians(2.25))))
    assert float(ra.group(1)) == pytest.approx(150.5 - half, abs=2e-6)
    assert float(ra.group(2)) == pytest.approx(150.5 + half, abs=2e-6)
    for text in ("CONTAINS", "CIRCLE", "POINT", "cone_distance", "dbo."):
        assert text not in query


@pytest.mark.parametrize(
    "cone, expected",
    [
        # across RA 0/360 on either side: two RA ranges joined by OR
        (
            Cone(359.95, 10, 6),
            r"m\.dec BETWEEN 9\.89999\d* AND 10\.10000\d* AND \(m\.ra >= 359\.848\d* OR m\.ra <= 0\.0515\d*\)",
        ),
        (
            Cone(0.02, -40, 3),
            r"m\.dec BETWEEN -40\.05000\d* AND -39\.94999\d* AND \(m\.ra >= 359\.954\d* OR m\.ra <= 0\.0852\d*\)",
        ),
        # the cap contains a pole: every RA, one declination limit
        (Cone(45, 89.95, 6), r"^m\.dec >= 89\.84999\d*$"),
        (Cone(200, -89.99, 1), r"^m\.dec <= -89\.97333\d*$"),
        # near a pole without containing it: the box widens in RA as 1/cos(dec)
        (
            Cone(10, 89.5, 6),
            r"m\.dec BETWEEN 89\.39999\d* AND 89\.60000\d* AND m\.ra BETWEEN -?\S+ AND \S+|\(m\.ra >= ",
        ),
    ],
)
def test_box_across_ra_zero_and_at_the_poles(cone, expected):
    clause = cone_box_clause(cone)
    assert re.search(expected, clause), clause
    check_plain_adql(build_query(cone=cone, schema="csc2"))


def test_a_whole_sky_cone_has_no_box():
    assert cone_box_clause(Cone(10, 0, 180 * 60)) is None
    assert "m.dec" not in build_query(cone=Cone(10, 0, 180 * 60)).split("WHERE")[1]


def test_the_box_holds_every_point_of_the_circle():
    """Seeded random cones (near the poles and RA 0/360 too) and points on their edge and inside."""
    rng = np.random.default_rng(7)
    centres = [(359.99, 0.0), (0.001, 45.0), (180.0, 89.9), (90.0, -89.95), (10.0, 89.0), (350.0, -88.5)]
    centres += [(rng.uniform(0, 360), rng.uniform(-90, 90)) for _ in range(40)]
    for ra0, dec0 in centres:
        for radius_arcmin in (0.5, 6.0, 60.0, 600.0):
            cone = Cone(ra0, dec0, radius_arcmin)
            inside = box_predicate(build_query(cone=cone))
            # points at 0-100% of the radius in every direction, by spherical offset
            bearing = rng.uniform(0, 2 * np.pi, 200)
            distance = np.radians(radius_arcmin / 60) * np.sqrt(rng.uniform(0, 1, 200))
            distance[:20] = np.radians(radius_arcmin / 60)  # on the edge
            lat0, lon0 = np.radians(dec0), np.radians(ra0)
            lat = np.arcsin(np.sin(lat0) * np.cos(distance) + np.cos(lat0) * np.sin(distance) * np.cos(bearing))
            lon = lon0 + np.arctan2(
                np.sin(bearing) * np.sin(distance) * np.cos(lat0), np.cos(distance) - np.sin(lat0) * np.sin(lat)
            )
            ra, dec = np.degrees(lon) % 360, np.degrees(lat)
            missed = [(r, d) for r, d in zip(ra, dec, strict=False) if not inside(r, d)]
            assert not missed, (cone, missed[:3])


def serve_box(server, fixture):
    """A fake CSC service that answers with the fixture's rows inside the query's box, as TAP would."""
    table = parse_single_table(DATA / fixture).to_table(use_names_over_ids=True)
    lines = (DATA / fixture).read_text().splitlines()
    rows = [i for i, line in enumerate(lines) if line.startswith("<TR>")]

    def answer(request):
        inside = box_predicate(request.form()["QUERY"])
        keep = {rows[k] for k in range(len(table)) if inside(float(table["ra"][k]), float(table["dec"][k]))}
        body = "\n".join(line for i, line in enumerate(lines) if i not in rows or i in keep)
        return Reply(200, body.encode(), {"Content-Type": "application/x-votable+xml"})

    server.add("POST", r"/csc2tap/sync$", answer)
    return table


@pytest.mark.parametrize(
    "fixture, cone",
    [
        ("csc_tap_cone_wrap.vot", (359.95, 10.0, 6.0)),
        ("csc_tap_cone_pole.vot", (45.0, 89.95, 6.0)),
    ],
)
def test_cone_keeps_exactly_the_rows_within_the_radius(server, tmp_path, fixture, cone):
    table = serve_box(server, fixture)
    output = tmp_path / "cone.csv"
    assert main(["--cone", *map(str, cone), "--output", str(output)]) == 0

    query = server.requests[0].form()["QUERY"]
    check_plain_adql(query)
    in_box = np.array(
        [box_predicate(query)(float(r), float(d)) for r, d in zip(table["ra"], table["dec"], strict=False)]
    )
    distance = separation_deg(cone[0], cone[1], np.asarray(table["ra"]), np.asarray(table["dec"]))
    within = distance <= cone[2] / 60
    # the fixture has rows of every kind: within, in the box only, outside the box
    assert within.sum() >= 3 and (in_box & ~within).sum() >= 2 and (~in_box).sum() >= 2
    assert not (within & ~in_box).any()
    written = read_table(output)
    assert sorted(written["name"]) == sorted(np.asarray(table["name"])[within])
    cone_record = sidecar(output)["cone"]
    assert cone_record["rows_in_box"] == int(in_box.sum()) and cone_record["rows_in_cone"] == int(within.sum())


def test_a_cone_with_nothing_inside_writes_nothing(server, tmp_path, capsys):
    serve_box(server, "csc_tap_cone_wrap.vot")
    output = tmp_path / "cone.csv"
    # the row at (0.04, 10.08) is in the corner of this cone's box, 0.84 arcmin from its centre
    assert main(["--cone", "0.03", "10.07", "0.6", "--output", str(output)]) == 2
    assert "no CSC source within 0.6 arcmin of (0.03, 10.07) (1 rows in the box" in capsys.readouterr().err
    assert not output.exists()


def test_a_cone_needs_the_master_source_position():
    with pytest.raises(InputError, match=r"must include m\.ra and m\.dec"):
        build_query(cone=Cone(10, 0, 1), columns=["m.name", "o.obsid"])


@pytest.mark.parametrize(
    "cone, message",
    [
        ((10, 91, 1), r"\|Dec\| must be at most 90"),
        ((10, -90.5, 1), r"\|Dec\| must be at most 90"),
        ((10, 0, 0), "radius must be positive"),
        ((10, 0, -3), "radius must be positive"),
        ((360, 0, 1), r"RA must be in \[0, 360\)"),
        ((float("nan"), 0, 1), "finite"),
    ],
)
def test_cone_arguments_are_checked(cone, message):
    with pytest.raises(InputError, match=message):
        build_query(cone=cone)


def test_column_and_schema_names_are_checked():
    with pytest.raises(InputError, match="not a column name"):
        build_query(columns=["m.name; DROP TABLE x"])
    with pytest.raises(InputError, match="at least one column"):
        build_query(columns=[])
    with pytest.raises(InputError, match="not a schema name"):
        build_query(schema="csc2 m")


# -- the command line, offline ------------------------------------------------------------------


def test_dry_run_sends_nothing(server, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(["--dry-run", "--release", "2.1"]) == 0
    out = capsys.readouterr().out
    assert "https://cda.cfa.harvard.edu/csc21tap" in out and "/async" in out
    assert "FROM csc21.master_source m" in out and "SELECT DISTINCT m.name" in out
    check_plain_adql(out.split("query:\n", 1)[1])
    assert server.requests == []
    assert nothing_written(tmp_path)


@pytest.mark.parametrize("cone", [("150", "2", "10"), ("359.99", "-5", "30"), ("0", "90", "5"), ("12", "-89.9", "20")])
def test_dry_run_cone_query_is_plain_adql_on_csc_columns(server, tmp_path, monkeypatch, capsys, cone):
    monkeypatch.chdir(tmp_path)
    assert main(["--dry-run", "--cone", *cone]) == 0
    out = capsys.readouterr().out
    query = out.split("query:\n", 1)[1]
    check_plain_adql(query)
    assert "m.dec" in query.split("WHERE", 1)[1] and "dropped here" in out
    assert server.requests == [] and nothing_written(tmp_path)


def test_the_adql_check_can_fail():
    with pytest.raises(AssertionError, match="function call"):
        check_plain_adql("SELECT m.name FROM master_source m WHERE dbo.cone_distance(m.ra, m.dec, 1, 2) <= 3")
    with pytest.raises(AssertionError):
        check_plain_adql(
            "SELECT m.name FROM master_source m WHERE CONTAINS(POINT('ICRS', m.ra, m.dec), "
            "CIRCLE('ICRS', 1, 2, 0.1)) = 1"
        )
    with pytest.raises(AssertionError, match="not a column of master_source"):
        check_plain_adql("SELECT m.flux_aper_b FROM master_source m")


def test_sync_fetch_writes_the_table_and_its_provenance(server, tmp_path, waits):
    server.add("POST", r"/csc2tap/sync$", votable("csc_tap_result.vot"))
    output = tmp_path / "csc.vot"
    assert main(["--sync", "--output", str(output)], sleep=waits.append) == 0

    table = read_table(output)
    assert len(table) == 3
    assert list(table.columns[:6]) == ["name", "obsid", "region_id", "theta", "ra", "dec"]
    assert {"var_mean_b", "kp_prob_s", "gti_elapse"} <= set(table.columns)
    assert table["name"].iloc[0] == "2CXO J100000.0+020000"
    assert table["var_prob_m"].isna().tolist() == [False, True, False]  # the null travels

    (request,) = server.requests
    form = request.form()
    assert form["REQUEST"] == "doQuery" and form["LANG"] == "ADQL" and form["MAXREC"] == "2000000"
    assert flat(form["QUERY"]).replace("csc2.", "") == PAPER_QUERY
    assert request.timeout == 1800.0  # pyvo sets none for sync queries; ours does

    provenance = sidecar(output)
    assert provenance["service_url"] == BASE and provenance["release"] == "2.0"
    assert provenance["rows"] == 3 and provenance["mode"] == "sync"
    assert provenance["query"] == form["QUERY"]
    assert provenance["pyvo_version"] and provenance["retrieved_utc"].endswith("+00:00")
    assert waits == []


def test_async_fetch_logs_the_job_phase_and_deletes_the_job(server, tmp_path, capsys):
    async_job(server, phases=("EXECUTING", "EXECUTING", "EXECUTING", "COMPLETED"))
    clock = Clock()
    output = tmp_path / "csc.parquet"
    assert main(["--output", str(output)], sleep=clock.sleep, clock=clock) == 0

    log = capsys.readouterr().err
    assert f"submitted job {JOB}" in log
    assert "job phase EXECUTING" in log and "job still EXECUTING" in log and "job phase COMPLETED" in log
    assert clock.waits == [2.0, 3.0]  # growing poll intervals
    assert len(server.requests_to("DELETE", "FIXTUREJOB1$")) == 1
    assert server.requests_to("POST", r"/async$")[0].form()["MAXREC"] == "2000000"
    assert len(read_table(output)) == 3
    provenance = sidecar(output)
    assert provenance["mode"] == "async" and provenance["job_url"] == JOB and provenance["rows"] == 3


def test_cone_query_runs_synchronously(server, tmp_path):
    server.add("POST", r"/csc2tap/sync$", votable("csc_tap_result.vot"))
    # rows at (150.00, 2.00), (150.01, 2.01), (150.02, 2.02): 0, 0.85 and 1.70 arcmin away
    assert main(["--cone", "150", "2", "1", "--output", str(tmp_path / "cone.csv")]) == 0
    query = flat(server.requests[0].form()["QUERY"])
    assert "(m.dec BETWEEN 1.9833323 AND 2.0166677 AND m.ra BETWEEN 149.9833221 AND 150.0166779)" in query
    assert read_table(tmp_path / "cone.csv")["obsid"].tolist() == [90001, 90002]


def test_service_url_can_be_overridden(server, tmp_path):
    server.add("POST", r"^http://tap\.example\.org/mirror/sync$", votable("csc_tap_result.vot"))
    assert main(["--sync", "--service-url", "http://tap.example.org/mirror/", "--output", str(tmp_path / "c.vot")]) == 0
    assert sidecar(tmp_path / "c.vot")["service_url"] == "http://tap.example.org/mirror"


# -- failures: one line, non-zero exit, nothing written -------------------------------------------


def run_failing(args, tmp_path, capsys, waits, status):
    output = tmp_path / "out" / "csc.vot"
    assert main([*args, "--output", str(output)], sleep=waits.append) == status
    message = capsys.readouterr().err.strip().splitlines()[-1]
    assert message.startswith("fetch_csc.py: error: ")
    assert not output.parent.exists() or nothing_written(output.parent)
    return message


def test_empty_result_is_an_error(server, tmp_path, capsys, waits):
    server.add("POST", r"/sync$", votable("csc_tap_empty.vot"))
    message = run_failing(["--sync"], tmp_path, capsys, waits, status=2)
    assert "returned no rows; nothing written" in message


def test_time_out_is_retried_then_reported(server, tmp_path, capsys, waits):
    server.add("POST", r"/sync$", TIMEOUT)
    message = run_failing(["--sync", "--retries", "2"], tmp_path, capsys, waits, status=3)
    assert "did not answer in time after 3 attempts" in message
    assert "data/cscresults.vot" in message and "clustering.py --input" in message
    # urllib3's schedule: the first retry at once, then 2 x, 4 x ... the back-off factor
    assert len(server.requests) == 3 and waits == [2 * DEFAULT_BACKOFF]


def test_no_network_is_reported(server, tmp_path, capsys, waits):
    server.add("POST", r"/async$", REFUSED)
    message = run_failing(["--retries", "1"], tmp_path, capsys, waits, status=3)
    assert message.startswith(f"fetch_csc.py: error: cannot connect to the CSC TAP service at {BASE}")
    assert "after 2 attempts" in message and "--input" in message


def test_server_error_is_retried_then_reported(server, tmp_path, capsys, waits):
    server.add("POST", r"/sync$", html("http_503.html", 500))
    message = run_failing(["--sync"], tmp_path, capsys, waits, status=3)
    assert "answered HTTP 500 after 4 attempts" in message
    assert len(server.requests) == 4 and waits == [2 * DEFAULT_BACKOFF, 4 * DEFAULT_BACKOFF]


def test_a_transient_server_error_is_overcome(server, tmp_path, waits):
    server.add("POST", r"/sync$", html("http_503.html", 503), votable("csc_tap_result.vot"))
    assert main(["--sync", "--output", str(tmp_path / "c.vot")], sleep=waits.append) == 0
    assert len(server.requests) == 2 and waits == []  # the first retry is at once
    assert len(read_table(tmp_path / "c.vot")) == 3


def test_rate_limit_waits_as_asked(server, tmp_path, waits):
    server.add("POST", r"/sync$", Reply(429, b"", {"Retry-After": "7"}), votable("csc_tap_result.vot"))
    assert main(["--sync", "--output", str(tmp_path / "c.vot")], sleep=waits.append) == 0
    assert waits == [7.0]


def test_rejected_query_is_not_retried(server, tmp_path, capsys, waits):
    server.add("POST", r"/sync$", votable("csc_tap_query_error.vot", status=400))
    message = run_failing(["--sync"], tmp_path, capsys, waits, status=3)
    assert "rejected the query" in message and "o.no_such_column" in message and "--dry-run" in message
    assert len(server.requests) == 1 and waits == []


def test_truncated_result_is_an_error(server, tmp_path, capsys, waits):
    server.add("POST", r"/sync$", votable("csc_tap_overflow.vot"))
    message = run_failing(["--sync"], tmp_path, capsys, waits, status=3)
    assert "truncated at 3 rows" in message and "raise --maxrec" in message


def test_result_reaching_maxrec_is_treated_as_truncated(server, tmp_path, capsys, waits):
    server.add("POST", r"/sync$", votable("csc_tap_result.vot"))
    message = run_failing(["--sync", "--maxrec", "3"], tmp_path, capsys, waits, status=3)
    assert "truncated at 3 rows (MAXREC 3" in message
    assert server.requests[0].form()["MAXREC"] == "3"


def test_failed_job_is_reported(server, tmp_path, capsys, waits):
    async_job(server, phases=("EXECUTING", "ERROR"))
    message = run_failing([], tmp_path, capsys, waits, status=3)
    assert "rejected the query" in message and "csc2.no_such_table" in message
    assert len(server.requests_to("DELETE", "FIXTUREJOB1$")) == 1


def test_job_that_never_finishes_times_out_without_retry(server, tmp_path, capsys):
    async_job(server, phases=("EXECUTING",))
    clock = Clock()
    output = tmp_path / "csc.vot"
    assert main(["--timeout", "10", "--output", str(output)], sleep=clock.sleep, clock=clock) == 3
    message = capsys.readouterr().err.strip().splitlines()[-1]
    assert f"the CSC TAP job {JOB} did not finish within 10 s" in message and "--timeout" in message
    assert len(server.requests_to("POST", r"/async$")) == 1  # not resubmitted
    assert len(server.requests_to("DELETE", "FIXTUREJOB1$")) == 1
    assert not output.exists()


@pytest.mark.parametrize(
    "args, message",
    [
        (["--cone", "10", "95", "1"], r"\|Dec\| must be at most 90"),
        (["--cone", "10", "5", "0"], "radius must be positive"),
        (["--output", "csc.txt"], "unknown table format"),
        (["--retries", "-1"], "--retries must be 0 or more"),
        (["--timeout", "0"], "--timeout must be positive"),
        (["--service-url", "cda.cfa.harvard.edu"], "not an http"),
    ],
)
def test_bad_arguments_fail_before_any_request(server, tmp_path, monkeypatch, capsys, args, message):
    monkeypatch.chdir(tmp_path)
    assert main(args) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1
    assert re.search(message, err)
    assert server.requests == [] and nothing_written(tmp_path)


def test_fetch_returns_the_table(server, waits):
    server.add("POST", r"/sync$", votable("csc_tap_result.vot"))
    table, details = fetch(build_query(schema="csc2"), FetchConfig(sync=True), sleep=waits.append)
    assert len(table) == 3 and details == {"mode": "sync"}


def test_the_script_runs_as_a_user_runs_it(tmp_path):
    from conftest import run_script

    result = run_script("fetch_csc.py", "--dry-run", "--cone", "150", "2", "1", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "https://cda.cfa.harvard.edu/csc2tap/sync" in result.stdout
    assert not any(tmp_path.iterdir())
    assert "--min-significance" in run_script("fetch_csc.py", "--help", cwd=tmp_path).stdout


# -- make run RUN_ARGS=--fetch without network --------------------------------------------------


def test_run_with_fetch_offline_exits_3_and_rebuilds_nothing(server, tmp_path, monkeypatch, capsys):
    import os

    from xrayclass.cli import run

    server.add("POST", r"/csc2tap/(a)?sync$", REFUSED)  # the retries' waits are recorded, not waited
    out_dir = tmp_path / "out_data"
    out_dir.mkdir()
    earlier = {}
    for name in ("report.html", "report.md", "cluster_csc.csv"):  # an earlier run's files
        path = out_dir / name
        path.write_text(f"an earlier run's {name}\n")
        os.utime(path, ns=(1_600_000_000_000_000_000, 1_600_000_000_000_000_000))
        earlier[name] = (path.read_bytes(), path.stat().st_mtime_ns)

    assert run.main(["--fetch", "--out-dir", str(out_dir)]) == 3

    err = capsys.readouterr().err
    assert "fetch_csc.py: error: cannot connect to the CSC TAP service" in err
    assert "nothing further was run" in err and "no reproduction, no report" in err
    for name, (content, mtime) in earlier.items():
        assert (out_dir / name).read_bytes() == content and (out_dir / name).stat().st_mtime_ns == mtime
    left = {p.name for p in out_dir.iterdir()}
    assert left <= {*earlier, "fetched"} and not (out_dir / "reproduction").exists()
    assert not (out_dir / "fetched").exists() or not any((out_dir / "fetched").iterdir())
    assert len(server.requests) == 4  # the fetch was tried (1 + 3 retries), nothing else was
