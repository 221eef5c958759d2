"""The stage-1 input from the Chandra Source Catalog TAP service (``fetch_csc.py``).

:func:`build_query` writes the paper's ADQL query (per-observation detections with
``flux_significance_b > 5`` and a power-law and black-body fit, joined to their master
source; ``paper_facts.md``, "Input"); :func:`fetch` runs it with pyvo, as a UWS job
(phase logged while waiting) or synchronously; :func:`fetch_to_file` writes the result
and its provenance sidecar, both or neither. :func:`fetch_source` asks for one source's
detections (``classify_source.py``). Failures raise a one-line
:class:`~xrayclass.services.ServiceError` (the service) or
:class:`~xrayclass.exceptions.InputError` (bad arguments, an empty result).
"""

import contextlib
import dataclasses
import logging
import math
import re
import time
import warnings
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import astropy
import astropy.units as u
import numpy as np
import pandas as pd
import pyvo
import requests
from astropy.coordinates import SkyCoord
from astropy.io.votable.exceptions import VOWarning
from astropy.table import Table
from astropy.units import UnitsWarning
from pyvo.dal import DALFormatError, DALQueryError
from pyvo.utils import http as pyvo_http

from xrayclass.exceptions import InputError
from xrayclass.io import paths
from xrayclass.io.tables import table_format, write_outputs
from xrayclass.services import (
    DEFAULT_BACKOFF,
    ServiceError,
    ServiceSession,
    attempts_text,
    check_retry_policy,
    failure_kind,
    http_status,
    provenance_path,
    utc_now,
)
from xrayclass.text import one_line

__all__ = [
    "DEFAULT_MAXREC",
    "DEFAULT_RELEASE",
    "DEFAULT_RETRIES",
    "DEFAULT_TIMEOUT",
    "MIN_SIGNIFICANCE",
    "OUTPUT_FORMATS",
    "PAPER_COLUMNS",
    "RELEASES",
    "SOURCE_MAXREC",
    "TABLES",
    "Cone",
    "FetchConfig",
    "build_query",
    "build_source_query",
    "cone_box_clause",
    "describe",
    "fetch",
    "fetch_source",
    "fetch_to_file",
]

log = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class Release:
    """One CSC release on its TAP service, and the schema that qualifies its table names."""

    name: str
    url: str
    schema: str


# From the CXC "Virtual Observatory Guide" (https://cxc.cfa.harvard.edu/csc/download/vo.html):
# CSC 2.1 at /csc21tap with tables "csc21.*", CSC 2.0 at /csc2tap with tables "csc2.*";
# over https on the CDA's host (override with --service-url). The CSC's ADQL page says its
# services support no geometry functions (CONTAINS, CIRCLE), so a cone is sent as a plain
# RA/Dec box on m.ra, m.dec and cut to the exact circle here (:func:`cone_box_clause`).
RELEASES = {
    "2.0": Release("2.0", "https://cda.cfa.harvard.edu/csc2tap", "csc2"),
    "2.1": Release("2.1", "https://cda.cfa.harvard.edu/csc21tap", "csc21"),
}
DEFAULT_RELEASE = "2.0"

#: Seconds to wait for a synchronous answer, or for an asynchronous job to finish.
DEFAULT_TIMEOUT = 1800.0
#: Retries of each HTTP request after its first attempt, on transient failures only.
DEFAULT_RETRIES = 3
#: Rows the service may return; a result that reaches it is treated as truncated.
DEFAULT_MAXREC = 2_000_000
#: First wait between two looks at an asynchronous job, growing by half each time.
POLL_INTERVAL = 2.0
MAX_POLL_INTERVAL = 30.0
#: Seconds for each HTTP request of an asynchronous job (submit, phase, result).
REQUEST_TIMEOUT = 300.0

#: The selection of the paper.
MIN_SIGNIFICANCE = 5.0

