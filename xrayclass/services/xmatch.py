"""Stage 2 online: SIMBAD classes from the CDS X-Match service (``crossmatch.py --online``).

The stage-1 positions (row index, RA and Dec, nothing else) are uploaded through
astroquery's :class:`~astroquery.xmatch.XMatchClass` and matched against SIMBAD within
``radius`` arcsec, in chunks sent strictly one after another (CDS bans clients that run
jobs in parallel). Of the SIMBAD objects near a detection the nearest (smallest
``angDist``) is kept; detections without one keep their row with empty SIMBAD columns.
The caller joins the answer to the stage-1 rows
(:func:`xrayclass.stages.crossmatch.attach_matches`, which gives the unmatched
``main_type = 'NaN'``, as TOPCAT's "best match, all rows" crossmatch of the paper did).
SIMBAD changes: the August-2022 crossmatch (``--frozen``) reproduces the paper, and every
online run records its date in ``<output>.provenance.json``.
"""

import contextlib
import dataclasses
import io
import logging
import tempfile
from collections.abc import Sequence
from typing import Any

import astropy.units as u
import astroquery
import astroquery.exceptions
import numpy as np
import pandas as pd
import requests
from astropy.table import Table

from xrayclass.constants import MAIN_TYPE
from xrayclass.core.checks import require_columns, require_numeric
from xrayclass.exceptions import InputError
from xrayclass.services import (
    DEFAULT_BACKOFF,
    ServiceError,
    ServiceSession,
    attempts_text,
    check_retry_policy,
    failure_kind,
    http_status,
    utc_now,
)
from xrayclass.text import one_line

__all__ = [
    "DEFAULT_CHUNK_SIZE",
    "DEFAULT_RADIUS",
    "DEFAULT_RETRIES",
    "DEFAULT_TIMEOUT",
    "KEY_COLUMNS",
    "MAX_RADIUS",
    "XMatchConfig",
    "check_radius",
    "crossmatch_simbad",
    "describe_upload",
]

log = logging.getLogger(__name__)

#: The X-Match synchronous API on its current host, set on the client: astroquery 0.4.11
#: (pinned) still defaults to the old http://cdsxmatch.u-strasbg.fr.
DEFAULT_URL = "https://cdsxmatch.cds.unistra.fr/xmatch/api/v1/sync"
#: X-Match's name for its view of SIMBAD.
CATALOG = "simbad"
#: Match radius of the paper, arcsec; X-Match accepts at most 180.
DEFAULT_RADIUS = 1.0
MAX_RADIUS = 180.0
#: Rows uploaded per request.
DEFAULT_CHUNK_SIZE = 50_000
#: Seconds to wait for one chunk's answer (astroquery's default).
DEFAULT_TIMEOUT = 300.0
DEFAULT_RETRIES = 3

#: The uploaded columns, named so as not to collide with SIMBAD's own ra/dec in the answer.
ROW, RA, DEC = "row_index", "csc_ra", "csc_dec"
#: Columns the answer must have (after renaming), and the renaming: other spellings of
#: SIMBAD's columns, and its position named as TOPCAT names it in the frozen file.
#: ``main_type`` is SIMBAD's label (``Seyfert1`` today, ``Seyfert_1`` in 2022); its short
#: code ``otype`` stays a column of its own, never in place of ``main_type``.
KEY_COLUMNS = ("main_id", MAIN_TYPE, "other_types", "angDist")
RENAME = {
    "main_id": "main_id",
    "main_type": MAIN_TYPE,
    "otype": "otype",
    "other_types": "other_types",
    "otypes": "other_types",
    "angdist": "angDist",
    "ra": "ra_x",
    "dec": "dec_x",
}
#: What to tell the user when the service cannot be used.
FROZEN_HINT = "or use a frozen crossmatch with --frozen PATH"

#: How a query of X-Match fails: the HTTP layer (``requests.RequestException``, an
#: ``OSError``), astroquery's own errors, or an answer that is not a VOTable (astropy's
#: ``ValueError``). Anything else is a bug and is not reworded as a failed service.
SERVICE_FAILURES = (
    OSError,
    ValueError,
    requests.RequestException,
    astroquery.exceptions.InvalidQueryError,
    astroquery.exceptions.RemoteServiceError,
    astroquery.exceptions.TableParseError,
    astroquery.exceptions.TimeoutError,
)


