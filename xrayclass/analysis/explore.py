"""The results explorer: one self-contained HTML file per run (``analysis.py explore``).

The page needs no server and no network: plotly's JavaScript and the run's data are
inlined, so it opens from ``file://``. Everything interactive is JavaScript in
``templates/explorer.html.j2``; this module prepares the data: columns as base64 of
little-endian typed arrays (probabilities as uint16 thousandths), one JSON element with
markup characters escaped, written by the page as text, under a Content-Security-Policy
that allows only the page's own scripts by hash. Above ``max_sources`` sources (100,000)
a seeded sample is drawn, with a sky density layer binned here over all of them.
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import resources
from typing import Any

import numpy as np
import pandas as pd

from xrayclass.analysis.mock import SYNTHETIC_NOTE
from xrayclass.constants import AGGREGATE_CLASS, AGGREGATE_CLASSES, CLASSES, FEATURES, FORMULA_STARTS, NAME, OBSID
from xrayclass.core.preprocessing import LogMinMaxScaler

__all__ = [
    "ALADIN_ORIGIN",
    "ALADIN_SCRIPT",
    "DENSITY_BINS",
    "LABEL_NEXT_RULE",
    "LABEL_QUEUE",
    "MAX_SOURCES",
    "TRACK_PREFIX",
    "ExploreError",
    "RunTables",
    "build_payload",
    "content_security_policy",
    "label_next_order",
    "mollweide",
    "parse_mean_std",
    "plotly_js",
    "render",
]

log = logging.getLogger("xrayclass")

#: Sources embedded (and drawn) at most; above, a seeded sample plus a density layer.
MAX_SOURCES = 100_000

#: Bins of the sky density layer (Mollweide x by y) drawn when sources are sampled.
DENSITY_BINS = (180, 90)

#: Entries of the "label next" queue embedded in the page.
LABEL_QUEUE = 5_000

LABEL_NEXT_RULE = (
    "ambiguous sources first, by decreasing entropy of their ten mean class probabilities "
    "(the votes the classifier is least sure of); then the other sources by decreasing "
    "outlier percentile (the detections least like any reference of their class)"
)

TRACK_PREFIX = "track_"

#: Aladin Lite, loaded from the CDS only when the user asks for the sky view; the page's
#: Content-Security-Policy allows scripts from this origin and no other.
ALADIN_ORIGIN = "https://aladin.cds.unistra.fr"
ALADIN_SCRIPT = f"{ALADIN_ORIGIN}/AladinLite/api/v3/latest/aladin.js"


class ExploreError(ValueError):
    """The tables cannot make an explorer (missing columns, no sources)."""


@dataclass
class RunTables:
    """The tables an explorer is made of; ``detections`` and ``preprocessing`` may be None."""

    uniquely: pd.DataFrame
    ambiguous: pd.DataFrame | None = None
    detections: pd.DataFrame | None = None
    preprocessing: dict | None = None
    synthetic: bool = False
    title: str = "xrayclass results"


# -- projections ---------------------------------------------------------------------------


def mollweide(
    longitude_deg: np.ndarray, latitude_deg: np.ndarray, centre_deg: float = 0.0
) -> tuple[np.ndarray, np.ndarray]:
    """Mollweide ``(x, y)`` with longitude increasing to the left, as on the sky.

    ``x`` spans [-2 sqrt 2, 2 sqrt 2], ``y`` [-sqrt 2, sqrt 2]. The auxiliary angle solves
    ``2t + sin 2t = pi sin(lat)`` by Newton's method (vectorized; converged to 1e-12
    in well under 50 steps except at the poles, which are set exactly).
    """
    lon = np.radians(((np.asarray(longitude_deg, float) - centre_deg + 180.0) % 360.0) - 180.0)
    lat = np.radians(np.asarray(latitude_deg, float))
    target = np.pi * np.sin(lat)
    theta = lat.copy()
    for _ in range(50):
        f = 2 * theta + np.sin(2 * theta) - target
        derivative = 2 + 2 * np.cos(2 * theta)
        step = np.divide(f, derivative, out=np.zeros_like(f), where=derivative > 1e-12)
        theta -= step
        if np.all(np.abs(step) < 1e-12):
            break
    poles = np.abs(np.abs(lat) - np.pi / 2) < 1e-9
    theta[poles] = np.sign(lat[poles]) * np.pi / 2
    x = -(2 * np.sqrt(2) / np.pi) * lon * np.cos(theta)
    y = np.sqrt(2) * np.sin(theta)
    return x, y


def _graticule(step_lon: float = 60.0, step_lat: float = 30.0) -> dict:
    """Lines of the Mollweide grid as x/y lists with None separators (plotly style)."""
    xs: list = []
    ys: list = []
    lat = np.linspace(-90, 90, 91)
    for lon in np.arange(-180, 180 + 1e-9, step_lon):
        x, y = mollweide(np.full_like(lat, lon if lon < 180 else 179.999), lat)
        xs += [*np.round(x, 4).tolist(), None]
        ys += [*np.round(y, 4).tolist(), None]
    lon = np.linspace(-179.999, 179.999, 121)
    for b in np.arange(-90 + step_lat, 90, step_lat):
        x, y = mollweide(lon, np.full_like(lon, b))
        xs += [*np.round(x, 4).tolist(), None]
        ys += [*np.round(y, 4).tolist(), None]
    return {"x": xs, "y": ys}


# -- encoding ------------------------------------------------------------------------------


def _b64(values: np.ndarray, dtype: str) -> str:
    return base64.b64encode(np.ascontiguousarray(values, dtype=np.dtype(dtype).newbyteorder("<")).tobytes()).decode(
        "ascii"
    )


def _column(values: np.ndarray, dtype: str) -> dict[str, str]:
    return {"dtype": dtype, "b64": _b64(values, dtype)}


def parse_mean_std(column: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """The ``"mean±std"`` strings of a stage-4 table as two float arrays."""
    text = column.astype(str)
    parts = text.str.split("±", n=1, expand=True, regex=False)
    if parts.shape[1] != 2:
        raise ExploreError(f"column {column.name!r} is not of the form mean±std")
    return pd.to_numeric(parts[0], errors="coerce").to_numpy(float), pd.to_numeric(parts[1], errors="coerce").to_numpy(
        float
    )


def _thousandths(values: np.ndarray) -> np.ndarray:
    """Probabilities in [0, 1] as integers in thousandths; missing as 65535."""
    out = np.round(np.nan_to_num(values, nan=-1.0) * 1000.0)
    return np.where(out < 0, 65535, np.clip(out, 0, 1000)).astype(np.uint16)


# -- the sources ---------------------------------------------------------------------------


def _sources(tables: RunTables) -> pd.DataFrame:
    """One row per source, uniquely classified first, with ``hard``/``soft`` classes."""
    parts = [(tables.uniquely, "uniquely classified", "master_class", "master_class", False)]
    if tables.ambiguous is not None and len(tables.ambiguous):
        parts.append((tables.ambiguous, "ambiguous", "hard_master_class", "soft_master_class", True))
    for table, what, hard, soft, _ in parts:
        missing = [
            c for c in dict.fromkeys((NAME, hard, soft, "detection_count", "ra", "dec", *CLASSES)) if c not in table
        ]
        if missing:
            raise ExploreError(f"the {what} table lacks {', '.join(missing)}")
    sources = pd.concat(
        [
            table.assign(hard=table[hard], soft=table[soft], ambiguous=ambiguous)
            for table, _, hard, soft, ambiguous in parts
        ],
        ignore_index=True,
    )
    if not len(sources):
        raise ExploreError("no sources to show")
    return sources


def _class_codes(values: pd.Series) -> np.ndarray:
    """Index in CLASSES; 255 for anything else (e.g. ``Unclassified``)."""
    lookup = {name: i for i, name in enumerate(CLASSES)}
    return values.map(lookup).fillna(255).to_numpy(np.uint8)


def _entropy(probabilities: np.ndarray) -> np.ndarray:
    total = probabilities.sum(axis=1, keepdims=True)
    p = np.divide(probabilities, total, out=np.zeros_like(probabilities), where=total > 0)
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(p > 0, -p * np.log(p), 0.0)
    return terms.sum(axis=1)


def label_next_order(
    ambiguous: np.ndarray, mean_probabilities: np.ndarray, outlier_percentile: np.ndarray, limit: int = LABEL_QUEUE
) -> np.ndarray:
    """Indices of the sources in "label next" order (see :data:`LABEL_NEXT_RULE`)."""
    entropy = _entropy(np.nan_to_num(mean_probabilities))
    outlier = np.nan_to_num(outlier_percentile, nan=-1.0)
    # lexsort: last key first. Ambiguous before the rest; among ambiguous, entropy
    # descending; among the rest, outlier percentile descending; index breaks ties.
    index = np.arange(len(ambiguous))
    primary = np.where(ambiguous, -entropy, -outlier)
    order = np.lexsort((index, primary, ~ambiguous))
    return order[:limit]


def build_payload(tables: RunTables, max_sources: int = MAX_SOURCES, seed: int = 0) -> dict:
    """Everything the page needs, as JSON-ready values (see the module docstring)."""
    sources = _sources(tables)
    total = len(sources)
    shown = np.arange(total)
    sampled = total > max_sources
    ra_all = pd.to_numeric(sources["ra"], errors="coerce").to_numpy(float)
    dec_all = pd.to_numeric(sources["dec"], errors="coerce").to_numpy(float)

    from astropy import units as u
    from astropy.coordinates import SkyCoord

    galactic = SkyCoord(ra=np.nan_to_num(ra_all) * u.deg, dec=np.nan_to_num(dec_all) * u.deg).galactic
    gl_all, gb_all = galactic.l.deg, galactic.b.deg
    eq_x_all, eq_y_all = mollweide(ra_all, dec_all)
    gal_x_all, gal_y_all = mollweide(gl_all, gb_all)

    density = None
    if sampled:
        rng = np.random.default_rng(seed)
        shown = np.sort(rng.choice(total, size=max_sources, replace=False))
        density = {}
        for frame, (x, y) in {"eq": (eq_x_all, eq_y_all), "gal": (gal_x_all, gal_y_all)}.items():
            ok = np.isfinite(x) & np.isfinite(y)
            counts, xedges, yedges = np.histogram2d(
                x[ok], y[ok], bins=DENSITY_BINS, range=[[-2 * np.sqrt(2), 2 * np.sqrt(2)], [-np.sqrt(2), np.sqrt(2)]]
            )
            density[frame] = {
                "z": _column(counts.T.ravel(), "uint32"),
                "nx": DENSITY_BINS[0],
                "ny": DENSITY_BINS[1],
                "x0": float(xedges[0]),
                "dx": float(xedges[1] - xedges[0]),
                "y0": float(yedges[0]),
                "dy": float(yedges[1] - yedges[0]),
            }
    table = sources.iloc[shown].reset_index(drop=True)

    means, stds = zip(*(parse_mean_std(table[name]) for name in CLASSES), strict=True)
    mean_matrix = np.column_stack(means)

    columns: dict = {
        "ra": _column(ra_all[shown], "float64"),
        "dec": _column(dec_all[shown], "float64"),
        "l": _column(gl_all[shown], "float32"),
        "b": _column(gb_all[shown], "float32"),
        "eq_x": _column(eq_x_all[shown], "float32"),
        "eq_y": _column(eq_y_all[shown], "float32"),
        "gal_x": _column(gal_x_all[shown], "float32"),
        "gal_y": _column(gal_y_all[shown], "float32"),
        "hard": _column(_class_codes(table["hard"]), "uint8"),
        "soft": _column(_class_codes(table["soft"]), "uint8"),
        "ambiguous": _column(table["ambiguous"].to_numpy(np.uint8), "uint8"),
        "ndet": _column(pd.to_numeric(table["detection_count"], errors="coerce").fillna(0).to_numpy(), "uint32"),
    }
    for k in range(len(CLASSES)):
        columns[f"pm{k}"] = _column(_thousandths(means[k]), "uint16")
        columns[f"ps{k}"] = _column(_thousandths(stds[k]), "uint16")

    features_present = [f for f in FEATURES if f in table]
    raw = table[features_present].apply(pd.to_numeric, errors="coerce").to_numpy(float) if features_present else None
    for j, feature in enumerate(features_present):
        columns[f"raw:{feature}"] = _column(raw[:, j], "float32")  # type: ignore[index]
    preprocessed = False
    if tables.preprocessing is not None and len(features_present) == len(FEATURES):
        scaler = LogMinMaxScaler.from_dict(tables.preprocessing)
        with np.errstate(invalid="ignore", divide="ignore"):
            transformed = scaler.transform(raw)  # type: ignore[arg-type]
        for j, feature in enumerate(FEATURES):
            columns[f"pre:{feature}"] = _column(transformed[:, j], "float32")
        preprocessed = True

    outlier = np.full(len(table), np.nan)
    if "outlier_percentile_max" in table:
        outlier = pd.to_numeric(table["outlier_percentile_max"], errors="coerce").to_numpy(float)

    detections_payload = None
    if tables.detections is not None:
        detections_payload, det_outlier = _detections(tables.detections, table[NAME])
        if "outlier_percentile_max" not in table and det_outlier is not None:
            outlier = det_outlier
    columns["outlier"] = _column(outlier, "float32")

    queue = label_next_order(table["ambiguous"].to_numpy(bool), mean_matrix, outlier)
    payload: dict[str, Any] = {
        "meta": {
            "title": tables.title,
            "synthetic": bool(tables.synthetic),
            "synthetic_note": SYNTHETIC_NOTE if tables.synthetic else "",
            "generated": _made_at(),
            "n_total": int(total),
            "n_total_unique": int((~sources["ambiguous"]).sum()),
            "n_total_ambiguous": int(sources["ambiguous"].sum()),
            "n_shown": len(table),
            "sampled": bool(sampled),
            "seed": int(seed),
            "classes": list(CLASSES),
            "agg_classes": list(AGGREGATE_CLASSES),
            "agg_of_class": [AGGREGATE_CLASSES.index(AGGREGATE_CLASS[c]) for c in CLASSES],
            "features": features_present,
            "preprocessed": preprocessed,
            "label_next_rule": LABEL_NEXT_RULE,
            "formula_starts": list(FORMULA_STARTS),
        },
        "names": table[NAME].astype(str).tolist(),
        "columns": columns,
        "density": density,
        "graticule": _graticule(),
        "detections": detections_payload,
        "label_queue": _column(queue, "int32"),
    }
    payload["meta"]["data_sha256"] = _fingerprint(payload)
    return payload


def _fingerprint(payload: dict) -> str:
    """SHA-256 of everything the page shows but its header: the same tables give the same one."""
    shown = {key: value for key, value in payload.items() if key != "meta"}
    text = json.dumps(shown, sort_keys=True, separators=(",", ":"), allow_nan=False)
    return hashlib.sha256(text.encode()).hexdigest()


def _made_at() -> str | None:
    """The page's date: only when SOURCE_DATE_EPOCH sets it, so that a page is the same
    bytes whenever it is made from the same tables (the reproducible-builds convention)."""
    epoch = os.environ.get("SOURCE_DATE_EPOCH", "").strip()
    if not epoch.isdigit():
        return None
    return datetime.fromtimestamp(int(epoch), UTC).strftime("%Y-%m-%d %H:%M UTC")


def _detections(detections: pd.DataFrame, names: pd.Series) -> tuple[dict[str, Any] | None, np.ndarray | None]:
    """Per-detection columns of the shown sources, grouped by source in ``names`` order."""
    if NAME not in detections and "name_1" in detections:
        detections = detections.rename(columns={"name_1": NAME})
    needed = [NAME, OBSID, *CLASSES]
    if any(c not in detections for c in needed):
        log.warning(
            "the detection table lacks %s: the source panel shows no detections",
            ", ".join(c for c in needed if c not in detections),
        )
        return None, None
    position = pd.Series(np.arange(len(names)), index=pd.Index(names.astype(str)))
    where = detections[NAME].astype(str).map(position)
    keep = where.notna().to_numpy()
    rows = detections.loc[keep].assign(_source=where[keep].astype(np.int64).to_numpy())
    sort_keys = ["_source", OBSID]
    rows = rows.sort_values(sort_keys, kind="stable").reset_index(drop=True)
    counts = np.bincount(rows["_source"].to_numpy(), minlength=len(names))
    start = np.concatenate([[0], np.cumsum(counts)[:-1]])
    payload: dict = {
        "start": _column(start, "uint32"),
        "count": _column(counts, "uint32"),
        "obsid": _column(pd.to_numeric(rows[OBSID], errors="coerce").fillna(-1).to_numpy(), "int32"),
        "cluster": _column(
            pd.to_numeric(rows.get("cluster", pd.Series(-1, index=rows.index)), errors="coerce").fillna(-1).to_numpy(),
            "int16",
        ),
        "predicted": _column(
            _class_codes(rows["main_type"]) if "main_type" in rows else np.full(len(rows), 255), "uint8"
        ),
        "tracks": [],
        "strings": {},
    }
    for k, name in enumerate(CLASSES):
        payload[f"p{k}"] = _column(_thousandths(pd.to_numeric(rows[name], errors="coerce").to_numpy(float)), "uint16")
    outlier_by_source = None
    if "outlier_percentile" in rows:
        percentile = pd.to_numeric(rows["outlier_percentile"], errors="coerce").to_numpy(float)
        payload["outlier"] = _column(percentile, "float32")
        outlier_by_source = (
            pd.Series(percentile).groupby(rows["_source"].to_numpy()).max().reindex(range(len(names))).to_numpy(float)
        )
    for column in ("driven_by", "simbad_main_type"):
        if column in rows:
            values = rows[column].fillna("").astype(str)
            codes, uniques = pd.factorize(values)
            payload["strings"][column] = {"values": uniques.tolist(), "codes": _column(codes, "int16")}
    for column in [c for c in rows.columns if c.startswith(TRACK_PREFIX)]:
        payload["tracks"].append(column[len(TRACK_PREFIX) :])
        payload[column] = _column(pd.to_numeric(rows[column], errors="coerce").to_numpy(float), "float32")
    return payload, outlier_by_source


# -- rendering -----------------------------------------------------------------------------


def plotly_js() -> str:
    """The plotly.js bundle shipped inside the plotly Python package (no CDN)."""
    from plotly.offline import get_plotlyjs

    return get_plotlyjs()


def _script_hash(text: str) -> str:
    """The CSP source that allows exactly the inline script ``text`` (its SHA-256)."""
    return "'sha256-" + base64.b64encode(hashlib.sha256(text.encode("utf-8")).digest()).decode("ascii") + "'"


def content_security_policy(inline_scripts: Sequence[str]) -> str:
    """The page's Content-Security-Policy: its own inline scripts, by hash, and Aladin Lite.

    ``'unsafe-eval'``: plotly's WebGL traces compile their drawing code with ``Function``
    (without it they show "WebGL is not supported") and Aladin Lite compiles WebAssembly;
    no inline handler or injected ``<script>`` can run. Styles are ``'unsafe-inline'``
    because plotly writes them at run time; images and fetches over HTTPS are Aladin
    Lite's sky tiles. Nothing may be framed, embedded or submitted.
    """
    scripts = " ".join(_script_hash(text) for text in inline_scripts)
    return "; ".join(
        [
            "default-src 'none'",
            f"script-src {scripts} 'unsafe-eval' {ALADIN_ORIGIN}",
            f"style-src 'unsafe-inline' {ALADIN_ORIGIN}",
            "img-src data: blob: https:",
            "connect-src https:",
            "font-src data: https:",
            "worker-src blob:",
            "base-uri 'none'",
            "form-action 'none'",
        ]
    )


def render(payload: dict) -> str:
    """The explorer page: the template with plotly.js and the data inlined.

    The data travel as JSON in a ``<script type="application/json">`` element, with ``<``,
    ``>``, ``&`` and ``'`` written as ``\\u`` escapes (so that no value can end the element
    or open a comment in it), and the page's script reads them with ``JSON.parse`` and
    writes them as text. The Content-Security-Policy (:func:`content_security_policy`)
    names the SHA-256 of each inline script, computed here from the very text written.
    """
    import jinja2
    import plotly

    template_text = (resources.files("xrayclass") / "templates" / "explorer.html.j2").read_text(encoding="utf-8")
    environment = jinja2.Environment(autoescape=True, undefined=jinja2.StrictUndefined)
    template = environment.from_string(template_text)
    script_context = {"aladin_script": ALADIN_SCRIPT}
    app_script = "".join(template.blocks["app_script"](template.new_context(script_context)))
    # Inside <script>, "</script" would end the element; in a JavaScript string "<\/" is "</".
    library = plotly_js().replace("</script", "<\\/script")
    return template.render(
        meta=payload["meta"],
        plotly_js=jinja2.utils.markupsafe.Markup(library),
        data_json=jinja2.utils.htmlsafe_json_dumps(payload, separators=(",", ":"), allow_nan=False),
        plotly_version=plotly.__version__,
        content_security_policy=content_security_policy([library, app_script]),
        **script_context,
    )
