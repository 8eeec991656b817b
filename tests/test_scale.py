"""Scale: 1,000 lab endpoints and 1,000 silent ones through ``probe_many``, bounded and streamed.

Bounds are measured, never assumed: the summary's in-flight maxima, the process's descriptors
(``/proc/self/fd``) before, during and after, and tracemalloc's peak. The lab runs in this
process (``serve_lab`` in the test's nursery), so its accepted sockets and allocations are
counted too: the descriptor bound allows one server-side socket per client socket, and the memory
bound covers both ends of every handshake.

Silent endpoints are bare listening sockets that never accept: the kernel completes the TCP
handshake from its backlog, the ClientHello sits unread, and the probe times out in the handshake,
like a hung listener. They hold no descriptor per connection on our side.

No timing assertions: wall times are printed (pytest -s) for the report, and ``trio.fail_after``
is only a safety net against a hang.
"""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import textwrap
import time
import tracemalloc
from collections import Counter
from collections.abc import Iterator
from functools import partial
from pathlib import Path

import pytest
import trio
from labproc import free_block
from probing import check_schema

from probe.errors import InputError
from probe.lab.server import Listening, select, serve_lab
from probe.multi import (
    DEADLINE_ERROR,
    deadline_probe_result,
    ensure_fd_limit,
    json_lines,
    probe_many,
    read_targets,
    requests_for,
    scan_many,
    stream_many,
)
from probe.pki import TestPKI
from probe.prober import ProbeRequest, run_probe
from probe.result import ProbeResult
from probe.scan import ScanOptions, ScanResult
from probe.target import Target
from probe.tlsconfig import make_offer

pytestmark = pytest.mark.skipif(
    not Path("/proc/self/fd").is_dir(), reason="descriptor counts need /proc/self/fd"
)

# Descriptors that come and go without us: trio's thread cache, the getaddrinfo threads'
# sockets for "localhost", pytest's capture files.
FD_SLACK = 16


def fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def request(host: str, port: int, pki: TestPKI, *, timeout: float = 5.0) -> ProbeRequest:
    return ProbeRequest(
        target=Target(host=host, port=port),
        offer=make_offer(None, None, None, None),
        ca_file=pki.ca,
        timeout=timeout,
        grace=0.0,  # nothing to wait for after the handshake: the lab's `good` holds the line
    )


@contextlib.contextmanager
def silent_ports(n: int) -> Iterator[list[int]]:
    socks: list[socket.socket] = []
    try:
        for _ in range(n):
            s = socket.socket()
            s.bind(("127.0.0.1", 0))
            s.listen(16)
            socks.append(s)
        yield [int(s.getsockname()[1]) for s in socks]
    finally:
        for s in socks:
            s.close()


async def settle(limit: int) -> int:
    """Wait until the descriptor count falls to ``limit`` (the lab closes its ends as it reads
    our close); fail_after is the safety net, not a performance bound."""
    with trio.fail_after(10):
        while (n := fds()) > limit:
            await trio.sleep(0.02)
    return n


# --- (a) 1,000 lab endpoints -----------------------------------------------------------------


