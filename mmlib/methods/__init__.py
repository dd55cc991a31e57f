"""Training methods by name: ``METHODS.create("joint")``; see ``base.py`` for the hook order."""
from ..registry import METHODS
from . import joint  # noqa: F401  (registration)
from . import ogm_ge, opm  # noqa: F401  (registration)
from . import mmpareto  # noqa: F401  (registration)
from . import ensemble, g_blending  # noqa: F401  (registration)
from . import diagnose_relearn  # noqa: F401  (registration)
from . import inforeg  # noqa: F401  (registration)
from . import resampling  # noqa: F401  (registration)
from .base import EXCLUSIVE_HOOKS, Method, TrainState, exclusive_owner, modality_params, overrides
from .joint import Joint, JointUnimodal, Unimodal
from .spec import make_methods, parse_name

__all__ = ["EXCLUSIVE_HOOKS", "METHODS", "Joint", "JointUnimodal", "Method", "TrainState", "Unimodal",
           "exclusive_owner", "make_methods", "modality_params", "overrides", "parse_name"]
