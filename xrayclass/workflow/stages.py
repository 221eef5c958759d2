"""The four stage runners in one place, for the library: read, check, run the science or an engine, write.

Each runner takes the stage's files, its config (the science's choices:
:class:`~xrayclass.stages.clustering.ClusteringConfig`,
:class:`~xrayclass.stages.crossmatch.CrossmatchConfig`,
:class:`~xrayclass.stages.classification.ClassificationConfig`,
:class:`~xrayclass.stages.master_classification.MasterClassificationConfig`) and an
:class:`~xrayclass.engine.EngineConfig`, and hands the config to the science or the engine
as it is. A problem with an input raises :class:`~xrayclass.exceptions.InputError` naming
the file, and nothing is written; the outputs are written together (all or none).

Each runner lives in its own module (:mod:`.clustering`, :mod:`.crossmatch`,
:mod:`.classification`, :mod:`.master_classification`; what they share in :mod:`.runner`),
so that a stage's command line imports only its own stage's science.
"""

from xrayclass.workflow.classification import run_classification_stage, stage3_feature_set
from xrayclass.workflow.clustering import chosen_feature_set, run_clustering_stage
from xrayclass.workflow.crossmatch import crossmatch_online, model_for_stage3, run_crossmatch_stage
from xrayclass.workflow.master_classification import run_master_classification_stage
from xrayclass.workflow.runner import read_stage_table

__all__ = [
    "chosen_feature_set",
    "crossmatch_online",
    "model_for_stage3",
    "read_stage_table",
    "run_classification_stage",
    "run_clustering_stage",
    "run_crossmatch_stage",
    "run_master_classification_stage",
    "stage3_feature_set",
]
