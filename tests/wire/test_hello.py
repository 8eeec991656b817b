"""ClientHello and extensions: seed vectors, round trips, and a real OpenSSL answering our bytes."""

from __future__ import annotations

import datetime
import os
import ssl
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat
from cryptography.x509.oid import NameOID
from hypothesis import given, settings
from hypothesis import strategies as st
from OpenSSL import SSL

from probe.wire import extensions as ext
from probe.wire.errors import DecodeError
from probe.wire.extensions import Extension, ExtensionType, KeyShareEntry
from probe.wire.handshake import Defragmenter, HandshakeMessage, HandshakeType, parse_handshake
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
    parse_certificate,
    parse_server_hello,
    parse_server_hello_done,
    parse_server_key_exchange,
)
from probe.wire.record import ContentType, parse_record, parse_records


def hexbytes(s: str) -> bytes:
    return bytes.fromhex("".join(s.split()))


# z/OS System SSL trace (seeds/003, "CLIENT-HELLO message" dump, lines 150-153): a TLS 1.1
# hello with SCSV, DES-CBC3-SHA and AES128-SHA, no extensions. Self-consistent: u24 length
# 0x2D = 45 = 2 + 32 + 1 + (2 + 6) + (1 + 1).
ZOS_CLIENT_HELLO = hexbytes(
    "0100002D 03025089 8BF6761E A90F924A 0B909203 45AE6AD5 DC1ECCCF 3AF60746"
    " 275180D1 DCD00000 0600FF00 0A002F01 00"
)

# Transfer CFT trace (seeds/004, CTX=210004, lines 259-262): the whole record, TLS 1.0,
# CIPHLIST=(47,10,9,1,2). Self-consistent: record length 0x35 = 53 = 4 + 0x31, and
# 0x31 = 2 + 32 + 1 + (2 + 10) + (1 + 1). (The CTX=200003 copy at line 174 is the same hello
# with its last line missing from the document.)
CFT_CLIENT_HELLO_RECORD = hexbytes(
    "16030100 35010000 3103014D AECAB8AD 355E939D EFFE380E 7B5C37C9 18FC993A"
    " 66A90F82 E271C992 D0972100 000A002F 000A0009 00010002 0100"
)


def one_message(records: bytes) -> HandshakeMessage:
    recs, rest = parse_records(records)
    assert rest == b""
    defrag = Defragmenter()
    msgs = [m for r in recs for m in defrag.feed(r.fragment)]
    assert len(msgs) == 1 and defrag.pending == 0
    return msgs[0]


# --- Seeds ---------------------------------------------------------------------------------------


def test_zos_client_hello_seed() -> None:
    got = parse_handshake(ZOS_CLIENT_HELLO)
    assert got is not None
    msg, rest = got
    assert rest == b"" and msg.msg_type == HandshakeType.CLIENT_HELLO
    hello = parse_client_hello(msg.body)
    assert hello.legacy_version == 0x0302
    assert hello.random[:4] == hexbytes("50898BF6")
    assert hello.session_id == b""
    assert hello.suites == (0x00FF, 0x000A, 0x002F)
    assert hello.compression == (0,)
    assert hello.extensions == () and not hello.extensions_present
    assert hello.offers_secure_renegotiation and not hello.renegotiation_info
    assert hello.server_name is None and hello.supported_versions is None
    # The builder reproduces it byte for byte.
    spec = ClientHelloSpec(
        legacy_version=0x0302, suites=hello.suites, random=hello.random, no_extensions=True
    )
    assert build_client_hello_message(spec) == ZOS_CLIENT_HELLO


def test_transfer_cft_client_hello_seed() -> None:
    got = parse_record(CFT_CLIENT_HELLO_RECORD)
    assert got is not None
    rec, rest = got
    assert rest == b"" and rec.content_type == ContentType.HANDSHAKE and rec.version == 0x0301
    msg = one_message(CFT_CLIENT_HELLO_RECORD)
    hello = parse_client_hello(msg.body)
    assert hello.legacy_version == 0x0301
    assert hello.suites == (47, 10, 9, 1, 2)
    assert not hello.extensions_present
    spec = ClientHelloSpec(
        legacy_version=0x0301,
        record_version=0x0301,
        suites=(47, 10, 9, 1, 2),
        random=hello.random,
        no_extensions=True,
    )
    assert build_client_hello(spec) == CFT_CLIENT_HELLO_RECORD


