"""Many targets at once (`probe -f`, `scan -f`): bounded, streamed, under one global deadline.

Theory of operation
-------------------
Three stages, each bounded, so memory and descriptors do not grow with the number of targets::

    iterable --producer--> channel (buffer) --dispatcher--> tasks (window) --> on_result

* The producer pulls requests from the caller's iterable one at a time into a memory channel of
  ``buffer`` slots, so a generator of 100,000 targets is read as the work goes, never
  materialised: at most ``buffer`` requests wait there, plus one in the producer's hand.
* The dispatcher takes a request only when the window has room (``window`` tasks, running or
  waiting for their host) and starts one task for it.
* A task waits for its host first (``per_host``), then for an overall slot (``concurrency``), and
  only then connects. Host first: a task queued behind a busy host holds no overall slot, so the
  other hosts keep the slots busy. Only a task holding an overall slot has sockets open, so a
  probe run stays under ``concurrency`` sockets (but see "partner versions" below).
* Each result goes to ``on_result`` the moment it exists and is not kept (the summary keeps
  counts), so the caller can print one JSON line per result and flush: an interrupted run keeps
  what it found.

Per-host limiters exist only while a task of that host does (reference counted), so a list of
100,000 distinct hosts leaves nothing behind. The window is what lets other hosts overtake a busy
one; a run of more than ``window`` consecutive requests for one host still waits on that host
(sort or interleave a list by host to avoid it).

The global deadline is one cancel scope around the three stages. When it fires, every request
already read has a result, in the order it was read: a probe that was running is reported as cut
short, one still waiting (in a task, the channel or the producer's hand) as not started. Both get
outcome ``timeout`` with an ``error`` that starts with :data:`DEADLINE_ERROR` and no diagnosis:
the partner did nothing wrong, our own deadline ran out, so the ``handshake_timeout`` advice
(firewalls, hung listeners) would mislead. ``run_probe`` does not say which phase a running probe
was in when it was cancelled: a probe cut short reports phase ``handshake`` (where a slow or silent
partner keeps a probe), one never started phase ``tcp`` (the phase it never began). With
``report_unstarted`` (the default) the rest of the iterable is then read and each request reported
as not started too, so a target file gets exactly one line per target; without it the rest stays
unread (an endless generator).

Partner versions: after a version mismatch, ``run_probe`` sends five raw hellos at once to learn
which versions the partner accepts, so for that moment one slot holds five sockets. Requests with
``partner_versions=False`` keep the bound at ``concurrency`` sockets exactly.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import math
import sys
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Generic, TextIO, TypeVar

import trio

from .errors import InputError
from .result import ClientAuth, ProbeResult, to_jsonable
from .target import DEFAULT_PORT, Target, parse_target

if TYPE_CHECKING:
    from .prober import ProbeRequest
    from .scan import HostGate, ScanOptions, ScanResult

DEADLINE_ERROR = "global deadline reached"
# Descriptors a run needs beyond its sockets: stdio, trio's wake-up pipe and epoll, files read.
FD_HEADROOM = 64
MAX_TARGET_LINE = 4096

T = TypeVar("T")  # a request
R = TypeVar("R")  # its result
H = TypeVar("H")  # what a host's tasks share (a limiter, a scan's HostGate)


@dataclass(frozen=True, slots=True, kw_only=True)
class Summary:
    """What a run did; measured, not assumed."""

    results: int  # results delivered to on_result (finished + deadline-marked)
    outcomes: dict[str, int]
    read: int  # requests taken from the iterable
    elapsed_s: float
    concurrency: int
    per_host: int
    max_in_flight: int  # most tasks holding an overall slot at once
    max_in_flight_per_host: int  # most tasks of one host holding an overall slot at once
    deadline_s: float | None
    deadline_reached: bool = False
    cut_short: int = 0  # running when the deadline came
    not_started: int = 0  # read but never started when the deadline came
    left_unread: bool = False  # report_unstarted off: the rest of the iterable (if any) unread


# --- process limits ----------------------------------------------------------------------------


def ensure_fd_limit(need: int, what: str) -> int:
    """Make room for ``need`` open descriptors: the soft RLIMIT_NOFILE goes up to the hard limit
    when it is lower (many systems start at 1,024 with a hard limit far above). Returns the soft
    limit in force; InputError when even the hard limit is too low, rather than EMFILE mid-run."""
    if sys.platform == "win32":
        return need  # no RLIMIT_NOFILE; Windows sockets are not bounded this way
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY or soft >= need:
        return need if soft == resource.RLIM_INFINITY else soft
    if hard != resource.RLIM_INFINITY and hard < need:
        raise InputError(
            f"{what} needs about {need} open files, but this process may open at most {hard}"
            " (ulimit -Hn): raise the hard limit or ask for fewer"
        )
    # An infinite hard limit is not a valid soft one everywhere (macOS caps it): ask for need.
    target = hard if hard != resource.RLIM_INFINITY else need
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    except (ValueError, OSError):
        resource.setrlimit(resource.RLIMIT_NOFILE, (need, hard))
        target = need
    return int(target)


# --- targets -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class TargetFile:
    """A target list, one ``HOST[:PORT]`` a line, ``#`` starting a comment. Iterating reads the
    file again lazily, so 100,000 targets cost one line of memory at a time."""

    path: Path
    count: int
    default_port: int = DEFAULT_PORT

    def __len__(self) -> int:
        return self.count

    def __iter__(self) -> Iterator[Target]:
        for _, text in _target_lines(self.path):
            yield parse_target(text, self.default_port)


def _target_lines(path: Path) -> Iterator[tuple[int, str]]:
    with path.open(encoding="utf-8", errors="replace") as fh:
        number = 0
        # readline with a size: one absurd line cannot make us hold the whole file.
        while line := fh.readline(MAX_TARGET_LINE + 1):
            number += 1
            if len(line) > MAX_TARGET_LINE:
                raise InputError(f"{path} line {number}: longer than {MAX_TARGET_LINE} characters")
            text = line.split("#", 1)[0].strip()
            if text:
                yield number, text


def read_targets(
    path: Path,
    default_port: int = DEFAULT_PORT,
    check: Callable[[Target], object] | None = None,
) -> TargetFile:
    """Read and check the whole list once (streaming), before any connection: a bad line is an
    InputError naming the file and line (exit 2), not a failure half-way through a long run.
    ``check`` adds the caller's own test per target (resolve_protocol for --starttls auto)."""
    count = 0
    try:
        if path.is_dir():
            raise InputError(f"target list {path}: is a directory, give a file")
        for number, text in _target_lines(path):
            try:
                target = parse_target(text, default_port)
                if check is not None:
                    check(target)
            except InputError as exc:
                raise InputError(f"{path} line {number}: {exc}") from None
            count += 1
    except FileNotFoundError:
        raise InputError(f"target list {path}: no such file") from None
    except PermissionError:
        raise InputError(f"target list {path}: permission denied") from None
    except OSError as exc:
        raise InputError(f"target list {path}: cannot read ({exc.strerror})") from None
    if count == 0:
        raise InputError(f"target list {path}: no targets in the file")
    return TargetFile(path=path, count=count, default_port=default_port)


