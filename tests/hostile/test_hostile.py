"""Hostile peers: each ends in a classified outcome within the deadline, with bounded memory.

Every peer is a small scripted byte server on 127.0.0.1 (tests/bytepeers.py plumbing) that reads
the client's ClientHello and answers with something no honest TLS stack sends. Memory is the
peak of Python allocations during the probe (tracemalloc); OpenSSL's own buffers are bounded by
what we feed it, which the same peak bounds.
"""

from __future__ import annotations

import contextlib
import functools
import os
import tracemalloc
from collections.abc import Awaitable, Callable

import pytest
import trio
from bytepeers import receive_record, serve_script
from cryptography.hazmat.primitives.serialization import Encoding
from probing import probe_port

from probe.result import ProbeResult
from probe.wire.extensions import Extension, ExtensionType, renegotiation_info
from probe.wire.hello import parse_client_hello
from probe.wire.messages import build_certificate, build_server_hello, build_server_hello_done
from probe.wire.record import build_records

Handler = Callable[[trio.SocketStream], Awaitable[None]]
DEADLINE = 3.0  # the probe's --timeout in these tests
MEMORY_LIMIT = 24 * 1024 * 1024  # Python peak during one probe


def hs(body: bytes) -> bytes:
    return build_records(22, 0x0303, body)


def server_hello(session_id: bytes = b"", **kw: object) -> bytes:
    """A TLS 1.2 ServerHello an OpenSSL client accepts up to the field under test: secure
    renegotiation signalled (RFC 5746), the client's session id echoed."""
    args: dict[str, object] = {
        "version": 0x0303,
        "random": os.urandom(32),
        "cipher_suite": 0xC02F,
        "session_id": session_id,
        "extensions": (renegotiation_info(),),
    }
    args.update(kw)
    return build_server_hello(**args)  # type: ignore[arg-type]


def session_id_of(record: bytes) -> bytes:
    return parse_client_hello(record[5 + 4 :]).session_id


async def _send(stream: trio.SocketStream, data: bytes) -> None:
    with contextlib.suppress(trio.BrokenResourceError, trio.ClosedResourceError):
        await stream.send_all(data)


def after_hello(make: Callable[[bytes], bytes], *, then_wait: float = 10.0) -> Handler:
    """Answer the ClientHello with ``make(client_session_id)``, then hold the connection."""

    async def handler(stream: trio.SocketStream) -> None:
        record = await receive_record(stream)
        await _send(stream, make(session_id_of(record)))
        await trio.sleep(then_wait)

    return handler


async def endless(stream: trio.SocketStream, chunk: bytes) -> None:
    await receive_record(stream)
    while True:
        await _send(stream, chunk)
        await trio.sleep(0)


async def empty_records(stream: trio.SocketStream) -> None:
    await endless(stream, bytes.fromhex("1603030000") * 200)


async def one_byte_records(stream: trio.SocketStream) -> None:
    await endless(stream, bytes.fromhex("160303000102") * 200)


async def alert_flood(stream: trio.SocketStream) -> None:
    await endless(stream, bytes.fromhex("15030300020100") * 200)  # warning close_notify x N


async def slowloris(stream: trio.SocketStream) -> None:
    await receive_record(stream)
    for b in hs(server_hello()):
        await _send(stream, bytes([b]))
        await trio.sleep(1.0)


async def reset_mid_record(stream: trio.SocketStream) -> None:
    import socket
    import struct

    await receive_record(stream)
    await _send(stream, hs(server_hello())[:20])
    stream.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    await stream.aclose()


@functools.cache
def _real_cert() -> bytes:
    from cryptography.hazmat.primitives.asymmetric import ec

    from probe.pki import CertSpec, issue

    key = ec.generate_private_key(ec.SECP256R1())
    return issue(CertSpec(common_name="hostile"), key=key, issuer=None).cert.public_bytes(
        Encoding.DER
    )


@functools.cache
def _many_certs_flight() -> bytes:
    # 10,000 real certificates (~4 MB): more than any handshake needs; the prober must stop
    # reading at its bound instead of buffering it all. Built once, before memory is measured
    # (the scripted server shares the test's process). TLS 1.2 needs no session id echo.
    chain = tuple([_real_cert()] * 10_000)
    return hs(server_hello() + build_certificate(chain) + build_server_hello_done())


def many_certs(sid: bytes) -> bytes:
    return _many_certs_flight()


def tls13_then_garbage(sid: bytes) -> bytes:
    exts = (
        Extension(type=ExtensionType.supported_versions, data=b"\x03\x04"),
        Extension(type=ExtensionType.key_share, data=b"\x00\x1d\x00\x20" + os.urandom(32)),
    )
    return hs(server_hello(sid, cipher_suite=0x1301, extensions=exts)) + os.urandom(4000)


CASES: list[tuple[str, Handler, set[str]]] = [
    ("garbage after connect", after_hello(lambda sid: b"\x7f" + os.urandom(2000)), {"not_tls"}),
    ("huge record length", after_hello(lambda sid: b"\x16\x03\x03\xff\xff" + os.urandom(100)),
     {"protocol_error", "not_tls"}),
    ("endless empty records", empty_records, {"protocol_error", "timeout", "peer_error"}),
    ("endless 1-byte records", one_byte_records, {"protocol_error", "timeout"}),
    ("handshake message claiming 16 MB",
     after_hello(lambda sid: build_records(22, 0x0303, b"\x02\xff\xff\xff" + os.urandom(1000))),
     {"protocol_error", "timeout"}),
    ("Certificate with 10,000 certificates", after_hello(many_certs), {"protocol_error"}),
    ("ServerHello with a version never offered",
     after_hello(lambda sid: hs(server_hello(sid, version=0x0305))),
     {"version_mismatch", "protocol_error"}),
    ("ServerHello with a suite never offered",
     after_hello(lambda sid: hs(server_hello(sid, cipher_suite=0x0001))), {"protocol_error"}),
    ("ServerHello with compression", after_hello(lambda sid: hs(server_hello(sid, compression=1))),
     {"protocol_error"}),
    ("alert flood", alert_flood, {"protocol_error", "peer_closed", "peer_error", "timeout"}),
    ("one byte per second", slowloris, {"timeout"}),
    ("reset mid-record", reset_mid_record, {"peer_closed"}),
    ("TLS 1.3 ServerHello then garbage", after_hello(tls13_then_garbage),
     {"protocol_error", "peer_error"}),
]  # fmt: skip


@pytest.mark.parametrize(("name", "handler", "allowed"), CASES, ids=[c[0] for c in CASES])
async def test_hostile_peer_is_classified_in_time_and_memory(
    name: str, handler: Handler, allowed: set[str]
) -> None:
    _many_certs_flight()  # the hostile payload is the server's memory, not the prober's
    async with serve_script(handler) as port:
        tracemalloc.start()
        try:
            with trio.fail_after(DEADLINE * 3 + 2):
                r: ProbeResult = await probe_port(port, timeout=DEADLINE, grace=0.2)
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
    print(f"{name}: {r.outcome} ({r.error}) peak {peak / 1e6:.1f} MB")
    assert r.outcome in allowed, (name, r.outcome, r.error, r.alert)
    assert r.diagnosis, "every failure is explained"
    assert peak < MEMORY_LIMIT, f"{name}: peak {peak / 1e6:.1f} MB"
