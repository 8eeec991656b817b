"""Where the data in profiles/ lives, installed or not.

A wheel carries profiles/ inside the package as ``probe/_profiles`` (pyproject's
force-include); a source checkout has it beside the package. This module imports nothing of
the project so that any layer, the pure codec included, may use it.
"""

from __future__ import annotations

import functools
from pathlib import Path

import probe


@functools.cache  # resolved once per process: every probe asks for it
def profiles_dir() -> Path:
    """The profiles directory: the installed copy first, then the source checkout's."""
    package = Path(probe.__file__).resolve().parent
    candidates = (package / "_profiles", package.parent / "profiles")
    for candidate in candidates:
        if candidate.is_dir():
            return candidate
    tried = ", ".join(str(c) for c in candidates)
    raise FileNotFoundError(f"no profiles directory; looked in {tried}")