def requests_for(
    targets: Iterable[Target], template: ProbeRequest, starttls: str = "auto"
) -> Iterator[ProbeRequest]:
    """One request per target, made as it is needed: the CLI's options, this target's port."""
    from .starttls import resolve_protocol

    for target in targets:
        yield dataclasses.replace(
            template, target=target, starttls=resolve_protocol(starttls, target.port)
        )


def json_lines(stream: TextIO) -> Callable[[object], None]:
    """An ``on_result`` that writes one compact JSON line per result and flushes it at once."""

    def write(result: object) -> None:
        stream.write(json.dumps(to_jsonable(result)) + "\n")
        stream.flush()

    return write


# --- the engine, for any kind of request --------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class _Job(Generic[T, R, H]):
    """What differs between probes and scans; everything else is the same machine."""

    host: Callable[[T], str]
    new_host: Callable[[], H]
    hold: Callable[[H], trio.CapacityLimiter] | None  # held around a whole task (probes)
    run: Callable[[T, H], Awaitable[R]]
    cut: Callable[[T, float | None, float], R]  # deadline result: request, seconds run or None
    outcome: Callable[[R], str]


@dataclass(slots=True)
class _Host(Generic[H]):
    state: H
    users: int = 0  # tasks of this host alive (waiting or running)
    running: int = 0  # of which hold an overall slot


