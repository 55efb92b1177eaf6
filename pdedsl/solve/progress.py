"""Progress lines on stderr: shown when stderr is a terminal, silent when piped,
unless forced on (`progress=True`, `PDEDSL_PROGRESS=1`, `pdedsl ... --progress`) or
off (`progress=False`, `PDEDSL_PROGRESS=0`, `pdedsl ... --quiet`).

In a terminal a running count is one line rewritten in place ("status" line);
forced on without a terminal, every update is a line of its own. Iterative
solvers call `tick` from inside their compiled loops through `jax.debug.callback`
(only when their static `progress` flag is set, so the loop traced without it
has no callback at all); `tick` prints at most every `INTERVAL` seconds.
"""

from __future__ import annotations

import os
import sys
import time

INTERVAL = 0.25  # seconds between two updates of a running count
EVERY = 50  # a compiled loop calls back to the host every EVERY iterations (each call
# costs about a millisecond on a loaded 2-core CPU: see benchmarks/progress_overhead.py)

_state = {"pending": False, "last": -float("inf"), "start": 0.0}


def enabled(progress: bool | None) -> bool:
    """`progress` as given; if None, the environment variable PDEDSL_PROGRESS
    ("1" on, "0" off) or else whether stderr is a terminal."""
    if progress is not None:
        return bool(progress)
    env = os.environ.get("PDEDSL_PROGRESS", "").strip()
    if env in ("0", "1"):
        return env == "1"
    return sys.stderr.isatty()


def status(msg: str) -> None:
    """A transient line: rewritten in place in a terminal, a plain line otherwise."""
    if sys.stderr.isatty():
        print("\r" + msg + "\x1b[K", end="", file=sys.stderr, flush=True)
        _state["pending"] = True
    else:
        print(msg, file=sys.stderr, flush=True)


def end_status() -> None:
    """End a transient line (so that the next message starts on a line of its own)."""
    if _state["pending"]:
        print(file=sys.stderr, flush=True)
        _state["pending"] = False


def say(msg: str) -> None:
    """A permanent line."""
    end_status()
    print(msg, file=sys.stderr, flush=True)


def start() -> None:
    """Reset the throttle and the clock before a loop that calls `tick`."""
    _state["last"] = -float("inf")
    _state["start"] = time.perf_counter()


def _line(label, k, residual) -> str:
    return (
        f"  {label} iteration {int(k):>7d}   residual {float(residual):.3e}   "
        f"[{time.perf_counter() - _state['start']:.1f} s]"
    )


def tick(label: str, k, residual) -> None:
    """Host side of a loop's callback: print the count, at most every INTERVAL s."""
    now = time.perf_counter()
    if now - _state["last"] >= INTERVAL:
        _state["last"] = now
        status(_line(label, k, residual))


def done(label: str, k, residual) -> None:
    """The final count of a loop (always printed), then end the line."""
    status(_line(label, k, residual))
    end_status()
