"""Serving the lab: every chosen scenario on its own port, all at once, on trio.

A scenario is a function plus a line in the catalog: ``handler_for`` turns a catalog entry into a
per-connection handler. One connection's trouble (a client that leaves mid-handshake, garbage)
never reaches another connection or another scenario: each runs in its own task and ends quietly
on the errors a peer can cause.

``repeat`` serves each scenario on N ports (scale tests, `probe -f` against 1,000 endpoints): the
copies share the scenario's handler and its SSL contexts, so a copy costs one listening socket and
one accept task, nothing more. Every accepted connection is closed by ``_guarded`` whatever the
handler does, so descriptors track live connections only.

Ports come from the catalog index (``scenario_port``), not from the position among the scenarios
served: `tlsprobe lab expired` with base 9440 serves expired on 9441, where `lab:expired` in a
plan looks for it, so a subset leaves gaps rather than moving scenarios.
"""

from __future__ import annotations

import errno
import ipaddress
import stat
import sys
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import trio
from OpenSSL import SSL

from ..errors import InputError
from ..mq import channel_sni
from ..multi import ensure_fd_limit
from ..pki import TestPKI, build_test_pki
from ..wire.hello import ClientHello
from . import DEFAULT_PORT_BASE as DEFAULT_PORT_BASE  # re-exported: explain.py reads it here
from . import scenario_port
from .catalog import Scenario, load_catalog
from .ftp import ftp_handler
from .scripted import script_handler
from .tlsserver import identity, serve_tls, server_context

Handler = Callable[[trio.SocketStream], Awaitable[None]]

MQ_CHANNELS = {"TO.QMGR1": "mq-to-qmgr1", "SYSTEM.DEF.SVRCONN": "mq-svrconn"}
UNRECOGNIZED_NAME = 112


# Descriptors a lab needs beyond its listeners: connections being served, PKI files, stdio.
FD_HEADROOM = 256


@dataclass(frozen=True, slots=True, kw_only=True)
class Listening:
    scenario: Scenario
    host: str
    port: int
    index: int = 0  # which copy of the scenario (0 .. repeat-1)


def _tls_handler(s: Scenario, pki: TestPKI) -> Handler:
    ctx = server_context(s, pki)
    if s.select_by_sni == "mq":
        by_sni = {
            channel_sni(ch): server_context(s, pki, identity(pki, ident))
            for ch, ident in MQ_CHANNELS.items()
        }

        def choose(hello: ClientHello) -> SSL.Context | int:
            # MQ picks the channel's CERTLABL certificate from the SNI; a client that sends
            # none or another name is refused (AMQ9673 / CSQX673E on the queue manager).
            return by_sni.get((hello.server_name or "").lower(), UNRECOGNIZED_NAME)

    else:

        def choose(hello: ClientHello) -> SSL.Context | int:
            return ctx

    async def handler(stream: trio.SocketStream) -> None:
        await serve_tls(stream, choose, after=s.after)

    return handler


def handler_for(s: Scenario, pki: TestPKI) -> Handler:
    if s.kind == "tls":
        return _tls_handler(s, pki)
    if s.kind == "ftp":
        return ftp_handler(server_context(s, pki) if s.auth_tls == "accept" else None)
    return script_handler(s, pki)


def _guarded(name: str, handler: Handler) -> Handler:
    async def run(stream: trio.SocketStream) -> None:
        try:
            async with stream:
                await handler(stream)
        except (trio.BrokenResourceError, trio.ClosedResourceError, SSL.Error):
            return  # the client left or broke TLS: normal in a failure lab
        except OSError as exc:
            if exc.errno not in (errno.ECONNRESET, errno.EPIPE, errno.ENOTCONN, errno.EBADF):
                print(f"tlsprobe lab: {name}: {exc}", file=sys.stderr)
        except Exception as exc:  # a lab bug must not take the other connections down
            print(
                f"tlsprobe lab: {name}: internal error {type(exc).__name__}: {exc}", file=sys.stderr
            )

    return run


def select(names: Sequence[str]) -> list[Scenario]:
    catalog = load_catalog()
    if not names:
        return list(catalog)
    known = {s.name: s for s in catalog}
    unknown = [n for n in names if n not in known]
    if unknown:
        raise InputError(
            f"unknown lab scenario {', '.join(unknown)}; `tlsprobe lab --list` shows the catalog"
        )
    return [s for s in catalog if s.name in names]


def check_host(host: str, explicit: bool) -> str | None:
    """A warning for non-loopback binding; refuse it unless --host was given explicitly."""
    try:
        loopback = ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = host == "localhost"
    if loopback:
        return None
    if not explicit:
        raise InputError("the lab binds to loopback unless --host is given explicitly")
    return (
        f"warning: the lab listens on {host}: its failure scenarios are reachable from the"
        " network and its keys are test keys"
    )


