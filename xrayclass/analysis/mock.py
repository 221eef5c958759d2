"""A SYNTHETIC CSC-like catalog with known truth, for testing and scaling the pipeline.

Nothing here is real data. Source names start with ``MOCK J`` and every table written
from it says so. The catalog has the columns of the paper's CSC query, so that all
four stages run on it unchanged, plus two columns the pipeline never uses:

* ``true_class``: the hidden class of the source (one of the ten classes);
* the matching mock SIMBAD catalog (written beside it) holds what a 1-arcsec SIMBAD
  crossmatch would find: objects for a minority of the sources, with the true class,
  an uninformative type (``X``, ``Star``...) or another type (candidates, galaxies...).

How features are made
---------------------
Each class has a mean position in a small space of physical factors: spectral
hardness, absorption and variability. A source draws its factors around its class's
mean (times ``separation``) with a source-to-source scatter, and each detection of it
scatters again around the source. The 12 raw features follow from the factors
through fixed, monotonic maps (tanh for hardness ratios, a linear photon index, a
log-normal blackbody temperature, logistic variability probabilities, log-normal
variability ratios) plus per-feature noise. ``separation`` therefore tunes how far
apart the classes are relative to their scatter: 0 makes them indistinguishable, and
the default (1.25) makes the aggregated classes recoverable well above chance while
the fine classes inside a family overlap, as in the real data.

Multiplicity follows a discrete power law (most sources have one detection, a tail
has tens); galactic classes (XB and YSO families) lie near the galactic plane, AGN
families are isotropic. Generation is chunked with a fixed chunk size, so a given
seed gives the same catalog at any size, in bounded memory.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from xrayclass.constants import AGGREGATE_CLASS, CLASSES

__all__ = [
    "BANDS",
    "CLASS_FACTORS",
    "CLASS_SHARES",
    "CSC_COLUMNS",
    "MAX_DETECTIONS_PER_SOURCE",
    "MOCK_PREFIX",
    "MULTIPLICITY_INDEX",
    "OTHER_TYPES",
    "SIMBAD_COLUMNS",
    "SOURCES_PER_CHUNK",
    "SYNTHETIC_NOTE",
    "UNINFORMATIVE_SHARES",
    "MockSettings",
    "describe",
    "format_accuracy",
    "generate",
    "mock_accuracy",
    "mock_names",
    "source_names",
]

log = logging.getLogger(__name__)

MOCK_PREFIX = "MOCK J"
SYNTHETIC_NOTE = "SYNTHETIC mock catalog made by xrayclass.analysis.mock: not real data"

#: Sources generated per chunk; fixed so that the catalog depends only on the seed.
SOURCES_PER_CHUNK = 200_000

#: Class mean of the (hardness, absorption, variability) factors, in units of the
#: source-to-source scatter.
CLASS_FACTORS = {
    "QSO": (-0.7, -0.9, -1.1),
    "AGN": (-0.2, -0.3, -0.9),
    "Seyfert_1": (-0.5, -0.5, -0.5),
    "Seyfert_2": (0.7, 1.8, -0.9),
    "HMXB": (1.6, 1.3, 0.5),
    "LMXB": (0.4, 0.2, 0.3),
    "XB": (0.9, 0.6, 0.9),
    "YSO": (0.4, 1.1, 1.3),
    "TTau*": (-0.5, 0.3, 1.0),
    "Orion_V*": (0.0, 0.7, 1.8),
}

#: Share of sources of each class (loosely the SIMBAD class mix of the paper's Table 3).
CLASS_SHARES = {
    "QSO": 0.22,
    "AGN": 0.07,
    "Seyfert_1": 0.08,
    "Seyfert_2": 0.03,
    "HMXB": 0.10,
    "LMXB": 0.05,
    "XB": 0.04,
    "YSO": 0.16,
    "TTau*": 0.07,
    "Orion_V*": 0.18,
}

#: Power-law index of the detections-per-source distribution, by aggregated class:
#: crowded galactic fields and nearby galaxies are observed many times.
MULTIPLICITY_INDEX = {"AGN": 2.9, "Seyfert": 2.9, "XB": 2.2, "YSO": 2.4}
MAX_DETECTIONS_PER_SOURCE = 150

#: SIMBAD-like types a source can carry besides its true class.
UNINFORMATIVE_SHARES = {
    "X": 0.42,
    "Star": 0.30,
    "PartofG": 0.10,
    "Radio": 0.05,
    "IR": 0.05,
    "UV": 0.03,
    "Blue": 0.03,
    "gamma": 0.01,
    "**": 0.01,
}
OTHER_TYPES = {
    "AGN": ("Galaxy", "BLLac", "AGN_Candidate", "QSO_Candidate", "RadioG"),
    "Seyfert": ("Galaxy", "LINER", "AGN_Candidate"),
    "XB": ("XB*_Candidate", "Pulsar", "GlCl", "CataclyV*"),
    "YSO": ("YSO_Candidate", "Em*", "BYDra", "SB*"),
}

#: Columns of the paper's CSC query, in its order.
BANDS = ("b", "h", "m", "s")
CSC_COLUMNS = (
    "name",
    "obsid",
    "region_id",
    "theta",
    "ra",
    "dec",
    "significance",
    "likelihood",
    "src_area_b",
    "flux_aper_b",
    "hard_hm",
    "hard_hs",
    "hard_ms",
    "powlaw_gamma",
    "powlaw_gamma_lolim",
    "powlaw_gamma_hilim",
    "bb_kt",
    "bb_kt_lolim",
    "bb_kt_hilim",
    *[f"var_{q}_{band}" for band in BANDS for q in ("prob", "sigma", "mean", "min", "max")],
    *[f"ks_prob_{band}" for band in BANDS],
    *[f"kp_prob_{band}" for band in BANDS],
    "gti_start",
    "gti_stop",
    "gti_elapse",
)
SIMBAD_COLUMNS = ("main_id", "ra", "dec", "main_type", "other_types")


@dataclass
class MockSettings:
    """Knobs of the mock catalog (defaults give the behaviour described in the module)."""

    separation: float = 1.25  # class means relative to the scatter; 0: classes identical
    # Scatter of sources around their class, of detections around their source; noise per feature.
    source_scatter: float = 0.55
    detection_scatter: float = 0.25
    feature_noise: float = 0.25
    # Shares of sources whose SIMBAD counterpart has their true class, an uninformative
    # type or another type (the rest have none); of labels moved to a class of the same family.
    labeled_share: float = 0.30
    uninformative_share: float = 0.14
    other_type_share: float = 0.08
    label_noise: float = 0.05
    # Shares of detections without hard- or soft-band variability (dropped in stage 1).
    missing_hard_band: float = 0.15
    missing_soft_band: float = 0.06
    class_shares: dict = field(default_factory=lambda: dict(CLASS_SHARES))

    def validate(self) -> None:
        if self.separation < 0:
            raise ValueError("separation must be >= 0")
        shares = self.labeled_share + self.uninformative_share + self.other_type_share
        if not 0 <= shares <= 1:
            raise ValueError("labeled, uninformative and other-type shares must add up to at most 1")
        if set(self.class_shares) != set(CLASSES):
            raise ValueError(f"class_shares must give a share for each of {CLASSES}")


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def _multiplicities(rng: np.random.Generator, families: np.ndarray, limit: int) -> np.ndarray:
    """Detections per source: a discrete power law truncated at ``limit``."""
    counts = np.empty(len(families), dtype=np.int64)
    n = np.arange(1, limit + 1)
    for family, index in MULTIPLICITY_INDEX.items():
        members = families == family
        weights = n**-index
        counts[members] = rng.choice(n, size=int(members.sum()), p=weights / weights.sum())
    return counts


def _sky_positions(rng: np.random.Generator, families: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """ICRS ra, dec (deg): galactic families near the plane, the others isotropic."""
    from astropy import units as u
    from astropy.coordinates import SkyCoord

    n = len(families)
    ra = rng.uniform(0, 360, n)
    dec = np.degrees(np.arcsin(rng.uniform(-1, 1, n)))
    galactic = np.isin(families, ("XB", "YSO"))
    # Some X-ray binaries sit in other galaxies, anywhere on the sky.
    galactic &= ~((families == "XB") & (rng.uniform(size=n) < 0.3))
    k = int(galactic.sum())
    if k:
        longitude = np.where(rng.uniform(size=k) < 0.5, rng.uniform(0, 360, k), rng.normal(0, 40, k)) % 360
        latitude = np.clip(rng.normal(0, np.where(families[galactic] == "YSO", 8.0, 5.0)), -89.9, 89.9)
        icrs = SkyCoord(l=longitude * u.deg, b=latitude * u.deg, frame="galactic").icrs
        ra[galactic], dec[galactic] = icrs.ra.deg, icrs.dec.deg
    return ra, dec


def _position_cells(ra: np.ndarray, dec: np.ndarray) -> np.ndarray:
    """Integer id of the CSC-name cell (0.1 s of RA by 1 arcsec of Dec) of each position."""
    ra_tenths = np.floor(ra / 15 * 36000).astype(np.int64)  # tenths of a second of time
    dec_arcsec = np.floor((dec + 90) * 3600).astype(np.int64)
    return ra_tenths * 648_001 + dec_arcsec


def _unique_positions(ra: np.ndarray, dec: np.ndarray, used: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Nudge positions by 1 arcsec in Dec until no two sources share a name cell."""
    for _ in range(100):
        cells = _position_cells(ra, dec)
        order = np.argsort(cells, kind="stable")
        repeated = np.zeros(len(cells), dtype=bool)
        repeated[order[1:]] = cells[order[1:]] == cells[order[:-1]]
        if used.size:
            repeated |= np.isin(cells, used)
        if not repeated.any():
            return ra, dec, cells
        dec = np.where(repeated, np.where(dec < 89, dec + 1 / 3600, dec - 1 / 3600), dec)
    raise RuntimeError("could not place mock sources in distinct name cells")


