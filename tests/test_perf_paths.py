"""The fast paths behave like the plain ones: positional record parsing in the transcript, the
direct socket write, context-level engine callbacks, and the certificate memos.

Real TLS bytes come from an in-memory pyOpenSSL server on the test PKI driving our engine (no
mocks); no test here measures time.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import random
import socket
from collections.abc import Callable

import pytest
import trio
from cryptography import x509
from hypothesis import given
from hypothesis import strategies as st
from OpenSSL import SSL, crypto

from probe import net, verify
from probe.engine import ClientEngine, Step, prepare_context, to_cryptography
from probe.pki import TestPKI
from probe.tlsconfig import build_context, make_offer
from probe.wire.errors import DecodeError
from probe.wire.handshake import Defragmenter, HandshakeType, parse_handshake
from probe.wire.record import locate_record, parse_record
from probe.wire.transcript import Transcript, WireEvent


def _server_context(pki: TestPKI, version: int) -> SSL.Context:
    ctx = SSL.Context(SSL.TLS_SERVER_METHOD)
    ctx.set_min_proto_version(version)
    ctx.set_max_proto_version(version)
    ctx.use_certificate_file(str(pki.good.cert))
    ctx.use_privatekey_file(str(pki.good.key))
    inter = x509.load_pem_x509_certificate(pki.intermediate.read_bytes())
    ctx.add_extra_chain_cert(inter)
    return ctx


def _handshake(
    pki: TestPKI,
    client_ctx: SSL.Context,
    version: int,
    hostname_check: Callable[[x509.Certificate], str | None] | None = None,
) -> tuple[ClientEngine, Step, list[tuple[str, bytes]]]:
    """Run our engine against an in-memory server; returns the engine, its last step and
    every chunk that crossed the wire, in order."""
    server = SSL.Connection(_server_context(pki, version), None)
    server.set_accept_state()
    engine = ClientEngine(
        client_ctx,
        server_name=None,
        transcript=Transcript(),
        verify=True,
        hostname_check=hostname_check,
    )
    wire: list[tuple[str, bytes]] = []
    step = Step.WANT_READ
    for _ in range(20):
        step = engine.step()
        out = engine.take_outgoing()
        if out:
            wire.append(("client", out))
            server.bio_write(out)
            try:
                server.do_handshake()
            except SSL.WantReadError:
                pass
            except SSL.Error:
                pass  # the server refusing is part of some tests
        if step is not Step.WANT_READ:
            break
        try:
            back = server.bio_read(1 << 20)
        except SSL.WantReadError:
            back = b""
        if not back:
            break
        wire.append(("server", back))
        engine.receive(back)
    return engine, step, wire


def _client_context(pki: TestPKI, version: int) -> SSL.Context:
    return build_context(make_offer(version, None, None, None), identity=None, ca_file=pki.ca)


def _shape(ev: WireEvent) -> tuple[object, ...]:
    return (ev.direction, ev.kind, ev.record_version, ev.raw, ev.record_len, ev.handshake, ev.alert)


def _replay(wire: list[tuple[str, bytes]], cut: Callable[[bytes], list[bytes]]) -> Transcript:
    t = Transcript()
    for direction, data in wire:
        for piece in cut(data):
            t.feed(direction, piece)
    return t


def _bytewise(data: bytes) -> list[bytes]:
    return [data[i : i + 1] for i in range(len(data))]


def _random_cuts(seed: int) -> Callable[[bytes], list[bytes]]:
    rng = random.Random(seed)

    def cut(data: bytes) -> list[bytes]:
        out, i = [], 0
        while i < len(data):
            n = rng.randint(1, 700)
            out.append(data[i : i + n])
            i += n
        return out

    return cut


@pytest.mark.parametrize("version", [0x0304, 0x0303])
def test_transcript_events_do_not_depend_on_read_sizes(pki: TestPKI, version: int) -> None:
    engine, step, wire = _handshake(pki, _client_context(pki, version), version)
    assert step is Step.DONE
    whole = engine.transcript
    assert whole.server_hello is not None
    assert whole.server_hello.selected_version == version
    assert whole.tls13 is (version == 0x0304)
    for cut in (_bytewise, _random_cuts(1), _random_cuts(2)):
        t = _replay(wire, cut)
        assert [_shape(e) for e in t.events] == [_shape(e) for e in whole.events]
        assert t.server_hello == whole.server_hello
        assert t.tls13 == whole.tls13
        assert t.decode_error("server") is None and t.decode_error("client") is None
        assert t.pending_handshake_bytes("server") == 0
        assert t.pending_handshake_bytes("client") == 0
    first = [e.handshake.msg_type for e in whole.events if e.handshake is not None]
    assert first[:2] == [HandshakeType.CLIENT_HELLO, HandshakeType.SERVER_HELLO]


@pytest.mark.parametrize("first", [b"H", b"220 FTP", b"SSH-2.0", b"\x16\x02"])
def test_transcript_not_tls_from_the_first_bytes(first: bytes) -> None:
    t = Transcript()
    t.feed("server", first)
    assert t.not_tls("server")
    assert t.first_bytes("server") == first
    assert t.pending_handshake_bytes("server") == 0


def test_transcript_holds_at_most_one_unfinished_record() -> None:
    t = Transcript()
    record = bytes([23, 3, 3]) + (1000).to_bytes(2, "big") + bytes(1000)
    stream = record * 5
    held = []
    for i in range(0, len(stream), 7):
        t.feed("server", stream[i : i + 7])
        held.append(t.pending_handshake_bytes("server"))
    assert max(held) < len(record)
    assert [e.kind for e in t.events] == ["encrypted"] * 5
    assert all(e.record_len == 1000 and e.raw == bytes(64) for e in t.events)


def test_transcript_bounds_bytes_and_events() -> None:
    t = Transcript(max_events=3, max_bytes=2000)
    record = bytes([23, 3, 3, 0, 100]) + bytes(100)
    for _ in range(50):
        t.feed("server", record)
    assert len(t.events) == 3
    assert t.dropped_events == 2000 // len(record) - 3
    assert t.bytes_seen("server") == 50 * len(record)


@given(st.binary(max_size=64))
def test_locate_record_agrees_with_parse_record(buf: bytes) -> None:
    try:
        got = parse_record(buf)
    except DecodeError as exc:
        with pytest.raises(DecodeError) as again:
            locate_record(buf)
        assert str(again.value) == str(exc)
        return
    end = locate_record(buf)
    if got is None:
        assert end is None
    else:
        assert end is not None and buf[end:] == got[1] and buf[5:end] == got[0].fragment


@given(st.binary(max_size=300), st.integers(min_value=1, max_value=40))
def test_defragmenter_cuts_like_parse_handshake(data: bytes, size: int) -> None:
    expected, rest = [], data
    error = False
    try:
        while (got := parse_handshake(rest)) is not None:
            expected.append(got[0])
            rest = got[1]
    except DecodeError:
        error = True
    d = Defragmenter()
    out = []
    raised = False
    try:
        for i in range(0, len(data), size):
            out += d.feed(data[i : i + size])
    except DecodeError:
        raised = True
    assert out == expected
    if not error:
        assert not raised
        assert d.pending == len(rest)


def test_prepared_context_callbacks_record_like_per_connection_ones(pki: TestPKI) -> None:
    prepared = _client_context(pki, 0x0304)
    plain = SSL.Context(SSL.TLS_CLIENT_METHOD)
    plain.load_verify_locations(str(pki.ca))
    plain.set_min_proto_version(SSL.TLS1_3_VERSION)
    a, step_a, _ = _handshake(pki, prepared, 0x0304)
    b, step_b, _ = _handshake(pki, plain, 0x0304)
    assert step_a is step_b is Step.DONE
    assert a.state.states == b.state.states
    assert sorted(a.state.verify_chain) == sorted(b.state.verify_chain) == [0, 1, 2]
    assert [verify.subject(c) for c in a.verified_chain()] == [
        verify.subject(c) for c in b.verified_chain()
    ]


def test_a_failing_host_check_fails_verification_not_the_probe(pki: TestPKI) -> None:
    ctx = _client_context(pki, 0x0304)

    def broken(cert: x509.Certificate) -> str | None:
        raise ValueError("malformed subjectAltName")

    engine, step, _ = _handshake(pki, ctx, 0x0304, hostname_check=broken)
    assert step is Step.FAILED
    assert engine.state.error and "certificate verify failed" in engine.state.error
    # The shared context carries no leftover error into its next connection.
    again, step, _ = _handshake(pki, ctx, 0x0304)
    assert step is Step.DONE and again.state.error is None


def test_prepare_context_leaves_foreign_connections_to_openssl(pki: TestPKI) -> None:
    ctx = SSL.Context(SSL.TLS_CLIENT_METHOD)
    ctx.load_verify_locations(str(pki.ca))
    prepare_context(ctx)
    conn = SSL.Connection(ctx, None)  # no engine behind it: OpenSSL decides alone
    conn.set_connect_state()
    server = SSL.Connection(_server_context(pki, SSL.TLS1_3_VERSION), None)
    server.set_accept_state()
    for _ in range(10):
        try:
            conn.do_handshake()
            break
        except SSL.WantReadError:
            pass
        server.bio_write(conn.bio_read(1 << 20))
        with contextlib.suppress(SSL.WantReadError):
            server.do_handshake()
        conn.bio_write(server.bio_read(1 << 20))
    assert conn.get_peer_certificate() is not None


def test_to_cryptography_returns_one_object_per_certificate(pki: TestPKI) -> None:
    pem = pki.good.cert.read_bytes()
    one = crypto.load_certificate(crypto.FILETYPE_PEM, pem)
    two = crypto.load_certificate(crypto.FILETYPE_PEM, pem)
    assert to_cryptography(one) is to_cryptography(two)
    assert to_cryptography(one) == x509.load_pem_x509_certificate(pem)
    other = crypto.load_certificate(crypto.FILETYPE_PEM, pki.intermediate.read_bytes())
    assert to_cryptography(other) != to_cryptography(one)


def test_cert_info_matches_a_fresh_summary(pki: TestPKI) -> None:
    cert = x509.load_pem_x509_certificate(pki.good.cert.read_bytes())
    copy = x509.load_pem_x509_certificate(pki.good.cert.read_bytes())
    inter = x509.load_pem_x509_certificate(pki.intermediate.read_bytes())
    base = dt.datetime(2030, 1, 1, tzinfo=dt.UTC)
    for now in (base, base + dt.timedelta(days=3), base):
        for c in (cert, copy, inter):
            info = verify.cert_info(c, now)
            assert info.days_left == (c.not_valid_after_utc - now).days
            assert dataclasses.replace(info, days_left=0) == verify._static_info(c)
    assert verify.subject(inter) == inter.subject.rfc4514_string()
    assert verify.subject(cert) == verify.subject(copy) == cert.subject.rfc4514_string()


async def _socket_pair() -> tuple[trio.SocketStream, trio.SocketStream]:
    a, b = trio.socket.socketpair()
    return trio.SocketStream(a), trio.SocketStream(b)


async def test_send_larger_than_the_socket_buffer_waits_for_the_reader() -> None:
    left, right = await _socket_pair()
    payload = bytes(range(256)) * 16 * 1024  # 4 MiB: far beyond one write
    got = bytearray()

    async def reader() -> None:
        while len(got) < len(payload):
            got.extend(await right.receive_some(1 << 16))

    async with trio.open_nursery() as nursery:
        nursery.start_soon(reader)
        assert await net.send(left, payload)
    assert bytes(got) == payload
    await left.aclose()
    await right.aclose()


async def test_send_to_a_closed_peer_reports_false() -> None:
    left, right = await _socket_pair()
    await right.aclose()
    assert not await net.send(left, b"\x16\x03\x01\x00\x01\x00")
    assert net.send_now(left, b"x") is None
    left.socket.close()
    assert not await net.send(left, b"x")


@pytest.mark.parametrize("host", ["127.0.0.1", "::1"])
async def test_numeric_hosts_resolve_as_trio_resolves_them(host: str) -> None:
    ours = await net._resolve(host, 443)
    theirs = await trio.socket.getaddrinfo(host, 443, type=socket.SOCK_STREAM)
    assert ours == list(theirs)