#: The columns of the paper's query, in its order.
PAPER_COLUMNS = (
    *"m.name o.obsid o.region_id o.theta m.ra m.dec m.significance m.likelihood o.src_area_b o.flux_aper_b".split(),
    *"o.hard_hm o.hard_hs o.hard_ms o.powlaw_gamma o.powlaw_gamma_lolim o.powlaw_gamma_hilim".split(),
    *"o.bb_kt o.bb_kt_lolim o.bb_kt_hilim".split(),
    *(f"o.var_{quantity}_{band}" for band in "bhms" for quantity in ("prob", "sigma", "mean", "min", "max")),
    *(f"o.ks_prob_{band}" for band in "bhms"),
    *(f"o.kp_prob_{band}" for band in "bhms"),
    *"o.gti_start o.gti_stop o.gti_elapse".split(),
)

#: The five tables of the query with their aliases, and how they join.
TABLES = (
    ("master_source", "m"),
    ("master_stack_assoc", "a"),
    ("observation_source", "o"),
    ("stack_observation_assoc", "b"),
    ("stack_source", "s"),
)
JOINS = (
    "m.name = a.name",
    "s.detect_stack_id = a.detect_stack_id",
    "s.region_id = a.region_id",
    "s.detect_stack_id = b.detect_stack_id",
    "s.region_id = b.region_id",
    "o.obsid = b.obsid",
    "o.obi = b.obi",
    "o.region_id = b.region_id",
)
#: The master-source position the cone is applied to, in the query and in its result.
CONE_RA, CONE_DEC = "m.ra", "m.dec"
#: Added to a cone's radius in the box (deg, 3.6 mas) so that rounding never loses a source
#: on the box's edge; the exact circle is cut afterwards.
BOX_PAD_DEG = 1e-6

#: What to tell the user when the service cannot be used.
LOCAL_COPY_HINT = f"or put a copy of the CSC query result at {paths.CSC_INPUT} (or pass clustering.py --input PATH)"

_COLUMN = re.compile(r"^[A-Za-z_]\w*(\.[A-Za-z_]\w*)?$")
_IDENTIFIER = re.compile(r"^[A-Za-z_]\w*$")
OUTPUT_FORMATS = ("votable", "parquet", "csv")


@dataclasses.dataclass(frozen=True)
class Cone:
    """A circle on the sky: centre (ICRS degrees) and radius in arcmin."""

    ra: float
    dec: float
    radius_arcmin: float

    def __post_init__(self) -> None:
        for label, value in (("RA", self.ra), ("Dec", self.dec), ("radius", self.radius_arcmin)):
            if not math.isfinite(value):
                raise InputError(f"--cone: {label} must be a finite number, got {value}")
        if not 0 <= self.ra < 360:
            raise InputError(f"--cone: RA must be in [0, 360) degrees, got {self.ra:g}")
        if abs(self.dec) > 90:
            raise InputError(f"--cone: |Dec| must be at most 90 degrees, got {self.dec:g}")
        if self.radius_arcmin <= 0:
            raise InputError(f"--cone: the radius must be positive (arcmin), got {self.radius_arcmin:g}")


def _number(value: float) -> str:
    value = float(value)
    return str(int(value)) if value.is_integer() else repr(value)


def _rounded(value: float, outward: int) -> str:
    """``value`` in degrees, rounded to 1e-7 deg away from the box's inside (``outward`` +1 up, -1 down)."""
    scaled = value * 1e7
    scaled = math.ceil(scaled - 1e-6) if outward > 0 else math.floor(scaled + 1e-6)
    text = f"{scaled / 1e7:.7f}".rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text


