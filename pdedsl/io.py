"""Save and load solved models: one file, checked on load.

Layout: a zip archive holding `header.json` (format name, format version, pdedsl
version, SHA-256 of the payload) and `payload.pkl` (the problem, the model, the
coefficients and the report, pickled). Loading checks the header and the
checksum before unpickling, so a foreign, truncated or corrupted file gives a
clear error. Pickle executes code: load only files you trust.
"""

from __future__ import annotations

import hashlib
import json
import pickle
import zipfile

import numpy as np

FORMAT = "pdedsl-solution"
FORMAT_VERSION = 1


class SolutionFileError(ValueError):
    """The file is not a pdedsl solution this version can read."""


def save(sol, path) -> None:
    """Write `sol` (a `pd.Solution`) to `path`."""
    import jax

    from . import __version__

    state = {
        "problem": sol.problem,
        "model": jax.tree_util.tree_map(lambda a: np.asarray(a) if hasattr(a, "shape") else a, sol.model),
        "coefficients": np.asarray(sol.coefficients),
        "info": sol.info,
    }
    try:
        payload = pickle.dumps(state, protocol=pickle.HIGHEST_PROTOCOL)
    except Exception as e:  # e.g. a basis with a lambda activation
        raise TypeError(
            f"This solution cannot be saved: {e}. (Custom callables must be importable functions.)"
        ) from e
    header = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "pdedsl_version": __version__,
        "sha256": hashlib.sha256(payload).hexdigest(),
    }
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as z:
        z.writestr("header.json", json.dumps(header))
        z.writestr("payload.pkl", payload)


def load(path):
    """Read a solution written by `save`; predictions are bit-identical, no re-solve."""
    import jax.numpy as jnp

    from .solution import Solution

    try:
        with zipfile.ZipFile(path) as z:
            header = json.loads(z.read("header.json"))
            payload = z.read("payload.pkl")
    except FileNotFoundError:
        raise
    except (zipfile.BadZipFile, KeyError, json.JSONDecodeError, OSError, EOFError) as e:
        raise SolutionFileError(f"{path} is not a pdedsl solution file (or it is corrupted): {e}") from None
    if header.get("format") != FORMAT:
        raise SolutionFileError(f"{path} is not a pdedsl solution file (format {header.get('format')!r}).")
    version = header.get("format_version")
    if version != FORMAT_VERSION:
        raise SolutionFileError(
            f"{path} has solution-file format {version} (written by pdedsl {header.get('pdedsl_version')}); "
            f"this pdedsl reads format {FORMAT_VERSION}."
        )
    if hashlib.sha256(payload).hexdigest() != header.get("sha256"):
        raise SolutionFileError(f"{path} is corrupted: its checksum does not match.")
    try:
        state = pickle.loads(payload)
    except Exception as e:
        raise SolutionFileError(
            f"{path} could not be read by pdedsl {header.get('pdedsl_version')!r} -> this version: {e}"
        ) from None
    import jax

    model = jax.tree_util.tree_map(
        lambda a: jnp.asarray(a) if isinstance(a, np.ndarray) else a, state["model"]
    )
    return Solution(state["problem"], model, jnp.asarray(state["coefficients"]), state["info"])
