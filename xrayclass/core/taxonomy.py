"""SIMBAD's object types: every spelling the pipeline accepts, mapped to the paper's names.

SIMBAD's 2022-2023 revision kept most short codes (``otype``, e.g. ``HXB``) but renamed
the labels (``HMXB`` became ``HighMassXBin``; candidates changed twice), and CDS X-Match
returns the new labels since 2024. The paper uses the old ones, and so does every
output here: the old label is a type's *canonical* name, whichever spelling came in.
:func:`normalize_types` maps labels (and codes) to canonical names and reports what it did.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike

from xrayclass.constants import CLASSES, NO_MATCH, UNINFORMATIVE_TYPES

__all__ = ["OTYPE", "TYPES", "LabelReport", "ObjectType", "lookup", "normalize_types", "spellings"]

#: Column with SIMBAD's short type code, as the CDS X-Match SIMBAD table returns it.
OTYPE = "otype"

#: What a type is to the pipeline.
CLASS, UNINFORMATIVE, CANDIDATE, OTHER = "class", "uninformative", "candidate", "other"


@dataclass(frozen=True)
class ObjectType:
    """One SIMBAD object type: its code, labels (``old_label`` is canonical) and role in the pipeline.

    ``candidate_of``: the class a candidate type is a candidate of (never a reference, as in the paper).
    """

    code: str
    old_label: str
    new_label: str
    role: str = OTHER
    candidate_of: str | None = None
    later_labels: tuple[str, ...] = ()

    @property
    def canonical(self) -> str:
        return self.old_label

    @property
    def labels(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys((self.old_label, self.new_label, *self.later_labels)))


# The ten classes, in the order of CLASSES.
_CLASS_TYPES = (
    ("QSO", "QSO", "QSO"),
    ("AGN", "AGN", "AGN"),
    ("Sy1", "Seyfert_1", "Seyfert1"),
    ("Sy2", "Seyfert_2", "Seyfert2"),
    ("HXB", "HMXB", "HighMassXBin"),
    ("LXB", "LMXB", "LowMassXBin"),
    ("XB*", "XB", "XrayBin"),
    ("Y*O", "YSO", "YSO"),
    ("TT*", "TTau*", "TTauri*"),
    ("Or*", "Orion_V*", "OrionV*"),
)

# The uninformative types, in the order of UNINFORMATIVE_TYPES.
_UNINFORMATIVE_TYPES = (
    ("*", "Star", "Star"),
    ("X", "X", "X"),
    ("Rad", "Radio", "Radio"),
    ("IR", "IR", "Infrared"),
    ("blu", "Blue", "blue"),
    ("UV", "UV", "UV"),
    ("gam", "gamma", "gamma"),
    ("PoG", "PartofG", "PartofG"),
    ("**", "**", "**"),
)

# Candidates of the classes: (code, old label, new label, class, later labels). SIMBAD
# has no candidate type for Seyfert 1/2 or Orion variables.
_CANDIDATE_TYPES = (
    ("Q?", "QSO_Candidate", "QSO_Candidate", "QSO", ()),
    ("AG?", "AGN_Candidate", "AGN_Candidate", "AGN", ()),
    ("HX?", "Candidate_HMXB", "HMXB_Candidate", "HMXB", ("HighMassXBin_Candidate",)),
    ("LX?", "Candidate_LMXB", "LMXB_Candidate", "LMXB", ("LowMassXBin_Candidate",)),
    ("XB?", "Candidate_XB*", "XB*_Candidate", "XB", ("XrayBin_Candidate",)),
    ("Y*?", "Candidate_YSO", "YSO_Candidate", "YSO", ()),
    ("TT?", "Candidate_TTau*", "TTau*_Candidate", "TTau*", ("TTauri*_Candidate",)),
)

# Every other SIMBAD type (code, old label, new label): not used by the method, listed
# so that a label SIMBAD really uses is told apart from a typo.
_OTHER_TYPES = (
    # objects
    ("Ae*", "Ae*", "Ae*"),
    ("AB*", "AGB*", "AGB*"),
    ("As*", "Assoc*", "Association"),
    ("BiC", "BClG", "BrightestCG"),
    ("Be*", "Be*", "Be*"),
    ("Bla", "Blazar", "Blazar"),
    ("BLL", "BLLac", "BLLac"),
    ("bCG", "BlueCompG", "BlueCompactG"),
    ("s*b", "BlueSG*", "BlueSG"),
    ("BS*", "BlueStraggler", "BlueStraggler"),
    ("BD*", "brownD*", "BrownD*"),
    ("bub", "Bubble", "Bubble"),
    ("BY*", "BYDra", "BYDraV*"),
    ("C*", "C*", "C*"),
    ("CV*", "CataclyV*", "CataclyV*"),
    ("Ce*", "Cepheid", "Cepheid"),
    ("Cl*", "Cl*", "Cluster*"),
    ("ClG", "ClG", "ClG"),
    ("Cld", "Cloud", "Cloud"),
    ("CGb", "ComGlob", "ComGlob"),
    ("CGG", "Compact_Gr_G", "Compact_Gr_G"),
    ("cC*", "deltaCep", "ClassicalCep"),
    ("cor", "denseCore", "denseCore"),
    ("DNe", "DkNeb", "DarkNeb"),
    ("EB*", "EB*", "EclBin"),
    ("El*", "EllipVar", "EllipVar"),
    ("Em*", "Em*", "EmLine*"),
    ("EmG", "EmG", "EmissionG"),
    ("EmO", "EmObj", "EmObj"),
    ("RC*", "Erupt*RCrB", "RCrBV*"),
    ("Er*", "Eruptive*", "Eruptive*"),
    ("G", "Galaxy", "Galaxy"),
    ("GNe", "GalNeb", "GalNeb"),
    ("gB", "gammaBurst", "gammaBurst"),
    ("gD*", "gammaDor", "gammaDorV*"),
    ("GiC", "GinCl", "GtowardsCl"),
    ("GiG", "GinGroup", "GtowardsGroup"),
    ("GiP", "GinPair", "GinPair"),
    ("GlC", "GlCl", "GlobCluster"),
    ("glb", "Globule", "Globule"),
    ("grv", "Gravitation", "Gravitation"),
    ("gLe", "GravLens", "GravLens"),
    ("gLS", "GravLensSystem", "GravLensSystem"),
    ("GWE", "GravWaveEvent", "GravWaveEvent"),
    ("GrG", "GroupG", "GroupG"),
    ("HB*", "HB*", "HorBranch*"),
    ("HH", "HH", "HerbigHaroObj"),
    ("HI", "HI", "HI"),
    ("HII", "HII", "HIIReg"),
    ("H2G", "HII_G", "HIIG"),
    ("sh", "HIshell", "HIshell"),
    ("HS*", "HotSubdwarf", "HotSubdwarf"),
    ("HV*", "HV*", "HighVel*"),
    ("HVC", "HVCld", "HVCld"),
    ("IG", "IG", "InteractingG"),
    ("err", "Inexistent", "Inexistent"),
    ("NIR", "IR<10um", "NearIR"),
    ("FIR", "IR>30um", "FarIR"),
    ("Ir*", "Irregular_V*", "IrregularV*"),
    ("ISM", "ISM", "ISM"),
    ("LeG", "LensedG", "LensedG"),
    ("LeI", "LensedImage", "LensedImage"),
    ("LeQ", "LensedQ", "LensedQ"),
    ("Lev", "LensingEv", "LensingEv"),
    ("LIN", "LINER", "LINER"),
    ("LM*", "low-mass*", "Low-Mass*"),
    ("LP*", "LPV*", "LongPeriodV*"),
    ("LSB", "LSB_G", "LowSurfBrghtG"),
    ("Mas", "Maser", "Maser"),
    ("Mi*", "Mira", "Mira"),
    ("MoC", "MolCld", "MolCld"),
    ("MGr", "MouvGroup", "MouvGroup"),
    ("mul", "multiple_object", "Blend"),
    ("N*", "Neutron*", "Neutron*"),
    ("No*", "Nova", "Nova"),
    ("OH*", "OH/IR", "OH/IR*"),
    ("OpC", "OpCl", "OpenCluster"),
    ("out", "Outflow", "Outflow"),
    ("PaG", "PairG", "PairG"),
    ("PoC", "PartofCloud", "PartofCloud"),
    ("Pe*", "Pec*", "ChemPec*"),
    ("Pl", "Planet", "Planet"),
    ("PM*", "PM*", "HighPM*"),
    ("PN", "PN", "PlanetaryNeb"),
    ("pA*", "post-AGB*", "post-AGB*"),
    ("Psr", "Pulsar", "Pulsar"),
    ("Pu*", "PulsV*", "PulsV*"),
    ("bC*", "PulsV*bCep", "bCepV*"),
    ("dS*", "PulsV*delSct", "delSctV*"),
    ("RV*", "PulsV*RVTau", "RVTauV*"),
    ("SX*", "pulsV*SX", "SXPheV*"),
    ("WV*", "PulsV*WVir", "Type2Cep"),
    ("cm", "Radio(cm)", "cmRad"),
    ("mR", "Radio(m)", "metricRad"),
    ("mm", "Radio(mm)", "mmRad"),
    ("smm", "Radio(sub-mm)", "smmRad"),
    ("rB", "radioBurst", "radioBurst"),
    ("rG", "RadioG", "RadioG"),
    ("s*r", "RedSG*", "RedSG"),
    ("reg", "Region", "Region"),
    ("RNe", "RfNeb", "RefNeb"),
    ("RG*", "RGB*", "RGB*"),
    ("Ro*", "RotV*", "RotV*"),
    ("a2*", "RotV*alf2CVn", "alf2CVnV*"),
    ("RR*", "RRLyr", "RRLyrae"),
    ("RS*", "RSCVn", "RSCVnV*"),
    ("S*", "S*", "S*"),
    ("SB*", "SB*", "SB*"),
    ("SyG", "Seyfert", "Seyfert"),
    ("SFR", "SFregion", "StarFormingReg"),
    ("sg*", "SG*", "Supergiant"),
    ("SN*", "SN", "Supernova"),
    ("SNR", "SNR", "SNRemnant"),
    ("SBG", "StarburstG", "StarburstG"),
    ("St*", "Stream*", "Stream"),
    ("SCG", "SuperClG", "SuperClG"),
    ("Sy*", "Symbiotic*", "Symbiotic*"),
    ("ev", "Transient", "Transient"),
    ("ULX", "ULX", "ULX"),
    ("V*", "V*", "Variable*"),
    ("vid", "Void", "Void"),
    ("WD*", "WD*", "WhiteDwarf"),
    ("WR*", "WR*", "WolfRayet*"),
    ("s*y", "YellowSG*", "YellowSG"),
    # candidates of other types
    ("Bz?", "Blazar_Candidate", "Blazar_Candidate"),
    ("BL?", "BLLac_Candidate", "BLLac_Candidate"),
    ("**?", "Candidate_**", "**_Candidate"),
    ("Ae?", "Candidate_Ae*", "Ae*_Candidate"),
    ("AB?", "Candidate_AGB*", "AGB*_Candidate"),
    ("Be?", "Candidate_Be*", "Be*_Candidate"),
    ("BH?", "Candidate_BH", "BH_Candidate"),
    ("BD?", "Candidate_brownD*", "brownD*_Candidate"),
    ("s?b", "Candidate_BSG*", "BSG*_Candidate"),
    ("BS?", "Candidate_BSS", "BSS_Candidate"),
    ("C*?", "Candidate_C*", "C*_Candidate"),
    ("Ce?", "Candidate_Cepheid", "Cepheid_Candidate"),
    ("CV?", "Candidate_CV*", "CV*_Candidate"),
    ("EB?", "Candidate_EB*", "EB*_Candidate"),
    ("HB?", "Candidate_HB*", "HB*_Candidate"),
    ("HS?", "Candidate_Hsd", "Hsd_Candidate"),
    ("Le?", "Candidate_Lens", "Lens_Candidate"),
    ("LS?", "Candidate_LensSystem", "LensSystem_Candidate"),
    ("LM?", "Candidate_low-mass*", "low-mass*_Candidate"),
    ("LP?", "Candidate_LP*", "LP*_Candidate"),
    ("Mi?", "Candidate_Mi*", "Mi*_Candidate"),
    ("No?", "Candidate_Nova", "Nova_Candidate"),
    ("N*?", "Candidate_NS", "NS_Candidate"),
    ("OH?", "Candidate_OH", "OH_Candidate"),
    ("pA?", "Candidate_post-AGB*", "post-AGB*_Candidate"),
    ("RB?", "Candidate_RGB*", "RGB*_Candidate"),
    ("RR?", "Candidate_RRLyr", "RRLyr_Candidate"),
    ("s?r", "Candidate_RSG*", "RSG*_Candidate"),
    ("S*?", "Candidate_S*", "S*_Candidate"),
    ("sg?", "Candidate_SG*", "SG*_Candidate"),
    ("SN?", "Candidate_SN*", "SN*_Candidate"),
    ("Sy?", "Candidate_Symb*", "Symb*_Candidate"),
    ("WD?", "Candidate_WD*", "WD*_Candidate"),
    ("WR?", "Candidate_WR*", "WR*_Candidate"),
    ("s?y", "Candidate_YSG*", "YSG*_Candidate"),
    ("Gl?", "GlCl?", "GlCl_Candidate"),
    ("of?", "outflow?", "outflow_Candidate"),
    ("Pl?", "Planet?", "Planet_Candidate"),
    ("PN?", "PN?", "PN_Candidate"),
    ("C?G", "Possible_ClG", "ClG_Candidate"),
    ("G?", "Possible_G", "G_Candidate"),
    ("Gr?", "Possible_GrG", "GrG_Candidate"),
    ("LI?", "Possible_lensImage", "lensImage_Candidate"),
    ("SC?", "Possible_SClG", "SClG_Candidate"),
    ("RC?", "RCrB_Candidate", "RCrB_Candidate"),
    ("SR?", "SNR?", "SNR_Candidate"),
    ("UX?", "ULX?", "ULX_Candidate"),
    ("?", "Unknown", "Unknown"),
    ("V*?", "V*?", "V*_Candidate"),
)

#: Every SIMBAD type the package knows.
TYPES: tuple[ObjectType, ...] = (
    tuple(ObjectType(c, old, new, CLASS) for c, old, new in _CLASS_TYPES)
    + tuple(ObjectType(c, old, new, UNINFORMATIVE) for c, old, new in _UNINFORMATIVE_TYPES)
    + tuple(ObjectType(c, old, new, CANDIDATE, of, later) for c, old, new, of, later in _CANDIDATE_TYPES)
    + tuple(ObjectType(c, old, new) for c, old, new in _OTHER_TYPES)
)

_BY_CODE = {t.code: t for t in TYPES}
_BY_LABEL = {label: t for t in TYPES for label in t.labels}
# Case-insensitive look-up, only where it is unambiguous (no two types differ only in case).
_folded = Counter(label.casefold() for label in _BY_LABEL)
_BY_FOLDED_LABEL = {label.casefold(): t for label, t in _BY_LABEL.items() if _folded[label.casefold()] == 1}


def _check_table() -> None:
    # The constants and the table must say the same thing: a mismatch is a bug here.
    canonical = {t.canonical for t in TYPES}
    assert len(_BY_CODE) == len(TYPES) and len(canonical) == len(TYPES), "duplicate code or canonical name"
    assert tuple(t.canonical for t in TYPES if t.role == CLASS) == CLASSES
    assert tuple(t.canonical for t in TYPES if t.role == UNINFORMATIVE) == UNINFORMATIVE_TYPES
    assert all(t.candidate_of in CLASSES for t in TYPES if t.role == CANDIDATE)


_check_table()


def lookup(label: str) -> ObjectType | None:
    """The type of an exact label (old, new or later spelling) or short code, if known."""
    return _BY_LABEL.get(label) or _BY_CODE.get(label)


def spellings(canonical: str) -> tuple[str, ...]:
    """Every accepted label of a type given by its canonical name (empty if unknown)."""
    kind = _BY_LABEL.get(canonical)
    return kind.labels if kind is not None and kind.canonical == canonical else ()


@dataclass
class LabelReport:
    """What :func:`normalize_types` did to a column of SIMBAD types (counts of rows, by raw value)."""

    n_rows: int = 0
    n_matched: int = 0
    n_renamed: int = 0
    n_from_code: int = 0
    trimmed: Counter = field(default_factory=Counter)
    case_fixed: dict = field(default_factory=dict)
    unknown: Counter = field(default_factory=Counter)
    unknown_codes: Counter = field(default_factory=Counter)
    disagreements: Counter = field(default_factory=Counter)

    def merge(self, other: LabelReport) -> LabelReport:
        """Add ``other``'s counts to this report (a table read in batches); returns self."""
        for name in ("n_rows", "n_matched", "n_renamed", "n_from_code"):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        for name in ("trimmed", "unknown", "unknown_codes", "disagreements"):
            getattr(self, name).update(getattr(other, name))
        for raw, (canonical, count) in other.case_fixed.items():
            self.case_fixed[raw] = (canonical, self.case_fixed.get(raw, (canonical, 0))[1] + count)
        return self

    @property
    def n_unknown(self) -> int:
        return sum(self.unknown.values())

    @property
    def unknown_share(self) -> float:
        """Share of the matched rows whose type the taxonomy does not know."""
        return self.n_unknown / self.n_matched if self.n_matched else 0.0

    def most_common_unknown(self, n: int = 5) -> str:
        return ", ".join(f"{label!r} {count:,}" for label, count in self.unknown.most_common(n))

    def messages(self) -> list[tuple[str, str]]:
        """(level, text) lines to log: ``warning`` for what the user should fix or know."""
        lines = []
        if self.n_renamed:
            lines.append(
                (
                    "info",
                    f"{self.n_renamed:,} SIMBAD types given in a later spelling (e.g. today's labels) "
                    "were renamed to the paper's labels",
                )
            )
        if self.n_from_code:
            lines.append(
                (
                    "info",
                    f"{self.n_from_code:,} SIMBAD types read from the short code column "
                    f"'{OTYPE}' (preferred to the label)",
                )
            )
        if self.trimmed:
            examples = ", ".join(repr(label) for label, _ in self.trimmed.most_common(3))
            lines.append(
                (
                    "warning",
                    f"{sum(self.trimmed.values()):,} SIMBAD types had surrounding whitespace "
                    f"(e.g. {examples}); trimmed",
                )
            )
        for raw, (canonical, count) in sorted(self.case_fixed.items()):
            lines.append(
                (
                    "warning",
                    f"SIMBAD type {raw!r} ({count:,} rows) matches {canonical!r} only in another "
                    "case; read as " + repr(canonical),
                )
            )
        if self.unknown_codes:
            codes = ", ".join(f"{code!r} {n:,}" for code, n in self.unknown_codes.most_common(5))
            lines.append(
                (
                    "warning",
                    f"{sum(self.unknown_codes.values()):,} unknown codes in '{OTYPE}' ({codes}); "
                    "the label was used instead",
                )
            )
        if self.disagreements:
            pairs = ", ".join(
                f"{label!r} vs code {code!r} {n:,}" for (label, code), n in self.disagreements.most_common(3)
            )
            lines.append(
                (
                    "warning",
                    f"{sum(self.disagreements.values()):,} rows whose main_type and '{OTYPE}' "
                    f"disagree ({pairs}); the code was used",
                )
            )
        if self.unknown:
            lines.append(
                (
                    "info",
                    f"{self.n_unknown:,} of {self.n_matched:,} matched detections "
                    f"({100 * self.unknown_share:.1f}%) carry a type the taxonomy does not know: "
                    f"{self.most_common_unknown()}; they are left out",
                )
            )
        return lines

    def to_dict(self) -> dict:
        return {
            "rows": self.n_rows,
            "matched": self.n_matched,
            "renamed": self.n_renamed,
            "from_code": self.n_from_code,
            "trimmed": sum(self.trimmed.values()),
            "case_fixed": {
                raw: {"read_as": canonical, "rows": count}
                for raw, (canonical, count) in sorted(self.case_fixed.items())
            },
            "unknown": dict(self.unknown.most_common()),
            "unknown_share": round(self.unknown_share, 6),
        }


