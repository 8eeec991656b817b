"""The codec's promise on peer input: every parser returns a value or raises DecodeError.

Nothing else may escape (no IndexError, struct.error, UnicodeDecodeError, ValueError from int
conversion, RecursionError...), for arbitrary bytes and for real messages with bytes flipped,
cut, inserted or duplicated. Streaming parsers give the same result fed whole and fed one byte
at a time.
"""

from __future__ import annotations

import contextlib
import datetime
import functools
from collections.abc import Callable

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import NameOID
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from OpenSSL import SSL

from probe.wire import extensions as ext
from probe.wire.errors import DecodeError
from probe.wire.extensions import Extension
from probe.wire.handshake import Defragmenter, HandshakeMessage, parse_handshake
from probe.wire.hello import (
    ClientHelloSpec,
    build_client_hello,
    build_client_hello_message,
    build_sslv2_client_hello,
    make_key_share,
    parse_client_hello,
)
from probe.wire.messages import (
    HRR_RANDOM,
    build_certificate,
    build_certificate_request,
    build_dhe_server_key_exchange,
    build_ecdhe_server_key_exchange,
    build_server_hello,
    build_server_hello_done,
    build_sslv2_error,
    build_sslv2_server_hello,
    decode_dn,
    parse_certificate,
    parse_certificate_request,
    parse_server_hello,
    parse_server_hello_done,
    parse_server_key_exchange,
    parse_sslv2_record,
    parse_sslv2_server_hello,
)
from probe.wire.record import (
    ContentType,
    Record,
    build_alert,
    build_records,
    parse_alert,
    parse_record,
    parse_records,
)

# --- Real messages to mutate --------------------------------------------------------------------
# Trace vectors (see test_hello.py / test_messages.py for where they come from and why they
# are trusted), builder output, and the flight a real OpenSSL sends to our ClientHello.

ZOS_CLIENT_HELLO = bytes.fromhex(
    "0100002D03025089 8BF6761EA90F924A0B90920345AE6AD5DC1ECCCF3AF60746275180D1DCD00000"
    "0600FF000A002F0100".replace(" ", "")
)
CFT_SERVER_HELLO_RECORD = bytes.fromhex(
    "160301002A0200002603014DAECAB899391A07A09B9E37A822A2704CCCD0179E691242598D79970AAC49B900002F00"
)
ZOS_CA_DN = bytes.fromhex(
    "303D310B3009060355040613025553311030 0E060355040A13074D56533120434131 1C301A0603550403"
    "13134D56533143412E4C4142532E49424D2E434F4D".replace(" ", "")
)


@functools.cache
def identity() -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name(
        [
            x509.NameAttribute(NameOID.COUNTRY_NAME, "FR"),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Wire, Test"),
            x509.NameAttribute(NameOID.COMMON_NAME, "fuzz.test"),
        ]
    )
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    return key, cert


@functools.cache
def openssl_flight(tls13: bool) -> tuple[HandshakeMessage, ...]:
    """OpenSSL's plaintext answer to one of our hellos."""
    spec = ClientHelloSpec(
        suites=(0x1301, 0xC02B),
        random=bytes(range(32)),
        server_name="fuzz.test",
        supported_versions=(0x0304, 0x0303) if tls13 else None,
        groups=(29, 23),
        signature_algorithms=(0x0403,),
        key_shares=(make_key_share(29),) if tls13 else (),
        ec_point_formats=(0,),
        renegotiation_info=True,
        extended_master_secret=True,
    )
    ctx = SSL.Context(SSL.TLS_SERVER_METHOD)
    ctx.use_privatekey(identity()[0])
    ctx.use_certificate(identity()[1])
    conn = SSL.Connection(ctx, None)
    conn.set_accept_state()
    conn.bio_write(build_client_hello(spec))
    with pytest.raises(SSL.WantReadError):
        conn.do_handshake()
    recs, _ = parse_records(conn.bio_read(1 << 20))
    defrag = Defragmenter()
    out: list[HandshakeMessage] = []
    for rec in recs:
        if rec.content_type != ContentType.HANDSHAKE:
            break
        out += defrag.feed(rec.fragment)
    return tuple(out)