# --- Extensions ---------------------------------------------------------------------------------


def test_extension_builders_exact_bytes() -> None:
    # RFC 6066 §3: list length, name_type 0, name length, name.
    assert ext.server_name("example.com.").data == hexbytes("000e 00 000b") + b"example.com"
    assert ext.renegotiation_info().to_bytes() == hexbytes("ff01 0001 00")  # RFC 5746 §3.2
    assert ext.extended_master_secret().to_bytes() == hexbytes("0017 0000")
    assert ext.supported_versions_client((0x0304, 0x0303)).data == hexbytes("04 0304 0303")
    assert ext.supported_versions_server(0x0304).data == hexbytes("0304")
    assert ext.key_share_hrr(29).to_bytes() == hexbytes("0033 0002 001d")
    assert ext.key_share_server(KeyShareEntry(group=29, key_exchange=b"\x01\x02")).data == (
        hexbytes("001d 0002 0102")
    )
    assert ext.key_share_client(()).data == hexbytes("0000")
    assert ext.status_request().data == hexbytes("01 0000 0000")
    assert ext.psk_key_exchange_modes().data == hexbytes("01 01")
    assert ext.alpn(["h2", b"http/1.1"]).data == hexbytes("000c 02") + b"h2" + b"\x08http/1.1"
    assert ext.ec_point_formats().data == hexbytes("01 00")
    assert ext.session_ticket().data == b""
    assert ext.certificate_authorities([b"\x30\x00"]).data == hexbytes("0004 0002 3000")
    assert ext.signature_algorithms_cert((0x0401,)).type == 50
    assert ext.padding(3).data == bytes(3)
    assert ext.build_extensions([]) == b"\x00\x00"


def test_extension_builders_refuse_what_cannot_be_encoded() -> None:
    with pytest.raises(ValueError):
        ext.server_name("bücher.example")
    with pytest.raises(ValueError):
        ext.supported_groups((0x10000,))
    with pytest.raises(ValueError):
        ext.padding(1 << 16)
    with pytest.raises(ValueError):
        ext.alpn([b"x" * 256])


def test_duplicate_extension_is_a_decode_error() -> None:
    block = ext.server_name("a").to_bytes() + ext.server_name("b").to_bytes()
    with pytest.raises(DecodeError, match="duplicate"):
        ext.parse_extensions(block)


@pytest.mark.parametrize(
    "decoder, data",
    [
        (ext.decode_server_name, hexbytes("0000")),  # empty server_name_list
        (ext.decode_server_name, hexbytes("0004 00 0001 00")),  # NUL in host_name
        (ext.decode_server_name, hexbytes("0008 00 0001 61 00 0001 62")),  # two host_names
        (lambda d: ext.decode_u16_list(d, "groups"), hexbytes("0000")),  # <2..2^16-1>
        (lambda d: ext.decode_u16_list(d, "groups"), hexbytes("0003 001d00")),
        (ext.decode_supported_versions_client, hexbytes("00")),
        (ext.decode_supported_versions_server, hexbytes("030403")),
        (ext.decode_key_share_client, hexbytes("0004 001d 0000")),  # empty key_exchange
        (ext.decode_key_share_client, hexbytes("000a 001d 0001 01 001d 0001 02")),  # same group
        (ext.decode_key_share_hrr, hexbytes("001d00")),
        (ext.decode_certificate_authorities, hexbytes("0000")),
        (ext.decode_alpn, hexbytes("0001 00")),
        (ext.decode_renegotiation_info, hexbytes("01")),
    ],
)
def test_malformed_extension_bodies(decoder: object, data: bytes) -> None:
    assert callable(decoder)
    with pytest.raises(DecodeError):
        decoder(data)


def test_unknown_extension_and_name_types_stay_raw() -> None:
    unknown = Extension(type=0xFAFA, data=b"\x00")
    got = ext.parse_extensions(unknown.to_bytes())
    assert got == (unknown,) and got[0].type == 0xFAFA
    # An unknown server name type next to the host_name is skipped, not refused.
    assert ext.decode_server_name(hexbytes("0008 07 0001 78 00 0001 61")) == "a"