def cone_box(cone: Cone) -> tuple[float | None, float | None, list[tuple[float, float]]]:
    """The RA/Dec box around ``cone``: ``(dec_min, dec_max, ra_ranges)``, degrees.

    ``ra_ranges`` holds one ``(low, high)`` interval in [0, 360], two when the box crosses
    RA 0/360, none when RA is not constrained (the cap contains a pole, or the box would
    be 360 degrees wide). The half-width in RA of a circle of radius r centred at
    declination d is asin(sin r / cos d); ``dec_min``/``dec_max`` are None at a pole.
    """
    radius = min(cone.radius_arcmin / 60 + BOX_PAD_DEG, 180.0)
    low, high = cone.dec - radius, cone.dec + radius
    dec_min = None if low <= -90 else low
    dec_max = None if high >= 90 else high
    if dec_min is None or dec_max is None:
        return dec_min, dec_max, []
    half = math.degrees(math.asin(min(1.0, math.sin(math.radians(radius)) / math.cos(math.radians(cone.dec)))))
    if half >= 180:
        return dec_min, dec_max, []
    ra_low, ra_high = cone.ra - half, cone.ra + half
    if ra_low < 0:
        return dec_min, dec_max, [(ra_low + 360, 360.0), (0.0, ra_high)]
    if ra_high >= 360:
        return dec_min, dec_max, [(ra_low, 360.0), (0.0, ra_high - 360)]
    return dec_min, dec_max, [(ra_low, ra_high)]


def cone_box_clause(cone: Cone, ra: str = CONE_RA, dec: str = CONE_DEC) -> str | None:
    """The ADQL 2.0 condition for :func:`cone_box` (comparisons only), or None for the whole sky."""
    dec_min, dec_max, ra_ranges = cone_box(cone)
    parts = []
    if dec_min is not None and dec_max is not None:
        parts.append(f"{dec} BETWEEN {_rounded(dec_min, -1)} AND {_rounded(dec_max, +1)}")
    elif dec_min is not None:
        parts.append(f"{dec} >= {_rounded(dec_min, -1)}")
    elif dec_max is not None:
        parts.append(f"{dec} <= {_rounded(dec_max, +1)}")
    if len(ra_ranges) == 1:
        ((low, high),) = ra_ranges
        parts.append(f"{ra} BETWEEN {_rounded(low, -1)} AND {_rounded(high, +1)}")
    elif len(ra_ranges) == 2:  # across RA 0/360: [low, 360) or [0, high]
        (low, _), (_, high) = ra_ranges
        parts.append(f"({ra} >= {_rounded(low, -1)} OR {ra} <= {_rounded(high, +1)})")
    return " AND ".join(parts) or None


def within_cone(table: Table | pd.DataFrame, cone: Cone, ra_column: str = "ra", dec_column: str = "dec") -> np.ndarray:
    """Boolean mask of the rows of ``table`` (ICRS degrees) within ``cone``; a row without a position is outside."""
    names = table.colnames if isinstance(table, Table) else table.columns
    missing = [c for c in (ra_column, dec_column) if c not in names]
    if missing:
        raise InputError(
            f"--cone: the result has no {' or '.join(missing)} column to cut the cone with "
            f"(select {CONE_RA} and {CONE_DEC})"
        )
    ra, dec = (np.asarray(np.ma.filled(table[c], np.nan), dtype="float64") for c in (ra_column, dec_column))
    known = np.isfinite(ra) & np.isfinite(dec) & (np.abs(dec) <= 90)
    inside = np.zeros(len(ra), dtype=bool)
    centre = SkyCoord(cone.ra * u.deg, cone.dec * u.deg, frame="icrs")
    points = SkyCoord(ra[known] * u.deg, dec[known] * u.deg, frame="icrs")
    inside[known] = centre.separation(points) <= cone.radius_arcmin * u.arcmin
    return inside


def _select(columns: Sequence[str], schema: str | None, conditions: Sequence[str], order: str) -> str:
    """The query on the five tables: SELECT, FROM, WHERE (``conditions`` and the joins) and ORDER BY, a line each."""
    columns = list(columns)
    if not columns:
        raise InputError("--columns: give at least one column")
    bad = [c for c in columns if not _COLUMN.match(c)]
    if bad:
        raise InputError(f"--columns: not a column name: {', '.join(map(repr, bad))} (use e.g. o.obsid)")
    if schema and not _IDENTIFIER.match(schema):
        raise InputError(f"--schema: not a schema name: {schema!r}")
    prefix = f"{schema}." if schema else ""
    return "\n".join(
        [
            "SELECT DISTINCT " + ", ".join(columns),
            "FROM " + ", ".join(f"{prefix}{table} {alias}" for table, alias in TABLES),
            "WHERE " + " AND ".join([*conditions, *JOINS]),
            f"ORDER BY {order}",
        ]
    )