@functools.cache
def seeds() -> dict[str, list[bytes]]:
    der = identity()[1].public_bytes(Encoding.DER)
    tls12 = openssl_flight(False)
    tls13 = openssl_flight(True)
    hello_spec = ClientHelloSpec(
        suites=(0x1301, 0x1302, 0xC02F, 0x00FF),
        random=bytes(32),
        session_id=bytes(32),
        server_name="a.example",
        supported_versions=(0x0304, 0x0303),
        groups=(29, 23, 256),
        signature_algorithms=(0x0804, 0x0403),
        key_shares=(make_key_share(29), make_key_share(23)),
        ec_point_formats=(0,),
        renegotiation_info=True,
        extended_master_secret=True,
        session_ticket=True,
        extra_extensions=(ext.alpn([b"h2"]), ext.status_request(), ext.psk_key_exchange_modes()),
        pad_to=512,
    )
    client_hello = build_client_hello_message(hello_spec)
    server_hellos = [
        CFT_SERVER_HELLO_RECORD[9:],
        tls12[0].body,
        tls13[0].body,
        build_server_hello(
            cipher_suite=0x1301,
            random=HRR_RANDOM,
            extensions=(ext.supported_versions_server(0x0304), ext.key_share_hrr(23)),
        )[4:],
    ]
    certs12 = [tls12[1].body, build_certificate((der, der))[4:]]
    certs13 = [
        build_certificate(
            (der,), tls13=True, entry_extensions=((Extension(type=5, data=b"\x01"),),)
        )[4:]
    ]
    return {
        "record": [
            CFT_SERVER_HELLO_RECORD,
            build_client_hello(hello_spec, max_fragment=200),
            build_alert(40),
            Record(content_type=20, version=0x0303, fragment=b"\x01").to_bytes(),
        ],
        "handshake": [client_hello, *(m.to_bytes() for m in tls12)],
        "client_hello": [ZOS_CLIENT_HELLO[4:], client_hello[4:]],
        "server_hello": server_hellos,
        "certificate12": certs12,
        "certificate13": certs13,
        "certificate_request12": [
            build_certificate_request(ca_names=(ZOS_CA_DN, ZOS_CA_DN))[4:],
            build_certificate_request(ca_names=())[4:],
        ],
        "certificate_request10": [
            build_certificate_request(version=0x0301, ca_names=(ZOS_CA_DN,))[4:],
        ],
        "certificate_request13": [
            build_certificate_request(tls13=True, ca_names=(ZOS_CA_DN,), request_context=b"x")[4:]
        ],
        "ske_ecdhe": [tls12[2].body, build_ecdhe_server_key_exchange(23, b"\x04" + bytes(64))[4:]],
        "ske_dhe": [build_dhe_server_key_exchange((1 << 2047) | 1, 2, bytes(256), b"\x04\x01")[4:]],
        "server_hello_done": [build_server_hello_done()[4:]],
        "sslv2_record": [
            build_sslv2_client_hello((0x010080, 0x00002F), bytes(16), 0x0301),
            build_sslv2_server_hello(
                certificate=der, cipher_kinds=(0x010080,), connection_id=b"c" * 16
            ),
            build_sslv2_error(1),
        ],
        "sslv2_server_hello": [
            build_sslv2_server_hello(
                certificate=der, cipher_kinds=(0x010080,), connection_id=b"c" * 16
            )[2:],
            build_sslv2_error(2)[2:],
        ],
        "extensions": [
            ext.build_extensions(parse_client_hello(client_hello[4:]).extensions)[2:],
            bytes(4),
        ],
        "dn": [ZOS_CA_DN, identity()[1].subject.public_bytes()],
        "ext_server_name": [ext.server_name("a.example").data],
        "ext_key_share_client": [ext.key_share_client(hello_spec.key_shares).data],
        "ext_key_share_server": [ext.key_share_server(make_key_share(23)).data],
        "ext_certificate_authorities": [ext.certificate_authorities([ZOS_CA_DN] * 2).data],
        "ext_alpn": [ext.alpn([b"h2", b"http/1.1"]).data],
        "ext_supported_versions": [ext.supported_versions_client((0x0304, 0x0303)).data],
        "alert": [b"\x02\x28"],
    }


