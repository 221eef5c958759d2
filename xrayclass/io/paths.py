"""Where inputs, outputs and the shared reference data live.

Default paths are relative to the working directory, as in the published pipeline:
run the stage scripts from the top of the repository.
"""

import hashlib
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

__all__ = [
    "AMBIGUOUS",
    "CLASSIFIER_MODEL",
    "CLUSTERS",
    "CROSSMATCH",
    "CSC_INPUT",
    "DATA_DIR",
    "DEFAULT_RUN",
    "DETECTIONS",
    "FIGURES",
    "FROZEN_CROSSMATCH",
    "MODEL",
    "OUTLIERS",
    "OUT_DIR",
    "REFERENCE_ENV",
    "REPOSITORY",
    "SOURCE_FIGURE_STEM_MAX",
    "SUMMARY",
    "UNIQUELY",
    "RunLayout",
    "beside",
    "density_figure",
    "reference_dir",
    "reference_file",
    "safe_stem",
    "source_figure",
]

REPOSITORY = Path(__file__).resolve().parents[2]

DATA_DIR = Path("data")
OUT_DIR = Path("out_data")

CSC_INPUT = DATA_DIR / "cscresults.vot"
FROZEN_CROSSMATCH = DATA_DIR / "cluster_csc_simbad.csv"

#: File names (without extension: each is written as PNG and PDF) of the figures in a
#: run's figures directory (the validation's get a ``_<method>`` suffix for methods
#: other than the paper's); Figs. 6, 7 and 10 are named by :func:`density_figure` and
#: :func:`source_figure`.
FIGURES = {
    "bic": "fig1_bic",
    "cluster_sky_map": "fig2_cluster_sky_map",
    "hardness_by_cluster": "fig3_hardness_by_cluster",
    "confusion": "fig4_validation_confusion",
    "confusion_aggregated": "fig5_validation_confusion_aggregated",
    "class_sky_density": "fig8_class_sky_density",
    "method_comparison": "fig_method_comparison",
    "method_comparison_splits": "fig_method_comparison_splits",
    "reliability": "fig_reliability",
    "reliability_splits": "fig_reliability_splits",
}


def beside(path: str | os.PathLike[str], default: str | os.PathLike[str]) -> Path:
    """The file named as ``default`` in the folder of ``path``: where a side output (model,
    classifier, outliers) goes when only its table's path is given, so a run stays together."""
    return Path(path).parent / Path(default).name


def density_figure(kind: str, aggregated: bool = True) -> str:
    """File name of Fig. 6 (``kind="hardness"``) or 7 (``"variability"``)."""
    number = 6 if kind == "hardness" else 7
    return f"fig{number}_{kind}_density_{'aggregated' if aggregated else 'classes'}"


#: Longest file name (without extension) of a Fig. 10: file systems allow 255 bytes, and the
#: temporary a figure is first written to adds about 30 characters.
SOURCE_FIGURE_STEM_MAX = 120


def source_figure(name: str) -> str:
    """File name of Fig. 10 for source ``name``; a long name is cut and ends with a digest of
    the whole name, so that two long names that begin alike stay two files."""
    stem = f"fig10_{safe_stem(name)}"
    if len(stem) <= SOURCE_FIGURE_STEM_MAX:
        return stem
    digest = hashlib.sha256(name.encode("utf-8", "surrogatepass")).hexdigest()[:12]
    return f"{stem[: SOURCE_FIGURE_STEM_MAX - len(digest) - 1]}_{digest}"


def safe_stem(text: object) -> str:
    """A file-name-safe version of ``text``: ``+`` becomes ``p``, other unsafe runs ``_``."""
    return re.sub(r"[^A-Za-z0-9._-]+", "_", str(text).replace("+", "p")).strip("_") or "figure"


