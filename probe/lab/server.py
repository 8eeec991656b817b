"""Serving the lab: every chosen scenario on its own port, all at once, on trio.

A scenario is a function plus a line in the catalog: ``handler_for`` turns a catalog entry into a
per-connection handler. One connection's trouble (a client that leaves mid-handshake, garbage)
never reaches another connection or another scenario: each runs in its own task and ends quietly
on the errors a peer can cause.

``repeat`` serves each scenario on N ports (scale tests, `probe -f` against 1,000 endpoints): the
copies share the scenario's handler and its SSL contexts, so a copy costs one listening socket and
one accept task, nothing more. Every accepted connection is closed by ``_guarded`` whatever the
handler does, so descriptors track live connections only.
"""

from __future__ import annotations

import errno
import ipaddress
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
from .catalog import Scenario, load_catalog
from .ftp import ftp_handler
from .scripted import script_handler
from .tlsserver import identity, serve_tls, server_context

Handler = Callable[[trio.SocketStream], Awaitable[None]]

DEFAULT_PORT_BASE = 9440
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

    Each scenario gets ``repeat`` ports: consecutive from ``port_base`` in catalog order
    (scenario i, copy j on ``port_base + i * repeat + j``), or kernel-chosen with ``port_base`` 0
    (tests run labs side by side). The list has one entry per port, in that order.

    Start-up is ~50 ms per 1,000 listeners with either kind of port, up to about 5,000
    kernel-chosen ones: past that Linux searches its ephemeral range longer for every bind (10,000
    took 5 s, against 0.07 s from a port base), so large labs should be given a port base.
    """
    if repeat < 1:
        raise InputError(f"--repeat {repeat}: serve each scenario on 1 port or more")
    count = len(scenarios) * repeat
    if port_base and port_base + count - 1 > 65535:
        raise InputError(
            f"--port-base {port_base}: {count} ports do not fit below 65536;"
            " choose a lower --port-base or a smaller --repeat"
        )
    # A name (localhost) may listen on IPv4 and IPv6: two sockets per port.
    per_port = 1 if _is_ip(host) else 2
    ensure_fd_limit(count * per_port + FD_HEADROOM, f"the lab ({count} listening ports)")
    pki = await trio.to_thread.run_sync(build_test_pki, pki_dir)
    handlers = [(s, _guarded(s.name, handler_for(s, pki))) for s in scenarios]
    listeners: list[tuple[trio.SocketListener, Handler]] = []
    shown: list[Listening] = []
    for i, (s, handler) in enumerate(handlers):
        for j in range(repeat):
            port = 0 if port_base == 0 else port_base + i * repeat + j
            try:
                opened = await trio.open_tcp_listeners(port, host=host, backlog=128)
            except OSError as exc:
                for lst, _ in listeners:
                    await lst.aclose()
                hint = (
                    "raise the open-file limit (ulimit -n) or serve fewer ports"
                    if exc.errno in (errno.EMFILE, errno.ENFILE)
                    else "choose another --port-base"
                )
                raise InputError(
                    f"lab scenario {s.name}: cannot listen on {host} port {port}"
                    f" ({exc.strerror}); {hint}"
                ) from None
            for lst in opened:
                listeners.append((lst, handler))
            bound = opened[0].socket.getsockname()[1]
            shown.append(Listening(scenario=s, host=host, port=int(bound), index=j))
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
