"""Reproducibility: one call fixes seeds, thread count, deterministic algorithms and portable numerics."""
from __future__ import annotations

import os
import random

import numpy as np
import torch
from threadpoolctl import threadpool_limits

from . import portable as _portable


def seed_everything(seed: int, num_threads: int | None = 1, deterministic: bool = True,
                    portable: bool | None = None) -> torch.Generator:
    """Seed Python, NumPy and torch; fix the torch and BLAS thread counts; ask for deterministic kernels.

    On CPU the same seed then gives the same numbers, run after run. One thread is the
    default because reductions split over threads may sum in a different order.

    Args:
        portable: put every numeric library on its CPU-independent path (``mmlib/portable.py``),
            so the numbers are also the same on another x86-64 machine; ``None`` follows the
            ``MMLIB_PORTABLE`` environment variable (on unless it is 0). ``False`` runs natively
            (about 2x faster on CNNs; reproducible on this machine only).

    Returns:
        A ``torch.Generator`` seeded with ``seed``, for data order and noise draws.
    """
    if not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    seed = int(seed)
    _portable.enable(_portable.wanted() if portable is None else bool(portable))
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    if num_threads is not None:
        torch.set_num_threads(num_threads)
        # BLAS threads too: scikit-learn's probes otherwise oversubscribe a small machine
        threadpool_limits(num_threads)
    if deterministic:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.use_deterministic_algorithms(True, warn_only=True)
    return torch.Generator().manual_seed(seed)


def derive_seed(seed: int, *names: object) -> int:
    """A stable sub-seed for a named purpose (e.g. the data split), independent of call order."""
    h = seed
    for name in names:
        for ch in str(name):
            h = (h * 1_000_003 + ord(ch)) % (2**31 - 1)
    return h
