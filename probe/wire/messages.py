"""Server handshake messages: parsers, small builders for a scripted lab, SSLv2, DN strings.

Theory of operation
-------------------
Parsers take a handshake *body* (after the 4-byte header that :mod:`.handshake` strips) and
return a frozen dataclass or raise :class:`DecodeError`. They enforce the vector bounds of the
RFC presentation language and nothing about policy: an empty CA list is legal and reported as
such (Transfer CFT fails on it, but that is a finding, not a decode error), a TLS 1.3
CertificateRequest without signature_algorithms is reported with an empty tuple so the
classifier can name the violation instead of drowning it in a generic decode error.

Builders (``build_*``) return whole handshake messages (header included) from plain values;
wrap them with :func:`.record.build_records` to put them on the wire.

SSLv2 (draft-hickman-netscape-ssl-00) matters only to detect servers that still speak it: a
probe sends an SSLv2 CLIENT-HELLO and reads one record back. :func:`parse_sslv2_record`
refuses a TLS record header and ASCII banners early, like :func:`.record.parse_record` does
for TLS, so a caller never waits for a length that text happened to spell.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum

from . import extensions as ext
from .buffer import Reader, u8, u16, u24
from .errors import DecodeError
from .extensions import Extension, ExtensionType, KeyShareEntry
from .handshake import HandshakeType

# RFC 8446 §4.1.3: a ServerHello with this random is a HelloRetryRequest (SHA-256 of
# "HelloRetryRequest").
HRR_RANDOM = bytes.fromhex("CF21AD74E59A6111BE1D8C021E65B891C2A211167ABB8C5E079E09E2C8A8339C")

# RFC 8446 §4.1.3: a TLS 1.3 server negotiating an older version puts these in the last 8
# bytes of its random, so a client that offered 1.3 can detect a downgrade.
_DOWNGRADE_SENTINELS = {
    b"DOWNGRD\x01": "tls12",
    b"DOWNGRD\x00": "tls11",
}


def _message(msg_type: int, body: bytes) -> bytes:
    if len(body) >= 1 << 24:
        raise ValueError(f"handshake body of {len(body)} bytes does not fit u24")
    return u8(msg_type) + u24(len(body)) + body


def _session_id(r: Reader, what: str) -> bytes:
    sid = r.vector(1)
    if len(sid) > 32:  # SessionID session_id<0..32> (RFC 5246 §7.4.1.2)
        raise DecodeError(f"{what}: session_id of {len(sid)} bytes (max 32)")
    return sid


# --- ServerHello --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class ServerHello:
    legacy_version: int
    random: bytes
    session_id: bytes
    cipher_suite: int
    compression: int
    extensions: tuple[Extension, ...]
    extensions_present: bool  # False: SSL 3.0-style hello that ends after compression_method
    selected_version: int  # supported_versions if present (RFC 8446 §4.2.1), else legacy_version
    is_hello_retry_request: bool
    key_share_group: int | None  # server key_share group, or the HRR's selected group
    key_share: KeyShareEntry | None  # the server's entry (None in an HRR)
    renegotiation_info: bool  # RFC 5746 §3.6: the server supports secure renegotiation
    extended_master_secret: bool
    downgrade_sentinel: str | None  # "tls12" / "tls11" (RFC 8446 §4.1.3), else None

    def extension(self, ext_type: int) -> Extension | None:
        return ext.find_extension(self.extensions, ext_type)


def parse_server_hello(body: bytes) -> ServerHello:
    """A ServerHello or HelloRetryRequest body (RFC 5246 §7.4.1.3, RFC 8446 §4.1.3)."""
    r = Reader(body, "server_hello")
    legacy_version = r.u16()
    random = r.bytes(32)
    session_id = _session_id(r, "server_hello")
    cipher_suite = r.u16()
    compression = r.u8()
    present = not r.at_end()
    exts = ext.parse_extensions(r.vector(2)) if present else ()
    r.expect_end()
    hrr = random == HRR_RANDOM
    by_type = {e.type: e.data for e in exts}

    selected = legacy_version
    if (sv := by_type.get(ExtensionType.supported_versions)) is not None:
        selected = ext.decode_supported_versions_server(sv)

    group: int | None = None
    share: KeyShareEntry | None = None
    if (ks := by_type.get(ExtensionType.key_share)) is not None:
        if hrr:
            group = ext.decode_key_share_hrr(ks)
        else:
            share = ext.decode_key_share_server(ks)
            group = share.group

    reneg = by_type.get(ExtensionType.renegotiation_info)
    if reneg is not None:
        ext.decode_renegotiation_info(reneg)
    ems = by_type.get(ExtensionType.extended_master_secret)
    if ems:
        raise DecodeError("extended_master_secret: body must be empty (RFC 7627 §5.1)")

    return ServerHello(
        legacy_version=legacy_version,
        random=random,
        session_id=session_id,
        cipher_suite=cipher_suite,
        compression=compression,
        extensions=exts,
        extensions_present=present,
        selected_version=selected,
        is_hello_retry_request=hrr,
        key_share_group=group,
        key_share=share,
        renegotiation_info=reneg is not None,
        extended_master_secret=ems is not None,
        # An HRR random is a constant, not a downgrade signal.
        downgrade_sentinel=None if hrr else _DOWNGRADE_SENTINELS.get(random[24:]),
    )


def build_server_hello(
    *,
    cipher_suite: int,
    version: int = 0x0303,
    random: bytes = bytes(32),
    session_id: bytes = b"",
    compression: int = 0,
    extensions: tuple[Extension, ...] | None = (),
) -> bytes:
    """A ServerHello message; ``extensions=None`` omits the block (SSL 3.0 style).

    A HelloRetryRequest is ``random=HRR_RANDOM`` with supported_versions_server(0x0304) and
    key_share_hrr(group) (RFC 8446 §4.1.4).
    """
    if len(random) != 32:
        raise ValueError(f"ServerHello random must be 32 bytes, got {len(random)}")
    body = (
        u16(version)
        + random
        + ext.encode_vector(session_id, 1, "session_id")
        + u16(cipher_suite)
        + u8(compression)
    )
    if extensions is not None:
        body += ext.build_extensions(extensions)
    return _message(HandshakeType.SERVER_HELLO, body)


# --- Certificate --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class CertificateMsg:
    request_context: bytes  # TLS 1.3 only; b"" otherwise
    certificates: tuple[bytes, ...]  # DER, leaf first as sent
    entry_extensions: tuple[tuple[Extension, ...], ...]  # TLS 1.3 per-certificate; () each else


def parse_certificate(body: bytes, tls13: bool, max_certs: int = 64) -> CertificateMsg:
    """RFC 5246 §7.4.2 / RFC 8446 §4.4.2. More than ``max_certs`` entries is a DecodeError."""
    r = Reader(body, "certificate")
    context = r.vector(1) if tls13 else b""
    lst = r.sub(3, "certificate_list")
    r.expect_end()
    certs: list[bytes] = []
    entry_exts: list[tuple[Extension, ...]] = []
    while not lst.at_end():
        if len(certs) >= max_certs:
            raise DecodeError(f"certificate: more than {max_certs} certificates")
        der = lst.vector(3)
        if not der:
            raise DecodeError("certificate: empty ASN.1Cert")  # opaque ASN.1Cert<1..2^24-1>
        certs.append(der)
        entry_exts.append(ext.parse_extensions(lst.vector(2)) if tls13 else ())
    return CertificateMsg(
        request_context=context, certificates=tuple(certs), entry_extensions=tuple(entry_exts)
    )


def build_certificate(
    certificates: tuple[bytes, ...],
    *,
    tls13: bool = False,
    request_context: bytes = b"",
    entry_extensions: tuple[tuple[Extension, ...], ...] | None = None,
) -> bytes:
    """A Certificate message; TLS 1.3 entries get empty extension blocks unless given."""
    parts: list[bytes] = []  # joined once: a long chain must not cost quadratic copying
    for i, der in enumerate(certificates):
        parts.append(ext.encode_vector(der, 3, "certificate"))
        if tls13:
            exts = entry_extensions[i] if entry_extensions is not None else ()
            parts.append(ext.build_extensions(exts))
    body = ext.encode_vector(b"".join(parts), 3, "certificate_list")
    if tls13:
        body = ext.encode_vector(request_context, 1, "certificate_request_context") + body
    return _message(HandshakeType.CERTIFICATE, body)


# --- CertificateRequest -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class CertificateRequest:
    certificate_types: tuple[int, ...]  # TLS <= 1.2; () in TLS 1.3
    signature_algorithms: tuple[int, ...]  # () before TLS 1.2 or when a 1.3 server omits it
    ca_names: tuple[bytes, ...]  # DER DistinguishedName each; () = "any CA" (RFC 5246 §7.4.4)
    # The length of the DN list as sent: the figure Transfer CFT compares with RRUSIZE
    # (max 32750) before it fails with TLS_ERR_FRAGMENT_CONSISTANCY.
    ca_names_bytes: int
    request_context: bytes  # TLS 1.3 only
    tls13: bool
    extensions: tuple[Extension, ...] = ()  # TLS 1.3 only


def parse_certificate_request(
    body: bytes, tls13: bool, version: int = 0x0303
) -> CertificateRequest:
    """RFC 5246 §7.4.4 (TLS 1.2), RFC 4346 §7.4.4 / SSL 3.0 §5.6.4 (no signature algorithms
    before TLS 1.2), RFC 8446 §4.3.2 (TLS 1.3: context + extensions)."""
    r = Reader(body, "certificate_request")
    if tls13:
        context = r.vector(1)
        raw_exts = r.vector(2)
        r.expect_end()
        if len(raw_exts) < 2:  # Extension extensions<2..2^16-1>
            raise DecodeError("certificate_request: empty extension block")
        exts = ext.parse_extensions(raw_exts)
        by_type = {e.type: e.data for e in exts}
        sigalgs: tuple[int, ...] = ()
        if (sa := by_type.get(ExtensionType.signature_algorithms)) is not None:
            sigalgs = ext.decode_u16_list(sa, "signature_algorithms")
        names: tuple[bytes, ...] = ()
        names_len = 0
        if (ca := by_type.get(ExtensionType.certificate_authorities)) is not None:
            names, names_len = ext.decode_certificate_authorities(ca)
        return CertificateRequest(
            certificate_types=(),
            signature_algorithms=sigalgs,
            ca_names=names,
            ca_names_bytes=names_len,
            request_context=context,
            tls13=True,
            extensions=exts,
        )
    types = ext.read_ints(r, 1, 1, "certificate_types", 1)
    sigalgs = ()
    if version >= 0x0303:
        sigalgs = ext.read_ints(r, 2, 2, "supported_signature_algorithms", 2)
    raw_names = r.vector(2)
    r.expect_end()
    names = ext.split_opaque_list(raw_names, 2, "certificate_authorities")
    return CertificateRequest(
        certificate_types=types,
        signature_algorithms=sigalgs,
        ca_names=names,
        ca_names_bytes=len(raw_names),
        request_context=b"",
        tls13=False,
    )


def build_certificate_request(
    *,
    tls13: bool = False,
    version: int = 0x0303,
    certificate_types: tuple[int, ...] = (1, 64),  # rsa_sign, ecdsa_sign
    signature_algorithms: tuple[int, ...] = (0x0804, 0x0403, 0x0401),
    ca_names: tuple[bytes, ...] = (),
    request_context: bytes = b"",
) -> bytes:
    """A CertificateRequest; TLS 1.3 carries names in certificate_authorities when given."""
    if tls13:
        exts = [ext.signature_algorithms(signature_algorithms)]
        if ca_names:
            exts.append(ext.certificate_authorities(ca_names))
        body = ext.encode_vector(request_context, 1, "context") + ext.build_extensions(exts)
    else:
        body = ext.encode_ints(certificate_types, 1, 1, "certificate_types")
        if version >= 0x0303:
            body += ext.encode_ints(signature_algorithms, 2, 2, "signature_algorithms")
        names = b"".join(ext.encode_vector(n, 2, "distinguished_name") for n in ca_names)
        body += ext.encode_vector(names, 2, "certificate_authorities")
    return _message(HandshakeType.CERTIFICATE_REQUEST, body)


# --- ServerKeyExchange, ServerHelloDone ---------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class ServerKeyExchange:
    kind: str  # "ecdhe" | "dhe" | "unknown"
    group: int | None  # named curve (ECDHE with curve_type 3); None otherwise
    dh_prime_bits: int | None  # DHE: bit length of dh_p
    curve_type: int | None = None  # ECDHE: 3 named_curve; 1, 2 explicit (deprecated)
    public_key: bytes = b""  # ECDHE point or DHE dh_Ys


def parse_server_key_exchange(body: bytes, kx: str) -> ServerKeyExchange:
    """The parameters of a ServerKeyExchange; ``kx`` ("ECDHE" / "DHE") comes from the suite.

    Only the parameters are read: the signature after them depends on the version and on
    whether the suite is anonymous, and checking it is OpenSSL's job. Explicit curves (types
    1, 2; RFC 8422 §5.4 forbids them) are reported by type without reading their parameters.
    """
    kind = kx.lower()
    r = Reader(body, "server_key_exchange")
    if kind == "ecdhe":
        # RFC 8422 §5.4: ServerECDHParams { ECParameters curve_params; ECPoint public; }
        curve_type = r.u8()
        if curve_type != 3:
            return ServerKeyExchange(
                kind="ecdhe", group=None, dh_prime_bits=None, curve_type=curve_type
            )
        group = r.u16()
        point = r.vector(1)
        if not point:
            raise DecodeError("server_key_exchange: empty ECPoint")  # point<1..2^8-1>
        return ServerKeyExchange(
            kind="ecdhe", group=group, dh_prime_bits=None, curve_type=3, public_key=point
        )
    if kind == "dhe":
        # RFC 5246 §7.4.3: ServerDHParams { dh_p<1..2^16-1>; dh_g<1..2^16-1>; dh_Ys<1..2^16-1> }
        p, g, ys = r.vector(2), r.vector(2), r.vector(2)
        if not (p and g and ys):
            raise DecodeError("server_key_exchange: empty DH parameter")
        return ServerKeyExchange(
            kind="dhe",
            group=None,
            dh_prime_bits=int.from_bytes(p, "big").bit_length(),
            public_key=ys,
        )
    return ServerKeyExchange(kind="unknown", group=None, dh_prime_bits=None)


def build_ecdhe_server_key_exchange(group: int, public_key: bytes, signature: bytes = b"") -> bytes:
    """curve_type 3 + group + point + an already-encoded signature (opaque here)."""
    body = u8(3) + u16(group) + ext.encode_vector(public_key, 1, "ECPoint") + signature
    return _message(HandshakeType.SERVER_KEY_EXCHANGE, body)


def build_dhe_server_key_exchange(
    p: int, g: int, public_key: bytes, signature: bytes = b""
) -> bytes:
    def big(n: int) -> bytes:
        return ext.encode_vector(n.to_bytes(max(1, (n.bit_length() + 7) // 8), "big"), 2, "dh")

    body = big(p) + big(g) + ext.encode_vector(public_key, 2, "dh_Ys") + signature
    return _message(HandshakeType.SERVER_KEY_EXCHANGE, body)


def parse_server_hello_done(body: bytes) -> None:
    """RFC 5246 §7.4.5: the body is empty."""
    if body:
        raise DecodeError(f"server_hello_done: {len(body)} bytes, expected none")


def build_server_hello_done() -> bytes:
    return _message(HandshakeType.SERVER_HELLO_DONE, b"")


# --- SSLv2 --------------------------------------------------------------------------------------


class SSLv2MessageType(IntEnum):
    ERROR = 0
    CLIENT_HELLO = 1
    CLIENT_MASTER_KEY = 2
    CLIENT_FINISHED = 3
    SERVER_HELLO = 4
    SERVER_VERIFY = 5
    SERVER_FINISHED = 6
    REQUEST_CERTIFICATE = 7
    CLIENT_CERTIFICATE = 8


class SSLv2ErrorCode(IntEnum):
    NO_CIPHER_ERROR = 0x0001
    NO_CERTIFICATE_ERROR = 0x0002
    BAD_CERTIFICATE_ERROR = 0x0004
    UNSUPPORTED_CERTIFICATE_TYPE_ERROR = 0x0006


@dataclass(frozen=True, slots=True, kw_only=True)
class SSLv2ServerHello:
    session_id_hit: int
    certificate_type: int  # 1 = SSL_CT_X509_CERTIFICATE
    version: int  # 0x0002 from a real SSLv2 server
    certificate: bytes
    cipher_kinds: tuple[int, ...]
    connection_id: bytes


@dataclass(frozen=True, slots=True, kw_only=True)
class SSLv2ErrorMessage:
    """An SSLv2 ERROR message: a well-formed answer, so a value and not a DecodeError."""

    code: int  # SSLv2ErrorCode when known


def parse_sslv2_record(buf: bytes) -> tuple[bytes, bytes] | None:
    """``(message, rest)`` from the front of ``buf``; None while incomplete.

    Two-byte header (high bit set): 15-bit length, no padding. Three-byte header: 14-bit
    length, then a padding count; the padding is stripped from the message. Refused at once:
    a three-byte header with the IS-ESCAPE bit (no escapes were ever defined), one whose
    first two bytes are a TLS record header (content type 20..24, major 3: the server
    answered in SSL 3.0/TLS), a padding count of 8 or more (every SSLv2 block cipher has
    8-byte blocks, and ASCII text always lands here), and an empty record.
    """
    if not buf:
        return None
    b0 = buf[0]
    if b0 & 0x80:
        if len(buf) < 2:
            return None
        hlen, length, pad = 2, ((b0 & 0x7F) << 8) | buf[1], 0
    else:
        if b0 & 0x40:
            raise DecodeError(f"sslv2: {bytes(buf[:3]).hex()} is not an SSLv2 record header")
        if len(buf) >= 2 and 20 <= b0 <= 24 and buf[1] == 3:
            raise DecodeError(f"sslv2: {bytes(buf[:5]).hex()} is a TLS record header")
        if len(buf) < 3:
            return None
        hlen, length, pad = 3, ((b0 & 0x3F) << 8) | buf[1], buf[2]
        if pad >= 8 or pad > length:
            raise DecodeError(f"sslv2: padding {pad} in a record of {length} bytes")
    if length == 0:
        raise DecodeError("sslv2: empty record")
    if len(buf) < hlen + length:
        return None
    msg = bytes(buf[hlen : hlen + length - pad])
    return msg, bytes(buf[hlen + length :])


def parse_sslv2_server_hello(msg: bytes) -> SSLv2ServerHello | SSLv2ErrorMessage:
    """A SERVER-HELLO (type 4), or the ERROR message (type 0) as :class:`SSLv2ErrorMessage`.

    Any other message type is a DecodeError: nothing else may answer a CLIENT-HELLO.
    """
    r = Reader(msg, "sslv2 server_hello")
    msg_type = r.u8()
    if msg_type == SSLv2MessageType.ERROR:
        code = r.u16()
        r.expect_end()
        return SSLv2ErrorMessage(code=code)
    if msg_type != SSLv2MessageType.SERVER_HELLO:
        raise DecodeError(f"sslv2: message type {msg_type} where SERVER-HELLO was expected")
    hit, cert_type, version = r.u8(), r.u8(), r.u16()
    cert_len, specs_len, conn_len = r.u16(), r.u16(), r.u16()
    cert = r.bytes(cert_len)
    specs = ext.split_ints(r.bytes(specs_len), 3, "sslv2 cipher specs")
    conn_id = r.bytes(conn_len)
    r.expect_end()
    return SSLv2ServerHello(
        session_id_hit=hit,
        certificate_type=cert_type,
        version=version,
        certificate=cert,
        cipher_kinds=specs,
        connection_id=conn_id,
    )


def _sslv2_record(msg: bytes) -> bytes:
    if len(msg) > 0x7FFF:
        raise ValueError(f"SSLv2 message of {len(msg)} bytes exceeds a two-byte header")
    return u16(0x8000 | len(msg)) + msg


def build_sslv2_server_hello(
    *,
    certificate: bytes,
    cipher_kinds: tuple[int, ...],
    connection_id: bytes,
    version: int = 0x0002,
    session_id_hit: int = 0,
    certificate_type: int = 1,
) -> bytes:
    """A SERVER-HELLO record (two-byte header), for a scripted SSLv2 peer."""
    specs = b"".join(k.to_bytes(3, "big") for k in cipher_kinds)
    msg = (
        u8(SSLv2MessageType.SERVER_HELLO)
        + u8(session_id_hit)
        + u8(certificate_type)
        + u16(version)
        + u16(len(certificate))
        + u16(len(specs))
        + u16(len(connection_id))
        + certificate
        + specs
        + connection_id
    )
    return _sslv2_record(msg)


def build_sslv2_error(code: int) -> bytes:
    return _sslv2_record(u8(SSLv2MessageType.ERROR) + u16(code))


# --- Distinguished names ------------------------------------------------------------------------

# RFC 4514 §3 names, then the few more that OpenSSL prints and mainframe CA names use.
_OID_NAMES = {
    "2.5.4.3": "CN",
    "2.5.4.7": "L",
    "2.5.4.8": "ST",
    "2.5.4.10": "O",
    "2.5.4.11": "OU",
    "2.5.4.6": "C",
    "2.5.4.9": "STREET",
    "0.9.2342.19200300.100.1.25": "DC",
    "0.9.2342.19200300.100.1.1": "UID",
    "1.2.840.113549.1.9.1": "emailAddress",
    "2.5.4.5": "serialNumber",
    "2.5.4.4": "SN",
    "2.5.4.42": "GN",
    "2.5.4.12": "title",
}

# Universal string tags (X.680 §8.6). The legacy 8-bit types ("8bit") should hold ASCII, but
# encoders put UTF-8 in them (cryptography does for IA5String) and old CAs put Latin-1 in them;
# a readable string is the goal, so UTF-8 is tried first and Latin-1, which cannot fail, after.
_STRING_CODECS = {
    0x0C: "utf-8",  # UTF8String
    0x12: "8bit",  # NumericString
    0x13: "8bit",  # PrintableString
    0x14: "8bit",  # TeletexString (T61)
    0x16: "8bit",  # IA5String
    0x1A: "8bit",  # VisibleString
    0x1C: "utf-32-be",  # UniversalString
    0x1E: "utf-16-be",  # BMPString
}


def _der_tlv(r: Reader) -> tuple[int, bytes, bytes]:
    """One DER element: ``(tag, contents, whole encoding)``; low-tag-number form only."""
    tag = r.u8()
    if tag & 0x1F == 0x1F:
        raise DecodeError("dn: high-tag-number form")
    first = r.u8()
    head = bytes([tag, first])
    if first < 0x80:
        length = first
    else:
        n = first & 0x7F
        # 0x80 is BER's indefinite length, never DER; names are far below 2^32 bytes.
        if n == 0 or n > 4:
            raise DecodeError(f"dn: length form {first:#x}")
        raw = r.bytes(n)
        head += raw
        length = int.from_bytes(raw, "big")
    body = r.bytes(length)
    return tag, body, head + body


def _oid(data: bytes) -> str:
    if not data or data[-1] & 0x80:
        raise DecodeError("dn: malformed OBJECT IDENTIFIER")
    arcs: list[int] = []
    value = 0
    width = 0
    for b in data:
        value = (value << 7) | (b & 0x7F)
        width += 1
        # Real arcs fit in 128 bits (UUID arcs, 2.25.x); a longer one is an attack on
        # int-to-str conversion, whose digit limit would raise ValueError.
        if width > 19:
            raise DecodeError("dn: OBJECT IDENTIFIER arc too long")
        if not b & 0x80:
            arcs.append(value)
            value = 0
            width = 0
    first = arcs[0]
    head = [0, first] if first < 40 else [1, first - 40] if first < 80 else [2, first - 80]
    return ".".join(str(a) for a in head + arcs[1:])


def _escape_dn_value(value: str) -> str:
    """RFC 4514 §2.4 escaping, as cryptography's ``rfc4514_string`` does it, plus control
    characters as ``\\XX`` so a hostile CA name cannot forge lines in a log."""
    if not value:
        return ""
    out: list[str] = []
    for ch in value:
        if ch in '\\"+,;<>':
            out.append("\\" + ch)
        elif ord(ch) < 0x20 or ord(ch) == 0x7F:
            out.append(f"\\{ord(ch):02X}")
        else:
            out.append(ch)
    s = "".join(out)
    if s[0] == "#" or (s[0] == " " and len(s) > 1):
        s = "\\" + s
    if s[-1] == " ":
        s = s[:-1] + "\\ "
    return s


def _attribute(tag: int, contents: bytes, whole: bytes) -> str:
    codec = _STRING_CODECS.get(tag)
    if codec is None:
        return "#" + whole.hex()  # RFC 4514 §2.4: the BER encoding, hex
    try:
        if codec == "8bit":
            try:
                return _escape_dn_value(contents.decode("utf-8"))
            except UnicodeDecodeError:
                return _escape_dn_value(contents.decode("latin-1"))
        return _escape_dn_value(contents.decode(codec))
    except UnicodeDecodeError as exc:
        raise DecodeError(f"dn: string of tag {tag:#x} is not valid {codec}") from exc


def decode_dn(der: bytes) -> str:
    """A DER X.501 Name as an RFC 4514 string ("CN=...,O=...,C=US": last RDN first).

    A bounded walk of Name ::= SEQUENCE OF SET OF SEQUENCE { OID, value } (RFC 5280 §4.1.2.4)
    rather than cryptography: the DER Name loader is recent there (``Name.from_bytes``), and
    this module must accept anything a peer sends with one exception type.
    """
    top = Reader(der, "dn")
    tag, seq, _ = _der_tlv(top)
    top.expect_end()
    if tag != 0x30:
        raise DecodeError(f"dn: tag {tag:#x}, expected SEQUENCE")
    rdns: list[str] = []
    names = Reader(seq, "dn")
    while not names.at_end():
        tag, rdn, _ = _der_tlv(names)
        if tag != 0x31 or not rdn:
            raise DecodeError("dn: RelativeDistinguishedName is not a non-empty SET")
        parts: list[str] = []
        atavs = Reader(rdn, "dn")
        while not atavs.at_end():
            tag, atav, _ = _der_tlv(atavs)
            if tag != 0x30:
                raise DecodeError("dn: AttributeTypeAndValue is not a SEQUENCE")
            fields = Reader(atav, "dn")
            oid_tag, oid, _ = _der_tlv(fields)
            if oid_tag != 0x06:
                raise DecodeError("dn: attribute type is not an OBJECT IDENTIFIER")
            value_tag, value, whole = _der_tlv(fields)
            fields.expect_end()
            dotted = _oid(oid)
            parts.append(f"{_OID_NAMES.get(dotted, dotted)}={_attribute(value_tag, value, whole)}")
        rdns.append("+".join(parts))
    return ",".join(reversed(rdns))