@dataclass(slots=True)
class _Pending(Generic[T]):
    item: T
    started: float | None = None


@dataclass(slots=True)
class _Tally:
    outcomes: Counter[str] = field(default_factory=Counter)
    results: int = 0
    read: int = 0
    in_flight: int = 0
    max_in_flight: int = 0
    max_per_host: int = 0
    cut_short: int = 0
    not_started: int = 0


def _check_limits(concurrency: int, per_host: int, deadline: float | None) -> None:
    if concurrency < 1 or per_host < 1:
        raise InputError("--concurrency and --per-host must be 1 or more")
    if deadline is not None and not deadline > 0:
        raise InputError("--deadline must be above 0 seconds")


async def _stream(
    items: Iterable[T],
    job: _Job[T, R, H],
    *,
    concurrency: int,
    per_host: int,
    deadline: float | None,
    on_result: Callable[[R], None],
    buffer: int,
    window: int,
    report_unstarted: bool,
) -> Summary:
    started = trio.current_time()
    overall = trio.CapacityLimiter(concurrency)
    slots = trio.Semaphore(window)
    hosts: dict[str, _Host[H]] = {}
    send, recv = trio.open_memory_channel[tuple[int, T]](buffer)
    tally = _Tally()
    pending: dict[int, _Pending[T]] = {}  # read, handed to a task, not finished; by read order
    hand: list[tuple[int, T]] = []  # the producer's request between next() and send()
    it = iter(items)
    exhausted = False
    failure: list[Exception] = []

    def deliver(result: R) -> None:
        tally.outcomes[job.outcome(result)] += 1
        tally.results += 1
        on_result(result)

    def fail(exc: Exception, nursery: trio.Nursery) -> None:
        # Re-raised bare after the nursery: the CLI catches InputError or BrokenPipeError,
        # not an ExceptionGroup around it.
        if not failure:
            failure.append(exc)
        nursery.cancel_scope.cancel()

    async def produce(nursery: trio.Nursery) -> None:
        nonlocal exhausted
        async with send:
            seq = 0
            while True:
                try:
                    item = next(it)
                except StopIteration:
                    exhausted = True
                    return
                except Exception as exc:
                    fail(exc, nursery)
                    return
                tally.read += 1
                hand.append((seq, item))
                try:
                    # Without a checkpoint while the buffer has room: one request per trip
                    # through the scheduler would pace the whole run.
                    send.send_nowait((seq, item))
                except trio.WouldBlock:
                    await send.send((seq, item))  # cancelled: not sent, still in hand
                hand.clear()
                seq += 1

    async def dispatch(nursery: trio.Nursery) -> None:
        while True:
            await slots.acquire()
            try:
                seq, item = await recv.receive()  # cancelled: stays in the channel
            except trio.EndOfChannel:
                slots.release()
                return
            while True:
                pend = _Pending(item)
                pending[seq] = pend
                nursery.start_soon(task, seq, pend, nursery)
                # Start every task there is room and input for now, not one per scheduler
                # pass: with fast partners that pace would be the run's concurrency.
                try:
                    slots.acquire_nowait()
                except trio.WouldBlock:
                    break
                try:
                    seq, item = recv.receive_nowait()
                except (trio.WouldBlock, trio.EndOfChannel):
                    slots.release()
                    break

    async def task(seq: int, pend: _Pending[T], nursery: trio.Nursery) -> None:
        key = job.host(pend.item)
        host = hosts.get(key)
        if host is None:
            host = hosts[key] = _Host(job.new_host())
        host.users += 1
        try:
            held = job.hold(host.state) if job.hold else contextlib.nullcontext()
            async with held, overall:
                pend.started = trio.current_time()
                tally.in_flight += 1
                host.running += 1
                tally.max_in_flight = max(tally.max_in_flight, tally.in_flight)
                tally.max_per_host = max(tally.max_per_host, host.running)
                try:
                    result = await job.run(pend.item, host.state)
                finally:
                    tally.in_flight -= 1
                    host.running -= 1
            del pending[seq]
            deliver(result)
        except Exception as exc:
            fail(exc, nursery)
        finally:
            host.users -= 1
            if host.users == 0:
                del hosts[key]
            slots.release()

    with trio.move_on_after(math.inf if deadline is None else deadline) as timer:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(produce, nursery)
            nursery.start_soon(dispatch, nursery)
    if failure:
        recv.close()
        raise failure[0]
    left_unread = False
    if timer.cancelled_caught:
        assert deadline is not None
        now = trio.current_time()
        for seq in sorted(pending):
            pend = pending[seq]
            ran = None if pend.started is None else now - pend.started
            if ran is None:
                tally.not_started += 1
            else:
                tally.cut_short += 1
            deliver(job.cut(pend.item, ran, deadline))
        pending.clear()
        waiting = [item for _, item in (*_drain(recv), *hand)]
        hand.clear()
        for item in waiting:
            tally.not_started += 1
            deliver(job.cut(item, None, deadline))
        if report_unstarted:
            for count, item in enumerate(it):
                tally.read += 1
                tally.not_started += 1
                deliver(job.cut(item, None, deadline))
                if count % 256 == 255:
                    await trio.lowlevel.checkpoint()  # a long remainder stays interruptible
        else:
            left_unread = not exhausted
    recv.close()
    return Summary(
        results=tally.results,
        outcomes=dict(tally.outcomes),
        read=tally.read,
        elapsed_s=round(trio.current_time() - started, 3),
        concurrency=concurrency,
        per_host=per_host,
        max_in_flight=tally.max_in_flight,
        max_in_flight_per_host=tally.max_per_host,
        deadline_s=deadline,
        deadline_reached=timer.cancelled_caught,
        cut_short=tally.cut_short,
        not_started=tally.not_started,
        left_unread=left_unread,
    )