async def test_thousand_lab_endpoints_connect_streamed_and_bounded(pki: TestPKI) -> None:
    async with trio.open_nursery() as nursery:
        t0 = time.perf_counter()
        _, listening = await nursery.start(
            partial(
                serve_lab, select(["good"]), host="127.0.0.1", port_base=0,
                pki_dir=pki.directory, repeat=1000,
            )
        )  # fmt: skip
        startup = time.perf_counter() - t0
        assert len(listening) == 1000
        assert len({item.port for item in listening}) == 1000
        assert [item.index for item in listening] == list(range(1000))
        assert {item.scenario.name for item in listening} == {"good"}

        before = fds()
        pulled = 0
        pulled_at_first_result: int | None = None
        outcomes: Counter[str] = Counter()
        targets: set[str] = set()
        peak = before

        def source(items: list[Listening]) -> Iterator[ProbeRequest]:
            nonlocal pulled
            for i, item in enumerate(items):
                pulled += 1
                # Two host names for one address: two per-host limiters, so both the overall
                # limit (100) and the per-host one (50) are reached.
                yield request("127.0.0.1" if i % 2 else "localhost", item.port, pki)

        def on_result(r: ProbeResult) -> None:
            nonlocal peak, pulled_at_first_result
            if pulled_at_first_result is None:
                pulled_at_first_result = pulled
            outcomes[r.outcome] += 1  # counts only: the test must not hold 1,000 results either
            targets.add(r.target)
            peak = max(peak, fds())

        tracemalloc.start()
        t0 = time.perf_counter()
        with trio.fail_after(120):
            summary = await probe_many(
                source(listening), concurrency=100, per_host=50, deadline=None,
                on_result=on_result,
            )  # fmt: skip
        wall = time.perf_counter() - t0
        _, peak_mem = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        after = await settle(before + FD_SLACK)
        nursery.cancel_scope.cancel()

    print(
        f"\n(a) lab start-up with 1,000 listeners {startup:.3f} s; 1,000 probes {wall:.2f} s"
        f" (tracemalloc on); fds before {before}, peak {peak}, after {after};"
        f" tracemalloc peak {peak_mem / 1e6:.1f} MB; max in flight {summary.max_in_flight}"
        f" (per host {summary.max_in_flight_per_host})"
    )
    assert outcomes == {"connected": 1000}
    assert len(targets) == 1000
    assert summary.results == summary.read == 1000 and summary.outcomes == {"connected": 1000}
    # Streamed: the first result came out before the input was all read.
    assert pulled_at_first_result is not None and pulled_at_first_result < 1000
    assert summary.max_in_flight <= 100 and summary.max_in_flight_per_host <= 50
    # Client sockets (<= 100) and the lab's accepted ends (as many) on top of the baseline,
    # which already holds the 1,000 listeners.
    assert peak <= before + 2 * 100 + FD_SLACK
    assert after <= before + FD_SLACK
    # Both ends of every handshake are in this process; far above what 100 probes in flight
    # need and far below what 1,000 kept results would (see the module docstring).
    assert peak_mem < 64e6


# --- (b) 1,000 silent endpoints ---------------------------------------------------------------


async def test_thousand_silent_endpoints_time_out_and_release_descriptors(
    pki: TestPKI,
) -> None:
    baseline = fds()
    with silent_ports(1000) as ports:
        before = fds()
        peak = before
        outcomes: Counter[tuple[str, str]] = Counter()

        def on_result(r: ProbeResult) -> None:
            nonlocal peak
            outcomes[(r.outcome, r.phase)] += 1
            peak = max(peak, fds())

        t0 = time.perf_counter()
        with trio.fail_after(60):
            summary = await probe_many(
                (request("127.0.0.1", p, pki, timeout=0.5) for p in ports),
                concurrency=200, per_host=200, deadline=None, on_result=on_result,
            )  # fmt: skip
        wall = time.perf_counter() - t0
        after = fds()
    print(
        f"\n(b) 1,000 silent endpoints, timeout 0.5 s, concurrency 200: {wall:.2f} s"
        f" (ceil(1000/200) x 0.5 s = 2.5 s); fds before {before}, peak {peak}, after {after};"
        f" max in flight {summary.max_in_flight}"
    )
    assert outcomes == {("timeout", "handshake"): 1000}
    assert summary.max_in_flight <= 200
    assert peak <= before + 200 + FD_SLACK
    assert after <= before + FD_SLACK
    assert fds() <= baseline + FD_SLACK


# --- (c) the global deadline ------------------------------------------------------------------


async def test_global_deadline_gives_every_target_a_result(pki: TestPKI) -> None:
    with silent_ports(200) as ports:
        results: list[ProbeResult] = []
        t0 = time.perf_counter()
        with trio.fail_after(10):  # a safety net: per-probe timeouts alone would take 20 s
            summary = await probe_many(
                (request("127.0.0.1", p, pki, timeout=5.0) for p in ports),
                concurrency=50, per_host=50, deadline=1.0, on_result=results.append,
            )  # fmt: skip
        wall = time.perf_counter() - t0
    print(
        f"\n(c) 200 silent targets, timeout 5 s, deadline 1 s: returned after {wall:.2f} s;"
        f" cut short {summary.cut_short}, not started {summary.not_started}"
    )
    assert summary.deadline_reached
    assert sorted(r.target for r in results) == sorted(f"127.0.0.1:{p}" for p in ports)
    assert summary.results == summary.read == 200
    assert summary.cut_short + summary.not_started == 200
    assert 0 < summary.cut_short <= 50
    for r in results:
        assert r.outcome == "timeout" and r.diagnosis == ()
        assert r.error is not None and r.error.startswith(DEADLINE_ERROR)
        assert r.phase == ("handshake" if "being probed" in r.error else "tcp")
        check_schema(r)
    cut = [r for r in results if r.phase == "handshake"]
    assert len(cut) == summary.cut_short and all(r.timings_ms["total"] > 0 for r in cut)


