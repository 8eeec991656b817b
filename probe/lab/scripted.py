"""Scenarios no TLS library will play, scripted at the wire level with the codec.

A bare alert in answer to a ClientHello, a reset, silence, plain text, and the partners that
only speak SSL 3.0 or TLS 1.1 with 3DES (which the bundled OpenSSL no longer implements). The
legacy partners negotiate like the real ones did: they answer any ClientHello with their own
version (RFC 5246 Appendix E.1: the server picks the lower of the client's and its own) and the
first suite of theirs the client offers, and complete the RSA handshake in pure Python
(:mod:`.legacytls`), so an old client connects and exchanges data as it did with them.
"""

from __future__ import annotations

import contextlib
import socket
import struct
from collections.abc import Awaitable, Callable

import trio
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import Encoding, load_pem_private_key

from ..pki import TestPKI, load_certs_pem
from ..wire.record import build_alert
from .catalog import Scenario
from .legacytls import Partner, serve_legacy
from .tlsserver import read_client_hello

Handler = Callable[[trio.SocketStream], Awaitable[None]]
HOLD = 30.0


async def _send(stream: trio.SocketStream, data: bytes) -> None:
    with contextlib.suppress(trio.BrokenResourceError, trio.ClosedResourceError):
        await stream.send_all(data)


async def _drain(stream: trio.SocketStream, seconds: float = HOLD) -> None:
    """Keep the connection until the client leaves (bounded)."""
    with (
        trio.move_on_after(seconds),
        contextlib.suppress(trio.BrokenResourceError, trio.ClosedResourceError),
    ):
        while await stream.receive_some(16384):
            pass


def alert_handler(code: int) -> Handler:
    async def handler(stream: trio.SocketStream) -> None:
        first = await read_client_hello(stream)
        if first.hello is not None:
            await _send(stream, build_alert(code, version=first.record_version))

    return handler


async def reset_handler(stream: trio.SocketStream) -> None:
    await read_client_hello(stream)
    # SO_LINGER on with a zero timeout: close() sends RST instead of FIN.
    stream.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    await stream.aclose()


def plaintext_handler(text: str) -> Handler:
    async def handler(stream: trio.SocketStream) -> None:
        await _send(stream, text.encode("latin-1"))
        await _drain(stream)

    return handler


async def silent_handler(stream: trio.SocketStream) -> None:
    await _drain(stream)


# Suites of the legacy partners, in their preference order.
SSL3_SUITES = (0x0004, 0x0005, 0x000A, 0x002F)  # RC4-MD5, RC4-SHA, 3DES, AES128 (IBM i era)
TLS11_3DES_SUITES = (0x000A,)  # the z/OS trace: "Using V3 cipher specification 0A"


def legacy_handler(pki: TestPKI, version: int, suites: tuple[int, ...]) -> Handler:
    """A partner that speaks only ``version`` with ``suites`` (RSA key exchange), serving the
    lab's ``good`` identity (RSA 2048): the handshake and the connection are in legacytls."""
    chain = tuple(c.public_bytes(Encoding.DER) for c in load_certs_pem(pki.good.chain))
    key = load_pem_private_key(pki.good.key.read_bytes(), password=None)
    if not isinstance(key, rsa.RSAPrivateKey):
        raise ValueError(f"{pki.good.key}: the legacy partners need an RSA key")
    partner = Partner(version=version, suites=suites, chain=chain, key=key)

    async def handler(stream: trio.SocketStream) -> None:
        await serve_legacy(stream, partner)

    return handler


def script_handler(s: Scenario, pki: TestPKI) -> Handler:
    if s.action == "alert":
        return alert_handler(s.alert or 40)
    if s.action == "reset":
        return reset_handler
    if s.action == "plaintext":
        return plaintext_handler(s.text or "220 ready\r\n")
    if s.action == "silent":
        return silent_handler
    if s.action == "sslv3":
        return legacy_handler(pki, 0x0300, SSL3_SUITES)
    if s.action == "legacy-3des":
        return legacy_handler(pki, 0x0302, TLS11_3DES_SUITES)
    raise ValueError(f"scenario {s.name}: unknown action {s.action!r}")