def _drain(recv: trio.MemoryReceiveChannel[tuple[int, T]]) -> list[tuple[int, T]]:
    out: list[tuple[int, T]] = []
    while True:
        try:
            out.append(recv.receive_nowait())
        except (trio.WouldBlock, trio.EndOfChannel):
            return out


# --- probes --------------------------------------------------------------------------------------


def _deadline_message(ran: float | None, deadline: float) -> str:
    if ran is None:
        return f"{DEADLINE_ERROR} ({deadline:g} s) before this target was probed"
    return (
        f"{DEADLINE_ERROR} ({deadline:g} s) while this target was being probed, {ran:.2f} s"
        " after it started; the phase it was in is not known"
    )


def deadline_probe_result(req: ProbeRequest, ran: float | None, deadline: float) -> ProbeResult:
    """The result of a probe the global deadline cut short (``ran`` seconds in) or never
    started (``ran`` None). See the module docstring for why these fields."""
    from .prober import _sni
    from .wire import registry

    sni = _sni(req)
    return ProbeResult(
        target=str(req.target),
        outcome="timeout",
        phase="tcp" if ran is None else "handshake",
        alert=None,
        negotiated=None,
        server_certificates=(),
        verification=None,
        client_auth=ClientAuth(requested=False),
        starttls=None,
        timings_ms={} if ran is None else {"total": round(ran * 1000, 2)},
        diagnosis=(),
        error=_deadline_message(ran, deadline),
        offered={
            "versions": [registry.version_name(v) for v in req.offer.versions],
            "ciphers": "openssl-default"
            if req.offer.suites is None
            else [s.hex for s in req.offer.suites],
            "sni": sni,
            "client_certificate": req.identity.cert.subject.rfc4514_string()
            if req.identity
            else None,
        },
    )


async def stream_many(
    items: Iterable[T],
    run: Callable[[T], Awaitable[R]],
    *,
    host: Callable[[T], str],
    cut: Callable[[T, float | None, float], R],
    outcome: Callable[[R], str],
    concurrency: int,
    per_host: int,
    deadline: float | None,
    on_result: Callable[[R], None],
    buffer: int | None = None,
    window: int | None = None,
    report_unstarted: bool = True,
) -> Summary:
    """The engine of :func:`probe_many` for any request that is one probe (a plan's checks:
    items ``(check, request)``, ``run`` probes and evaluates, ``cut`` wraps
    :func:`deadline_probe_result`): ``run`` holds one overall slot and one slot of
    ``host(item)`` for its whole length. ``buffer`` (requests read ahead) defaults to
    ``concurrency``, ``window`` (tasks alive, running or waiting for their host) to twice
    ``concurrency``. Raises the process's soft descriptor limit if ``concurrency`` needs it
    (:func:`ensure_fd_limit`)."""
    _check_limits(concurrency, per_host, deadline)
    ensure_fd_limit(concurrency + FD_HEADROOM, f"--concurrency {concurrency}")

    async def run_one(item: T, _limiter: trio.CapacityLimiter) -> R:
        return await run(item)

    job: _Job[T, R, trio.CapacityLimiter] = _Job(
        host=host,
        new_host=lambda: trio.CapacityLimiter(per_host),
        hold=lambda limiter: limiter,
        run=run_one,
        cut=cut,
        outcome=outcome,
    )
    return await _stream(
        items,
        job,
        concurrency=concurrency,
        per_host=per_host,
        deadline=deadline,
        on_result=on_result,
        buffer=buffer if buffer is not None else concurrency,
        window=window if window is not None else 2 * concurrency,
        report_unstarted=report_unstarted,
    )