# --- (d) the input is read lazily -------------------------------------------------------------


def refused_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def test_hundred_thousand_targets_are_not_materialised_on_cancel(pki: TestPKI) -> None:
    port = refused_port()  # nothing listens: each probe is one quick refusal
    pulled = 0

    def many() -> Iterator[ProbeRequest]:
        nonlocal pulled
        for _ in range(100_000):
            pulled += 1
            yield request("127.0.0.1", port, pki)

    delivered = 0
    with trio.CancelScope() as scope:

        def on_result(r: ProbeResult) -> None:
            nonlocal delivered
            assert r.outcome == "refused"
            delivered += 1
            if delivered == 50:
                scope.cancel()  # the caller stops the run (Ctrl-C in the CLI)

        await probe_many(
            many(), concurrency=10, per_host=10, deadline=None, on_result=on_result,
            buffer=10, window=20,
        )  # fmt: skip
    assert scope.cancelled_caught
    # What was read is what finished, what ran or waited in the window, what sat in the
    # channel, and the one request in the producer's hand.
    assert delivered >= 50
    assert pulled <= delivered + 20 + 10 + 1


async def test_deadline_without_reporting_the_rest_leaves_the_input_unread(pki: TestPKI) -> None:
    pulled = 0
    with silent_ports(1) as (port,):

        def many() -> Iterator[ProbeRequest]:
            nonlocal pulled
            for _ in range(100_000):
                pulled += 1
                yield request("127.0.0.1", port, pki)

        results: list[ProbeResult] = []
        with trio.fail_after(10):
            summary = await probe_many(
                many(), concurrency=10, per_host=10, deadline=0.3, on_result=results.append,
                report_unstarted=False,
            )  # fmt: skip
    assert summary.deadline_reached and summary.left_unread
    assert pulled == summary.read == summary.results == len(results)
    assert summary.read <= 20 + 10 + 1
    assert summary.cut_short == 10


async def test_deadline_reports_the_rest_of_a_finite_input(pki: TestPKI) -> None:
    with silent_ports(1) as (port,):
        results: list[ProbeResult] = []
        with trio.fail_after(10):
            summary = await probe_many(
                (request("127.0.0.1", port, pki) for _ in range(500)),
                concurrency=5, per_host=5, deadline=0.2, on_result=results.append,
            )  # fmt: skip
    assert len(results) == summary.results == summary.read == 500
    assert summary.cut_short == 5 and summary.not_started == 495 and not summary.left_unread


async def test_stream_many_carries_the_callers_own_items(pki: TestPKI) -> None:
    # What `run` needs for a plan: each result tied to its check, deadline results included.
    port = refused_port()
    with silent_ports(1) as (silent,):
        items = [("silent", request("127.0.0.1", silent, pki)),
                 ("closed", request("127.0.0.1", port, pki))]  # fmt: skip

        async def run(item: tuple[str, ProbeRequest]) -> tuple[str, ProbeResult]:
            return item[0], await run_probe(item[1])

        got: dict[str, ProbeResult] = {}
        with trio.fail_after(10):
            summary = await stream_many(
                items, run, host=lambda item: item[1].target.host,
                cut=lambda item, ran, dl: (item[0], deadline_probe_result(item[1], ran, dl)),
                outcome=lambda pair: pair[1].outcome, concurrency=2, per_host=2,
                deadline=0.5, on_result=lambda pair: got.__setitem__(*pair),
            )  # fmt: skip
    assert summary.outcomes == {"timeout": 1, "refused": 1} and summary.cut_short == 1
    assert got["closed"].outcome == "refused"
    assert (got["silent"].error or "").startswith(DEADLINE_ERROR)


# --- failures come out bare, not wrapped in an ExceptionGroup --------------------------------


async def test_a_failing_callback_stops_the_run_with_its_own_exception(pki: TestPKI) -> None:
    port = refused_port()

    def on_result(r: ProbeResult) -> None:
        raise BrokenPipeError("stdout closed")

    with pytest.raises(BrokenPipeError):
        await probe_many(
            (request("127.0.0.1", port, pki) for _ in range(100)),
            concurrency=5, per_host=5, deadline=None, on_result=on_result,
        )  # fmt: skip


