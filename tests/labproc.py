"""The lab started as a user starts it: `python -m probe lab --json`, read its ready line.

One helper for every test file that needs the lab, so they all exercise the real command, its
ready line and its clean exit on SIGTERM.
"""

from __future__ import annotations

import contextlib
import json
import signal
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest


@dataclass(frozen=True)
class Lab:
    doc: dict[str, Any]
    ports: dict[str, int]
    pki: Path

    @property
    def ca(self) -> Path:
        return self.pki / "ca.crt"


@contextlib.contextmanager
def running_lab(pki: Path, *names: str, port_base: int = 0) -> Iterator[Lab]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "probe", "lab", "--json", "--port-base", str(port_base),
         "--pki-dir", str(pki), *names],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if not line:
        proc.kill()
        pytest.fail(f"lab did not start: {proc.stderr.read() if proc.stderr else ''}")
    doc = json.loads(line)
    try:
        yield Lab(doc=doc, ports={s["name"]: s["port"] for s in doc["scenarios"]}, pki=pki)
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            rc = proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            raise
        stderr = proc.stderr.read() if proc.stderr else ""
        assert rc == 0, "the lab must exit 0 on SIGTERM"
        assert "internal error" not in stderr, stderr
