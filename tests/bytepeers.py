"""Scripted byte servers: hostile or broken peers that no real TLS stack will play.

Theory of operation
-------------------
A handler is ``async def handler(stream: trio.SocketStream) -> None``, run once per accepted
connection; `serve_script` listens on 127.0.0.1 with a kernel-chosen port and runs the
handler in a nursery until the ``async with`` block ends, which cancels every connection.
The handlers read the client's first record exactly (5-byte header, then the length it
announces, RFC 8446 section 5.1), so "after hello" means after the whole ClientHello record,
not after whatever one ``recv`` returned.

A client hanging up on a handler is normal here (that is what hostile-peer tests provoke),
so `trio.BrokenResourceError` / `trio.ClosedResourceError` end the connection quietly;
anything else is a bug in the script and propagates to the test.

Standalone: ``python tests/bytepeers.py HANDLER [--port N] [--alert CODE]`` serves one
handler until interrupted and prints ``PORT`` once listening.
"""

from __future__ import annotations

import argparse
import random
import socket
import struct
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager, suppress
from typing import Final

import trio

Handler = Callable[[trio.SocketStream], Awaitable[None]]

HOST: Final = "127.0.0.1"
FTP_BANNER: Final = b"220 FTP ready\r\n"
HTTP_RESPONSE: Final = (
    b"HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain\r\nContent-Length: 12\r\n"
    b"Connection: close\r\n\r\nbad request\n"
)
MAX_RECORD: Final = 16384 + 256  # TLSPlaintext limit plus slack (RFC 8446 section 5.1)
SMTP_GREETING: Final = b"220 mx.test ESMTP\r\n"
SMTP_EHLO_STARTTLS: Final = b"250-mx.test\r\n250-STARTTLS\r\n250 HELP\r\n"


# --------------------------------------------------------------------------- plumbing


@asynccontextmanager
async def serve_script(handler: Handler, *, port: int = 0) -> AsyncIterator[int]:
    """Serve ``handler`` on 127.0.0.1; yields the port. Leaving the block cancels all."""
    async with trio.open_nursery() as nursery:
        bound = await nursery.start(_serve, handler, port)
        yield bound
        nursery.cancel_scope.cancel()


async def start_script(nursery: trio.Nursery, handler: Handler, *, port: int = 0) -> int:
    """Serve ``handler`` in an existing nursery (e.g. the test's); returns the port."""
    bound: int = await nursery.start(_serve, handler, port)
    return bound


async def _serve(
    handler: Handler, port: int, *, task_status: trio.TaskStatus[int] = trio.TASK_STATUS_IGNORED
) -> None:
    listeners = await trio.open_tcp_listeners(port, host=HOST)
    bound = listeners[0].socket.getsockname()[1]

    async def one(stream: trio.SocketStream) -> None:
        try:
            await handler(stream)
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            pass  # the client went away; that is the client's business
        finally:
            await trio.aclose_forcefully(stream)

    async with trio.open_nursery() as nursery:
        for listener in listeners:
            nursery.start_soon(_accept_loop, listener, one, nursery)
        task_status.started(bound)


async def _accept_loop(listener: trio.SocketListener, one: Handler, nursery: trio.Nursery) -> None:
    async with listener:
        while True:
            stream = await listener.accept()
            nursery.start_soon(one, stream)


async def receive_exactly(stream: trio.abc.ReceiveStream, n: int) -> bytes:
    """``n`` bytes, or fewer if the client closed first."""
    buf = bytearray()
    while len(buf) < n:
        chunk = await stream.receive_some(n - len(buf))
        if not chunk:
            break
        buf += chunk
    return bytes(buf)


async def receive_record(stream: trio.abc.ReceiveStream) -> bytes:
    """One TLS record (header and body), or what arrived before EOF. A length above the
    record limit is not trusted: only the header is returned then."""
    header = await receive_exactly(stream, 5)
    if len(header) < 5:
        return header
    (length,) = struct.unpack("!H", header[3:5])
    if length > MAX_RECORD:
        return header
    return header + await receive_exactly(stream, length)


async def drain(stream: trio.abc.ReceiveStream) -> None:
    """Read and discard until the client closes (or the test cancels us)."""
    while await stream.receive_some(4096):
        pass