async def test_a_failing_input_stops_the_run_with_its_own_exception(pki: TestPKI) -> None:
    port = refused_port()

    def bad() -> Iterator[ProbeRequest]:
        yield request("127.0.0.1", port, pki)
        raise InputError("line 2: bad target")

    with pytest.raises(InputError, match="line 2"):
        await probe_many(bad(), concurrency=5, per_host=5, deadline=None, on_result=print)


async def test_limits_are_checked() -> None:
    for kw in ({"concurrency": 0}, {"per_host": 0}, {"deadline": 0.0}):
        args: dict[str, object] = {"concurrency": 1, "per_host": 1, "deadline": None, **kw}
        with pytest.raises(InputError):
            await probe_many([], on_result=print, **args)  # type: ignore[arg-type]


# --- target files ------------------------------------------------------------------------------


def test_read_targets_streams_a_checked_file(tmp_path: Path) -> None:
    path = tmp_path / "targets.txt"
    path.write_text("# partners\nmq.example:1414\n\n  [::1]:992  # IPv6\nplain.example\n")
    tf = read_targets(path)
    assert len(tf) == 3
    want = [Target(host="mq.example", port=1414), Target(host="::1", port=992),
            Target(host="plain.example", port=443)]  # fmt: skip
    assert list(tf) == want
    assert list(tf) == want  # iterable again: the file is read anew
    it = iter(tf)
    assert next(it) == want[0]  # one line at a time


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("ok.example\nbad:port\n", "line 2"),
        ("# only comments\n\n", "no targets"),
        ("x" * 5000 + "\n", "longer than"),
        ("ok.example\nnot a target\n", "line 2"),  # would have become a DNS query
    ],
)
def test_read_targets_refuses_bad_files(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "targets.txt"
    path.write_text(text)
    with pytest.raises(InputError, match=message):
        read_targets(path)


def test_read_targets_missing_file_and_check(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="no such file"):
        read_targets(tmp_path / "nope.txt")
    path = tmp_path / "t.txt"
    path.write_text("a.example:21\nb.example:23\n")

    def check(t: Target) -> None:
        if t.port == 23:
            raise InputError("port 23: not for this test")

    with pytest.raises(InputError, match="line 2: port 23"):
        read_targets(path, check=check)


async def test_requests_for_and_json_lines(tmp_path: Path, pki: TestPKI) -> None:
    import io
    import json

    path = tmp_path / "t.txt"
    port = refused_port()
    path.write_text(f"127.0.0.1:{port}\nlocalhost:{port}\n")
    out = io.StringIO()
    template = request("0.0.0.0", 1, pki)
    summary = await probe_many(
        requests_for(read_targets(path), template, "none"), concurrency=2, per_host=1,
        deadline=None, on_result=json_lines(out),
    )  # fmt: skip
    lines = out.getvalue().splitlines()
    assert len(lines) == summary.results == 2
    assert {json.loads(ln)["target"] for ln in lines} == {f"127.0.0.1:{port}", f"localhost:{port}"}


# --- scans -------------------------------------------------------------------------------------


async def test_scan_many_streams_scans_and_marks_the_deadline(pki: TestPKI) -> None:
    async with trio.open_nursery() as nursery:
        _, listening = await nursery.start(
            partial(serve_lab, select(["good"]), host="127.0.0.1", port_base=0,
                    pki_dir=pki.directory, repeat=2)
        )  # fmt: skip
        results: list[ScanResult] = []
        with trio.fail_after(60):
            summary = await scan_many(
                (ScanOptions(target=Target(host="127.0.0.1", port=item.port), timeout=5)
                 for item in listening),
                concurrency=2, per_host=4, deadline=None, on_result=results.append,
            )  # fmt: skip
        assert summary.outcomes == {"scanned": 2}
        assert all(
            any(p.version == "TLSv1.3" and p.supported for p in r.protocols) for r in results
        )
        nursery.cancel_scope.cancel()
    with silent_ports(3) as ports:
        cut: list[ScanResult] = []
        with trio.fail_after(10):
            summary = await scan_many(
                (ScanOptions(target=Target(host="127.0.0.1", port=p), timeout=5) for p in ports),
                concurrency=2, per_host=2, deadline=0.3, on_result=cut.append,
            )  # fmt: skip
    assert summary.deadline_reached and len(cut) == 3
    assert all(r.outcome == "timeout" and (r.error or "").startswith(DEADLINE_ERROR) for r in cut)


def test_deadline_scan_results_follow_the_scan_schema() -> None:
    import json

    import jsonschema
    from probing import schema as published_schema

    from probe.multi import deadline_scan_result
    from probe.result import to_jsonable

    schema = published_schema("scan")
    opts = ScanOptions(target=Target(host="127.0.0.1", port=1))
    for ran in (None, 0.25):
        doc = json.loads(json.dumps(to_jsonable(deadline_scan_result(opts, ran, 1.0))))
        jsonschema.validate(doc, schema)


# --- the lab's repeat and descriptor limit ------------------------------------------------------


async def test_repeat_takes_consecutive_ports_in_catalog_order(pki: TestPKI) -> None:
    base = free_block(6, start=42000)
    async with trio.open_nursery() as nursery:
        _, listening = await nursery.start(
            partial(serve_lab, select(["expired", "good"]), host="127.0.0.1", port_base=base,
                    pki_dir=pki.directory, repeat=3)
        )  # fmt: skip
        got = [(item.scenario.name, item.index, item.port) for item in listening]
        nursery.cancel_scope.cancel()
    # Catalog order: good comes before expired, whatever order they were asked in.
    assert got == [("good", 0, base), ("good", 1, base + 1), ("good", 2, base + 2),
                   ("expired", 0, base + 3), ("expired", 1, base + 4),
                   ("expired", 2, base + 5)]  # fmt: skip


async def test_repeat_refuses_ports_beyond_65535(pki: TestPKI) -> None:
    with pytest.raises(InputError, match="65536"):
        await serve_lab(select(["good"]), host="127.0.0.1", port_base=65000,
                        pki_dir=pki.directory, repeat=1000)  # fmt: skip


def test_soft_descriptor_limit_goes_up_to_the_hard_one() -> None:
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard < 2000:
        pytest.skip(f"hard limit {hard} too low to try")
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (1024, hard))
        assert ensure_fd_limit(500, "test") == 1024  # enough already: left alone
        now = ensure_fd_limit(2000, "test")
        assert now >= 2000 and resource.getrlimit(resource.RLIMIT_NOFILE)[0] == now
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


