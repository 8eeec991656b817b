"""The lab's FTP scenarios: enough of RFC 959 and RFC 4217 for a real client.

Banner, FEAT, AUTH TLS (234 and TLS, or a refusal), then over TLS: PBSZ 0, PROT P/C, USER/PASS
(anonymous is accepted), PWD, SYST, NOOP, QUIT. Data connections are not offered: the lab is
about the control connection's security, and a client that asks gets 502.
"""

from __future__ import annotations

import contextlib
from collections.abc import Awaitable, Callable

import trio
from OpenSSL import SSL

from ..starttls import LineReader, ReplyError
from .tlsserver import ServerTLS

MAX_COMMANDS = 200
IDLE = 60.0

FEAT = b"211-Features:\r\n AUTH TLS\r\n PBSZ\r\n PROT\r\n UTF8\r\n211 End\r\n"


class _Plain:
    def __init__(self, stream: trio.SocketStream) -> None:
        self.stream = stream

    async def send(self, data: bytes) -> bool:
        try:
            await self.stream.send_all(data)
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            return False
        return True

    async def receive(self) -> bytes:
        try:
            return await self.stream.receive_some(4096)
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            return b""


def _reply(cmd: str, arg: str, secure: bool) -> bytes:
    table = {
        "SYST": b"215 UNIX Type: L8 (tlsprobe lab)\r\n",
        "NOOP": b"200 NOOP ok\r\n",
        "PWD": b'257 "/" is the current directory\r\n',
        "PBSZ": b"200 PBSZ=0\r\n" if secure else b"503 PBSZ needs AUTH TLS first\r\n",
        "USER": b"331 Any password will do\r\n",
        "PASS": b"230 Logged in\r\n",
        "TYPE": b"200 Type set\r\n",
    }
    if cmd == "PROT":
        if not secure:
            return b"503 PROT needs AUTH TLS first\r\n"
        return (
            b"200 Protection level set\r\n" if arg.upper() in ("P", "C") else b"504 Bad level\r\n"
        )
    return table.get(cmd, b"502 Command not implemented in the lab\r\n")


def ftp_handler(ctx: SSL.Context | None) -> Callable[[trio.SocketStream], Awaitable[None]]:
    """``ctx`` None: AUTH TLS is refused (a server without TLS configured)."""

    async def handler(stream: trio.SocketStream) -> None:
        chan: _Plain | ServerTLS = _Plain(stream)
        secure = False
        lines = LineReader()
        if not await chan.send(b"220 tlsprobe lab FTP server ready\r\n"):
            return
        with trio.move_on_after(IDLE):
            for _ in range(MAX_COMMANDS):
                data = await chan.receive()
                if not data:
                    return
                try:
                    got = lines.feed(data)
                except ReplyError:
                    await chan.send(b"500 Line too long\r\n")
                    return
                for line in got:
                    cmd, _, arg = line.strip().partition(" ")
                    cmd = cmd.upper()
                    if cmd == "QUIT":
                        await chan.send(b"221 Goodbye\r\n")
                        with contextlib.suppress(trio.BrokenResourceError):
                            await stream.aclose()
                        return
                    if cmd == "FEAT":
                        await chan.send(FEAT if ctx is not None else b"211 no features\r\n")
                    elif cmd == "AUTH" and not secure:
                        if ctx is None or arg.upper() not in ("TLS", "SSL", "TLS-C"):
                            # What a server without TLS configured answers (vsftpd says 530).
                            await chan.send(b"534 AUTH TLS not available on this server\r\n")
                            continue
                        await chan.send(b"234 Security environment established\r\n")
                        tls = ServerTLS(stream, ctx)
                        if not await tls.handshake():
                            return
                        chan, secure = tls, True
                        lines = LineReader()
                        break  # bytes read past AUTH TLS belonged to the handshake
                    else:
                        await chan.send(_reply(cmd, arg, secure))

    return handler