def mock_names(names: pd.Series | np.ndarray | list[str]) -> np.ndarray:
    """Which source names are mock ones (``MOCK J...``, and the mock's injected ``MOCK ...``)."""
    return pd.Series(names, dtype=object).astype(str).str.startswith(MOCK_PREFIX.split()[0]).to_numpy(bool)


def source_names(ra: np.ndarray, dec: np.ndarray) -> np.ndarray:
    """CSC-style names, ``MOCK Jhhmmss.s+ddmmss``, truncated as the CSC truncates."""
    tenths = np.floor(ra / 15 * 36000).astype(np.int64)
    hours, rest = np.divmod(tenths, 36000)
    minutes, rest = np.divmod(rest, 600)
    seconds, tenth = np.divmod(rest, 10)
    arcsec = np.floor(np.abs(dec) * 3600).astype(np.int64)
    degrees, rest = np.divmod(arcsec, 3600)
    arcmin, arcsec = np.divmod(rest, 60)

    def two(values: np.ndarray) -> np.ndarray:
        return np.strings.zfill(values.astype(str), 2)

    sign = np.where(dec < 0, "-", "+")
    parts: list[Any] = [
        np.full(len(ra), MOCK_PREFIX),
        two(hours),
        two(minutes),
        two(seconds),
        ".",
        tenth.astype(str),
        sign,
        two(degrees),
        two(arcmin),
        two(arcsec),
    ]
    name = parts[0]
    for part in parts[1:]:
        name = np.strings.add(name, part)
    return name


