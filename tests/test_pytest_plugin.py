"""The pytest plugin: this test process and every process it starts carry the portable environment."""
import os
import subprocess
import sys

from mmlib import portable


def test_the_test_process_has_the_portable_environment():
    for name, value in portable.ENV.items():
        assert os.environ[name] == value, name
    assert f"glibc.cpu.hwcaps={portable.GLIBC_HWCAPS}" in os.environ["GLIBC_TUNABLES"]


def test_a_child_process_starts_portable():
    """What nbval's kernels and xdist's workers inherit: glibc masked from their first instruction."""
    code = "import mmlib, json; print(json.dumps(mmlib.portable.check()))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    assert out.stdout.strip() == "[]"