@dataclass(frozen=True)
class RunLayout:
    """Every file of one pipeline run, by role: the one place the run's file names are written.

    The stage command lines take their defaults from ``RunLayout(OUT_DIR)``; ``make run``
    writes into one, and the analyses, the report and the explorer read from one.
    """

    directory: Path

    #: File names inside the run directory.
    NAMES: ClassVar[dict] = {
        "clusters": "cluster_csc.csv",
        "model": "model.json",
        "crossmatch": "cluster_csc_simbad.csv",
        "detections": "detection_level_classification.csv",
        "classifier": "classifier.json",
        "outliers": "outliers.csv",
        "uniquely": "uniquely_classified.csv",
        "ambiguous": "ambiguous_classification.csv",
        "summary": "master_summary.json",
        "figures": "figures",
        "bic": "bic.csv",
        "validation": "validation",
        "report": "report.md",
        "explorer": "explorer.html",
        "example": "example_detections.csv",
    }

    def __post_init__(self) -> None:
        object.__setattr__(self, "directory", Path(self.directory))

    def _file(self, role: str) -> Path:
        return self.directory / self.NAMES[role]

    clusters = property(lambda self: self._file("clusters"), doc="stage 1: clustered detections")
    model = property(lambda self: self._file("model"), doc="stage 1 (updated by stage 2): model.json")
    crossmatch = property(lambda self: self._file("crossmatch"), doc="stage 2: crossmatched detections")
    detections = property(lambda self: self._file("detections"), doc="stage 3: detection-level classification")
    classifier = property(lambda self: self._file("classifier"), doc="stage 3: classifier.json")
    outliers = property(lambda self: self._file("outliers"), doc="stage 3: flagged outliers")
    uniquely = property(lambda self: self._file("uniquely"), doc="stage 4: uniquely classified sources")
    ambiguous = property(lambda self: self._file("ambiguous"), doc="stage 4: ambiguous sources")
    summary = property(lambda self: self._file("summary"), doc="stage 4: master_summary.json")
    figures = property(lambda self: self._file("figures"), doc="directory of the figures")
    bic = property(lambda self: self._file("bic"), doc="the BIC scan's summary (analysis.py kselect)")
    validation = property(lambda self: self._file("validation"), doc="directory of the validation outputs")
    report = property(lambda self: self._file("report"), doc="the report (Markdown; HTML beside it)")
    explorer = property(lambda self: self._file("explorer"), doc="the interactive explorer")
    example = property(lambda self: self._file("example"), doc="a few detections for classify_source.py")

    def stage4_tables(self, fmt: str = "csv") -> tuple[Path, Path]:
        """The two stage-4 tables in format ``fmt`` (``csv`` or ``parquet``)."""
        return (self.uniquely.with_suffix(f".{fmt}"), self.ambiguous.with_suffix(f".{fmt}"))


#: The run the stage scripts read and write by default.
DEFAULT_RUN = RunLayout(OUT_DIR)
CLUSTERS = DEFAULT_RUN.clusters
MODEL = DEFAULT_RUN.model
CROSSMATCH = DEFAULT_RUN.crossmatch
DETECTIONS = DEFAULT_RUN.detections
CLASSIFIER_MODEL = DEFAULT_RUN.classifier
OUTLIERS = DEFAULT_RUN.outliers
UNIQUELY = RunLayout.NAMES["uniquely"]
AMBIGUOUS = RunLayout.NAMES["ambiguous"]
SUMMARY = RunLayout.NAMES["summary"]

#: Environment variable naming the directory of the shared reference data.
REFERENCE_ENV = "XRAYCLASS_REFERENCE"


def reference_dir() -> Path:
    """The directory of the published reference outputs: ``$XRAYCLASS_REFERENCE``, else
    ``../shared/reference``. It may be absent: callers skip what needs it, saying so."""
    configured = os.environ.get(REFERENCE_ENV)
    if configured:
        return Path(configured)
    return REPOSITORY.parent / "shared" / "reference"


def reference_file(name: str) -> Path | None:
    """Path of one reference file, or None when it is not there."""
    path = reference_dir() / name
    return path if path.is_file() else None
