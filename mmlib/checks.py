"""Argument and input validation: one clear error per bad input, raised before any work starts.

``fit``, ``run``, ``load_dataset``, the dataset loaders and ``profiles.resolve`` call these
checks first, so a wrong type, a value out of range, a method class where an instance is
expected or a NaN in the data fails at once with a message naming the parameter, the value
and what is allowed, instead of deep inside torch or scikit-learn minutes later.

Wrong types raise ``TypeError``; wrong values ``ValueError``. ``bool`` is refused wherever an
integer is expected (``True`` is an ``int`` to Python, never a sensible epoch count or seed).
"""
from __future__ import annotations

import difflib
import inspect
import math
import numbers
import re
from typing import Any, Callable, Iterable, Mapping

import torch

from .data.base import MultimodalDataset


def _got(value: Any) -> str:
    """``'3' (str)``: the value and its type, and a hint for numbers that arrived as text."""
    hint = ""
    if isinstance(value, str) and re.fullmatch(r"\s*[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?\s*", value):
        hint = "; pass a number, not a string"
        if "e" in value.lower() and "." not in value:  # PyYAML follows YAML 1.1 here
            hint += f" (YAML reads {value.strip()} as text: write exponents with a dot, e.g. 1.0e-3)"
    return f"{value!r} ({type(value).__name__}){hint}"


def _range(low: float | None, high: float | None, low_open: bool, high_open: bool) -> str:
    if low is not None and high is not None:
        return f"in {'(' if low_open else '['}{low:g}, {high:g}{')' if high_open else ']'}"
    if low is not None:
        return f"{'>' if low_open else '>='} {low:g}"
    if high is not None:
        return f"{'<' if high_open else '<='} {high:g}"
    return ""


def is_int(value: Any) -> bool:
    """An integer (Python or NumPy), but not a bool."""
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def check_int(name: str, value: Any, *, low: int | None = None, none_ok: bool = False, why: str = "") -> None:
    """``value`` is an integer (not a bool), ``>= low`` if given; ``None`` too if ``none_ok``.

    ``why`` follows the bound in the message, e.g. ``" (the digits are 8x8)"``.
    """
    if value is None and none_ok:
        return
    bound = _range(low, None, False, False)
    if not is_int(value):
        allowed = " ".join(filter(None, ["None or" if none_ok else "", "an integer", bound]))
        raise TypeError(f"{name} must be {allowed}{why}, got {_got(value)}")
    if low is not None and value < low:
        raise ValueError(f"{name} must be {'None or ' if none_ok else ''}{bound}{why}, got {value!r}")


def check_real(name: str, value: Any, *, low: float | None = None, high: float | None = None,
               low_open: bool = False, high_open: bool = False) -> None:
    """``value`` is a finite real number (int or float, not a bool) within the given bounds."""
    bound = _range(low, high, low_open, high_open)
    if not isinstance(value, numbers.Real) or isinstance(value, bool):
        raise TypeError(f"{name} must be a real number{' ' + bound if bound else ''}, got {_got(value)}")
    below = low is not None and (value <= low if low_open else value < low)
    above = high is not None and (value >= high if high_open else value > high)
    if not math.isfinite(value) or below or above:
        raise ValueError(f"{name} must be a finite number{' ' + bound if bound else ''}, got {value!r}")


def check_choice(kind: str, value: Any, choices: Iterable[str]) -> None:
    """``value`` is one of ``choices``; otherwise name the closest one and list them all."""
    choices = sorted(choices)
    if isinstance(value, str) and value in choices:
        return
    close = difflib.get_close_matches(str(value), choices, n=1)
    hint = f" Did you mean {close[0]!r}?" if close else ""
    raise ValueError(f"unknown {kind} {value!r}.{hint} Known {kind}s: {', '.join(choices)}")


def check_names(name: str, value: Any, example: str) -> tuple[str, ...]:
    """A list of names as a tuple; a single string is one name (a string is iterable: never its letters)."""
    if isinstance(value, str):
        return (value,)
    if not isinstance(value, Iterable) or isinstance(value, Mapping):
        raise TypeError(f"{name} must be a list of names such as {example}, got {_got(value)}")
    names = tuple(value)
    bad = [v for v in names if not isinstance(v, str)]
    if bad:
        raise TypeError(f"{name} must be a list of names such as {example}; {bad[0]!r} is not a string")
    return names


def check_split(split: Any) -> None:
    """Three positive fractions summing to 1 (train, validation, test)."""
    ok = (isinstance(split, (list, tuple)) and len(split) == 3
          and all(isinstance(f, numbers.Real) and not isinstance(f, bool) and f > 0 for f in split)
          and abs(sum(split) - 1) <= 1e-6)
    if not ok:
        raise ValueError(f"split fractions must be three positive numbers summing to 1, got {split!r} "
                         f"(e.g. (0.6, 0.2, 0.2) for train, validation, test)")


def check_device(device: Any) -> torch.device:
    """A device torch can parse (``"cpu"``, ``"cuda"``, ``"cuda:1"``)."""
    if isinstance(device, torch.device):
        return device
    try:
        return torch.device(device)
    except (RuntimeError, TypeError, ValueError):
        raise ValueError(f"device {device!r} is not a torch device; use 'cpu', 'cuda' or 'cuda:<index>'") from None


# --- training settings: fit's arguments and the same keys as profile overrides -----------------

def _optimizer(name: str, value: Any) -> None:
    from .train import OPTIMIZERS  # train imports this module

    check_choice("optimizer", value, OPTIMIZERS)