def build_query(
    *,
    min_significance: float = MIN_SIGNIFICANCE,
    require_powlaw_gamma: bool = True,
    require_bb_kt: bool = True,
    columns: Sequence[str] = PAPER_COLUMNS,
    schema: str | None = None,
    cone: Cone | tuple[float, float, float] | None = None,
) -> str:
    """The ADQL of the paper's CSC selection, with its options.

    Parameters
    ----------
    min_significance : float
        Keep detections with ``o.flux_significance_b`` above this (paper: 5).
    require_powlaw_gamma, require_bb_kt : bool
        Keep only detections with a power-law photon index / black-body temperature.
    columns : sequence of str
        Columns to select, as ``alias.column`` (aliases m, a, o, b, s).
    schema : str, optional
        Qualify the table names (``csc2``, ``csc21``); None or '' writes them bare, as
        the paper's CSCview query does.
    cone : Cone, optional
        Keep only master sources in the RA/Dec box around this circle; the columns must
        include ``m.ra`` and ``m.dec``, on which the exact circle is cut afterwards.
    """
    if not math.isfinite(float(min_significance)):
        raise InputError(f"--min-significance must be a finite number, got {min_significance}")
    if cone is not None and not isinstance(cone, Cone):
        cone = Cone(*cone)
    if cone is not None and columns and not {CONE_RA, CONE_DEC} <= set(columns):
        raise InputError(f"--cone: the columns must include {CONE_RA} and {CONE_DEC}, which the exact cone is cut on")
    conditions = [f"(o.flux_significance_b > {_number(min_significance)})"]
    conditions += ["(o.powlaw_gamma IS NOT NULL)"] if require_powlaw_gamma else []
    conditions += ["(o.bb_kt IS NOT NULL)"] if require_bb_kt else []
    box = cone_box_clause(cone) if cone is not None else None
    conditions += [f"({box})"] if box is not None else []
    return _select(columns, schema, conditions, "m.name")


@dataclasses.dataclass
class FetchConfig:
    """Where and how to run the query; the defaults are the module constants above."""

    release: str = DEFAULT_RELEASE
    service_url: str | None = None
    timeout: float = DEFAULT_TIMEOUT
    retries: int = DEFAULT_RETRIES
    #: Seconds of the retries' exponential back-off (urllib3's ``backoff_factor``).
    backoff: float = DEFAULT_BACKOFF
    maxrec: int = DEFAULT_MAXREC
    sync: bool = False
    poll_interval: float = POLL_INTERVAL
    max_poll_interval: float = MAX_POLL_INTERVAL
    request_timeout: float = REQUEST_TIMEOUT

    def __post_init__(self) -> None:
        if self.release not in RELEASES:
            raise InputError(f"--release: unknown CSC release {self.release!r}; use one of {', '.join(RELEASES)}")
        if not self.timeout > 0:
            raise InputError(f"--timeout must be positive, got {self.timeout:g}")
        check_retry_policy(self.retries, self.backoff, retries_option="--retries")
        if self.maxrec < 1:
            raise InputError(f"--maxrec must be positive, got {self.maxrec}")
        if self.service_url is not None and not re.match(r"^https?://[^\s/]+", self.service_url):
            raise InputError(f"--service-url: not an http(s) URL: {self.service_url!r}")

    @property
    def url(self) -> str:
        return (self.service_url or RELEASES[self.release].url).rstrip("/")


def describe(query: str, config: FetchConfig, cone: Cone | None = None) -> str:
    """What :func:`fetch` would send (the dry run): service, endpoint and the ADQL."""
    mode = "sync" if config.sync else "async"
    lines = [
        f"service: {config.url} (CSC {config.release} TAP)",
        f"endpoint: {config.url}/{mode} ({'synchronous' if config.sync else 'asynchronous UWS job'}), "
        f"MAXREC={config.maxrec}, time-out {config.timeout:g} s, {config.retries} retries",
    ]
    if cone is not None:
        lines.append(
            f"cone: the service returns the RA/Dec box around the circle; rows farther than "
            f"{cone.radius_arcmin:g} arcmin from ({cone.ra:g}, {cone.dec:g}) are then dropped here"
        )
    return "\n".join([*lines, "query:", query])


