"""The only code that awaits sockets: TCP connect, the plaintext upgrade, and the handshake pump.

Every read is bounded in size (``READ_CHUNK``, ``MAX_HANDSHAKE_BYTES``) and in time (the caller's
cancel scopes), so silence, one byte per second and endless records all end in a result.

Scheduling points cost as much CPU as a handshake's record parsing, so two are skipped where
they buy nothing: a numeric address is resolved without trio's thread-or-checkpoint path (the
same ``getaddrinfo`` call trio makes first), and ``send`` writes what the kernel accepts at once
and awaits only for the rest. Every read still goes through trio (a checkpoint each), and every
loop that sends also reads, so deadlines fire as before.
"""

from __future__ import annotations

import errno
import os
import socket
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import trio

from .upgrade import (
    DEFAULT_CLIENT_NAME,
    MAX_STARTTLS_BYTES,
    Dialog,
    FTPProtect,
    StartTLSLog,
    dialog_for,
)

READ_CHUNK = 16 * 1024
# A real handshake is a few KB; 32,750+ bytes of CA names and long chains stay well below this.
MAX_HANDSHAKE_BYTES = 2 * 1024 * 1024

# The engine (pyOpenSSL) loads with the first TLS handshake, not with this module: the raw hello
# engine of `scan` connects through here and never needs OpenSSL.
if TYPE_CHECKING:
    from .engine import ClientEngine


@dataclass(frozen=True, slots=True, kw_only=True)
class TcpFailure:
    kind: str  # "refused" | "unreachable" | "dns_failure"
    message: str


_NUMERIC = socket.AI_NUMERICHOST | socket.AI_NUMERICSERV
# Writing to the socket's descriptor directly needs POSIX descriptors (not Windows sockets).
_DIRECT_WRITE = os.name == "posix"


_AddrInfo = tuple[socket.AddressFamily, socket.SocketKind, int, str, tuple[Any, ...]]


async def _resolve(host: str, port: int) -> list[_AddrInfo]:
    try:
        # An IP address resolves without I/O; trio.socket.getaddrinfo makes this same call first
        # and only then looks for a resolver, so names (and errors) still take trio's path.
        return list(socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=_NUMERIC))
    except (socket.gaierror, UnicodeError):
        return list(await trio.socket.getaddrinfo(host, port, type=socket.SOCK_STREAM))


async def connect_tcp(host: str, port: int) -> trio.SocketStream | TcpFailure:
    """Resolve and connect, address by address; the caller bounds the time."""
    try:
        infos = await _resolve(host, port)
    except socket.gaierror as exc:
        return TcpFailure(kind="dns_failure", message=f"cannot resolve {host}: {exc.strerror}")
    except UnicodeError:
        return TcpFailure(kind="dns_failure", message=f"cannot resolve {host}: invalid name")
    failure = TcpFailure(kind="unreachable", message=f"no address for {host}")
    for family, type_, proto, _, addr in infos:
        sock = trio.socket.socket(family, type_, proto)
        try:
            await sock.connect(addr)
        except OSError as exc:
            sock.close()
            kind = "refused" if exc.errno == errno.ECONNREFUSED else "unreachable"
            failure = TcpFailure(kind=kind, message=f"{addr[0]} port {port}: {exc.strerror}")
            if kind == "refused":
                continue
            continue
        except BaseException:
            sock.close()
            raise
        return trio.SocketStream(sock)
    return failure


async def receive(stream: trio.SocketStream) -> bytes:
    """One bounded read; a reset counts as EOF (the classifier knows from context)."""
    try:
        return await stream.receive_some(READ_CHUNK)
    except (trio.BrokenResourceError, trio.ClosedResourceError):
        return b""


def send_now(stream: trio.SocketStream, data: bytes) -> int | None:
    """Write what the kernel takes at once, without awaiting: the number of bytes written, or
    None if the connection is broken or closed (what trio reports as BrokenResourceError or
    ClosedResourceError). A TLS flight nearly always fits in the socket buffer."""
    if not _DIRECT_WRITE or not data:
        return 0
    try:
        return os.write(stream.socket.fileno(), data)
    except BlockingIOError:
        return 0
    except OSError:
        return None


async def send(stream: trio.SocketStream, data: bytes) -> bool:
    """Send all of ``data``; False if the connection is broken or closed."""
    # What fits in the socket buffer goes out without a trip through the scheduler; a full
    # buffer falls back to trio, which waits for room under the caller's deadline.
    sent = send_now(stream, data)
    if sent is None:
        return False
    if sent and sent == len(data):
        return True
    try:
        await stream.send_all(data[sent:])
    except (trio.BrokenResourceError, trio.ClosedResourceError):
        return False
    return True


# --- the plaintext upgrade (probe.upgrade holds the conversations) ----------------------------


def _address_literal(stream: trio.SocketStream) -> str:
    """Our end's address as an SMTP address literal (RFC 5321 §4.1.3): what EHLO names when
    the client has no host name of its own to give."""
    try:
        host = str(stream.socket.getsockname()[0])
    except OSError:
        return DEFAULT_CLIENT_NAME
    return f"[IPv6:{host}]" if ":" in host else f"[{host}]"


def upgrade_dialog(stream: trio.SocketStream, protocol: str) -> Dialog:
    """``protocol``'s upgrade dialog for ``stream`` (EHLO names our end of it)."""
    return dialog_for(protocol, client_name=_address_literal(stream))