def alert_record(description: int, *, level: int = 2, version: bytes = b"\x03\x03") -> bytes:
    """An unencrypted alert record: ``15 VV VV 00 02 LEVEL DESC`` (RFC 8446 section 6)."""
    return b"\x15" + version + b"\x00\x02" + bytes([level, description])


# --------------------------------------------------------------------------- handlers


def plaintext_banner(data: bytes = FTP_BANNER, *, wait_for_input: bool = False) -> Handler:
    """A plaintext service on a TLS port: sends ``data`` (first, or after the client's first
    bytes when ``wait_for_input``, as an HTTP server would), then waits for the client."""

    async def handler(stream: trio.SocketStream) -> None:
        if wait_for_input:
            await stream.receive_some(MAX_RECORD)
        await stream.send_all(data)
        await drain(stream)

    return handler


async def reset_after_hello(stream: trio.SocketStream) -> None:
    """Reads the ClientHello record, then aborts with a TCP RST (SO_LINGER on, 0 s)."""
    await receive_record(stream)
    stream.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    await stream.aclose()


async def silent(stream: trio.SocketStream) -> None:
    """Accepts and never answers; holds the connection until cancelled."""
    await trio.sleep_forever()


def garbage(size: int = 256, *, seed: int = 0) -> Handler:
    """After the client's first bytes, ``size`` random bytes that cannot start a TLS record
    (first byte outside content types 20-24), then waits for the client to leave."""
    rng = random.Random(seed)
    payload = bytearray(rng.randbytes(size))
    payload[0] = 0x7F  # not 0x14..0x18: no parser can take it for a record header

    async def handler(stream: trio.SocketStream) -> None:
        await stream.receive_some(MAX_RECORD)
        await stream.send_all(bytes(payload))
        await drain(stream)

    return handler


def alert_after_hello(description: int, *, level: int = 2) -> Handler:
    """Reads the ClientHello record, answers with one alert record, then closes (FIN)."""

    async def handler(stream: trio.SocketStream) -> None:
        await receive_record(stream)
        await stream.send_all(alert_record(description, level=level))
        await stream.aclose()

    return handler


async def close_after_hello(stream: trio.SocketStream) -> None:
    """Reads the ClientHello record, then closes cleanly (FIN, no alert)."""
    await receive_record(stream)
    await stream.aclose()


def plaintext_dialog(greeting: bytes, *replies: bytes) -> Handler:
    """A scripted line server (the plaintext side of STARTTLS): sends ``greeting`` (if any),
    then one of ``replies`` per line the client sends, in order. When the replies run out
    it goes silent and holds the connection, as a hung service does."""

    async def handler(stream: trio.SocketStream) -> None:
        if greeting:
            await stream.send_all(greeting)
        buf = b""
        for reply in replies:
            while b"\n" not in buf:
                chunk = await stream.receive_some(4096)
                if not chunk:
                    return
                buf += chunk
            buf = buf.split(b"\n", 1)[1]
            await stream.send_all(reply)
        await trio.sleep_forever()

    return handler


HANDLERS: Final[dict[str, Callable[[argparse.Namespace], Handler]]] = {
    "plaintext-ftp": lambda a: plaintext_banner(FTP_BANNER),
    "plaintext-http": lambda a: plaintext_banner(HTTP_RESPONSE, wait_for_input=True),
    "reset-after-hello": lambda a: reset_after_hello,
    "silent": lambda a: silent,
    "garbage": lambda a: garbage(),
    "alert-after-hello": lambda a: alert_after_hello(a.alert),
    "close-after-hello": lambda a: close_after_hello,
    "smtp-stall-after-ehlo": lambda a: plaintext_dialog(SMTP_GREETING),
    "smtp-injection": lambda a: plaintext_dialog(
        SMTP_GREETING, SMTP_EHLO_STARTTLS, b"220 go ahead\r\n250 injected\r\n"
    ),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("handler", choices=sorted(HANDLERS))
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--alert", type=int, default=40, help="alert description (default 40)")
    args = parser.parse_args()

    async def run() -> None:
        async with serve_script(HANDLERS[args.handler](args), port=args.port) as port:
            print(port, flush=True)
            await trio.sleep_forever()

    with suppress(KeyboardInterrupt):
        trio.run(run)


if __name__ == "__main__":
    main()
