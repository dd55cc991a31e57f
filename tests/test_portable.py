"""Portable numerics: the same bits under every emulated CPU, and a test that can fail without it.

Each run is a fresh Python process (libraries read their code-path settings when they load): a
short ``fit`` of CNN encoders with BatchNorm on ``av-digits`` (convolutions, BLAS, FFT in the data,
numpy's random draws) followed by linear probes (scikit-learn, OpenBLAS, libm). An emulated CPU
is the set of environment variables that cap each library's instruction set, as a machine without
those instructions would: ATen's capability, MKL's, oneDNN's, OpenBLAS's core type, numpy's
dispatched loops and glibc's hardware capabilities. Portable mode must give bit-identical
parameters and metrics under all of them; with it off, the same runs must differ.
"""
import json
import os
import subprocess
import sys
import warnings
from pathlib import Path

import pytest

from mmlib import portable

ROOT = Path(__file__).resolve().parents[1]

RUN = """
import hashlib, json
import mmlib as mm
mm.seed_everything(0)
data = mm.load_dataset("av-digits", n_samples=240)
res = mm.fit(mm.build_model(data), data, "joint-uni", num_epochs=2, batch_size=32, lr=0.05,
             optimizer="sgd", seed=0)
h = hashlib.sha256()
for value in res.model.state_dict().values():
    h.update(value.numpy().tobytes())
print(json.dumps({"params": h.hexdigest(), "test": res.test, "probes": mm.probe_all(res.model, data),
                  "state": mm.portable.state()}))
"""

# What a CPU without some instructions would make each library do; each needs the named CPU flags here.
CPUS = {
    "avx2": ({"ATEN_CPU_CAPABILITY": "avx2", "MKL_ENABLE_INSTRUCTIONS": "AVX2", "ONEDNN_MAX_CPU_ISA": "AVX2",
              "OPENBLAS_CORETYPE": "Haswell"}, {"avx2", "fma"}),
    "avx": ({"ATEN_CPU_CAPABILITY": "default", "MKL_ENABLE_INSTRUCTIONS": "AVX", "ONEDNN_MAX_CPU_ISA": "AVX",
             "OPENBLAS_CORETYPE": "Sandybridge", "NPY_DISABLE_CPU_FEATURES": "X86_V3 X86_V4 AVX512_ICL AVX512_SPR",
             "GLIBC_TUNABLES": "glibc.cpu.hwcaps=-AVX2,-FMA"}, {"avx"}),
    "sse4.2": ({"ATEN_CPU_CAPABILITY": "default", "MKL_ENABLE_INSTRUCTIONS": "SSE4_2",
                "ONEDNN_MAX_CPU_ISA": "SSE41", "OPENBLAS_CORETYPE": "Nehalem",
                "NPY_DISABLE_CPU_FEATURES": "X86_V3 X86_V4 AVX512_ICL AVX512_SPR",
                "GLIBC_TUNABLES": "glibc.cpu.hwcaps=-AVX,-AVX2,-FMA"}, {"sse4_2"}),
}

# The portable run's parameter hash, produced on the machine that committed the notebooks' outputs.
# On any x86-64 Linux machine with the pinned requirements the portable run must give these bits.
REFERENCE = "50b58fa66560d7050f24b6bf555f8e1734831b61cfe21b1614a22283db7952e6"


def cpu_flags() -> set[str]:
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return set()
    line = next((ln for ln in text.splitlines() if ln.startswith("flags")), "")
    return set(line.split(":", 1)[-1].split())


def clean_env(**extra: str) -> dict[str, str]:
    """This process's environment without any portable or emulation setting, plus ``extra``."""
    drop = {*portable.ENV, "GLIBC_TUNABLES", "MKL_ENABLE_INSTRUCTIONS", "ONEDNN_MAX_CPU_ISA", portable.SWITCH}
    env = {k: v for k, v in os.environ.items() if k not in drop}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    return {**env, **extra}


