"""Checkpoints that know which run they belong to.

``fit(..., checkpoint=path)`` saves after every epoch (atomically: a crash mid-write leaves the
previous file) and resumes from the file when it exists. The file records the run's identity:
model (class, parameter names and shapes), methods (names and constructor arguments), task,
optimizer settings, seed, a fingerprint of the data, the number of processes and the mmlib
version. Resuming a different run is an error naming the file and the first field that differs;
a finished checkpoint with fewer epochs than asked continues training, one with more epochs
completed than asked is an error; an unreadable file is named.
"""
from __future__ import annotations

import hashlib
import inspect
import os
import pickle
import zipfile
from pathlib import Path
from typing import Any

import torch


class CheckpointError(RuntimeError):
    """A checkpoint that cannot be resumed; the message names the file and what to do."""


def data_fingerprint(data) -> str:
    """A short hash of every split's inputs and labels (what a resumed run must train on)."""
    h = hashlib.sha256(f"{data.name}|{data.modalities}|{data.num_classes}".encode())
    for name, split in data.splits().items():
        h.update(name.encode())
        for t in [split.y, *(split.inputs[m] for m in data.modalities)]:
            t = t.detach().cpu().contiguous()
            h.update(f"{t.dtype}{tuple(t.shape)}".encode())
            h.update(t.numpy().tobytes())
    return h.hexdigest()[:16]


def method_config(method) -> str:
    """A method's registry name and constructor arguments (its state is not part of it)."""
    params = inspect.signature(type(method).__init__).parameters
    args = {k: getattr(method, k) for k in params if k != "self" and hasattr(method, k)}
    return f"{getattr(method, 'registry_name', type(method).__name__)}({', '.join(f'{k}={v!r}' for k, v in args.items())})"


def model_config(model: torch.nn.Module) -> str:
    shapes = ";".join(f"{k}:{tuple(v.shape)}" for k, v in model.state_dict().items())
    return f"{type(model).__name__}#{hashlib.sha256(shapes.encode()).hexdigest()[:12]}"


def identity(model, methods, task, optimizer: dict[str, Any], seed: int, data, world_size: int) -> dict[str, Any]:
    """The fields that must match for a checkpoint to be resumed, in the order they are compared."""
    from . import __version__

    return {"mmlib": __version__, "model": model_config(model), "methods": [method_config(m) for m in methods],
            "task": repr(task), "optimizer": {k: optimizer[k] for k in sorted(optimizer)}, "seed": seed,
            "data": data_fingerprint(data), "world_size": world_size}


def save(payload: dict[str, Any], path: Path) -> None:
    """Write ``payload`` to ``path`` atomically (a temporary file, then a rename)."""
    tmp = path.with_name(path.name + ".tmp")
    torch.save(payload, tmp)
    os.replace(tmp, path)


def load(path: Path, expected: dict[str, Any], num_epochs: int) -> dict[str, Any]:
    """Read and check a checkpoint for the run ``expected``; raise ``CheckpointError`` otherwise."""
    try:
        saved = torch.load(path, weights_only=False, map_location="cpu")
    except (EOFError, pickle.UnpicklingError, zipfile.BadZipFile, RuntimeError, OSError, ValueError) as err:
        raise CheckpointError(f"cannot read checkpoint {str(path)!r} ({type(err).__name__}: {err}); it is "
                              f"truncated or not an mmlib checkpoint: delete it to start the run over") from None
    if not isinstance(saved, dict) or "identity" not in saved or "epoch" not in saved:
        raise CheckpointError(f"{str(path)!r} is not an mmlib checkpoint (no run identity); "
                              f"use another file name or delete it")
    found = saved["identity"]
    for key, value in expected.items():
        if found.get(key) != value:
            raise CheckpointError(f"checkpoint {str(path)!r} belongs to another run: its {key} is "
                                  f"{found.get(key)!r}, this run's is {value!r}; use another file or delete it")
    done = saved["epoch"] + 1
    if done > num_epochs:
        raise CheckpointError(f"checkpoint {str(path)!r} has {done} epochs done, more than num_epochs={num_epochs}; "
                              f"ask for num_epochs >= {done} or use another file")
    return saved