# --- ClientHello round trips --------------------------------------------------------------------

_BUILTIN_TYPES = {0, 10, 11, 13, 16, 21, 23, 35, 41, 43, 51, 65281}
u16s = st.integers(0, 0xFFFF)
hostnames = st.from_regex(
    r"[a-z0-9]([a-z0-9-]{0,20}[a-z0-9])?(\.[a-z0-9]{1,10}){0,3}", fullmatch=True
)
key_shares = st.lists(
    st.builds(KeyShareEntry, group=u16s, key_exchange=st.binary(min_size=1, max_size=300)),
    max_size=4,
    unique_by=lambda e: e.group,
).map(tuple)
extras = st.lists(
    st.builds(
        Extension,
        type=u16s.filter(lambda t: t not in _BUILTIN_TYPES),
        data=st.binary(max_size=40) | st.binary(min_size=3000, max_size=9000),
    ),
    max_size=4,
    unique_by=lambda e: e.type,
).map(tuple)


@st.composite
def specs(draw: st.DrawFn) -> ClientHelloSpec:
    return ClientHelloSpec(
        legacy_version=draw(st.sampled_from([0x0300, 0x0301, 0x0302, 0x0303])),
        record_version=draw(st.sampled_from([0x0300, 0x0301, 0x0303])),
        suites=tuple(draw(st.lists(u16s, min_size=1, max_size=300))),
        random=draw(st.binary(min_size=32, max_size=32)),
        session_id=draw(st.binary(max_size=32)),
        compression=tuple(draw(st.lists(st.integers(0, 255), min_size=1, max_size=3))),
        server_name=draw(st.none() | hostnames),
        supported_versions=draw(st.none() | st.lists(u16s, min_size=1, max_size=8).map(tuple)),
        groups=draw(st.none() | st.lists(u16s, min_size=1, max_size=30).map(tuple)),
        signature_algorithms=draw(st.none() | st.lists(u16s, min_size=1, max_size=30).map(tuple)),
        key_shares=draw(key_shares),
        ec_point_formats=draw(st.none() | st.lists(st.integers(0, 2), min_size=1).map(tuple)),
        renegotiation_info=draw(st.booleans()),
        extended_master_secret=draw(st.booleans()),
        session_ticket=draw(st.booleans()),
        extra_extensions=draw(extras),
        pad_to=draw(st.none() | st.integers(0, 2000)),
    )


@settings(max_examples=150, deadline=None)
@given(spec=specs(), max_fragment=st.sampled_from([2**14, 512, 100, 7]))
def test_client_hello_round_trip(spec: ClientHelloSpec, max_fragment: int) -> None:
    wire = build_client_hello(spec, max_fragment=max_fragment)
    recs, rest = parse_records(wire)
    assert rest == b""
    assert all(r.version == spec.record_version for r in recs)
    assert all(0 < len(r.fragment) <= max_fragment for r in recs)
    msg = one_message(wire)
    assert msg.msg_type == HandshakeType.CLIENT_HELLO
    assert msg.to_bytes() == build_client_hello_message(spec)
    hello = parse_client_hello(msg.body)
    assert hello.legacy_version == spec.legacy_version
    assert hello.random == spec.random and hello.session_id == spec.session_id
    assert hello.suites == spec.suites and hello.compression == spec.compression
    assert hello.server_name == spec.server_name
    assert hello.supported_versions == spec.supported_versions
    assert hello.groups == spec.groups
    assert hello.signature_algorithms == spec.signature_algorithms
    assert hello.key_shares == (spec.key_shares or None)
    assert hello.key_share_groups == (tuple(e.group for e in spec.key_shares) or None)
    assert hello.ec_point_formats == spec.ec_point_formats
    assert hello.renegotiation_info == spec.renegotiation_info
    assert hello.extended_master_secret == spec.extended_master_secret
    assert hello.session_ticket == spec.session_ticket
    for e in spec.extra_extensions:
        assert hello.extension(e.type) == e
    if spec.pad_to is not None:
        assert len(msg.body) >= spec.pad_to
        padded = hello.extension(ExtensionType.padding)
        if padded is not None:
            assert len(msg.body) - spec.pad_to < 4  # exact, or overshot by the header only
            assert padded.data == bytes(len(padded.data))
    # Old stacks choke on an empty last extension: the builder's own extensions never end
    # with one when any of them has a body (extra extensions keep the caller's order).
    if not spec.extra_extensions and any(e.data for e in hello.extensions):
        assert hello.extensions[-1].data or hello.extensions[-1].type == ExtensionType.padding