# -- running the query ---------------------------------------------------------------------

_ACTIVE = {"PENDING", "QUEUED", "EXECUTING", "RUN", "HELD", "SUSPENDED", "UNKNOWN"}

#: How a query of the TAP service fails: the HTTP layer (``requests.RequestException``, an
#: ``OSError``), pyvo's errors, or an answer astropy cannot parse (``ValueError``).
#: Anything else is a bug, not a failed service.
SERVICE_FAILURES = (OSError, ValueError, requests.RequestException, pyvo.dal.DALAccessError)


def _service(config: FetchConfig, timeout: float) -> pyvo.dal.TAPService:
    """pyvo's TAP client on a session that retries each request's transient failures."""
    session = ServiceSession(timeout, retries=config.retries, backoff=config.backoff, user_agent=pyvo_http.USER_AGENT)
    return pyvo.dal.TAPService(config.url, session=session)


def _check_complete(result: pyvo.dal.TAPResults, config: FetchConfig) -> pyvo.dal.TAPResults:
    status = (result.status[0] or "").upper() if result.status else ""
    if status == "OVERFLOW" or len(result) >= config.maxrec:
        raise ServiceError(
            f"the CSC TAP result from {config.url} was truncated at {len(result):,} rows (MAXREC "
            f"{config.maxrec:,} or the service's own limit); raise --maxrec, use the asynchronous "
            f"mode (no --sync) or split the sky with --cone; nothing written"
        )
    return result


def _run_sync(query: str, config: FetchConfig) -> tuple[pyvo.dal.TAPResults, dict[str, object]]:
    service = _service(config, config.timeout)
    log.info("sending the query to %s/sync (synchronous, time-out %g s)", config.url, config.timeout)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # pyvo's overflow warning: checked as an error
        result = service.run_sync(query, maxrec=config.maxrec)
    return _check_complete(result, config), {"mode": "sync"}


def _run_async(
    query: str, config: FetchConfig, sleep: Callable[[float], object], clock: Callable[[], float]
) -> tuple[pyvo.dal.TAPResults, dict[str, object]]:
    job = _service(config, config.request_timeout).submit_job(query, maxrec=config.maxrec)
    try:
        log.info("submitted job %s", job.url)
        job.run()
        _wait(job, config, sleep, clock)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            result = job.fetch_result()
        return _check_complete(result, config), {"mode": "async", "job_url": job.url}
    finally:
        try:
            job.delete()
        except Exception as exc:  # noqa: BLE001 -- best effort: the job expires on the service anyway
            log.debug("could not delete job: %s", one_line(exc))


def _wait(
    job: pyvo.dal.AsyncTAPJob, config: FetchConfig, sleep: Callable[[float], object], clock: Callable[[], float]
) -> None:
    """Look at the job's phase, ever less often, until it completes; a job that ends otherwise is not retried."""
    start, interval, last = clock(), config.poll_interval, None
    while True:
        phase, elapsed = job.phase, clock() - start
        log.info("job %s %s (%.0f s)", "phase" if phase != last else "still", phase, elapsed)
        last = phase
        if phase == "COMPLETED":
            return
        if phase in ("ERROR", "ABORTED"):
            job.raise_if_error()
            raise ServiceError(f"the CSC TAP job {job.url} ended in phase {phase}; retry later")
        if phase not in _ACTIVE:
            raise ServiceError(f"the CSC TAP job {job.url} is in phase {phase} and will not finish; retry later")
        if elapsed >= config.timeout:
            raise ServiceError(
                f"the CSC TAP job {job.url} did not finish within {config.timeout:g} s (phase {phase}); "
                f"raise --timeout or retry later, {LOCAL_COPY_HINT}"
            )
        sleep(min(interval, config.timeout - elapsed))
        interval = min(interval * 1.5, config.max_poll_interval)


