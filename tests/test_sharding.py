"""Sharded solves: the same coefficients on one device and on four (simulated CPU
devices, in a subprocess because the device count is fixed when JAX starts)."""

import json
import os
import pathlib
import subprocess
import sys

import pytest

from pdedsl.assemble.sharding import pad_rows, resolve_devices

SCRIPT = pathlib.Path(__file__).resolve().parent / "scripts" / "sharded_solves.py"


@pytest.mark.slow
def test_sharded_linear_solves_match_single_device():
    env = dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=4")
    out = subprocess.run([sys.executable, str(SCRIPT)], capture_output=True, text=True, timeout=900, env=env)
    assert out.returncode == 0, out.stderr[-3000:]
    res = json.loads(out.stdout.strip().splitlines()[-1])
    for name in ("LSMR", "CGNormal"):
        assert res[name]["sharded"] == 4
        assert res[name]["rel_diff"] <= 1e-10, (name, res[name])
        assert res[name]["points"][0] == res[name]["points"][1]  # padding rows are not counted
    assert "one device" in res["GaussNewton"]
    assert res["GaussNewtonDefault"] >= 1


def test_devices_argument():
    assert resolve_devices(None) is None  # one CPU device in this process
    assert resolve_devices(1) is None and resolve_devices(False) is None
    with pytest.raises(ValueError, match="xla_force_host_platform_device_count"):
        resolve_devices(8)
    with pytest.raises(TypeError):
        resolve_devices("all")
    assert pad_rows(10, 4) == 12 and pad_rows(12, 4) == 12
