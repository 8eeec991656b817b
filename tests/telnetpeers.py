"""Scripted telnet servers for the START_TLS option (draft-altman-telnet-starttls).

No Debian package serves telnet START_TLS (TN3270 servers on z/OS do), so these few lines of
trio play the server side byte for byte, as z/OS TN3270 and x3270's test servers do:

    S: IAC DO START_TLS                 C: IAC WILL START_TLS
    S: IAC SB START_TLS FOLLOWS IAC SE  C: IAC SB START_TLS FOLLOWS IAC SE
    ... TLS handshake (the stdlib ssl module behind trio.SSLStream, a real OpenSSL) ...

Before TLS the server reads one byte at a time, so it never swallows the start of the
client's ClientHello along with the client's FOLLOWS. Everything the client sent before TLS is
kept in ``Telnet.heard`` for the tests to check (polite WONT/DONT answers, no stray bytes).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import trio
from tlspeers import server_context

IAC, DONT, DO, WONT, WILL, SB, SE = 255, 254, 253, 252, 251, 250, 240
ECHO, TERMINAL_TYPE, START_TLS, FOLLOWS = 1, 24, 46, 1
FOLLOWS_MSG = bytes([IAC, SB, START_TLS, FOLLOWS, IAC, SE])
SCRIPTS = ("start-tls", "start-tls-after-options", "refuse", "no-start-tls")


@dataclass
class Telnet:
    port: int
    # Client bytes before TLS, one buffer per connection: a scan opens several at once, and
    # one shared buffer would mix their negotiations.
    conversations: list[bytearray] = field(default_factory=list)
    tls_done: bool = False

    @property
    def heard(self) -> bytearray:
        """What the first connection's client sent before TLS."""
        return self.conversations[0] if self.conversations else bytearray()


async def _read_until(stream: trio.SocketStream, wanted: bytes, heard: bytearray) -> bool:
    """Read byte by byte until ``heard`` ends with ``wanted``; False on EOF."""
    while not heard.endswith(wanted):
        byte = await stream.receive_some(1)
        if not byte:
            return False
        heard += byte
    return True


@asynccontextmanager
async def telnet_server(script: str, chain: Path, key: Path) -> AsyncIterator[Telnet]:
    """Serve ``script`` (one of `SCRIPTS`) on 127.0.0.1 until the block ends."""
    ctx = server_context(chain, key)
    state = Telnet(port=0)

    async def handler(raw: trio.SocketStream) -> None:
        heard = bytearray()
        state.conversations.append(heard)
        try:
            if script == "no-start-tls":
                # A plain telnetd: asks for a terminal type, then prompts for a login.
                await raw.send_all(bytes([IAC, DO, TERMINAL_TYPE, IAC, WILL, ECHO]))
                await _read_until(raw, bytes([IAC, DONT, ECHO]), heard)
                await raw.send_all(b"\r\nlogin: ")
                await trio.sleep_forever()
            offer = bytes([IAC, DO, START_TLS])
            if script == "start-tls-after-options":
                offer = bytes([IAC, WILL, ECHO, IAC, DO, TERMINAL_TYPE]) + offer
            await raw.send_all(offer)
            if not await _read_until(raw, bytes([IAC, WILL, START_TLS]), heard):
                return
            if script == "refuse":
                # Offered, then withdrawn: what a server whose key ring failed to load does.
                await raw.send_all(bytes([IAC, DONT, START_TLS]) + b"\r\nTLS unavailable\r\n")
                await trio.sleep_forever()
            await raw.send_all(FOLLOWS_MSG)
            if not await _read_until(raw, FOLLOWS_MSG, heard):
                return
            tls = trio.SSLStream(raw, ctx, server_side=True)
            await tls.do_handshake()
            state.tls_done = True
            # Negotiation starts over inside TLS (a TN3270 server asks for TN3270E next).
            await tls.send_all(bytes([IAC, DO, 40]))
            while await tls.receive_some(4096):
                pass
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            return

    async with trio.open_nursery() as nursery:
        listeners = await nursery.start(partial(trio.serve_tcp, handler, 0, host="127.0.0.1"))
        state.port = int(listeners[0].socket.getsockname()[1])
        yield state
        nursery.cancel_scope.cancel()