def _service_error(exc: BaseException, config: FetchConfig) -> ServiceError:
    """One line for a failed query: what failed and what to do."""
    where, again, status = f"the CSC TAP service at {config.url}", attempts_text(exc), http_status(exc)
    kind = failure_kind(exc)
    if kind == "timeout":
        message = f"{where} did not answer in time{again}; retry later or raise --timeout, {LOCAL_COPY_HINT}"
    elif kind == "connection":
        message = (
            f"cannot connect to {where}{again} (no network, or the service is down); "
            f"check the connection or --service-url, {LOCAL_COPY_HINT}"
        )
    elif status == 429:
        message = (
            f"{where} is refusing requests for now (HTTP 429, too many requests){again}; "
            f"wait and retry, {LOCAL_COPY_HINT}"
        )
    elif status is not None:
        message = (
            f"{where} answered HTTP {status}{again}: {one_line(exc, 160)}; "
            f"retry later or check --service-url, {LOCAL_COPY_HINT}"
        )
    elif isinstance(exc, DALQueryError):
        message = f"{where} rejected the query: {one_line(exc, 200)}; check it with --dry-run (see --columns, --schema)"
    elif isinstance(exc, DALFormatError):
        message = (
            f"{where} sent an answer that is not a result VOTable ({one_line(exc, 160)}); "
            f"check --service-url, {LOCAL_COPY_HINT}"
        )
    else:
        message = f"{where} failed: {type(exc).__name__}: {one_line(exc, 200)}; {LOCAL_COPY_HINT}"
    return ServiceError(message)