def normalize_types(main_types: ArrayLike, otypes: ArrayLike | None = None) -> tuple[np.ndarray, LabelReport]:
    """Canonical (paper) names of SIMBAD types, and a :class:`LabelReport` of what was changed.

    ``main_types``: labels of any spelling, or codes; missing and ``'NaN'`` mean no match.
    Whitespace is trimmed, a label known only in another case is read as that one, and
    anything else is kept (trimmed) and counted as unknown. A known short code of
    ``otypes`` decides its row's type (codes did not change in the revision).
    """
    # Kept in their own dtype (Arrow-backed text factorizes fast); missing values are no match.
    labels = (
        main_types
        if isinstance(main_types, pd.Series)
        else pd.Series(np.asarray(main_types, dtype=object), dtype=object)
    )
    report = LabelReport(n_rows=len(labels))
    # The work is per distinct value (a catalog has few), then broadcast to the rows.
    codes_of_rows, distinct = pd.factorize(labels, sort=False, use_na_sentinel=True)
    uniques = [str(value) for value in distinct]
    missing = codes_of_rows < 0
    if missing.any():
        codes_of_rows = np.where(missing, len(uniques), codes_of_rows)
        uniques.append(NO_MATCH)
    counts = np.bincount(codes_of_rows, minlength=len(uniques)) if len(uniques) else np.zeros(0, int)
    mapped = np.empty(len(uniques), dtype=object)
    known = np.zeros(len(uniques), dtype=bool)
    for k, (raw, count) in enumerate(zip(uniques, counts, strict=False)):
        count = int(count)
        text = raw.strip()
        if text != raw:
            report.trimmed[raw] += count
        if text in ("", NO_MATCH):
            mapped[k], known[k] = NO_MATCH, True
            continue
        kind = lookup(text)
        if kind is None:
            kind = _BY_FOLDED_LABEL.get(text.casefold())
            if kind is not None:
                previous = report.case_fixed.get(text, (kind.canonical, 0))[1]
                report.case_fixed[text] = (kind.canonical, previous + count)
        elif text != kind.canonical:
            report.n_renamed += count
        if kind is None and text.casefold() == NO_MATCH.casefold():
            report.case_fixed[text] = (NO_MATCH, report.case_fixed.get(text, (NO_MATCH, 0))[1] + count)
            mapped[k], known[k] = NO_MATCH, True
            continue
        mapped[k] = kind.canonical if kind is not None else text
        known[k] = kind is not None
    canonical = mapped[codes_of_rows] if len(labels) else np.empty(0, dtype=object)
    is_known = known[codes_of_rows] if len(labels) else np.empty(0, dtype=bool)

    if otypes is not None:
        codes = pd.Series(np.asarray(otypes, dtype=object), dtype=object)
        present = ~codes.isna().to_numpy()
        if present.any():
            rows = np.flatnonzero(present)
            # Per distinct code, as for the labels (X-Match pads codes to three characters).
            code_of_rows, code_uniques = pd.factorize(codes[present], sort=False)
            stripped = np.array([str(code).strip() for code in code_uniques], dtype=object)
            decoded = np.array([_BY_CODE[c].canonical if c in _BY_CODE else None for c in stripped], dtype=object)
            valid_unique = np.array([c is not None for c in decoded], dtype=bool)
            valid = valid_unique[code_of_rows]
            unknown_counts = np.bincount(code_of_rows[~valid], minlength=len(code_uniques))
            for k in np.flatnonzero(unknown_counts):  # type: ignore[assignment]
                if stripped[k]:
                    report.unknown_codes[stripped[k]] += int(unknown_counts[k])
            used = rows[valid]
            from_code = decoded[code_of_rows[valid]]
            # A row with no label but a code is a match all the same; a known label that
            # disagrees with a known code is worth a word (the code wins).
            disagree = (canonical[used] != from_code) & (canonical[used] != NO_MATCH) & is_known[used]
            if disagree.any():
                pairs = pd.DataFrame(
                    {
                        "label": np.asarray(uniques, dtype=object)[codes_of_rows[used[disagree]]],
                        "code": stripped[code_of_rows[valid][disagree]],
                    }
                ).value_counts()
                report.disagreements.update({pair: int(n) for pair, n in pairs.items()})
            report.n_from_code += len(used)
            canonical = canonical.copy()
            canonical[used] = from_code
            is_known = is_known.copy()
            is_known[used] = True

    matched = canonical != NO_MATCH
    report.n_matched = int(matched.sum())
    unknown = matched & ~is_known
    if unknown.any():
        report.unknown.update(pd.Series(canonical[unknown]).value_counts().to_dict())
    return canonical.astype(object, copy=False), report
