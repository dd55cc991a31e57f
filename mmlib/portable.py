"""Portable numerics: the same bits on every x86-64 CPU, not only on the machine that ran first.

With fixed seeds and one thread, a CPU run still depends on the processor: each numeric library
picks its kernels by instruction set (AVX-512, AVX2, SSE), and kernels of different vector width
sum in different orders. Training amplifies a last-bit difference into a different model. Portable
mode pins every library that this package reaches to one code path that exists on any x86-64 CPU:

========================  ================================================  ======================
library                   setting                                           read when
========================  ================================================  ======================
ATen (torch's kernels)    ``ATEN_CPU_CAPABILITY=default`` (no AVX)          first torch operation
MKL (torch BLAS, FFT)     ``MKL_CBWR=COMPATIBLE`` (the only branch that      first MKL call
                          is reproducible on non-Intel CPUs too)
oneDNN (convolutions)     ``torch.backends.mkldnn.enabled = False``         any time (flag)
NNPACK (convolutions)     ``torch.backends.nnpack`` off                     any time (flag)
OpenBLAS (numpy, scipy,   ``OPENBLAS_CORETYPE=Nehalem`` and a fixed          library load
scikit-learn probes)      ``OPENBLAS_L2_SIZE``
numpy's SIMD loops        ``NPY_DISABLE_CPU_FEATURES``: every dispatched     numpy import
                          target (baseline SSE4.2 loops only)
glibc's libm (exp, log    ``GLIBC_TUNABLES=glibc.cpu.hwcaps=-AVX,...``       process start
in numpy and sklearn)     (the SSE2 variants, no FMA)
threads                   one (``OMP/MKL/OPENBLAS_NUM_THREADS=1``)           library load
========================  ================================================  ======================

``import mmlib`` sets the environment variables before it imports numpy or torch, so in a fresh
process (a notebook kernel whose first import is mmlib, a script) everything but glibc takes
effect. glibc reads its tunables only when a process starts: ``process_env()`` gives the whole
environment for a child process, and ``mmlib run``, the Makefile and the test suite start their
kernels and subprocesses with it; ``mmlib env`` prints it for a shell.
``enable()`` (called by ``import mmlib`` and ``seed_everything``) sets the torch flags and then
checks every library: one ``PortabilityWarning`` names each that is on a CPU-specific path and how
to fix it (usually: start the process with ``mmlib env`` applied, or import mmlib first).

Turn it off for speed with ``MMLIB_PORTABLE=0`` in the environment (before the process starts)
or ``seed_everything(seed, portable=False)``: results then reproduce on the same machine only.
It costs about 2x in training time on small CNNs (no oneDNN convolutions, SSE2 BLAS); see the
README for measured numbers. GPU runs are not covered: CUDA kernels differ between GPU models.

Reference: README, "What is reproduced bit for bit".
"""
from __future__ import annotations

import os
import sys
import warnings

SWITCH = "MMLIB_PORTABLE"

# numpy 2.4's dispatched targets (``numpy._core._multiarray_umath.__cpu_dispatch__``); baseline
# (x86-64-v2) loops remain. Names numpy does not dispatch would only make it print a warning.
NUMPY_DISPATCH = "X86_V3 X86_V4 AVX512_ICL AVX512_SPR"
GLIBC_HWCAPS = "-AVX,-AVX2,-FMA,-FMA4,-AVX512F"
OPENBLAS_CORE = "Nehalem"

ENV: dict[str, str] = {
    "ATEN_CPU_CAPABILITY": "default",
    "MKL_CBWR": "COMPATIBLE",
    "OPENBLAS_CORETYPE": OPENBLAS_CORE,
    "OPENBLAS_L2_SIZE": "262144",
    "NPY_DISABLE_CPU_FEATURES": NUMPY_DISPATCH,
    "OMP_NUM_THREADS": "1",
    "MKL_NUM_THREADS": "1",
    "OPENBLAS_NUM_THREADS": "1",
}

MKL_CBWR_BRANCH, MKL_CBWR_COMPATIBLE = 1, 3  # mkl.h: the "which branch" query, and COMPATIBLE


class PortabilityWarning(RuntimeWarning):
    """A numeric library runs a CPU-specific code path: results may differ on another machine."""


def wanted(environ: dict[str, str] | None = None) -> bool:
    """Whether portable mode is on (``MMLIB_PORTABLE`` unset, or anything but 0/false/no/off)."""
    value = (os.environ if environ is None else environ).get(SWITCH, "1")
    return value.strip().lower() not in ("0", "false", "no", "off")


def _glibc(value: str | None) -> str:
    """``GLIBC_TUNABLES`` with our hwcaps mask added to whatever it already holds."""
    parts = [p for p in (value or "").split(":") if p and not p.startswith("glibc.cpu.hwcaps=")]
    return ":".join([*parts, f"glibc.cpu.hwcaps={GLIBC_HWCAPS}"])


def process_env(base: dict[str, str] | None = None) -> dict[str, str]:
    """The environment for a child process (kernel, subprocess) that runs portable from its start.

    Returns ``base`` (default ``os.environ``) unchanged when portable mode is off in it.
    """
    env = dict(os.environ if base is None else base)
    if not wanted(env):
        return env
    env.update(ENV)
    env["GLIBC_TUNABLES"] = _glibc(env.get("GLIBC_TUNABLES"))
    return env