def fetch(
    query: str,
    config: FetchConfig,
    *,
    sleep: Callable[[float], object] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> tuple[Table, dict[str, object]]:
    """Run ``query`` on the CSC TAP service and return ``(table, details)``.

    An asynchronous UWS job unless ``config.sync``; each HTTP request's transient failures
    are retried by the session. ``sleep`` and ``clock`` pace the looks at a job (tests
    pass their own, so as not to wait).

    Raises
    ------
    ServiceError
        The service failed, or the result was truncated.
    InputError
        The query returned no rows.
    """
    try:
        result, details = _run_sync(query, config) if config.sync else _run_async(query, config, sleep, clock)
    except ServiceError:
        raise
    except SERVICE_FAILURES as exc:
        raise _service_error(exc, config) from exc
    with _quiet():
        table = result.to_table()
    if len(table) == 0:
        raise InputError(
            f"the CSC query on {config.url} returned no rows; nothing written "
            f"(check the selection with --dry-run: --min-significance, --cone, --release)"
        )
    log.info("received %s rows and %d columns", f"{len(table):,}", len(table.colnames))
    return table, details


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """Silence astropy's complaints about the service's units and VOTable quirks (the values are unaffected)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", VOWarning)
        warnings.simplefilter("ignore", UnitsWarning)
        yield


def write_result(table: Table, output: str | Path, provenance: dict[str, object]) -> tuple[Path, Path]:
    """Write the result (VOTable, Parquet or CSV by extension) and its sidecar, both or neither."""
    output, sidecar = Path(output), provenance_path(output)
    if table_format(output, OUTPUT_FORMATS) == "votable":

        def content(temporary: Path) -> None:
            with _quiet():
                table.write(temporary, format="votable", overwrite=True)

        write_outputs([(content, output), (provenance, sidecar)])
    else:
        write_outputs([(table.to_pandas(), output), (provenance, sidecar)])
    return output, sidecar


def provenance(query: str, config: FetchConfig, table: Table, details: dict[str, object]) -> dict[str, object]:
    return {
        "service": "Chandra Source Catalog TAP",
        "service_url": config.url,
        "release": config.release,
        "mode": details.get("mode"),
        "job_url": details.get("job_url"),
        "cone": details.get("cone"),
        "maxrec": config.maxrec,
        "query": query,
        "retrieved_utc": utc_now(),
        "rows": len(table),
        "columns": list(table.colnames),
        "pyvo_version": pyvo.__version__,
        "astropy_version": astropy.__version__,
    }


def cut_to_cone(table: Table, cone: Cone, details: dict[str, object]) -> Table:
    """The rows of ``table`` within ``cone``; ``details`` gets the counts."""
    inside = within_cone(table, cone)
    n_inside = int(inside.sum())
    details["cone"] = {
        "ra_deg": cone.ra,
        "dec_deg": cone.dec,
        "radius_arcmin": cone.radius_arcmin,
        "rows_in_box": len(table),
        "rows_in_cone": n_inside,
    }
    log.info(
        "cone of %g arcmin around (%g, %g): %s of the %s rows in the RA/Dec box are within it, %s outside dropped",
        cone.radius_arcmin,
        cone.ra,
        cone.dec,
        f"{n_inside:,}",
        f"{len(table):,}",
        f"{len(table) - n_inside:,}",
    )
    if not n_inside:
        raise InputError(
            f"no CSC source within {cone.radius_arcmin:g} arcmin of ({cone.ra:g}, {cone.dec:g}) "
            f"({len(table):,} rows in the box around it); nothing written"
        )
    return table[inside]


def fetch_to_file(
    query: str,
    output: str | Path,
    config: FetchConfig,
    *,
    cone: Cone | None = None,
    sleep: Callable[[float], object] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> tuple[Path, Path]:
    """Run the query and write the result and ``<output>.provenance.json``; return the paths.

    With ``cone`` (the one the query was built with), the box's rows are cut to the circle first.
    """
    table_format(output, OUTPUT_FORMATS)  # fail on a bad extension before any request
    table, details = fetch(query, config, sleep=sleep, clock=clock)
    if cone is not None:
        table = cut_to_cone(table, cone, details)
    return write_result(table, output, provenance(query, config, table, details))


# -- one source by name (classify_source.py) --------------------------------------------------

#: What to tell the user of ``classify_source.py`` when the service cannot be used.
SOURCE_FILE_HINT = (
    "or pass a local file of the source's detections instead (classify_source.py FILE: VOTable, CSV, Parquet or FITS)"
)

#: Rows accepted for one source; a source has at most a few hundred detections.
SOURCE_MAXREC = 100_000


def build_source_query(name: str, *, columns: Sequence[str] = PAPER_COLUMNS, schema: str | None = None) -> str:
    """The ADQL for every per-observation detection of the master source ``name``.

    The columns and joins of :func:`build_query`, selected by ``m.name = '...'`` (an ADQL
    string, quotes doubled) and **without** the paper's selection, so that a detection
    lacking a feature comes back with a null and the user is told what is missing.
    """
    if not name or any(ord(c) < 32 or ord(c) == 127 for c in name):
        raise InputError(f"not a source name: {name!r}")
    literal = "'" + name.replace("'", "''") + "'"
    return _select(columns, schema, [f"(m.name = {literal})"], "o.obsid")


def fetch_source(
    name: str,
    config: FetchConfig,
    *,
    sleep: Callable[[float], object] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> tuple[Table, str]:
    """Every per-observation detection of the master source ``name``, and the query that asked for them.

    Raises
    ------
    ServiceError
        The service failed; the message says to pass a local file instead.
    InputError
        The CSC has no source of that name.
    """
    query = build_source_query(name, schema=RELEASES[config.release].schema)
    log.info("asking %s for the detections of %s", config.url, name)
    log.debug("query:\n%s", query)
    try:
        table, _ = fetch(query, config, sleep=sleep, clock=clock)
    except ServiceError as exc:
        message = str(exc)
        if LOCAL_COPY_HINT in message:
            raise ServiceError(message.replace(LOCAL_COPY_HINT, SOURCE_FILE_HINT)) from exc
        raise ServiceError(f"{message}; {SOURCE_FILE_HINT}") from exc
    except InputError:
        raise InputError(
            f"the CSC {config.release} at {config.url} has no source named {name!r} (check the name, or --release)"
        ) from None
    return table, query