def _feed_once(data: bytes) -> object:
    return Defragmenter().feed(data)


PARSERS: dict[str, Callable[[bytes], object]] = {
    "record": parse_record,
    "handshake": parse_handshake,
    "defragmenter": _feed_once,
    "client_hello": parse_client_hello,
    "server_hello": parse_server_hello,
    "certificate12": lambda b: parse_certificate(b, tls13=False),
    "certificate13": lambda b: parse_certificate(b, tls13=True),
    "certificate_request12": lambda b: parse_certificate_request(b, False, 0x0303),
    "certificate_request10": lambda b: parse_certificate_request(b, False, 0x0301),
    "certificate_request13": lambda b: parse_certificate_request(b, True),
    "ske_ecdhe": lambda b: parse_server_key_exchange(b, "ECDHE"),
    "ske_dhe": lambda b: parse_server_key_exchange(b, "DHE"),
    "server_hello_done": parse_server_hello_done,
    "sslv2_record": parse_sslv2_record,
    "sslv2_server_hello": parse_sslv2_server_hello,
    "extensions": ext.parse_extensions,
    "dn": decode_dn,
    "alert": parse_alert,
    # The extension-body decoders run inside the hello parsers, but directly is cheaper.
    "ext_server_name": ext.decode_server_name,
    "ext_key_share_client": ext.decode_key_share_client,
    "ext_key_share_server": ext.decode_key_share_server,
    "ext_certificate_authorities": ext.decode_certificate_authorities,
    "ext_alpn": ext.decode_alpn,
    "ext_supported_versions": ext.decode_supported_versions_client,
}
# Which seeds feed which parser (by default its own name).
SEEDS_FOR = {"defragmenter": "handshake"}


def must_parse_or_decode_error(parser: Callable[[bytes], object], data: bytes) -> None:
    with contextlib.suppress(DecodeError):
        parser(data)


@pytest.mark.parametrize("name", list(PARSERS))
def test_seeds_parse(name: str) -> None:
    """The unmutated seeds are valid, so the mutations start from real structure."""
    for seed in seeds()[SEEDS_FOR.get(name, name)]:
        assert PARSERS[name](seed) is not None or name == "server_hello_done"


@pytest.mark.parametrize("name", list(PARSERS))
@settings(max_examples=300, deadline=None)
@given(data=st.binary(max_size=400))
def test_arbitrary_bytes(name: str, data: bytes) -> None:
    must_parse_or_decode_error(PARSERS[name], data)


@st.composite
def mutations(draw: st.DrawFn, pool: list[bytes]) -> bytes:
    data = bytearray(draw(st.sampled_from(pool)))
    for _ in range(draw(st.integers(1, 4))):
        op = draw(st.sampled_from(["flip", "set", "cut", "insert", "delete", "dup", "len"]))
        i = draw(st.integers(0, len(data)))
        if op == "flip" and data:
            i = min(i, len(data) - 1)
            data[i] ^= draw(st.integers(1, 255))
        elif op == "set" and data:
            i = min(i, len(data) - 1)
            data[i] = draw(st.sampled_from([0x00, 0x01, 0x7F, 0x80, 0xFF]))
        elif op == "cut":
            del data[i:]
        elif op == "insert":
            data[i:i] = draw(st.binary(min_size=1, max_size=8))
        elif op == "delete":
            del data[i : i + draw(st.integers(1, 8))]
        elif op == "dup":
            data[i:i] = data[i : i + draw(st.integers(1, 16))]
        elif op == "len" and len(data) >= 2:
            # Rewrite a would-be length field with a lie, the classic parser killer.
            i = min(i, len(data) - 2)
            data[i : i + 2] = draw(st.sampled_from([0, 1, 0x7FFF, 0xFFFF])).to_bytes(2, "big")
    return bytes(data)