async def probe_many(
    requests: Iterable[ProbeRequest],
    *,
    concurrency: int,
    per_host: int,
    deadline: float | None,
    on_result: Callable[[ProbeResult], None],
    buffer: int | None = None,
    window: int | None = None,
    report_unstarted: bool = True,
) -> Summary:
    """Probe every request, at most ``concurrency`` at once and ``per_host`` per host name,
    calling ``on_result`` as each finishes; stop at ``deadline`` seconds (see the module
    docstring and :func:`stream_many` for the rest)."""
    from .prober import run_probe

    return await stream_many(
        requests,
        run_probe,
        host=lambda req: req.target.host,
        cut=deadline_probe_result,
        outcome=lambda r: r.outcome,
        concurrency=concurrency,
        per_host=per_host,
        deadline=deadline,
        on_result=on_result,
        buffer=buffer,
        window=window,
        report_unstarted=report_unstarted,
    )


# --- scans ---------------------------------------------------------------------------------------


def deadline_scan_result(opts: ScanOptions, ran: float | None, deadline: float) -> ScanResult:
    from .scan import ScanResult

    return ScanResult(
        target=str(opts.target),
        outcome="timeout",
        protocols=(),
        groups={},
        certificates={},
        secure_renegotiation=None,
        extended_master_secret=None,
        connections=0,  # a scan cut short does not hand back its counter
        timings_ms={"total": 0.0 if ran is None else round(ran * 1000, 1)},
        error=_deadline_message(ran, deadline),
    )


async def scan_many(
    options: Iterable[ScanOptions],
    *,
    concurrency: int,
    per_host: int,
    deadline: float | None,
    on_result: Callable[[ScanResult], None],
    pause: float = 0.0,
    progress: Callable[[str], None] | None = None,
    buffer: int | None = None,
    window: int | None = None,
    report_unstarted: bool = True,
) -> Summary:
    """``scan`` for every target, the same streaming contract as :func:`probe_many`. Here
    ``concurrency`` counts targets scanned at once, and ``per_host`` and ``pause`` are each
    host's :class:`HostGate` (connections at once, seconds between starts), shared by all the
    scans of that host: a scan runs its versions in parallel, so sockets stay under
    ``concurrency * per_host``. A deadline result has outcome ``timeout``. A gate lives while a
    scan of its host does, so ``pause`` spaces connections within overlapping scans of a host,
    not between one that ended and the next."""
    from .scan import HostGate, scan

    _check_limits(concurrency, per_host, deadline)
    if pause < 0:
        raise InputError("--pause must be 0 or more")
    ensure_fd_limit(concurrency * per_host + FD_HEADROOM, f"--concurrency {concurrency}")

    async def run(opts: ScanOptions, gate: HostGate) -> ScanResult:
        return await scan(opts, gate, progress)

    job: _Job[ScanOptions, ScanResult, HostGate] = _Job(
        host=lambda opts: opts.target.host,
        new_host=lambda: HostGate(limit=per_host, pause=pause),
        hold=None,
        run=run,
        cut=deadline_scan_result,
        outcome=lambda r: r.outcome,
    )
    return await _stream(
        options,
        job,
        concurrency=concurrency,
        per_host=per_host,
        deadline=deadline,
        on_result=on_result,
        buffer=buffer if buffer is not None else concurrency,
        window=window if window is not None else 2 * concurrency,
        report_unstarted=report_unstarted,
    )
