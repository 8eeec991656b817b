"""What the benchmark scripts share: an `openssl s_server` reference peer and CPU counters."""

from __future__ import annotations

import contextlib
import resource
import socket
import subprocess
import time
from collections.abc import Iterator, Sequence
from pathlib import Path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def cpu_self() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def cpu_children() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


@contextlib.contextmanager
def s_server(pki_dir: Path, extra: Sequence[str] = ()) -> Iterator[int]:
    """`openssl s_server` with the PKI's `good` chain on a free loopback port, until the block
    ends; yields the port once it accepts connections."""
    port = free_port()
    proc = subprocess.Popen(
        ["openssl", "s_server", "-accept", f"127.0.0.1:{port}", "-quiet", "-naccept", "10000000",
         "-cert", str(pki_dir / "good.crt"), "-key", str(pki_dir / "good.key"),
         "-cert_chain", str(pki_dir / "intermediate.crt"), *extra],
        stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        for _ in range(500):
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
                break
            time.sleep(0.01)
        yield port
    finally:
        proc.terminate()
        proc.wait(5)