@pytest.mark.parametrize("name", list(PARSERS))
@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_mutated_real_messages(name: str, data: st.DataObject) -> None:
    pool = seeds()[SEEDS_FOR.get(name, name)]
    must_parse_or_decode_error(PARSERS[name], data.draw(mutations(pool)))


# --- Streaming: fed whole == fed one byte at a time ---------------------------------------------


def drain_records(chunks: list[bytes]) -> tuple[list[Record], bytes, bool]:
    buf = b""
    out: list[Record] = []
    for chunk in chunks:
        buf += chunk
        while True:
            try:
                got = parse_record(buf)
            except DecodeError:
                return out, buf, True
            if got is None:
                break
            rec, buf = got
            out.append(rec)
    return out, buf, False


def drain_sslv2(chunks: list[bytes]) -> tuple[list[bytes], bytes, bool]:
    buf = b""
    out: list[bytes] = []
    for chunk in chunks:
        buf += chunk
        while True:
            try:
                got = parse_sslv2_record(buf)
            except DecodeError:
                return out, buf, True
            if got is None:
                break
            msg, buf = got
            out.append(msg)
    return out, buf, False


def drain_defragmenter(chunks: list[bytes]) -> tuple[list[HandshakeMessage], int, bool]:
    d = Defragmenter(max_message=4096)
    out: list[HandshakeMessage] = []
    # The final empty feed surfaces an error deferred behind whole messages.
    for chunk in [*chunks, b""]:
        try:
            out += d.feed(chunk)
        except DecodeError:
            return out, d.pending, True
    return out, d.pending, False


def bytewise(data: bytes) -> list[bytes]:
    return [data[i : i + 1] for i in range(len(data))]


def stream_inputs(pool_name: str) -> st.SearchStrategy[bytes]:
    pool = seeds()[pool_name]
    joined = st.lists(st.sampled_from(pool), min_size=1, max_size=3).map(b"".join)
    return joined | mutations(pool) | st.binary(max_size=200)


@settings(max_examples=200, deadline=None)
@given(data=st.data())
def test_records_streaming(data: st.DataObject) -> None:
    buf = data.draw(stream_inputs("record"))
    whole, rest, err = drain_records([buf])
    one, rest1, err1 = drain_records(bytewise(buf))
    assert (whole, err) == (one, err1)
    if not err:
        assert rest == rest1


@settings(max_examples=200, deadline=None)
@given(data=st.data())
def test_sslv2_streaming(data: st.DataObject) -> None:
    buf = data.draw(stream_inputs("sslv2_record"))
    whole, rest, err = drain_sslv2([buf])
    one, rest1, err1 = drain_sslv2(bytewise(buf))
    assert (whole, err) == (one, err1)
    if not err:
        assert rest == rest1


@settings(max_examples=200, deadline=None)
@given(data=st.data())
def test_defragmenter_streaming(data: st.DataObject) -> None:
    buf = data.draw(stream_inputs("handshake"))
    whole, pending, err = drain_defragmenter([buf])
    one, pending1, err1 = drain_defragmenter(bytewise(buf))
    assert (whole, err) == (one, err1)
    if not err:
        assert pending == pending1


def test_defragmenter_keeps_messages_before_a_bad_header() -> None:
    good = build_server_hello_done()
    bad = b"\x0b\xff\xff\xff"  # a Certificate claiming 16 MB
    d = Defragmenter()
    assert d.feed(good + bad) == [HandshakeMessage(msg_type=14, body=b"")]
    with pytest.raises(DecodeError):
        d.feed(b"")


@settings(max_examples=100, deadline=None)
@given(data=st.data(), max_fragment=st.integers(1, 300))
def test_fragmented_handshake_reassembles(data: st.DataObject, max_fragment: int) -> None:
    """Messages split across records at any size come back whole, in order."""
    msgs = data.draw(st.lists(st.sampled_from(seeds()["handshake"]), min_size=1, max_size=4))
    wire = build_records(ContentType.HANDSHAKE, 0x0303, b"".join(msgs), max_fragment)
    recs, rest = parse_records(wire)
    assert rest == b""
    d = Defragmenter()
    got = [m.to_bytes() for r in recs for m in d.feed(r.fragment)]
    assert got == msgs and d.pending == 0