def pki_dir_warning(pki_dir: Path) -> str | None:
    """A warning when an existing PKI directory is writable by group or others.

    The lab trusts what it finds there: whoever can write the directory can swap ca.crt or the
    keys and so decide what a probe trusts or which client the lab accepts. The mode is the
    user's choice (a shared team directory may be deliberate), so this warns and changes nothing.
    """
    try:
        mode = pki_dir.stat().st_mode
    except OSError:
        return None  # not there yet: build_test_pki creates it 0700
    if not stat.S_ISDIR(mode) or not mode & 0o022:
        return None
    who = "group and others" if mode & 0o022 == 0o022 else "group" if mode & 0o020 else "others"
    return (
        f"warning: the lab's PKI directory {pki_dir} is writable by {who} (mode"
        f" {stat.S_IMODE(mode):04o}): anyone who can write there could replace ca.crt or the keys"
    )


def layout(
    scenarios: Sequence[Scenario], *, host: str, port_base: int, repeat: int
) -> list[Listening]:
    """The ports to open, one entry each: copy j of the scenario at catalog index i on
    ``port_base + i * repeat + j`` (0, any free port, with ``port_base`` 0).

    Raises InputError when the highest of them would pass 65535: it belongs to the chosen
    scenario latest in the catalog, however few scenarios are chosen.
    """
    if repeat < 1:
        raise InputError(f"--repeat {repeat}: serve each scenario on 1 port or more")
    index = {s.name: i for i, s in enumerate(load_catalog())}
    planned = [
        Listening(
            scenario=s, host=host, index=j,
            port=scenario_port(port_base, index[s.name], repeat=repeat, copy=j) if port_base else 0,
        )
        for s in scenarios
        for j in range(repeat)
    ]  # fmt: skip
    last = max(planned, key=lambda item: item.port, default=None)
    if last is not None and last.port > 65535:
        raise InputError(
            f"--port-base {port_base}: {last.scenario.name} would listen on port {last.port};"
            " the ports must fit below 65536: choose a lower --port-base or a smaller --repeat"
        )
    return planned


async def serve_lab(
    scenarios: Sequence[Scenario],
    *,
    host: str,
    port_base: int,
    pki_dir: Path,
    repeat: int = 1,
    task_status: trio.TaskStatus[tuple[TestPKI, list[Listening]]] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Listen on every scenario, report (pki, listeners) through ``task_status``, serve forever.

    Each scenario gets ``repeat`` ports: copy j of the scenario at catalog index i on
    ``port_base + i * repeat + j`` whichever scenarios are served (``layout``), or kernel-chosen
    with ``port_base`` 0 (tests run labs side by side). The list has one entry per port, in the
    order of ``scenarios``, copies together.

    Start-up is ~50 ms per 1,000 listeners with either kind of port, up to about 5,000
    kernel-chosen ones: past that Linux searches its ephemeral range longer for every bind (10,000
    took 5 s, against 0.07 s from a port base), so large labs should be given a port base.
    """
    planned = layout(scenarios, host=host, port_base=port_base, repeat=repeat)
    count = len(planned)
    # A name (localhost) may listen on IPv4 and IPv6: two sockets per port.
    per_port = 1 if _is_ip(host) else 2
    ensure_fd_limit(count * per_port + FD_HEADROOM, f"the lab ({count} listening ports)")
    pki = await trio.to_thread.run_sync(build_test_pki, pki_dir)
    # Copies share their scenario's handler (and its SSL contexts): one per scenario.
    handlers = {s.name: _guarded(s.name, handler_for(s, pki)) for s in scenarios}
    listeners: list[tuple[trio.SocketListener, Handler]] = []
    shown: list[Listening] = []
    for item in planned:
        s, handler = item.scenario, handlers[item.scenario.name]
        try:
            opened = await trio.open_tcp_listeners(item.port, host=host, backlog=128)
        except OSError as exc:
            for lst, _ in listeners:
                await lst.aclose()
            hint = (
                "raise the open-file limit (ulimit -n) or serve fewer ports"
                if exc.errno in (errno.EMFILE, errno.ENFILE)
                else "choose another --port-base"
            )
            raise InputError(
                f"lab scenario {s.name}: cannot listen on {host} port {item.port}"
                f" ({exc.strerror}); {hint}"
            ) from None
        for lst in opened:
            listeners.append((lst, handler))
        bound = opened[0].socket.getsockname()[1]
        shown.append(Listening(scenario=s, host=host, port=int(bound), index=item.index))
    async with trio.open_nursery() as nursery:
        for lst, handler in listeners:
            nursery.start_soon(trio.serve_listeners, handler, [lst])
        task_status.started((pki, shown))


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True
