"""The lab started as a user starts it: `python -m probe lab --json`, read its ready line.

One helper for every test file that needs the lab, so they all exercise the real command, its
ready line and its clean exit on SIGTERM.
"""

from __future__ import annotations

import contextlib
import json
import random
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from probe.lab.catalog import scenario_names


@dataclass(frozen=True)
class Lab:
    doc: dict[str, Any]
    ports: dict[str, int]
    pki: Path
    # The lab's stderr, filled in when it has stopped (after the `with` block).
    stderr: list[str] = field(default_factory=list)

    @property
    def ca(self) -> Path:
        return self.pki / "ca.crt"


def _start(pki: Path, names: tuple[str, ...], port_base: int) -> tuple[subprocess.Popen[str], str]:
    """The lab process and its first stdout line ("" if it exited before getting ready)."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "probe", "lab", "--json", "--port-base", str(port_base),
         "--pki-dir", str(pki), *names],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert proc.stdout is not None
    return proc, proc.stdout.readline()


@contextlib.contextmanager
def _serving(proc: subprocess.Popen[str], line: str, pki: Path) -> Iterator[Lab]:
    doc = json.loads(line)
    lab = Lab(doc=doc, ports={s["name"]: s["port"] for s in doc["scenarios"]}, pki=pki)
    try:
        yield lab
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            rc = proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            raise
        stderr = proc.stderr.read() if proc.stderr else ""
        lab.stderr.append(stderr)
        assert rc == 0, "the lab must exit 0 on SIGTERM"
        assert "internal error" not in stderr, stderr


@contextlib.contextmanager
def running_lab(pki: Path, *names: str, port_base: int = 0) -> Iterator[Lab]:
    proc, line = _start(pki, names, port_base)
    if not line:
        proc.kill()
        pytest.fail(f"lab did not start: {proc.stderr.read() if proc.stderr else ''}")
    with _serving(proc, line, pki) as lab:
        yield lab


def _bindable(ports: list[int]) -> bool:
    socks: list[socket.socket] = []
    try:
        for p in ports:
            s = socket.socket()
            socks.append(s)
            s.bind(("127.0.0.1", p))
        return True
    except OSError:
        return False
    finally:
        for s in socks:
            s.close()


def free_block(n: int, start: int = 21000) -> int:
    """A base port with ``n`` free ports after it (free now; a lab that loses the race for one
    says "cannot listen"). Tests that serve every scenario, or their own repeat layout, use it."""
    for base in range(start, 60000, 97):
        if _bindable(list(range(base, base + n))):
            return base
    raise RuntimeError("no free port block")


@contextlib.contextmanager
def running_lab_at_free_base(pki: Path, *names: str, tries: int = 20) -> Iterator[Lab]:
    """The lab serving ``names`` from a real port base (not 0), on ports that were free.

    A subset listens on base + catalog index, so the base must be a number, and the ports it
    needs are only free "now": another process may take one between the check and the lab's
    bind, so a lab that cannot listen is retried from another base.
    """
    catalog = scenario_names()
    offsets = [catalog.index(n) for n in names] if names else list(range(len(catalog)))
    rng = random.Random()
    errors: list[str] = []
    for _ in range(tries):
        base = rng.randrange(20000, 60000)
        if not _bindable([base + i for i in offsets]):
            continue
        proc, line = _start(pki, names, base)
        if line:
            with _serving(proc, line, pki) as lab:
                yield lab
            return
        proc.wait(10)
        stderr = proc.stderr.read() if proc.stderr else ""
        if "cannot listen" not in stderr:
            pytest.fail(f"lab did not start: {stderr}")
        errors.append(stderr.strip())  # lost a race for a port: try another base
    pytest.fail(f"no free port base for the lab after {tries} tries: {errors}")