def test_padding_reaches_the_requested_body_size() -> None:
    spec = ClientHelloSpec(suites=(0x1301,), server_name="x.example", pad_to=512)
    assert len(build_client_hello_message(spec)) == 4 + 512
    # Already long enough: no padding extension.
    spec = ClientHelloSpec(suites=tuple(range(300)), pad_to=100)
    hello = parse_client_hello(build_client_hello_message(spec)[4:])
    assert hello.extension(ExtensionType.padding) is None


def test_padding_goes_before_pre_shared_key() -> None:
    psk = Extension(type=ExtensionType.pre_shared_key, data=b"\x00\x01\x02")
    spec = ClientHelloSpec(suites=(0x1301,), extra_extensions=(psk,), pad_to=600)
    hello = parse_client_hello(build_client_hello_message(spec)[4:])
    assert [e.type for e in hello.extensions][-2:] == [ExtensionType.padding, 41]


def test_no_extensions_conflicts_are_refused() -> None:
    with pytest.raises(ValueError):
        build_client_hello(ClientHelloSpec(suites=(1,), server_name="a", no_extensions=True))
    with pytest.raises(ValueError):
        build_client_hello(ClientHelloSpec(suites=(1,), random=b"short"))
    with pytest.raises(ValueError):
        build_client_hello(ClientHelloSpec(suites=(1,)), max_fragment=2**14 + 1)


def test_empty_extension_block_is_kept_distinct_from_none() -> None:
    hello = parse_client_hello(build_client_hello_message(ClientHelloSpec(suites=(0x2F,)))[4:])
    assert hello.extensions_present and hello.extensions == ()


@pytest.mark.parametrize(
    "body",
    [
        b"",
        hexbytes("0303") + bytes(32) + b"\x21" + bytes(33) + hexbytes("0002 002f 0100"),  # sid 33
        hexbytes("0303") + bytes(32) + hexbytes("00 0000 0100"),  # no suites
        hexbytes("0303") + bytes(32) + hexbytes("00 0003 002f00 0100"),  # odd suite bytes
        hexbytes("0303") + bytes(32) + hexbytes("00 0002 002f 00"),  # no compression
        hexbytes("0303") + bytes(32) + hexbytes("00 0002 002f 0100 0000 00"),  # trailing byte
        hexbytes("0303") + bytes(32) + hexbytes("00 0002 002f 0100 00"),  # half a length
        hexbytes("0303") + bytes(32) + hexbytes("00 0002 002f 0100 0004 0017 0001"),
        hexbytes("0303") + bytes(32) + hexbytes("00 0002 002f 0100 0005 0017 0001 00"),  # EMS body
    ],
)
def test_malformed_client_hellos(body: bytes) -> None:
    with pytest.raises(DecodeError):
        parse_client_hello(body)


# --- Key shares and SSLv2 -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "group, size, first",
    [(29, 32, None), (30, 56, None), (23, 65, 4), (24, 97, 4), (25, 133, 4)]
    + [(g, n, None) for g, n in [(256, 256), (257, 384), (258, 512), (259, 768), (260, 1024)]],
)
def test_make_key_share_sizes(group: int, size: int, first: int | None) -> None:
    share = make_key_share(group)
    assert share.group == group and len(share.key_exchange) == size
    if first is not None:
        assert share.key_exchange[0] == first  # X9.62 uncompressed point
    if group >= 256:
        assert 0x80 <= share.key_exchange[0] < 0xFF  # full length and below the RFC 7919 prime
    assert make_key_share(group).key_exchange != share.key_exchange


def test_make_key_share_refuses_unknown_groups() -> None:
    with pytest.raises(ValueError):
        make_key_share(0x11EC)