@dataclasses.dataclass
class XMatchConfig:
    """How to run the online crossmatch; the defaults are the module constants above."""

    radius: float = DEFAULT_RADIUS
    chunk_size: int = DEFAULT_CHUNK_SIZE
    url: str = DEFAULT_URL
    catalog: str = CATALOG
    timeout: float = DEFAULT_TIMEOUT
    retries: int = DEFAULT_RETRIES
    #: Seconds of the retries' exponential back-off (urllib3's ``backoff_factor``).
    backoff: float = DEFAULT_BACKOFF
    #: astroquery's response cache; off, since SIMBAD changes and the date is recorded.
    cache: bool = False

    def __post_init__(self) -> None:
        check_radius(self.radius)
        if int(self.chunk_size) != self.chunk_size or self.chunk_size < 1:
            raise InputError(f"--chunk-size must be a positive integer, got {self.chunk_size}")
        if not self.timeout > 0:
            raise InputError(f"the X-Match time-out must be positive, got {self.timeout:g}")
        check_retry_policy(self.retries, self.backoff)


def check_radius(radius: float) -> float:
    """Raise :class:`InputError` unless 0 < radius <= 180 arcsec (X-Match's limit)."""
    if not (np.isfinite(radius) and 0 < radius <= MAX_RADIUS):
        raise InputError(
            f"--radius must be more than 0 and at most {MAX_RADIUS:g} arcsec (the X-Match limit), got {radius:g}"
        )
    return float(radius)


def upload_rows(stage1: pd.DataFrame) -> pd.DataFrame:
    """The rows to upload: stage-1 row number and position, for rows that have a position."""
    require_columns(stage1, ("ra", "dec"))
    stage1 = require_numeric(stage1, ("ra", "dec"))
    ra = stage1["ra"].to_numpy(dtype="float64")
    dec = stage1["dec"].to_numpy(dtype="float64")
    bad = ~(np.isfinite(ra) & np.isfinite(dec) & (np.abs(dec) <= 90))
    if bad.any():
        log.warning("%s rows without a valid position are not uploaded (no match)", f"{int(bad.sum()):,}")
    keep = np.flatnonzero(~bad)
    return pd.DataFrame({ROW: keep.astype("int64"), RA: ra[keep], DEC: dec[keep]})


def chunk_slices(n_rows: int, chunk_size: int) -> list[slice]:
    """Consecutive slices of at most ``chunk_size`` rows covering ``n_rows``."""
    return [slice(start, min(start + chunk_size, n_rows)) for start in range(0, n_rows, chunk_size)]


def describe_upload(stage1: pd.DataFrame, config: XMatchConfig) -> str:
    """What :func:`crossmatch_simbad` would send (the dry run), as text.

    The request is astroquery's own (``get_query_payload=True``). astroquery looks the
    catalog up in X-Match's table list first; the dry run sends nothing, so it takes the
    list to be the catalog alone, and says so.
    """
    upload = upload_rows(stage1)
    slices = chunk_slices(len(upload), config.chunk_size)
    client = _client(config, cache_dir=None, table_list=[config.catalog])
    fields, files = _query_chunk(client, upload.iloc[slices[0]] if slices else upload, config, get_query_payload=True)
    uploads = files.get("files", {})
    fields = {**fields, **{name: f"(uploaded file {filename}: see below)" for name, (filename, _) in uploads.items()}}
    lines = [
        f"service: CDS X-Match {config.url}, catalog {config.catalog!r}",
        f"radius: {config.radius:g} arcsec; best (smallest angDist) match kept, every row kept",
        f"upload: {len(upload):,} of {len(stage1):,} rows of the stage-1 table ({ROW}, {RA}, {DEC} only), "
        f"in {len(slices)} sequential chunk(s) of at most {config.chunk_size:,} rows",
        f"time-out {config.timeout:g} s per chunk, {config.retries} retries on transient failures",
        "request (astroquery XMatch.query, get_query_payload=True): POST " + config.url,
        "  form fields: " + ", ".join(f"{k}={v}" for k, v in fields.items()),
        f"  (before each request astroquery asks GET {config.url}/tables for X-Match's table list and "
        f"sends a catalog listed there as vizier:NAME; the dry run assumes {config.catalog!r} is listed)",
    ]
    for name, (filename, content) in uploads.items():
        lines.append(f"first lines of {filename} ({name}) in chunk 1:")
        lines.extend("    " + line for line in str(content).splitlines()[:4])
    return "\n".join([*lines, "nothing sent (dry run)"])


