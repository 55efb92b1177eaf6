"""Every example runs as a script and ends with `RESULT rel_l2=<float> wall_s=<float>`."""

import pathlib
import re
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent
RESULT = re.compile(r"^RESULT rel_l2=(\S+) wall_s=(\S+)$")

# (script, arguments, largest acceptable rel_l2)
CASES = [
    ("oscillator.py", [], 1e-6),
    ("oscillator.py", ["--basis", "poly"], 1e-6),
    ("poisson_2d.py", [], 1e-6),
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
    return float(m.group(1)), float(m.group(2))


@pytest.mark.slow
@pytest.mark.parametrize("script,args,tol", CASES, ids=[" ".join([c[0], *c[1]]) for c in CASES])
def test_example(script, args, tol):
    rel_l2, wall = run(script, args)
    assert rel_l2 <= tol
    assert wall > 0


def test_every_example_is_covered():
    scripts = {p.name for p in (ROOT / "examples").glob("*.py")}
    assert scripts == {c[0] for c in CASES}