def test_sslv2_client_hello_layout() -> None:
    challenge = bytes(range(16))
    rec = build_sslv2_client_hello((0x010080, 0x00002F), challenge, version=0x0301)
    # Header 0x80 | length, then MSG-CLIENT-HELLO, version, specs length 6, session id 0,
    # challenge 16, the kinds, the challenge.
    assert rec == hexbytes("801f 01 0301 0006 0000 0010 010080 00002f") + challenge
    with pytest.raises(ValueError):
        build_sslv2_client_hello((1,), bytes(15))
    with pytest.raises(ValueError):
        build_sslv2_client_hello((1 << 24,), bytes(16))


# --- A real OpenSSL answers our bytes -----------------------------------------------------------
# pyOpenSSL in memory (no socket): write our ClientHello into a server Connection, let it
# step, read its flight back and parse it with our parsers.


def _self_signed(key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey) -> x509.Certificate:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "wire.test")])
    now = datetime.datetime.now(datetime.UTC)
    return (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .sign(key, hashes.SHA256())
    )


@pytest.fixture(scope="module")
def ec_identity() -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    key = ec.generate_private_key(ec.SECP256R1())
    return key, _self_signed(key)


@pytest.fixture(scope="module")
def rsa_identity() -> tuple[rsa.RSAPrivateKey, x509.Certificate]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return key, _self_signed(key)


def server_flight(
    identity: tuple[ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey, x509.Certificate],
    hello: bytes,
    max_version: int = SSL.TLS1_3_VERSION,
    ciphers: bytes | None = None,
) -> list[HandshakeMessage]:
    """The handshake messages OpenSSL sends in answer to ``hello``, up to encryption."""
    ctx = SSL.Context(SSL.TLS_SERVER_METHOD)
    ctx.set_max_proto_version(max_version)
    if ciphers is not None:
        ctx.set_cipher_list(ciphers)
    ctx.use_privatekey(identity[0])
    ctx.use_certificate(identity[1])
    conn = SSL.Connection(ctx, None)
    conn.set_accept_state()
    conn.bio_write(hello)
    with pytest.raises(SSL.WantReadError):
        conn.do_handshake()
    out = conn.bio_read(1 << 20)
    recs, rest = parse_records(out)
    assert rest == b""
    defrag = Defragmenter()
    msgs: list[HandshakeMessage] = []
    for rec in recs:
        if rec.content_type != ContentType.HANDSHAKE:
            break  # TLS 1.3: CCS for middlebox compatibility, then encrypted records
        msgs += defrag.feed(rec.fragment)
    return msgs


def test_openssl_accepts_tls12_hello(
    ec_identity: tuple[ec.EllipticCurvePrivateKey, x509.Certificate],
) -> None:
    spec = ClientHelloSpec(
        suites=(0xC02B, 0xC02F, 0x00FF),
        random=os.urandom(32),
        server_name="wire.test",
        groups=(23, 29),
        signature_algorithms=(0x0403, 0x0804),
        ec_point_formats=(0,),
        extended_master_secret=True,
        session_ticket=True,
    )
    # The server could do TLS 1.3; the hello (no supported_versions) cannot.
    msgs = server_flight(ec_identity, build_client_hello(spec))
    assert [m.msg_type for m in msgs] == [2, 11, 12, 14]
    sh = parse_server_hello(msgs[0].body)
    assert sh.selected_version == 0x0303 == sh.legacy_version
    assert sh.cipher_suite == 0xC02B and sh.compression == 0
    assert sh.renegotiation_info and sh.extended_master_secret
    assert not sh.is_hello_retry_request and sh.key_share_group is None
    # A 1.3-capable server negotiating 1.2 says so in its random (RFC 8446 §4.1.3).
    assert sh.downgrade_sentinel == "tls12"
    cert = parse_certificate(msgs[1].body, tls13=False)
    assert cert.certificates == (ec_identity[1].public_bytes(Encoding.DER),)
    ske = parse_server_key_exchange(msgs[2].body, "ECDHE")
    assert ske.kind == "ecdhe" and ske.group in (23, 29)
    parse_server_hello_done(msgs[3].body)


