"""Every example runs as a script and ends with `RESULT rel_l2=<float> wall_s=<float>`."""

import pathlib
import re
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent
RESULT = re.compile(r"^RESULT rel_l2=(\S+)((?: \w+=\S+)*) wall_s=(\S+)$")

# (script, arguments, largest acceptable rel_l2, other RESULT fields' bounds)
CASES = [
    ("oscillator.py", [], 1e-6, {}),
    ("oscillator.py", ["--basis", "poly"], 1e-6, {}),
    ("poisson_2d.py", [], 1e-6, {}),
    ("bratu.py", [], 1e-8, {}),
    # 1% noise: the field follows the noisy data's best fit; mu within 2%
    ("inverse_oscillator.py", [], 2e-2, {"param_rel_err": 2e-2}),
    ("inverse_oscillator.py", ["--noise", "0", "--varpro"], 1e-6, {"param_rel_err": 1e-6}),
    # the graded decomposition resolves the front (uniform 20 x 10 gave 0.24)
    ("burgers.py", ["--subdomains", "30", "10", "--degree", "5"], 1e-3, {}),
]


def run(script, args):
    out = subprocess.run(
        [sys.executable, str(ROOT / "examples" / script), *args],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=ROOT,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    last = out.stdout.strip().splitlines()[-1]
    m = RESULT.match(last)
    assert m, f"last line of {script} is not a RESULT line: {last!r}"
    extra = dict(kv.split("=") for kv in m.group(2).split())
    return float(m.group(1)), float(m.group(3)), {k: float(v) for k, v in extra.items()}


@pytest.mark.slow
@pytest.mark.parametrize("script,args,tol,bounds", CASES, ids=[" ".join([c[0], *c[1]]) for c in CASES])
def test_example(script, args, tol, bounds):
    rel_l2, wall, extra = run(script, args)
    assert rel_l2 <= tol
    assert wall > 0
    for key, bound in bounds.items():
        assert extra[key] <= bound, (key, extra[key])


def test_every_example_is_covered():
    scripts = {p.name for p in (ROOT / "examples").glob("*.py")}
    assert scripts == {c[0] for c in CASES}