def _features(
    rng: np.random.Generator, factors: np.ndarray, settings: MockSettings
) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Raw CSC columns of each detection from its (hardness, absorption, variability) factors."""
    n = len(factors)
    hardness, absorption, variability = factors.T

    def noise(scale: float = 1.0) -> np.ndarray:
        return rng.normal(0.0, settings.feature_noise * scale, n)

    # Coefficients keep the hardness ratios mostly inside (-0.6, 0.6), as in the CSC.
    columns = {
        "hard_hm": np.tanh(0.25 * hardness + 0.10 * absorption + 0.05 + noise(0.4)),
        "hard_ms": np.tanh(0.10 * hardness + 0.30 * absorption - 0.30 + noise(0.4)),
        "hard_hs": np.tanh(0.25 * hardness + 0.35 * absorption - 0.25 + noise(0.5)),
        "powlaw_gamma": 1.9 - 0.30 * hardness - 0.15 * absorption + noise(0.8),
        "bb_kt": 0.55 * np.exp(0.25 * hardness + 0.10 * absorption + noise(0.8)),
    }
    gamma = columns["powlaw_gamma"]
    columns["powlaw_gamma_lolim"] = gamma - rng.uniform(0.05, 0.6, n)
    columns["powlaw_gamma_hilim"] = gamma + rng.uniform(0.05, 0.6, n)
    kt = columns["bb_kt"]
    columns["bb_kt_lolim"] = kt * rng.uniform(0.6, 0.95, n)
    columns["bb_kt_hilim"] = kt * rng.uniform(1.05, 1.6, n)

    rate = np.exp(rng.normal(-4.6, 1.1, n))  # broad-band count rate, counts/s
    band_share = {"b": 1.0, "h": 0.35, "m": 0.3, "s": 0.35}
    for band in BANDS:
        probability = _sigmoid(1.6 * variability - 1.6 + noise(2.5))
        ratio = 0.004 * np.exp(1.6 * variability + noise(4.0))
        constant = rng.uniform(size=n) < 0.02  # a flat light curve: no scatter at all
        ratio[constant] = 0.0
        mean = rate * band_share[band] * np.exp(rng.normal(0, 0.3, n))
        columns[f"var_prob_{band}"] = probability
        columns[f"var_mean_{band}"] = mean
        columns[f"var_sigma_{band}"] = ratio * mean
        if band == "b":
            # Mid-range over mean: exactly 1 for a flat light curve, above 1 for flares.
            flaring = probability > 0.5
            newq = np.where(flaring, 1.0 + 0.05 * np.exp(1.2 * variability + noise(3.0)), 1.0)
            low = np.clip(1.0 - ratio * rng.uniform(1, 3, n), 0.0, 1.0)
            low = np.where(flaring, low, 1.0)
            columns["var_min_b"] = low * mean
            columns["var_max_b"] = (2 * newq - low) * mean
        else:
            spread = np.clip(ratio * rng.uniform(1, 3, n), 0, 0.99)
            columns[f"var_min_{band}"] = mean * (1 - spread)
            columns[f"var_max_{band}"] = mean * (1 + spread)
        columns[f"ks_prob_{band}"] = _sigmoid(1.6 * variability - 1.0 + noise(3.0))
        columns[f"kp_prob_{band}"] = _sigmoid(1.6 * variability - 1.0 + noise(3.0))
    return columns, rate


def _simbad_types(
    rng: np.random.Generator, classes: np.ndarray, families: np.ndarray, settings: MockSettings
) -> np.ndarray:
    """What a 1-arcsec SIMBAD match gives each source ('' where there is no object)."""
    n = len(classes)
    draw = rng.uniform(size=n)
    labeled = draw < settings.labeled_share
    uninformative = (~labeled) & (draw < settings.labeled_share + settings.uninformative_share)
    other = (~labeled & ~uninformative) & (
        draw < settings.labeled_share + settings.uninformative_share + settings.other_type_share
    )
    types = np.full(n, "", dtype=object)
    types[labeled] = classes[labeled]
    # Some SIMBAD classes are wrong within the family (a QSO listed as AGN, ...).
    family_members = {f: [c for c in CLASSES if AGGREGATE_CLASS[c] == f] for f in MULTIPLICITY_INDEX}
    wrong = labeled & (rng.uniform(size=n) < settings.label_noise)
    for k in np.flatnonzero(wrong):
        types[k] = rng.choice(family_members[families[k]])
    names, shares = zip(*UNINFORMATIVE_SHARES.items(), strict=False)
    shares = np.array(shares) / sum(shares)
    types[uninformative] = rng.choice(np.array(names, dtype=object), size=int(uninformative.sum()), p=shares)
    for family, choices in OTHER_TYPES.items():
        members = other & (families == family)
        types[members] = rng.choice(np.array(choices, dtype=object), size=int(members.sum()))
    return types


def _chunk(
    rng: np.random.Generator,
    first_source: int,
    n_sources: int,
    settings: MockSettings,
    used_cells: np.ndarray,
    remaining_detections: int,
) -> tuple[pd.DataFrame, pd.DataFrame, np.ndarray]:
    classes_all = np.array(list(settings.class_shares), dtype=object)
    shares = np.array(list(settings.class_shares.values()), dtype=float)
    classes = rng.choice(classes_all, size=n_sources, p=shares / shares.sum())
    class_index = pd.Index(classes_all).get_indexer(classes)
    families = np.array([AGGREGATE_CLASS[c] for c in classes_all], dtype=object)[class_index]
    counts = _multiplicities(rng, families, MAX_DETECTIONS_PER_SOURCE)
    total = np.cumsum(counts)
    if total[-1] > remaining_detections:  # the last chunk: stop at the requested size
        keep = int(np.searchsorted(total, remaining_detections)) + 1
        classes, families, counts = classes[:keep], families[:keep], counts[:keep]
        class_index = class_index[:keep]
        counts[-1] -= int(counts.sum() - remaining_detections)
        n_sources = keep
    ra, dec = _sky_positions(rng, families)
    ra, dec, cells = _unique_positions(ra, dec, used_cells)
    names = source_names(ra, dec)

    class_means = np.array([CLASS_FACTORS[c] for c in classes_all])[class_index]
    source_factors = settings.separation * class_means + rng.normal(0, settings.source_scatter, (n_sources, 3))
    row_source = np.repeat(np.arange(n_sources), counts)
    factors = source_factors[row_source] + rng.normal(0, settings.detection_scatter, (len(row_source), 3))
    columns, rate = _features(rng, factors, settings)
    n = len(row_source)

    start_obsid = rng.integers(1, 30_000, n_sources)
    step = rng.integers(1, 900, n_sources)
    within = np.arange(n) - np.repeat(np.cumsum(counts) - counts, counts)
    obsid = (start_obsid[row_source] + within * step[row_source]) % 30_000 + 1
    theta = rng.uniform(0, 15, n)
    gti_start = rng.uniform(6.5e7, 7.0e8, n)
    elapse = rng.uniform(2e3, 1.8e5, n)
    detections = {
        "name": names[row_source],
        "obsid": obsid.astype(np.int32),
        "region_id": rng.integers(1, 300, n).astype(np.int32),
        "theta": theta,
        "ra": ra[row_source],
        "dec": dec[row_source],
        "significance": 5 + rng.gamma(1.5, 10, n),
        "likelihood": np.exp(rng.normal(7.2, 1.3, n)),
        "src_area_b": np.exp(rng.normal(1.5, 2.0, n)),
        "flux_aper_b": rate * 6e-12 * np.exp(rng.normal(0, 0.2, n)),
        **columns,
        "gti_start": gti_start,
        "gti_stop": gti_start + elapse,
        "gti_elapse": elapse,
    }
    table = pd.DataFrame({name: detections[name] for name in CSC_COLUMNS})
    missing_hard = rng.uniform(size=n) < settings.missing_hard_band
    missing_soft = rng.uniform(size=n) < settings.missing_soft_band
    for quantity in ("prob", "sigma", "mean", "min", "max"):
        table.loc[missing_hard, f"var_{quantity}_h"] = np.nan
        table.loc[missing_soft, f"var_{quantity}_s"] = np.nan
    table["true_class"] = classes[row_source]
    table = table.sort_values(["name", "obsid"], kind="stable").reset_index(drop=True)

    simbad = _simbad_catalog(rng, first_source, names, ra, dec, classes, families, settings)
    return table, simbad, cells


def _simbad_catalog(
    rng: np.random.Generator,
    first_source: int,
    names: np.ndarray,
    ra: np.ndarray,
    dec: np.ndarray,
    classes: np.ndarray,
    families: np.ndarray,
    settings: MockSettings,
) -> pd.DataFrame:
    """Mock SIMBAD objects near the sources that have a counterpart, plus a few decoys."""
    from astropy import units as u
    from astropy.coordinates import SkyCoord

    types = _simbad_types(rng, classes, families, settings)
    has_object = types != ""
    # Counterparts within 0.5 arcsec; decoys 1.5-4 arcsec away from sources without one
    # (beyond a 1-arcsec match radius: a crossmatch must not pick them).
    decoy = (~has_object) & (rng.uniform(size=len(names)) < 0.05)
    offsets = np.where(has_object, rng.uniform(0, 0.5, len(names)), rng.uniform(1.5, 4.0, len(names)))
    chosen = has_object | decoy
    position = SkyCoord(ra[chosen] * u.deg, dec[chosen] * u.deg).directional_offset_by(
        rng.uniform(0, 360, int(chosen.sum())) * u.deg, offsets[chosen] * u.arcsec
    )
    decoy_types = rng.choice(np.array(list(UNINFORMATIVE_SHARES), dtype=object), size=len(names))
    object_types = np.where(has_object, types, decoy_types)[chosen]
    serial = first_source + np.flatnonzero(chosen)
    main_id = np.strings.add("MOCK SIMBAD ", serial.astype(str))
    other = np.strings.add(object_types.astype(str), "|X")
    return pd.DataFrame(
        {
            "main_id": main_id,
            "ra": position.ra.deg,
            "dec": position.dec.deg,
            "main_type": object_types.astype(str),
            "other_types": other,
        }
    )


def generate(
    n_detections: int, seed: int, settings: MockSettings | None = None
) -> Iterator[tuple[pd.DataFrame, pd.DataFrame]]:
    """Yield ``(detections, simbad)`` chunks of a mock catalog of ``n_detections`` rows."""
    settings = settings or MockSettings()
    settings.validate()
    if n_detections < 1:
        raise ValueError("n_detections must be positive")
    used = np.empty(0, dtype=np.int64)
    produced, first_source, chunk = 0, 0, 0
    while produced < n_detections:
        rng = np.random.default_rng([seed, chunk])
        table, simbad, cells = _chunk(rng, first_source, SOURCES_PER_CHUNK, settings, used, n_detections - produced)
        used = np.union1d(used, cells)
        produced += len(table)
        first_source += len(cells)
        chunk += 1
        log.debug("mock chunk %d: %s detections (%s in all)", chunk, f"{len(table):,}", f"{produced:,}")
        yield table, simbad


def describe(settings: MockSettings) -> dict[str, Any]:
    """The settings as plain values, for provenance."""
    return {"note": SYNTHETIC_NOTE, **asdict(settings)}


def mock_accuracy(classified: pd.DataFrame, uniquely: pd.DataFrame | None = None) -> dict[str, Any]:
    """How well the pipeline recovered the hidden classes of a mock catalog."""
    scored = classified[classified["main_type"].isin(CLASSES)]
    true_family = scored["true_class"].map(AGGREGATE_CLASS)
    predicted_family = scored["main_type"].map(AGGREGATE_CLASS)
    result = {
        "detections_scored": len(scored),
        "accuracy": float((scored["main_type"] == scored["true_class"]).mean()),
        "aggregated_accuracy": float((predicted_family == true_family).mean()),
        "aggregated_chance": float(true_family.value_counts(normalize=True).max()),
    }
    if uniquely is not None and len(uniquely):
        truth = classified.drop_duplicates("name").set_index("name")["true_class"].map(AGGREGATE_CLASS)
        result["sources_scored"] = len(uniquely)
        result["source_aggregated_accuracy"] = float(
            (uniquely["agg_master_class"].to_numpy() == truth.reindex(uniquely["name"]).to_numpy()).mean()
        )
    return result


def format_accuracy(scores: Mapping[str, Any]) -> str:
    """One paragraph stating the recovered accuracy of a mock run, labeled as synthetic."""
    text = (
        f"MOCK catalog (synthetic, known truth): {scores['detections_scored']:,} unlabeled detections "
        f"classified; class accuracy {scores['accuracy']:.3f}; aggregated-class accuracy "
        f"{scores['aggregated_accuracy']:.3f} (chance, always the most common class: "
        f"{scores['aggregated_chance']:.3f})"
    )
    if "source_aggregated_accuracy" in scores:
        text += (
            f"; aggregated master class of the {scores['sources_scored']:,} uniquely classified "
            f"sources: {scores['source_aggregated_accuracy']:.3f}"
        )
    return text