async def starttls(stream: trio.SocketStream, dialog: Dialog) -> StartTLSLog:
    """Run ``dialog`` over ``stream`` until the server agrees, refuses or breaks it. Every
    engine upgrades through here (probe, scan, the partner-version hellos), so they all speak
    each protocol alike.

    The caller's cancel scope is the deadline. The dialog is the caller's, not a local, so
    that a deadline firing mid-conversation loses nothing: the caller still holds the lines
    exchanged so far and calls ``dialog.stalled(seconds)`` to name the unanswered step."""
    out = dialog.start()
    while True:
        if out and not await send(stream, out):
            dialog.eof()
            break
        if dialog.done:
            break
        data = await receive(stream)
        if not data:
            dialog.eof()
            break
        out = dialog.feed(data)
    return dialog.log


async def ftp_protect(stream: trio.SocketStream, engine: ClientEngine, log: StartTLSLog) -> PostEnd:
    """After an FTP AUTH TLS handshake: PBSZ 0 and PROT P over TLS (RFC 4217 §8-9), replies
    into ``log``. Stands in for `read_after_handshake`: a TLS 1.3 server that rejects our
    certificate says so on this first read, and its alert ends the exchange the same way."""
    # The replies are in the transcript (marked as inside TLS); the PostEnd carries only what
    # the dialog did not quote, so the report does not show them twice.
    dialog = FTPProtect(log)
    _write_application(engine, dialog.start())
    collected = 0
    while not dialog.done:
        out = engine.take_outgoing()
        if out and not await send(stream, out):
            return PostEnd(how="eof", data=dialog.unquoted[:256])
        how, data = engine.read_application()
        if how == "data":
            collected += len(data)
            if collected > MAX_STARTTLS_BYTES:
                return PostEnd(how="data", data=(dialog.unquoted + data)[:256])
            _write_application(engine, dialog.feed(data))
            continue
        if how in ("closed", "failed"):
            return PostEnd(how=how, data=dialog.unquoted[:256])
        chunk = await receive(stream)
        if not chunk:
            engine.receive_eof()
            how, data = engine.read_application()
            how = "closed" if how == "closed" else "eof"
            return PostEnd(how=how, data=(dialog.unquoted + data)[:256])
        engine.receive(chunk)
    out = engine.take_outgoing()
    if out:
        await send(stream, out)
    return PostEnd(how="data", data=dialog.unquoted[:256])


def _write_application(engine: ClientEngine, data: bytes) -> None:
    if data:
        # A few bytes of FTP command: the memory BIO takes them whole (no WantWrite).
        engine.conn.sendall(data)


# --- the handshake pump -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class PumpEnd:
    how: str  # "done" | "failed" | "not_tls" | "eof" | "too_much"


async def pump_handshake(stream: trio.SocketStream, engine: ClientEngine) -> PumpEnd:
    """Drive the engine until the handshake ends; the caller's cancel scope is the deadline."""
    from .engine import Step

    received = 0
    while True:
        step = engine.step()
        out = engine.take_outgoing()
        if out and not await send(stream, out) and step is Step.WANT_READ:
            engine.receive_eof()
            continue
        if step is Step.DONE:
            return PumpEnd(how="done")
        if step is Step.FAILED:
            return PumpEnd(how="failed")
        data = await receive(stream)
        if not data:
            engine.receive_eof()
            continue  # OpenSSL turns the EOF into an error on the next step
        received += len(data)
        engine.receive(data)
        if engine.transcript.not_tls("server"):
            return PumpEnd(how="not_tls")
        if received > MAX_HANDSHAKE_BYTES:
            return PumpEnd(how="too_much")


@dataclass(frozen=True, slots=True, kw_only=True)
class PostEnd:
    how: str  # "quiet" | "data" | "closed" (close_notify) | "eof" | "failed"
    data: bytes = b""


async def read_after_handshake(
    stream: trio.SocketStream, engine: ClientEngine, grace: float
) -> PostEnd:
    """Wait up to ``grace`` seconds for what a server sends right after the handshake.

    This is where TLS 1.3 servers reject a client certificate (alert 116 or 42 after our Finished,
    RFC 8446 §4.4.2.4) and where MQ-style listeners drop a channel they refuse after TLS.
    """
    collected = b""
    if grace <= 0:
        # No wait: report only what has already arrived with the handshake's last read.
        how, data = engine.read_application()
        if how == "data":
            return PostEnd(how="data", data=data[:256])
        return PostEnd(how=how if how in ("closed", "failed") else "quiet")
    with trio.move_on_after(grace):
        while True:
            out = engine.take_outgoing()
            if out:
                await send(stream, out)
            how, data = engine.read_application()
            if how == "data":
                collected += data
                if len(collected) >= 256:
                    return PostEnd(how="data", data=collected[:256])
                continue
            if how in ("closed", "failed"):
                return PostEnd(how=how, data=collected)
            chunk = await receive(stream)
            if not chunk:
                engine.receive_eof()
                how, data = engine.read_application()
                collected += data
                return PostEnd(how="closed" if how == "closed" else "eof", data=collected)
            engine.receive(chunk)
    return PostEnd(how="data" if collected else "quiet", data=collected)