# glibc applied its tunables when this process started: remember what it saw, before we edit it
_STARTED_WITH_GLIBC = f"glibc.cpu.hwcaps={GLIBC_HWCAPS}" in os.environ.get("GLIBC_TUNABLES", "")


def set_process_env() -> None:
    """Set the variables in this process; effective for each library not loaded yet.

    ``import mmlib`` calls it before it imports numpy and torch.
    """
    if wanted():
        os.environ.update(process_env())


_active = False


def enable(on: bool = True, warn: bool = True) -> list[str]:
    """Put torch on its portable path (or back to native with ``on=False``) and check every library.

    Returns the problems found (issued once per process as a ``PortabilityWarning`` if ``warn``);
    empty when the whole process is portable or portable mode is off.
    """
    import torch

    global _active
    _active = bool(on)
    torch.backends.mkldnn.enabled = not on
    torch.backends.nnpack.set_flags(not on)
    if not on:
        return []
    set_process_env()
    return verify() if warn else check()


def verify() -> list[str]:
    """When portable mode is on, check every library and warn once about any on a CPU-specific path.

    ``fit`` and ``seed_everything`` call it, so a computation never starts on a silent native path.
    """
    if not _active:
        return []
    problems = check()
    if problems:
        _warn_once(problems)
    return problems


def mkl_branch() -> int | None:
    """MKL's reproducibility branch (3 = COMPATIBLE), or None when MKL cannot be asked."""
    import ctypes

    import torch

    try:
        lib = ctypes.CDLL(os.path.join(os.path.dirname(torch.__file__), "lib", "libtorch_cpu.so"))
        get = lib.mkl_serv_cbwr_get
    except (OSError, AttributeError):
        return None
    get.restype, get.argtypes = ctypes.c_int, [ctypes.c_int]
    return int(get(MKL_CBWR_BRANCH))


def state() -> dict[str, object]:
    """What each library runs now: the facts ``check`` compares with the portable settings."""
    import numpy._core._multiarray_umath as npy
    import torch
    from threadpoolctl import threadpool_info

    return {
        "aten": torch.backends.cpu.get_cpu_capability(),
        "mkl_branch": mkl_branch() if torch.backends.mkl.is_available() else None,
        "mkldnn": torch.backends.mkldnn.enabled,
        "nnpack": torch.backends.nnpack.is_available() and torch._C._get_nnpack_enabled(),
        "openblas": sorted({i.get("architecture") for i in threadpool_info() if i["internal_api"] == "openblas"}),
        "numpy_simd": sorted(t for t in npy.__cpu_dispatch__ if npy.__cpu_features__.get(t)),
        "glibc_masked": _STARTED_WITH_GLIBC,
    }


def check() -> list[str]:
    """One line per library that is not on its portable path; empty if all are."""
    s = state()
    fix = ("start the process with the portable environment (`eval \"$(mmlib env)\"`, `make`, or "
           "`mmlib run`), or import mmlib before numpy and torch")
    problems = []
    if s["aten"] != "DEFAULT":
        problems.append(f"torch's ATen kernels run at CPU capability {s['aten']} (portable: DEFAULT): "
                        f"a torch operation ran before mmlib set ATEN_CPU_CAPABILITY; {fix}")
    if s["mkl_branch"] not in (None, MKL_CBWR_COMPATIBLE):
        problems.append(f"MKL runs reproducibility branch {s['mkl_branch']} (portable: COMPATIBLE = 3): "
                        f"MKL was called before MKL_CBWR was set; {fix}")
    if s["mkldnn"] or s["nnpack"]:
        problems.append("oneDNN or NNPACK convolutions are enabled; call mmlib.seed_everything(seed) "
                        "or mmlib.portable.enable()")
    if any(a != OPENBLAS_CORE for a in s["openblas"]):
        problems.append(f"OpenBLAS runs {s['openblas']} kernels (portable: {OPENBLAS_CORE}): numpy was "
                        f"imported before mmlib; {fix}")
    if s["numpy_simd"]:
        problems.append(f"numpy dispatches {s['numpy_simd']} loops: numpy was imported before mmlib; {fix}")
    if not s["glibc_masked"]:
        problems.append("glibc's libm may use FMA/AVX2 variants (GLIBC_TUNABLES is read only at process "
                        f"start); {fix}")
    return problems


_warned = False


def _warn_once(problems: list[str]) -> None:
    global _warned
    if _warned:
        return
    _warned = True
    text = "\n  - ".join(problems)
    warnings.warn(f"mmlib portable numerics: results may not reproduce on another CPU:\n  - {text}\n"
                  f"(set {SWITCH}=0 to run natively on purpose and silence this)", PortabilityWarning,
                  stacklevel=3)


def shell_exports(environ: dict[str, str] | None = None) -> str:
    """``export NAME=value`` lines of the portable environment, for ``eval "$(mmlib env)"``."""
    import shlex

    env = process_env(environ)
    names = [*ENV, "GLIBC_TUNABLES"] if wanted(env) else []
    return "\n".join(f"export {n}={shlex.quote(env[n])}" for n in names)


if __name__ == "__main__":  # pragma: no cover - ``python -m mmlib.portable`` == ``mmlib env``
    sys.stdout.write(shell_exports() + "\n")
