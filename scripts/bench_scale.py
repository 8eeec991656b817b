"""Many targets: `probe_many` against 10, 100 and 1,000 lab endpoints, and against `openssl
s_server` next to `openssl s_time`, in one run.

Every client run is a fresh process (this script, mode ``client``), so its peak RSS
(``ru_maxrss``), its CPU (``getrusage`` around the run, after imports and a 20-probe warm-up)
and its peak descriptors (``/proc/self/fd``, sampled at every result) are the client's alone.
The lab runs in its own process too (mode ``serve-lab``: ``serve_lab`` with ``repeat``), one
`good` listener per target, so 1,000 targets are 1,000 ports.

s_time is sequential (one connection at a time), so `probe_many` is measured against the same
s_server both at concurrency 1 (like for like) and at ``--concurrency``. Both verify the chain
against the lab CA and do full handshakes (no resumption); probes run with ``grace`` 0, as s_time
does not wait after the handshake either. Prints a table; --markdown prints the BENCHMARKS.md
section.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import re
import resource
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import trio
from benchlib import s_server

SIZES = (10, 100, 1000)
WARMUP = 20


def cpu_self() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def cpu_children() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def maxrss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def fds() -> int:
    return len(os.listdir("/proc/self/fd"))


# --- child modes -----------------------------------------------------------------------------


def serve_lab_mode(pki_dir: str, repeat: int) -> int:
    """The lab's `good` on ``repeat`` ports; one JSON line with the ports, then serve until
    SIGTERM (what `tlsprobe lab --repeat` will do once the CLI has the option)."""
    from probe.lab.server import select, serve_lab

    async def main() -> None:
        async with trio.open_nursery() as nursery:
            _, listening = await nursery.start(
                partial(serve_lab, select(["good"]), host="127.0.0.1", port_base=0,
                        pki_dir=Path(pki_dir), repeat=repeat)
            )  # fmt: skip
            print(json.dumps({"ports": [item.port for item in listening]}), flush=True)
            with trio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
                async for _ in signals:
                    nursery.cancel_scope.cancel()
                    break

    trio.run(main)
    return 0


def client_mode() -> int:
    """Probe the ports read from stdin ({"ports", "ca", "concurrency"}); print the measures."""
    from probe.multi import probe_many
    from probe.prober import ProbeRequest
    from probe.result import ProbeResult
    from probe.target import Target
    from probe.tlsconfig import make_offer

    job = json.loads(sys.stdin.read())
    ports: list[int] = job["ports"]
    offer = make_offer(None, None, None, None)

    def requests(which: list[int]) -> Iterator[ProbeRequest]:
        for port in which:
            yield ProbeRequest(
                target=Target(host="127.0.0.1", port=port),
                offer=offer,
                ca_file=Path(job["ca"]),
                grace=0.0,
                partner_versions=False,
            )

    outcomes: dict[str, int] = {}
    peak = 0

    def on_result(r: ProbeResult) -> None:
        nonlocal peak
        outcomes[r.outcome] = outcomes.get(r.outcome, 0) + 1
        peak = max(peak, fds())

    c = job["concurrency"]
    run = partial(probe_many, concurrency=c, per_host=c, deadline=None, on_result=on_result)
    trio.run(partial(run, requests(ports[:WARMUP])))  # imports, first-use caches
    outcomes.clear()
    rss_before, fds_before, peak = maxrss_mb(), fds(), fds()
    cpu0, wall0 = cpu_self(), time.perf_counter()
    summary = trio.run(partial(run, requests(ports)))
    cpu, wall = cpu_self() - cpu0, time.perf_counter() - wall0
    print(json.dumps({
        "n": len(ports), "wall": wall, "cpu": cpu, "outcomes": outcomes,
        "rss_before": rss_before, "rss_peak": maxrss_mb(), "fds_before": fds_before,
        "fds_peak": peak, "max_in_flight": summary.max_in_flight,
    }))  # fmt: skip
    return 0


# --- the parent ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Run:
    label: str
    n: int
    wall: float
    cpu: float
    rss_before: float
    rss_peak: float
    fds_before: int
    fds_peak: int
    max_in_flight: int


def client(label: str, ports: list[int], ca: Path, concurrency: int, runs: int) -> Run:
    """The median (by wall time) of ``runs`` client processes: a 2-CPU loopback box is noisy."""
    done = sorted((client_once(label, ports, ca, concurrency) for _ in range(runs)),
                  key=lambda r: r.wall)  # fmt: skip
    return done[len(done) // 2]


def client_once(label: str, ports: list[int], ca: Path, concurrency: int) -> Run:
    proc = subprocess.run(
        [sys.executable, __file__, "client"],
        input=json.dumps({"ports": ports, "ca": str(ca), "concurrency": concurrency}),
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    doc = json.loads(proc.stdout)
    if doc["outcomes"] != {"connected": len(ports)}:
        raise RuntimeError(f"{label}: not every probe connected: {doc['outcomes']}")
    return Run(label=label, n=doc["n"], wall=doc["wall"], cpu=doc["cpu"],
               rss_before=doc["rss_before"], rss_peak=doc["rss_peak"],
               fds_before=doc["fds_before"], fds_peak=doc["fds_peak"],
               max_in_flight=doc["max_in_flight"])  # fmt: skip


@contextlib.contextmanager
def lab(pki_dir: Path, repeat: int) -> Iterator[tuple[list[int], float]]:
    t0 = time.perf_counter()
    proc = subprocess.Popen(
        [sys.executable, __file__, "serve-lab", str(pki_dir), str(repeat)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert proc.stdout is not None
    line = proc.stdout.readline()
    started = time.perf_counter() - t0
    if not line:
        raise RuntimeError(f"lab failed: {proc.stderr.read() if proc.stderr else ''}")
    try:
        yield json.loads(line)["ports"], started
    finally:
        proc.terminate()
        proc.wait(10)


def s_time(port: int, ca: Path, seconds: int) -> tuple[float, float]:
    """(handshakes per wall second, CPU ms per handshake) of `openssl s_time -new`.

    The rate comes from our own clock: s_time's "N connections in T s" divides by its user CPU
    time, not by wall time (its "real seconds" line is rounded to the second)."""
    before, wall = cpu_children(), time.perf_counter()
    out = subprocess.run(
        ["openssl", "s_time", "-connect", f"127.0.0.1:{port}", "-new", "-time", str(seconds),
         "-verify", "2", "-CAfile", str(ca)],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    cpu, wall = cpu_children() - before, time.perf_counter() - wall
    m = re.search(r"(\d+) connections in [\d.]+s", out)
    if not m:
        raise RuntimeError(f"unexpected s_time output:\n{out}")
    n = int(m.group(1))
    return n / wall, cpu / n * 1000


def silent_run(n: int, timeout: float) -> tuple[float, dict[str, int]]:
    """n listeners that accept (the kernel does, into a large backlog) and never answer, all
    probed at once with `timeout`: the whole batch should end within one timeout plus a margin."""
    from probe.multi import ensure_fd_limit, probe_many
    from probe.prober import ProbeRequest
    from probe.target import Target
    from probe.tlsconfig import make_offer

    ensure_fd_limit(3 * n + 64, "silent targets")
    socks = []
    for _ in range(n):
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        sock.listen(4)
        socks.append(sock)
    offer = make_offer(None, None, None, None)
    reqs = [
        ProbeRequest(target=Target(host="127.0.0.1", port=x.getsockname()[1]), offer=offer,
                     timeout=timeout, partner_versions=False)
        for x in socks
    ]  # fmt: skip
    try:
        started = time.perf_counter()
        summary = trio.run(partial(probe_many, reqs, concurrency=n, per_host=n, deadline=None,
                                   on_result=lambda r: None))  # fmt: skip
        return time.perf_counter() - started, summary.outcomes
    finally:
        for sock in socks:
            sock.close()


def main() -> int:
    if len(sys.argv) > 1 and sys.argv[1] == "serve-lab":
        return serve_lab_mode(sys.argv[2], int(sys.argv[3]))
    if len(sys.argv) > 1 and sys.argv[1] == "client":
        return client_mode()
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    ap.add_argument("--concurrency", type=int, default=100, help="probe_many concurrency")
    ap.add_argument("--seconds", type=int, default=5, help="s_time duration")
    ap.add_argument("--runs", type=int, default=3, help="client runs per row (median shown)")
    ap.add_argument("--markdown", action="store_true", help="print a BENCHMARKS.md section")
    ns = ap.parse_args()
    c = ns.concurrency
    from probe.pki import build_test_pki

    with tempfile.TemporaryDirectory() as tmp:
        pki = build_test_pki(Path(tmp) / "pki")
        growth: list[Run] = []
        with lab(pki.directory, max(SIZES)) as (ports, lab_start):
            for n in SIZES:
                growth.append(client(f"lab, {n} targets", ports[:n], pki.ca, c, ns.runs))
            lab_rate, lab_cpu = s_time(ports[0], pki.ca, ns.seconds)
        with s_server(pki.directory) as port:
            ref_rate, ref_cpu = s_time(port, pki.ca, ns.seconds)
            n = max(SIZES)
            seq = client("s_server, concurrency 1", [port] * n, pki.ca, 1, ns.runs)
            par = client(f"s_server, concurrency {c}", [port] * n, pki.ca, c, ns.runs)

    silent_wall, silent_outcomes = silent_run(1000, 2.0)

    def row(r: Run) -> str:
        return (
            f"| {r.label} | {r.n} | {r.wall:.2f} s | {r.n / r.wall:.0f} | "
            f"{r.cpu / r.n * 1000:.2f} ms | {r.rss_peak:.0f} MB (+{r.rss_peak - r.rss_before:.0f})"
            f" | {r.fds_peak} (+{r.fds_peak - r.fds_before}) | {r.max_in_flight} |"
        )

    head = (
        "| client, server | targets | wall | handshakes/s | client CPU/handshake"
        " | peak RSS (growth in run) | peak fds (growth) | max in flight |"
    )
    lines = [head, "|---|---|---|---|---|---|---|---|"]
    lines += [row(r) for r in growth]
    lines += [row(seq), row(par)]
    lines += [
        f"| s_time -new, s_server | {ns.seconds} s | - | {ref_rate:.0f} | {ref_cpu:.2f} ms"
        " | - | - | 1 |",
        f"| s_time -new, lab `good` (one port) | {ns.seconds} s | - | {lab_rate:.0f}"
        f" | {lab_cpu:.2f} ms | - | - | 1 |",
    ]
    lines.append(
        f"| 1000 silent targets, timeout 2 s, concurrency 1000 | 1000 | {silent_wall:.2f} s"
        f" | - | - | - | - | 1000 |"
    )
    first, last = growth[0], growth[-1]
    per_target = [r.wall / r.n * 1000 for r in growth]
    sysssl = subprocess.run(["openssl", "version"], capture_output=True, text=True).stdout.strip()
    notes = [
        f"- Wall time per target at {', '.join(str(r.n) for r in growth)} targets:"
        f" {', '.join(f'{w:.2f} ms' for w in per_target)}"
        f" ({last.wall / first.wall:.0f}x the wall for {last.n // first.n}x the targets).",
        f"- 1000 silent targets: {silent_outcomes} in {silent_wall:.2f} s with a 2 s timeout"
        " (one deadline plus the margin shown).",
        f"- Lab start-up with {max(SIZES)} `good` listeners (process start, imports, warm PKI):"
        f" {lab_start:.2f} s.",
        f"- probe_many at concurrency 1 vs s_time on the same s_server: CPU per handshake"
        f" {seq.cpu / seq.n * 1000 / ref_cpu:.2f}x, handshakes/s"
        f" {seq.n / seq.wall / ref_rate:.2f}x; at concurrency {c}:"
        f" {par.n / par.wall / ref_rate:.2f}x s_time's rate (s_server answers one connection"
        " at a time).",
        "- Peak RSS is the client process's ru_maxrss (imports included); growth is during the"
        f" measured run. Peak fds are sampled at every result. Client rows: median of {ns.runs}"
        " runs by wall time.",
        f"- Python {platform.python_version()}, {sysssl}, {platform.machine()},"
        f" {os.cpu_count()} CPUs; lab and s_server in their own processes, one client process"
        " per row.",
    ]
    if ns.markdown:
        print("\n".join(["## Scale: many targets (issue 9)", "", *lines, "", *notes]))
    else:
        print("\n".join([*lines, "", *notes]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
