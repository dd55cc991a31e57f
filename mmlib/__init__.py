"""mmlib: the library behind the balanced-multimodal-learning companion book.

One import line per notebook: ``import mmlib as mm``. Importing it first (before numpy and
torch) puts every numeric library on its portable path (``mmlib/portable.py``).
"""
from . import portable

portable.set_process_env()  # before numpy and torch load: some libraries read it only then

from . import analysis, benchmark, contribution, data, experiment, localization, methods, models, plot, profiles, task
from . import active  # after data: active imports checks, which needs the data package first
from .analysis import summarize
from .data import load_dataset
from .experiment import Runs, concat, run
from .evaluate import classification_metrics, evaluate, evaluate_runs, linear_probe, predict, probe_all
from .methods import Method, TrainState
from .models import build_model
from .registry import DATASETS, ENCODERS, FUSIONS, METHODS, MODELS, SELECTORS, TASKS, Registry, UnknownNameError
from .repro import seed_everything
from .train import FitResult, fit

__version__ = "0.1.0"

if portable.wanted():
    portable.enable(warn=False)  # computations (fit, seed_everything) warn if anything is off

__all__ = ["DATASETS", "ENCODERS", "FUSIONS", "FitResult", "METHODS", "MODELS", "Method", "Registry", "SELECTORS",
           "TASKS",
           "TrainState", "benchmark",
           "Runs", "UnknownNameError", "active", "analysis", "build_model", "classification_metrics", "concat",
           "contribution", "data", "evaluate", "evaluate_runs", "fit",
           "experiment", "linear_probe", "load_dataset", "localization", "methods", "models", "plot", "portable", "predict", "probe_all", "profiles",
           "run", "seed_everything", "summarize", "task"]