def run_limited(code: str, soft: int, hard: int) -> subprocess.CompletedProcess[str]:
    prelude = textwrap.dedent(f"""
        import resource
        resource.setrlimit(resource.RLIMIT_NOFILE, ({soft}, {hard}))
    """)
    return subprocess.run([sys.executable, "-c", prelude + textwrap.dedent(code)],
                          capture_output=True, text=True, timeout=60)  # fmt: skip


def test_lab_raises_its_own_descriptor_limit(pki: TestPKI) -> None:
    import resource

    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    if hard != resource.RLIM_INFINITY and hard < 2000:
        pytest.skip(f"hard limit {hard} too low to try")
    proc = run_limited(f"""
        import resource, trio
        from functools import partial
        from pathlib import Path
        from probe.lab.server import select, serve_lab

        async def main():
            async with trio.open_nursery() as nursery:
                _, listening = await nursery.start(partial(
                    serve_lab, select(["good"]), host="127.0.0.1", port_base=0,
                    pki_dir=Path({str(pki.directory)!r}), repeat=1500))
                print(len(listening), resource.getrlimit(resource.RLIMIT_NOFILE)[0])
                nursery.cancel_scope.cancel()

        trio.run(main)
    """, 256, hard)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    count, soft = map(int, proc.stdout.split())
    assert count == 1500 and soft >= 1500


def test_lab_says_when_the_hard_limit_is_too_low(pki: TestPKI) -> None:
    proc = run_limited(f"""
        import trio
        from pathlib import Path
        from probe.errors import InputError
        from probe.lab.server import select, serve_lab

        try:
            trio.run(lambda: serve_lab(select(["good"]), host="127.0.0.1", port_base=0,
                                       pki_dir=Path({str(pki.directory)!r}), repeat=1000))
        except InputError as exc:
            print(exc)
    """, 200, 400)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert "open files" in proc.stdout and "ulimit -Hn" in proc.stdout