def _client(config: XMatchConfig, cache_dir: str | None, table_list: Sequence[str] | None = None) -> Any:
    """An astroquery X-Match client on ``config.url``; ``table_list`` stands in for the service's list."""
    # astroquery.xmatch prints a notice to stdout when the optional 'regions' package is
    # missing (used only for cone areas, which we do not use): keep it out of our output.
    with contextlib.redirect_stdout(io.StringIO()):
        from astroquery.xmatch import XMatchClass

    class Client(XMatchClass):
        def _request(self, method: str, url: str, *args: Any, **kwargs: Any) -> Any:
            if table_list is not None:
                raise AssertionError("a dry-run client sent a request; this is a bug")
            return super()._request(method, url, *args, **kwargs)

        def get_available_tables(self, *, cache: bool = True) -> list[str]:
            return list(table_list) if table_list is not None else super().get_available_tables(cache=cache)

    client = Client()
    # Every request goes through a session that retries transient failures and gives a
    # time-out to the table-list request, which astroquery sends without one.
    user_agent = client._session.headers.get("User-Agent")
    client._session = ServiceSession(
        config.timeout, retries=config.retries, backoff=config.backoff, user_agent=user_agent
    )
    client.URL = config.url
    client.TIMEOUT = config.timeout
    if cache_dir is not None:
        # The table-list lookup before each query caches whatever cache=False says: keep
        # that in a directory of this run, not in the user's cache.
        client.cache_location = cache_dir
    return client


def _query_chunk(client: Any, chunk: pd.DataFrame, config: XMatchConfig, get_query_payload: bool = False) -> Any:
    answer = client.query(
        cat1=Table.from_pandas(chunk),
        cat2=config.catalog,
        max_distance=config.radius * u.arcsec,
        colRA1=RA,
        colDec1=DEC,
        cache=config.cache,
        get_query_payload=get_query_payload,
    )
    if get_query_payload:
        return answer
    answer.remove_columns([name for name in answer.colnames if len(answer[name].shape) > 1])
    frame = answer.to_pandas()
    renames = {}
    for column in frame.columns:
        target = RENAME.get(column) or RENAME.get(column.lower())
        if target and target != column and target not in frame.columns:
            renames[column] = target
    frame = frame.rename(columns=renames)
    for column in frame.columns:
        if frame[column].dtype == object:
            frame[column] = frame[column].map(lambda v: v.decode("utf-8") if isinstance(v, bytes) else v)
    return frame


def _service_error(exc: BaseException, config: XMatchConfig, where_in_run: str) -> ServiceError:
    where, again, status = f"CDS X-Match at {config.url}", attempts_text(exc), http_status(exc)
    kind = failure_kind(exc)
    if kind == "timeout":
        message = (
            f"{where} did not answer within {config.timeout:g} s ({where_in_run}{again}); "
            f"retry later or use a smaller --chunk-size, {FROZEN_HINT}"
        )
    elif kind == "connection":
        message = (
            f"cannot connect to {where} ({where_in_run}{again}; no network, or the service "
            f"is down); check the connection, {FROZEN_HINT}"
        )
    elif status == 403 or "banned" in str(exc):  # astroquery raises its own HTTPError for 403
        message = (
            f"{where} refused the request (HTTP 403: the address may be banned for running "
            f"jobs in parallel); ask cds-question@unistra.fr, {FROZEN_HINT}"
        )
    elif status is not None:
        detail = one_line(exc, 160)
        advice = "retry later" if status >= 500 or status == 429 else "check --radius and the input positions"
        message = (
            f"{where} answered HTTP {status} ({where_in_run}{again})"
            f"{': ' + detail if detail else ''}; {advice}, {FROZEN_HINT}"
        )
    else:
        message = f"{where} failed ({where_in_run}): {type(exc).__name__}: {one_line(exc, 200)}; {FROZEN_HINT}"
    return ServiceError(message)


