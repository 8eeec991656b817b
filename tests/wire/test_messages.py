"""Server messages: seed vectors from real traces, builder round trips, SSLv2, DN strings."""

from __future__ import annotations

import pytest
from cryptography import x509
from cryptography.x509.oid import NameOID, ObjectIdentifier
from hypothesis import given, settings
from hypothesis import strategies as st

from probe.wire import extensions as ext
from probe.wire.errors import DecodeError
from probe.wire.extensions import Extension, ExtensionType, KeyShareEntry
from probe.wire.handshake import HandshakeType, parse_handshake
from probe.wire.messages import (
    HRR_RANDOM,
    CertificateRequest,
    SSLv2ErrorCode,
    SSLv2ErrorMessage,
    SSLv2ServerHello,
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
from probe.wire.record import ContentType, parse_record


def hexbytes(s: str) -> bytes:
    return bytes.fromhex("".join(s.split()))


def body_of(message: bytes, msg_type: int) -> bytes:
    got = parse_handshake(message)
    assert got is not None
    msg, rest = got
    assert rest == b"" and msg.msg_type == msg_type
    return msg.body


# Transfer CFT trace (seeds/004, CTX=200003, lines 183-185): TLS 1.0 ServerHello record, empty
# session id, TLS_RSA_WITH_AES_128_CBC_SHA, no extensions. Self-consistent: record length
# 0x2A = 4 + 0x26 and 0x26 = 2 + 32 + 1 + 2 + 1.
CFT_SERVER_HELLO_RECORD = hexbytes(
    "16030100 2A020000 2603014D AECAB899 391A07A0 9B9E37A8 22A2704C CCD0179E"
    " 69124259 8D79970A AC49B900 002F00"
)

# z/OS System SSL trace (seeds/003, "SERVER-HELLO message", lines 253-258): TLS 1.1,
# a 32-byte session id, TLS_RSA_WITH_3DES_EDE_CBC_SHA, and an empty renegotiation_info
# answering the client's SCSV. Self-consistent: 0x4D = 2 + 32 + (1 + 32) + 2 + 1 + (2 + 5), and
# the session id embeds C0A8145B 040A = 192.168.20.91 port 1034, the peer the trace names.
ZOS_SERVER_HELLO = hexbytes(
    "0200004D 03025089 8BF6AEF4 5983AEB4 77368513 4676E66A 2AF41E41 5FFC9CFB"
    " 50720BF7 45542000 050022C0 A8145B04 0A000000 00000000 00000000 00000050"
    " 898BF600 0000A000 0A000005 FF010001 00"
)

# The issuer DN of the z/OS server certificate (seeds/003, lines 298-303, the undamaged
# second dump; the first dump at line 228 has OCR damage "A030201"). Self-consistent:
# 0x3D = 13 + 18 + 30 and "MVS1CA.LABS.IBM.COM" is 0x13 bytes.
ZOS_CA_DN = hexbytes(
    "303D310B 30090603 55040613 02555331 10300E06 0355040A 13074D56 53312043"
    " 41311C30 1A060355 04031313 4D565331 43412E4C 4142532E 49424D2E 434F4D"
)


# --- Seeds ---------------------------------------------------------------------------------------


def test_transfer_cft_server_hello_seed() -> None:
    got = parse_record(CFT_SERVER_HELLO_RECORD)
    assert got is not None
    rec, rest = got
    assert rest == b"" and rec.content_type == ContentType.HANDSHAKE and rec.version == 0x0301
    sh = parse_server_hello(body_of(rec.fragment, HandshakeType.SERVER_HELLO))
    assert sh.legacy_version == 0x0301 == sh.selected_version
    assert sh.random[:4] == hexbytes("4DAECAB8")
    assert sh.session_id == b""
    assert sh.cipher_suite == 0x002F and sh.compression == 0
    assert sh.extensions == () and not sh.extensions_present
    assert not sh.is_hello_retry_request and not sh.renegotiation_info
    assert sh.key_share_group is None and sh.downgrade_sentinel is None
    # Rebuilt byte for byte with the builder.
    rebuilt = build_server_hello(
        cipher_suite=0x002F, version=0x0301, random=sh.random, extensions=None
    )
    assert rebuilt == rec.fragment


def test_zos_server_hello_seed() -> None:
    sh = parse_server_hello(body_of(ZOS_SERVER_HELLO, HandshakeType.SERVER_HELLO))
    assert sh.legacy_version == 0x0302 == sh.selected_version
    assert sh.session_id == hexbytes(
        "00 050022C0 A8145B04 0A000000 00000000 00000000 00000050 898BF600 0000A0"
    )
    assert sh.cipher_suite == 0x000A and sh.compression == 0
    assert sh.extensions == (Extension(type=ExtensionType.renegotiation_info, data=b"\x00"),)
    assert sh.renegotiation_info and not sh.extended_master_secret


def test_zos_ca_dn() -> None:
    assert decode_dn(ZOS_CA_DN) == "CN=MVS1CA.LABS.IBM.COM,O=MVS1 CA,C=US"
    if hasattr(x509.Name, "from_bytes"):  # newer cryptography has a DER Name loader
        assert x509.Name.from_bytes(ZOS_CA_DN).rfc4514_string() == decode_dn(ZOS_CA_DN)


# --- ServerHello --------------------------------------------------------------------------------


@settings(max_examples=100, deadline=None)
@given(
    version=st.integers(0, 0xFFFF),
    random=st.binary(min_size=32, max_size=32),
    session_id=st.binary(max_size=32),
    suite=st.integers(0, 0xFFFF),
    compression=st.integers(0, 255),
    exts=st.none()
    | st.lists(
        st.builds(
            Extension,
            type=st.integers(0, 0xFFFF).filter(lambda t: t not in (23, 43, 51, 65281)),
            data=st.binary(max_size=50),
        ),
        unique_by=lambda e: e.type,
        max_size=5,
    ).map(tuple),
)
def test_server_hello_round_trip(
    version: int,
    random: bytes,
    session_id: bytes,
    suite: int,
    compression: int,
    exts: tuple[Extension, ...] | None,
) -> None:
    msg = build_server_hello(
        cipher_suite=suite,
        version=version,
        random=random,
        session_id=session_id,
        compression=compression,
        extensions=exts,
    )
    sh = parse_server_hello(body_of(msg, HandshakeType.SERVER_HELLO))
    assert (sh.legacy_version, sh.random, sh.session_id) == (version, random, session_id)
    assert (sh.cipher_suite, sh.compression) == (suite, compression)
    assert sh.extensions == (exts or ()) and sh.extensions_present == (exts is not None)
    assert sh.selected_version == version


def test_tls13_server_hello_and_hrr() -> None:
    share = KeyShareEntry(group=29, key_exchange=bytes(32))
    msg = build_server_hello(
        cipher_suite=0x1301,
        random=bytes(32),
        extensions=(ext.supported_versions_server(0x0304), ext.key_share_server(share)),
    )
    sh = parse_server_hello(msg[4:])
    assert sh.selected_version == 0x0304 and sh.legacy_version == 0x0303
    assert sh.key_share == share and sh.key_share_group == 29
    assert not sh.is_hello_retry_request

    hrr = build_server_hello(
        cipher_suite=0x1301,
        random=HRR_RANDOM,
        extensions=(ext.supported_versions_server(0x0304), ext.key_share_hrr(23)),
    )
    sh = parse_server_hello(hrr[4:])
    assert sh.is_hello_retry_request and sh.key_share_group == 23 and sh.key_share is None
    assert sh.downgrade_sentinel is None


@pytest.mark.parametrize(
    "tail, sentinel", [(b"DOWNGRD\x01", "tls12"), (b"DOWNGRD\x00", "tls11"), (bytes(8), None)]
)
def test_downgrade_sentinel(tail: bytes, sentinel: str | None) -> None:
    msg = build_server_hello(cipher_suite=0xC02F, random=bytes(24) + tail)
    assert parse_server_hello(msg[4:]).downgrade_sentinel == sentinel


@pytest.mark.parametrize(
    "exts",
    [
        (ext.supported_versions_client((0x0304,)),),  # client form in a ServerHello
        (Extension(type=51, data=hexbytes("001d")),),  # HRR form without the HRR random
        (Extension(type=65281, data=b""),),  # renegotiation_info without its length byte
        (Extension(type=23, data=b"\x00"),),  # extended_master_secret with a body
    ],
)
def test_malformed_server_hello_extensions(exts: tuple[Extension, ...]) -> None:
    with pytest.raises(DecodeError):
        parse_server_hello(build_server_hello(cipher_suite=0x1301, extensions=exts)[4:])


def test_server_hello_refuses_trailing_bytes_and_long_session_ids() -> None:
    good = build_server_hello(cipher_suite=0x2F)[4:]
    with pytest.raises(DecodeError):
        parse_server_hello(good + b"\x00")
    long_sid = hexbytes("0303") + bytes(32) + b"\x21" + bytes(33) + hexbytes("002f 00")
    with pytest.raises(DecodeError):
        parse_server_hello(long_sid)


# --- Certificate --------------------------------------------------------------------------------

ders = st.lists(st.binary(min_size=1, max_size=2000), max_size=6).map(tuple)


@settings(max_examples=60, deadline=None)
@given(certs=ders, tls13=st.booleans(), context=st.binary(max_size=10))
def test_certificate_round_trip(certs: tuple[bytes, ...], tls13: bool, context: bytes) -> None:
    entry_exts = tuple((Extension(type=5, data=bytes([i])),) for i in range(len(certs)))
    msg = build_certificate(
        certs, tls13=tls13, request_context=context, entry_extensions=entry_exts
    )
    got = parse_certificate(body_of(msg, HandshakeType.CERTIFICATE), tls13=tls13)
    assert got.certificates == certs
    assert got.request_context == (context if tls13 else b"")
    assert got.entry_extensions == (entry_exts if tls13 else tuple(() for _ in certs))


def test_certificate_limits() -> None:
    msg = build_certificate((b"\x30",) * 5)
    assert len(parse_certificate(msg[4:], tls13=False, max_certs=5).certificates) == 5
    with pytest.raises(DecodeError, match="more than 4"):
        parse_certificate(msg[4:], tls13=False, max_certs=4)
    with pytest.raises(DecodeError):
        parse_certificate(hexbytes("000003 000000"), tls13=False)  # empty ASN.1Cert
    with pytest.raises(DecodeError):  # TLS 1.2 bytes read as TLS 1.3 (no context byte)
        parse_certificate(build_certificate((b"\x30\x00",))[4:], tls13=True)


# --- CertificateRequest -------------------------------------------------------------------------


@pytest.mark.parametrize("version", [0x0300, 0x0301, 0x0302, 0x0303])
def test_certificate_request_round_trip_tls12_and_older(version: int) -> None:
    names = (ZOS_CA_DN, ZOS_CA_DN[:-1] + b"N")
    msg = build_certificate_request(
        version=version,
        certificate_types=(1, 2, 64),
        signature_algorithms=(0x0401, 0x0403),
        ca_names=names,
    )
    cr = parse_certificate_request(body_of(msg, HandshakeType.CERTIFICATE_REQUEST), False, version)
    assert cr.certificate_types == (1, 2, 64)
    assert cr.signature_algorithms == ((0x0401, 0x0403) if version >= 0x0303 else ())
    assert cr.ca_names == names
    assert cr.ca_names_bytes == sum(2 + len(n) for n in names)
    assert not cr.tls13 and cr.request_context == b""
    assert decode_dn(cr.ca_names[0]) == "CN=MVS1CA.LABS.IBM.COM,O=MVS1 CA,C=US"


def test_certificate_request_empty_ca_list_is_legal() -> None:
    # Transfer CFT fails on this (seeds/004 "No matching client certificate"), but the message
    # is well-formed: RFC 5246 §7.4.4 lets an empty list mean "any CA".
    cr = parse_certificate_request(build_certificate_request()[4:], tls13=False)
    assert cr.ca_names == () and cr.ca_names_bytes == 0


def test_certificate_request_many_cas_counts_bytes() -> None:
    # The Transfer CFT RRUSIZE case: a DN list past 32750 bytes.
    names = tuple(ZOS_CA_DN[:-2] + i.to_bytes(2, "big") for i in range(600))
    msg = build_certificate_request(ca_names=names)
    cr = parse_certificate_request(msg[4:], tls13=False)
    assert len(cr.ca_names) == 600 and cr.ca_names_bytes == 600 * (2 + len(ZOS_CA_DN)) > 32750


def test_certificate_request_tls13() -> None:
    msg = build_certificate_request(
        tls13=True, signature_algorithms=(0x0804,), ca_names=(ZOS_CA_DN,), request_context=b"ab"
    )
    cr = parse_certificate_request(msg[4:], tls13=True)
    assert cr == CertificateRequest(
        certificate_types=(),
        signature_algorithms=(0x0804,),
        ca_names=(ZOS_CA_DN,),
        ca_names_bytes=2 + len(ZOS_CA_DN),
        request_context=b"ab",
        tls13=True,
        extensions=cr.extensions,
    )
    assert [e.type for e in cr.extensions] == [13, 47]


@pytest.mark.parametrize(
    "body, tls13",
    [
        (hexbytes("00 0000 0000"), False),  # no certificate types
        (hexbytes("01 01 0000"), False),  # no signature algorithms in TLS 1.2 (<2..2^16-2>)
        (hexbytes("01 01 0002 0401 0002 0000"), False),  # empty DN
        (hexbytes("01 01 0002 0401 0000 00"), False),  # trailing byte
        (hexbytes("00 0000"), True),  # TLS 1.3 empty extension block (<2..2^16-1>)
        (hexbytes("00 0004 000d 0000"), True),  # empty signature_algorithms list
    ],
)
def test_malformed_certificate_requests(body: bytes, tls13: bool) -> None:
    with pytest.raises(DecodeError):
        parse_certificate_request(body, tls13)


# --- ServerKeyExchange / ServerHelloDone --------------------------------------------------------


def test_server_key_exchange_ecdhe_and_dhe() -> None:
    msg = build_ecdhe_server_key_exchange(29, bytes(32), signature=hexbytes("0403 0002 3000"))
    ske = parse_server_key_exchange(body_of(msg, HandshakeType.SERVER_KEY_EXCHANGE), "ECDHE")
    assert (ske.kind, ske.group, ske.curve_type, ske.public_key) == ("ecdhe", 29, 3, bytes(32))

    p = (1 << 1023) | 0x17  # a 1024-bit number: only the length is read
    msg = build_dhe_server_key_exchange(p, 2, b"\x05" * 128)
    ske = parse_server_key_exchange(msg[4:], "DHE")
    assert (ske.kind, ske.dh_prime_bits, ske.group) == ("dhe", 1024, None)

    explicit = parse_server_key_exchange(b"\x01" + bytes(40), "ecdhe")
    assert explicit.curve_type == 1 and explicit.group is None
    assert parse_server_key_exchange(b"anything", "RSA").kind == "unknown"
    with pytest.raises(DecodeError):
        parse_server_key_exchange(hexbytes("03 001d 00"), "ECDHE")  # empty point
    with pytest.raises(DecodeError):
        parse_server_key_exchange(hexbytes("0000 0001 02 0001 05"), "DHE")  # empty dh_p


def test_server_hello_done() -> None:
    parse_server_hello_done(body_of(build_server_hello_done(), HandshakeType.SERVER_HELLO_DONE))
    with pytest.raises(DecodeError):
        parse_server_hello_done(b"\x00")


# --- SSLv2 --------------------------------------------------------------------------------------


def test_sslv2_server_hello_round_trip() -> None:
    rec = build_sslv2_server_hello(
        certificate=b"\x30\x03\x02\x01\x00",
        cipher_kinds=(0x010080, 0x0700C0),
        connection_id=bytes(16),
    )
    got = parse_sslv2_record(rec + b"more")
    assert got is not None
    msg, rest = got
    assert rest == b"more"
    hello = parse_sslv2_server_hello(msg)
    assert hello == SSLv2ServerHello(
        session_id_hit=0,
        certificate_type=1,
        version=2,
        certificate=b"\x30\x03\x02\x01\x00",
        cipher_kinds=(0x010080, 0x0700C0),
        connection_id=bytes(16),
    )


def test_sslv2_error_is_a_value() -> None:
    got = parse_sslv2_record(build_sslv2_error(SSLv2ErrorCode.NO_CIPHER_ERROR))
    assert got is not None
    assert parse_sslv2_server_hello(got[0]) == SSLv2ErrorMessage(code=1)


def test_sslv2_three_byte_header_strips_padding() -> None:
    assert parse_sslv2_record(hexbytes("000a 03") + bytes(range(10))) == (bytes(range(7)), b"")


@pytest.mark.parametrize("prefix", [b"", b"\x80", b"\x80\x10\x04", b"\x00", b"\x00\x08"])
def test_sslv2_record_incomplete(prefix: bytes) -> None:
    assert parse_sslv2_record(prefix) is None


@pytest.mark.parametrize(
    "buf",
    [
        hexbytes("15030300 020228"),  # a TLS alert record
        hexbytes("1603"),  # a TLS handshake header, seen early
        b"220 ftp.example.com ready\r\n",  # a banner
        b"HTTP/1.1 400",
        hexbytes("8000"),  # empty record
        hexbytes("0004 05 00000000"),  # padding longer than the record
    ],
)
def test_sslv2_record_refuses_non_sslv2(buf: bytes) -> None:
    with pytest.raises(DecodeError):
        parse_sslv2_record(buf)


@pytest.mark.parametrize(
    "msg",
    [
        b"",
        b"\x05",  # SERVER-VERIFY cannot answer a CLIENT-HELLO
        hexbytes("00 0001 00"),  # ERROR with a trailing byte
        hexbytes("04 00 01 0002 0000 0002 0000 00"),  # cipher specs not a multiple of 3
        hexbytes("04 00 01 0002 0005 0000 0000"),  # certificate longer than the message
    ],
)
def test_malformed_sslv2_server_hello(msg: bytes) -> None:
    with pytest.raises(DecodeError):
        parse_sslv2_server_hello(msg)


# --- Distinguished names ------------------------------------------------------------------------

_ATTRS = [
    NameOID.COMMON_NAME,
    NameOID.ORGANIZATION_NAME,
    NameOID.ORGANIZATIONAL_UNIT_NAME,
    NameOID.LOCALITY_NAME,
    NameOID.STATE_OR_PROVINCE_NAME,
    NameOID.STREET_ADDRESS,
    NameOID.DOMAIN_COMPONENT,
    NameOID.USER_ID,
    ObjectIdentifier("1.3.6.1.4.1.99999.7"),
]
# At most 16 characters: cryptography caps a CN at 64 bytes of UTF-8 (RFC 5280 ub-common-name).
_values = st.text(
    alphabet=st.characters(codec="utf-8", exclude_categories=("Cs", "Cc")), min_size=1, max_size=16
)


@settings(max_examples=150, deadline=None)
@given(
    attrs=st.lists(st.tuples(st.sampled_from(_ATTRS), _values), max_size=6),
    country=st.none() | st.sampled_from(["US", "FR", "DE"]),
)
def test_decode_dn_agrees_with_cryptography(
    attrs: list[tuple[ObjectIdentifier, str]], country: str | None
) -> None:
    rdns = [x509.NameAttribute(oid, value) for oid, value in attrs]
    if country is not None:
        rdns.insert(0, x509.NameAttribute(NameOID.COUNTRY_NAME, country))
    name = x509.Name(rdns)
    assert decode_dn(name.public_bytes()) == name.rfc4514_string()


def test_decode_dn_string_types_and_escapes() -> None:
    def atav(oid: bytes, tag: int, value: bytes) -> bytes:
        inner = bytes([6, len(oid)]) + oid + bytes([tag, len(value)]) + value
        return bytes([0x30, len(inner)]) + inner

    cn = bytes.fromhex("550403")
    o = bytes.fromhex("55040a")
    email = bytes.fromhex("2a864886f70d010901")
    rdn1 = atav(cn, 0x1E, "Zürich".encode("utf-16-be"))  # BMPString
    rdn2 = atav(o, 0x14, b"Caf\xe9, Inc")  # T61 read as Latin-1; the comma escaped
    rdn3 = atav(email, 0x16, b"a@b.c")  # IA5String
    multi = atav(cn, 0x0C, b"x") + atav(o, 0x13, b"#y ")  # multi-valued RDN
    odd = atav(bytes.fromhex("2a03"), 0x04, b"\x01\x02")  # OCTET STRING: RFC 4514 #hex
    ctrl = atav(cn, 0x0C, b"evil\nline")
    sets = b"".join(bytes([0x31, len(x)]) + x for x in (rdn1, rdn2, rdn3, multi, odd, ctrl))
    dn = bytes([0x30, 0x81, len(sets)]) + sets
    assert decode_dn(dn) == (
        "CN=evil\\0Aline,1.2.3=#04020102,CN=x+O=\\#y\\ ,emailAddress=a@b.c,"
        "O=Caf\u00e9\\, Inc,CN=Z\u00fcrich"
    )
    assert decode_dn(hexbytes("3000")) == ""


@pytest.mark.parametrize(
    "der",
    [
        b"",
        hexbytes("3100"),  # a SET where the Name SEQUENCE should be
        hexbytes("3000 00"),  # trailing byte
        hexbytes("3080 0000"),  # BER indefinite length
        hexbytes("3002 3100"),  # empty RDN
        hexbytes("3009 3107 3005 0600 0c01 61"),  # empty OID
        hexbytes("300a 3108 3006 0601 80 0c01 61"),  # OID ending mid-arc
        hexbytes("300b 3109 3007 0603 550403 0c00 00"),  # extra element in the ATAV
        hexbytes("300b 3109 3007 0603 550403 1e01 00"),  # BMPString of odd length
        hexbytes("300b 3109 3007 0603 550403 0c01 ff"),  # invalid UTF-8
        hexbytes("3085 0000000000"),  # length of 5 bytes
        hexbytes("301f 311d 301b 0616") + b"\x81" * 21 + b"\x01" + hexbytes("0c01 61"),
    ],
)
def test_decode_dn_malformed(der: bytes) -> None:
    with pytest.raises(DecodeError):
        decode_dn(der)