@pytest.mark.parametrize("group", [29, 30, 23, 24, 25, 256])
def test_openssl_accepts_tls13_key_shares(
    ec_identity: tuple[ec.EllipticCurvePrivateKey, x509.Certificate], group: int
) -> None:
    spec = ClientHelloSpec(
        suites=(0x1301, 0x1302),
        random=os.urandom(32),
        session_id=os.urandom(32),  # middlebox compatibility mode, as browsers send
        server_name="wire.test",
        supported_versions=(0x0304,),
        groups=(group,),
        signature_algorithms=(0x0403, 0x0804),
        key_shares=(make_key_share(group),),
    )
    msgs = server_flight(ec_identity, build_client_hello(spec))
    assert msgs and msgs[0].msg_type == HandshakeType.SERVER_HELLO
    sh = parse_server_hello(msgs[0].body)
    assert sh.legacy_version == 0x0303 and sh.selected_version == 0x0304
    assert sh.key_share_group == group and not sh.is_hello_retry_request
    assert sh.cipher_suite in (0x1301, 0x1302)
    assert sh.session_id == spec.session_id  # echoed (RFC 8446 §4.1.3)
    assert sh.downgrade_sentinel is None


def test_openssl_hello_retry_request(
    ec_identity: tuple[ec.EllipticCurvePrivateKey, x509.Certificate],
) -> None:
    spec = ClientHelloSpec(
        suites=(0x1301,),
        random=os.urandom(32),
        supported_versions=(0x0304,),
        groups=(29,),
        signature_algorithms=(0x0403,),
        extra_extensions=(ext.key_share_client(()),),
    )
    msgs = server_flight(ec_identity, build_client_hello(spec))
    sh = parse_server_hello(msgs[0].body)
    assert sh.random == HRR_RANDOM and sh.is_hello_retry_request
    assert sh.selected_version == 0x0304 and sh.key_share_group == 29 and sh.key_share is None


def test_openssl_accepts_a_multi_record_hello(
    ec_identity: tuple[ec.EllipticCurvePrivateKey, x509.Certificate],
) -> None:
    spec = ClientHelloSpec(
        suites=(0x1301,),
        random=os.urandom(32),
        supported_versions=(0x0304,),
        groups=(29,),
        signature_algorithms=(0x0403,),
        key_shares=(make_key_share(29),),
        pad_to=3000,
    )
    wire = build_client_hello(spec, max_fragment=256)
    assert len(parse_records(wire)[0]) > 10
    sh = parse_server_hello(server_flight(ec_identity, wire)[0].body)
    assert sh.selected_version == 0x0304 and sh.key_share_group == 29


def test_openssl_accepts_sslv2_compatible_hello(
    rsa_identity: tuple[rsa.RSAPrivateKey, x509.Certificate], tmp_path: Path
) -> None:
    """RFC 5246 §E.2: TLS suites as 0x00XXXX kinds; OpenSSL answers with a TLS ServerHello.

    Through the stdlib ``ssl`` module: the OpenSSL 4 bundled with pyOpenSSL here answers
    "wrong version number" to any SSLv2-format hello, while the 3.0 series still takes it.
    """
    key, cert = rsa_identity
    pem = tmp_path / "identity.pem"
    pem.write_bytes(
        cert.public_bytes(Encoding.PEM)
        + key.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption())
    )
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(pem)
    ctx.maximum_version = ssl.TLSVersion.TLSv1_2
    ctx.set_ciphers("AES128-GCM-SHA256:AES128-SHA:@SECLEVEL=0")
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    server = ctx.wrap_bio(incoming, outgoing, server_side=True)
    incoming.write(build_sslv2_client_hello((0x00009C, 0x00002F, 0x0000FF), os.urandom(16), 0x0303))
    try:
        server.do_handshake()
    except ssl.SSLWantReadError:
        pass
    except ssl.SSLError as exc:
        pytest.fail(f"{ssl.OPENSSL_VERSION} refuses SSLv2-format hellos: {exc}", pytrace=False)
    recs, _ = parse_records(outgoing.read())
    msgs = Defragmenter().feed(recs[0].fragment)
    sh = parse_server_hello(msgs[0].body)
    assert sh.selected_version == 0x0303 and sh.cipher_suite in (0x009C, 0x002F)
    assert sh.renegotiation_info  # the SCSV kind 0x0000FF was understood (RFC 5746 §3.6)