def run_as(cpu: str, portable_on: bool) -> dict:
    env = clean_env(**CPUS[cpu][0], MMLIB_PORTABLE="1" if portable_on else "0")
    env = portable.process_env(env)  # how make, mmlib run and mmlib exec start processes
    proc = subprocess.run([sys.executable, "-c", RUN], env=env, cwd=ROOT, capture_output=True, text=True,
                          timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def runnable():
    flags = cpu_flags()
    cpus = [name for name, (_, needs) in CPUS.items() if needs <= flags]
    if len(cpus) < 2:
        pytest.skip(f"this CPU can emulate only {cpus}; two are needed")
    return cpus


@pytest.fixture(scope="module")
def portable_runs(runnable):
    return {cpu: run_as(cpu, portable_on=True) for cpu in runnable}


def test_portable_runs_are_bit_identical_under_every_emulated_cpu(portable_runs):
    first, *rest = portable_runs
    for cpu in rest:
        assert portable_runs[cpu]["params"] == portable_runs[first]["params"], (first, cpu)
        assert portable_runs[cpu]["test"] == portable_runs[first]["test"]
        assert portable_runs[cpu]["probes"] == portable_runs[first]["probes"]


def test_every_library_reports_its_portable_path(portable_runs):
    for cpu, run in portable_runs.items():
        s = run["state"]
        assert s["aten"] == "DEFAULT", cpu
        assert s["mkl_branch"] == portable.MKL_CBWR_COMPATIBLE, cpu
        assert not s["mkldnn"] and not s["nnpack"], cpu
        assert set(s["openblas"]) == {portable.OPENBLAS_CORE}, cpu
        assert s["numpy_simd"] == [] and s["glibc_masked"], cpu


def test_without_portable_mode_the_emulated_cpus_disagree(runnable):
    """The emulation is real: the same runs on the native paths give different parameters."""
    native = {cpu: run_as(cpu, portable_on=False)["params"] for cpu in runnable}
    assert len(set(native.values())) > 1, native


def test_portable_run_matches_the_reference_machine(portable_runs):
    """Bits produced on another machine (the one that executed the stored notebooks)."""
    params = next(iter(portable_runs.values()))["params"]
    assert params == REFERENCE, "portable numerics differ from the reference machine's; nbval will fail too"


def test_process_env_adds_the_settings_and_keeps_other_glibc_tunables():
    env = portable.process_env({"GLIBC_TUNABLES": "glibc.malloc.arena_max=2", "PATH": "/bin"})
    for name, value in portable.ENV.items():
        assert env[name] == value
    assert env["GLIBC_TUNABLES"] == f"glibc.malloc.arena_max=2:glibc.cpu.hwcaps={portable.GLIBC_HWCAPS}"
    assert env["PATH"] == "/bin"


@pytest.mark.parametrize("value", ["0", "false", "OFF", "no"])
def test_switch_off_leaves_the_environment_alone(value):
    base = {portable.SWITCH: value, "PATH": "/bin"}
    assert portable.process_env(base) == base
    assert portable.shell_exports(base) == ""


def test_shell_exports_name_every_variable():
    text = portable.shell_exports({"PATH": "/bin"})
    for name in [*portable.ENV, "GLIBC_TUNABLES"]:
        assert f"export {name}=" in text


def test_check_names_a_library_on_a_native_path_and_warns_once(monkeypatch):
    monkeypatch.setattr(portable, "state", lambda: {"aten": "AVX2", "mkl_branch": 1, "mkldnn": True,
                                                    "nnpack": False, "openblas": ["Haswell"],
                                                    "numpy_simd": ["X86_V3"], "glibc_masked": False})
    problems = portable.check()
    assert len(problems) == 6
    assert "AVX2" in problems[0] and "mmlib env" in problems[0]
    monkeypatch.setattr(portable, "_active", True)
    monkeypatch.setattr(portable, "_warned", False)
    with pytest.warns(portable.PortabilityWarning, match="ATen kernels run at CPU capability AVX2"):
        portable.verify()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        portable.verify()  # once per process


def test_verify_is_silent_when_portable_mode_is_off(monkeypatch):
    monkeypatch.setattr(portable, "_active", False)
    monkeypatch.setattr(portable, "check", lambda: pytest.fail("must not check"))
    assert portable.verify() == []
