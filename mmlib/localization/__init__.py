"""Class-aware sounding-object localization (hu2021csol): model, two stages, maps, metrics, matching.

One concept per file: ``model.py`` (``SoundingNet``), ``stage1.py`` (correspondence task),
``dictionary.py`` (object dictionary method), ``stage2.py`` (class-aware task), ``maps.py``
(inference maps and baselines), ``metrics.py`` (IoU / AUC / CIoU / NSA), ``matching.py``
(cluster-to-class, evaluation only), ``pipeline.py`` (both stages over seeds), ``figures.py``.

Reference: notebook ``notebooks/sounding_localization.ipynb``.
"""
from . import dictionary, figures, maps, matching, metrics, model, pipeline, stage1, stage2  # noqa: F401
from .dictionary import ObjectDictionary
from .model import LocOutput, SoundingNet
from .pipeline import LocalizationRuns, run
from .stage1 import Correspondence
from .stage2 import ClassAwareLocalization

__all__ = ["ClassAwareLocalization", "Correspondence", "LocOutput", "LocalizationRuns", "ObjectDictionary",
           "SoundingNet", "dictionary", "figures", "maps", "matching", "metrics", "model", "pipeline", "run", "stage1", "stage2"]