TRAIN_CHECKS: dict[str, Callable[[str, Any], None]] = {
    "num_epochs": lambda n, v: check_int(n, v, low=1),
    "batch_size": lambda n, v: check_int(n, v, low=1),
    "lr": lambda n, v: check_real(n, v, low=0, low_open=True),
    "weight_decay": lambda n, v: check_real(n, v, low=0),
    "momentum": lambda n, v: check_real(n, v, low=0, high=1, high_open=True),
    "lr_step": lambda n, v: check_int(n, v, low=1, none_ok=True),
    "lr_gamma": lambda n, v: check_real(n, v, low=0, low_open=True),
    "seed": lambda n, v: check_int(n, v, low=0),
    "optimizer": _optimizer,
}
"""The rule of every numeric or named training setting, by ``fit``'s argument name."""


def check_train_args(args: Mapping[str, Any]) -> None:
    """Check every key of ``args`` that has a rule in ``TRAIN_CHECKS`` (others are left alone)."""
    for name, value in args.items():
        if name in TRAIN_CHECKS:
            TRAIN_CHECKS[name](name, value)


def check_seeds(seeds: Any, name: str = "seeds") -> list[int]:
    """A non-empty list of non-negative integers (a single integer is a list of one)."""
    if is_int(seeds):
        seeds = [seeds]
    ok = isinstance(seeds, Iterable) and not isinstance(seeds, (str, Mapping))
    seeds = list(seeds) if ok else seeds
    if not ok or not seeds or not all(is_int(s) and s >= 0 for s in seeds):
        raise ValueError(f"{name} must be a non-empty list of non-negative integers, got {seeds!r} "
                         f"(e.g. [0, 1, 2])")
    return [int(s) for s in seeds]


# --- data ---------------------------------------------------------------------------------------

def check_finite(data: MultimodalDataset) -> None:
    """No NaN or inf in any floating input of any split (one ``isfinite().all()`` per tensor)."""
    for split, part in data.splits().items():
        for m, x in part.inputs.items():
            if (x.is_floating_point() or x.is_complex()) and not bool(torch.isfinite(x).all()):
                count = int((~torch.isfinite(x)).sum())
                raise ValueError(f"dataset {data.name!r}, split {split!r}, modality {m!r}: {count} non-finite "
                                 f"values (NaN or inf); clean or impute them before training")


def check_labels(data: MultimodalDataset) -> None:
    """Integer labels in ``[0, num_classes)`` in every split."""
    for split, part in data.splits().items():
        y = part.y
        if y.is_floating_point() or y.is_complex() or y.dtype == torch.bool:
            raise TypeError(f"dataset {data.name!r}, split {split!r}: labels must be an integer tensor of class "
                            f"indices, got dtype {y.dtype}; convert them with y.long()")
        if len(y) and (int(y.min()) < 0 or int(y.max()) >= data.num_classes):
            raise ValueError(f"dataset {data.name!r}, split {split!r}: labels must be in [0, num_classes="
                             f"{data.num_classes}), got values from {int(y.min())} to {int(y.max())}")


def check_dataset(data: Any) -> None:
    """A ``MultimodalDataset`` with finite inputs and labels in range."""
    if not isinstance(data, MultimodalDataset):
        raise TypeError(f"data must be a MultimodalDataset (e.g. mm.load_dataset('mfeat')), "
                        f"got {type(data).__name__}")
    check_labels(data)
    check_finite(data)


# --- methods ------------------------------------------------------------------------------------

def _metric_names(modalities: Iterable[str]) -> list[str]:
    from .evaluate import classification_metrics

    fused = classification_metrics(torch.zeros(1, 2), torch.zeros(1, dtype=torch.long), 2)
    return sorted(fused) + [f"acc/{m}" for m in modalities]


def check_fit(model: Any, data: Any, *, select: str | None = None, device: Any = "cpu", **train_args: Any) -> None:
    """Everything ``fit`` can check before training: data, model, settings, device, ``select``."""
    check_dataset(data)
    if not isinstance(model, torch.nn.Module):
        raise TypeError(f"model must be a torch.nn.Module (e.g. mm.build_model(data)), got {type(model).__name__}")
    modalities = tuple(getattr(model, "modalities", data.modalities))
    missing = [m for m in modalities if m not in data.modalities]
    if missing:
        raise ValueError(f"the model reads modality {missing[0]!r}, which dataset {data.name!r} lacks (it has "
                         f"{data.modalities}); build the model from this dataset: mm.build_model(data)")
    check_train_args(train_args)
    dev = check_device(device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {str(device)!r} asks for CUDA, which is not available here; use device='cpu'")
    if select is not None:
        metrics = _metric_names(modalities)
        if select not in metrics:
            close = difflib.get_close_matches(str(select), metrics, n=1)
            hint = f" Did you mean {close[0]!r}?" if close else ""
            raise ValueError(f"select={select!r} is not a validation metric; choose from {metrics}.{hint}")


def check_run(seeds: Any, fit_kwargs: Mapping[str, Any]) -> list[int]:
    """``run``'s seeds as a list, and its ``fit`` keyword arguments checked by name and value."""
    from .train import fit  # train imports this module

    if "seed" in fit_kwargs:
        raise TypeError("run takes seeds=[...] (one run per seed), not seed=")
    valid = [p for p in inspect.signature(fit).parameters if p not in ("model", "data", "methods", "seed")]
    unknown = sorted(set(fit_kwargs) - set(valid))
    if unknown:
        close = difflib.get_close_matches(unknown[0], valid, n=1)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        raise TypeError(f"run got unknown fit argument(s) {unknown}.{hint} Valid: {', '.join(valid)}")
    check_train_args(fit_kwargs)
    seeds = check_seeds(seeds)
    if fit_kwargs.get("checkpoint") and len(seeds) > 1:
        raise ValueError(f"checkpoint= with {len(seeds)} seeds would resume every seed from the first seed's "
                         f"file; call run once per seed, each with its own checkpoint")
    return seeds
