"""Serving the lab: every chosen scenario on its own port, all at once, on trio.

A scenario is a function plus a line in the catalog: ``handler_for`` turns a catalog entry into a
per-connection handler. One connection's trouble (a client that leaves mid-handshake, garbage)
never reaches another connection or another scenario: each runs in its own task and ends quietly
on the errors a peer can cause.
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


@dataclass(frozen=True, slots=True, kw_only=True)
class Listening:
    scenario: Scenario
    host: str
    port: int


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
    task_status: trio.TaskStatus[tuple[TestPKI, list[Listening]]] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Listen on every scenario, report (pki, listeners) through ``task_status``, serve forever.

    ``port_base`` 0 lets the kernel pick each port (tests run labs side by side).
    """
    pki = await trio.to_thread.run_sync(build_test_pki, pki_dir)
    handlers = [(s, _guarded(s.name, handler_for(s, pki))) for s in scenarios]
    listeners: list[tuple[trio.SocketListener, Handler]] = []
    shown: list[Listening] = []
    for i, (s, handler) in enumerate(handlers):
        port = 0 if port_base == 0 else port_base + i
        try:
            opened = await trio.open_tcp_listeners(port, host=host, backlog=128)
        except OSError as exc:
            for lst, _ in listeners:
                await lst.aclose()
            raise InputError(
                f"lab scenario {s.name}: cannot listen on {host} port {port} ({exc.strerror});"
                " choose another --port-base"
            ) from None
        for lst in opened:
            listeners.append((lst, handler))
        bound = opened[0].socket.getsockname()[1]
        shown.append(Listening(scenario=s, host=host, port=int(bound)))
    async with trio.open_nursery() as nursery:
        for lst, handler in listeners:
            nursery.start_soon(trio.serve_listeners, handler, [lst])
        task_status.started((pki, shown))