def nearest_answers(answers: pd.DataFrame, n_rows: int) -> pd.DataFrame:
    """One row per stage-1 row: the nearest SIMBAD object of ``answers`` (any number of
    candidates per ``row_index``), or empty columns where none."""
    missing = [c for c in (ROW, *KEY_COLUMNS) if c not in answers.columns]
    if missing and len(answers):
        raise ServiceError(
            f"the X-Match answer lacks the columns {', '.join(missing)}; has {', '.join(map(str, answers.columns))}"
        )
    for column in missing:
        answers[column] = pd.Series(dtype="float64" if column in ("angDist", ROW) else object)
    answers = answers.assign(**{ROW: pd.to_numeric(answers[ROW]).astype("int64")})
    best = answers.sort_values([ROW, "angDist"], kind="stable").drop_duplicates(ROW, keep="first").set_index(ROW)
    best = best.drop(columns=[c for c in (RA, DEC) if c in best.columns])
    order = [c for c in best.columns if c != "angDist"] + ["angDist"]
    return best[order].reindex(pd.RangeIndex(n_rows)).reset_index(drop=True)


def crossmatch_simbad(stage1: pd.DataFrame, config: XMatchConfig) -> tuple[pd.DataFrame, dict[str, object]]:
    """The SIMBAD columns of every stage-1 row (nearest object within the radius), and their provenance.

    Returns
    -------
    matches : pandas.DataFrame
        One row per stage-1 row, in order: SIMBAD's columns (``main_id``, ``ra_x``,
        ``dec_x``, ..., ``main_type``, ``other_types``, ...) and ``angDist``; empty where
        SIMBAD has no object within the radius.
    provenance : dict
        Service, radius, chunks, rows uploaded, candidates, rows matched and unmatched, and when.
    """
    started = utc_now()
    upload = upload_rows(stage1)
    slices = chunk_slices(len(upload), config.chunk_size)
    answers = []
    with tempfile.TemporaryDirectory(prefix="xrayclass-xmatch-") as cache_dir:
        client = _client(config, cache_dir)
        for number, part in enumerate(slices, start=1):  # one after another, never in parallel
            chunk, where = upload.iloc[part], f"chunk {number} of {len(slices)}"
            try:
                answer = _query_chunk(client, chunk, config)
            except SERVICE_FAILURES as exc:
                raise _service_error(exc, config, where) from exc
            rows = answer[ROW] if ROW in answer.columns else pd.Series(dtype="int64")
            unknown = rows[~rows.isin(chunk[ROW])]
            if len(unknown):
                raise ServiceError(
                    f"the X-Match answer to {where} names rows that were not uploaded "
                    f"(e.g. {unknown.iloc[0]}); nothing written"
                )
            log.info(
                "%s: rows %s-%s uploaded, %s candidates within %g arcsec",
                where,
                f"{part.start + 1:,}",
                f"{part.stop:,}",
                f"{len(answer):,}",
                config.radius,
            )
            answers.append(answer)
    non_empty = [a for a in answers if len(a)]
    combined = pd.concat(non_empty, ignore_index=True) if non_empty else (answers[0] if answers else pd.DataFrame())
    matches = nearest_answers(combined.copy(), len(stage1))
    provenance = {
        "service": "CDS X-Match",
        "service_url": config.url,
        "catalog": config.catalog,
        "radius_arcsec": config.radius,
        "best_match_only": True,
        "chunk_size": config.chunk_size,
        "chunks": len(slices),
        "rows": len(stage1),
        "rows_uploaded": len(upload),
        "candidates": len(combined),
        "rows_matched": int(matches["angDist"].notna().sum()),
        "rows_with_main_type": int(matches[MAIN_TYPE].notna().sum()) if len(matches) else 0,
        "rows_unmatched": int(matches["angDist"].isna().sum()),
        "started_utc": started,
        "finished_utc": utc_now(),
        "astroquery_version": astroquery.__version__,
        "note": "SIMBAD changes over time; the paper's crossmatch is the August-2022 frozen file",
    }
    return matches, provenance
