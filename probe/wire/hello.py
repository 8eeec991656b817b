"""ClientHello: builder from a spec, parser, key shares, and the SSLv2 CLIENT-HELLO.

Theory of operation
-------------------
A probe asks one question per connection ("does the server take TLS 1.1 with these suites?"),
so the builder is driven by a frozen :class:`ClientHelloSpec` and produces exactly the bytes the
spec describes, nothing implied: no extension is added that the spec does not ask for, and
nothing checks that the combination is sensible (a probe must be able to send a TLS 1.3 hello
without key shares, or SSL 3.0 with extensions).

Extension order is chosen for old servers, not for style. The extensions with empty bodies
go first, because some stacks (WebSphere 7-era) fail when the *last* extension is empty; the
caller's extra extensions follow in the caller's order; the padding extension comes after
everything except pre_shared_key, which RFC 8446 §4.2.11 requires to be last.

The parser reads the RFC 5246 §7.4.1.2 / RFC 8446 §4.1.2 body, refuses what breaks the vector
bounds, and fills convenience fields from the extensions it knows. A hello without any bytes
after the compression methods has no extension block (SSL 3.0 and old middleware); that is
reported as ``extensions_present=False``, distinct from an empty block.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from . import extensions as ext
from .buffer import Reader, u8, u16, u24
from .errors import DecodeError
from .extensions import Extension, ExtensionType, KeyShareEntry
from .handshake import HandshakeType
from .record import ContentType, build_records

__all__ = [
    "ClientHello",
    "ClientHelloSpec",
    "Extension",
    "KeyShareEntry",
    "build_client_hello",
    "build_client_hello_message",
    "build_sslv2_client_hello",
    "make_key_share",
    "parse_client_hello",
]


@dataclass(frozen=True, slots=True, kw_only=True)
class ClientHelloSpec:
    legacy_version: int = 0x0303  # body version (0x0300 SSL3 .. 0x0303; 0x0303 for TLS 1.3)
    record_version: int = 0x0301  # record-layer version of the hello's records (RFC 8446 §5.1)
    suites: tuple[int, ...]
    random: bytes = bytes(32)  # the caller passes os.urandom(32); the codec stays pure
    session_id: bytes = b""
    compression: tuple[int, ...] = (0,)
    server_name: str | None = None
    supported_versions: tuple[int, ...] | None = None  # adds the extension when not None
    groups: tuple[int, ...] | None = None
    signature_algorithms: tuple[int, ...] | None = None
    # Omitted when empty. A TLS 1.3 hello that wants a HelloRetryRequest needs an *empty*
    # key_share (RFC 8446 §9.2): pass extensions.key_share_client(()) in extra_extensions.
    key_shares: tuple[KeyShareEntry, ...] = ()
    ec_point_formats: tuple[int, ...] | None = None
    renegotiation_info: bool = False
    extended_master_secret: bool = False
    session_ticket: bool = False
    extra_extensions: tuple[Extension, ...] = ()
    no_extensions: bool = False  # SSL 3.0 / old-middleware style: no extension block at all
    pad_to: int | None = None  # padding extension (21) until the body is at least this long


@dataclass(frozen=True, slots=True, kw_only=True)
class ClientHello:
    legacy_version: int
    random: bytes
    session_id: bytes
    suites: tuple[int, ...]
    compression: tuple[int, ...]
    extensions: tuple[Extension, ...]
    extensions_present: bool  # False: nothing after compression_methods (SSL 3.0 style)
    server_name: str | None = None
    supported_versions: tuple[int, ...] | None = None
    groups: tuple[int, ...] | None = None
    signature_algorithms: tuple[int, ...] | None = None
    key_shares: tuple[KeyShareEntry, ...] | None = None
    ec_point_formats: tuple[int, ...] | None = None
    alpn: tuple[bytes, ...] | None = None
    renegotiation_info: bool = False  # the extension (RFC 5746 §3.2), not the SCSV
    extended_master_secret: bool = False
    session_ticket: bool = False

    @property
    def key_share_groups(self) -> tuple[int, ...] | None:
        return None if self.key_shares is None else tuple(e.group for e in self.key_shares)

    @property
    def offers_secure_renegotiation(self) -> bool:
        """Either signal of RFC 5746 §3.3: the extension or TLS_EMPTY_RENEGOTIATION_INFO_SCSV."""
        return self.renegotiation_info or 0x00FF in self.suites

    def extension(self, ext_type: int) -> Extension | None:
        return ext.find_extension(self.extensions, ext_type)


# --- Building -----------------------------------------------------------------------------------


def _spec_extensions(spec: ClientHelloSpec) -> list[Extension]:
    """The spec's extensions in wire order (see the module docstring for why this order)."""
    out: list[Extension] = []
    if spec.extended_master_secret:
        out.append(ext.extended_master_secret())
    if spec.session_ticket:
        out.append(ext.session_ticket())
    if spec.renegotiation_info:
        out.append(ext.renegotiation_info())
    if spec.server_name is not None:
        out.append(ext.server_name(spec.server_name))
    if spec.ec_point_formats is not None:
        out.append(ext.ec_point_formats(spec.ec_point_formats))
    if spec.groups is not None:
        out.append(ext.supported_groups(spec.groups))
    if spec.signature_algorithms is not None:
        out.append(ext.signature_algorithms(spec.signature_algorithms))
    if spec.supported_versions is not None:
        out.append(ext.supported_versions_client(spec.supported_versions))
    if spec.key_shares:
        out.append(ext.key_share_client(spec.key_shares))
    out.extend(e for e in spec.extra_extensions if e.type != ExtensionType.pre_shared_key)
    return out


def _body(spec: ClientHelloSpec) -> bytes:
    if len(spec.random) != 32:
        raise ValueError(f"ClientHello random must be 32 bytes, got {len(spec.random)}")
    head = (
        u16(spec.legacy_version)
        + spec.random
        + ext.encode_vector(spec.session_id, 1, "session_id")
        + ext.encode_ints(spec.suites, 2, 2, "cipher_suites")
        + ext.encode_ints(spec.compression, 1, 1, "compression_methods")
    )
    exts = _spec_extensions(spec)
    psk = [e for e in spec.extra_extensions if e.type == ExtensionType.pre_shared_key]
    if spec.no_extensions:
        if exts or psk or spec.pad_to is not None:
            raise ValueError("ClientHelloSpec: no_extensions with extensions requested")
        return head
    if spec.pad_to is not None:
        size = len(head) + len(ext.build_extensions(exts + psk))
        gap = spec.pad_to - size
        if gap > 0:
            # RFC 7685 §3: the extension's own 4-byte header counts; a gap under 4 bytes
            # overshoots by the header, the closest a padding extension can get.
            exts.append(ext.padding(max(gap - 4, 0)))
    return head + ext.build_extensions(exts + psk)


def build_client_hello_message(spec: ClientHelloSpec) -> bytes:
    """The handshake message: type 1, u24 length, body (RFC 8446 §4)."""
    body = _body(spec)
    return u8(HandshakeType.CLIENT_HELLO) + u24(len(body)) + body


def build_client_hello(spec: ClientHelloSpec, max_fragment: int = 2**14) -> bytes:
    """Whole handshake records; a hello longer than ``max_fragment`` spans several records."""
    if not 1 <= max_fragment <= 2**14:
        raise ValueError(f"max_fragment {max_fragment} outside 1..2^14 (RFC 8446 §5.1)")
    return build_records(
        ContentType.HANDSHAKE, spec.record_version, build_client_hello_message(spec), max_fragment
    )


# --- Parsing ------------------------------------------------------------------------------------


def parse_client_hello(body: bytes) -> ClientHello:
    """A ClientHello body (after the 4-byte handshake header)."""
    r = Reader(body, "client_hello")
    legacy_version = r.u16()
    random = r.bytes(32)
    session_id = r.vector(1)
    if len(session_id) > 32:
        raise DecodeError(f"client_hello: session_id of {len(session_id)} bytes (max 32)")
    suites = ext.read_ints(r, 2, 2, "client_hello cipher_suites", 2)
    compression = ext.read_ints(r, 1, 1, "client_hello compression_methods", 1)
    if r.at_end():
        return ClientHello(
            legacy_version=legacy_version,
            random=random,
            session_id=session_id,
            suites=suites,
            compression=compression,
            extensions=(),
            extensions_present=False,
        )
    exts = ext.parse_extensions(r.vector(2))
    r.expect_end()
    by_type = {e.type: e for e in exts}

    def data(t: int) -> bytes | None:
        e = by_type.get(t)
        return None if e is None else e.data

    sni = data(ExtensionType.server_name)
    versions = data(ExtensionType.supported_versions)
    groups = data(ExtensionType.supported_groups)
    sigalgs = data(ExtensionType.signature_algorithms)
    shares = data(ExtensionType.key_share)
    formats = data(ExtensionType.ec_point_formats)
    alpn = data(ExtensionType.application_layer_protocol_negotiation)
    reneg = data(ExtensionType.renegotiation_info)
    if reneg is not None:
        ext.decode_renegotiation_info(reneg)  # structure check only
    ems = data(ExtensionType.extended_master_secret)
    if ems:
        raise DecodeError("extended_master_secret: body must be empty (RFC 7627 §5.1)")
    return ClientHello(
        legacy_version=legacy_version,
        random=random,
        session_id=session_id,
        suites=suites,
        compression=compression,
        extensions=exts,
        extensions_present=True,
        server_name=None if sni is None else ext.decode_server_name(sni),
        supported_versions=(
            None if versions is None else ext.decode_supported_versions_client(versions)
        ),
        groups=None if groups is None else ext.decode_u16_list(groups, "supported_groups"),
        signature_algorithms=(
            None if sigalgs is None else ext.decode_u16_list(sigalgs, "signature_algorithms")
        ),
        key_shares=None if shares is None else ext.decode_key_share_client(shares),
        ec_point_formats=None if formats is None else ext.decode_ec_point_formats(formats),
        alpn=None if alpn is None else ext.decode_alpn(alpn),
        renegotiation_info=reneg is not None,
        extended_master_secret=ems is not None,
        session_ticket=ExtensionType.session_ticket in by_type,
    )


# --- Key shares ---------------------------------------------------------------------------------

_EC_CURVES = {23: "SECP256R1", 24: "SECP384R1", 25: "SECP521R1"}  # classes of cryptography's ec
# RFC 7919 §A: ffdhe2048 .. ffdhe8192, public values as long as the prime (RFC 8446 §4.2.8.1).
_FFDHE_BYTES = {256: 256, 257: 384, 258: 512, 259: 768, 260: 1024}


def make_key_share(group: int) -> KeyShareEntry:
    """A fresh public key for ``group`` (RFC 8446 §4.2.8.1, §4.2.8.2).

    The private half is thrown away: a probe reads the ServerHello and stops. For FFDHE the
    value is random bytes below the prime (every RFC 7919 prime starts with 64 one-bits, so a
    first byte under 0xFF is enough) and above 1; the server cannot tell it from g^x mod p,
    and generating a real 8192-bit DH key would cost seconds for nothing.
    """
    # Imported here, not with the codec: parsing and building need no cryptography, and the
    # scan's start-up (its whole run, on a small server) is shorter without it.
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec, x448, x25519

    if group == 29:
        raw = (
            x25519.X25519PrivateKey.generate()
            .public_key()
            .public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        )
    elif group == 30:
        raw = (
            x448.X448PrivateKey.generate()
            .public_key()
            .public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        )
    elif group in _EC_CURVES:
        # RFC 8446 §4.2.8.2: UncompressedPointRepresentation, the X9.62 0x04 form.
        raw = (
            ec.generate_private_key(getattr(ec, _EC_CURVES[group])())
            .public_key()
            .public_bytes(serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint)
        )
    elif group in _FFDHE_BYTES:
        value = bytearray(os.urandom(_FFDHE_BYTES[group]))
        value[0] = 0x80 | (value[0] & 0x3F)  # full length, and below the prime's 0xFF...
        raw = bytes(value)
    else:
        raise ValueError(f"make_key_share: no key generation for group {group}")
    return KeyShareEntry(group=group, key_exchange=raw)


# --- SSLv2 --------------------------------------------------------------------------------------

_SSL2_MT_CLIENT_HELLO = 1


def build_sslv2_client_hello(
    cipher_kinds: tuple[int, ...], challenge: bytes, version: int = 0x0002
) -> bytes:
    """An SSLv2 CLIENT-HELLO record (draft-hickman-netscape-ssl-00 "The SSL Protocol").

    With ``version`` 0x0300 and up this is the SSLv2-compatible hello of RFC 5246 §E.2, which
    offers SSL 3.0/TLS suites as three-byte kinds ``0x00XXXX``. The session id is always
    empty (a new session), and the record uses the two-byte header (high bit set: no padding).
    """
    if not 16 <= len(challenge) <= 32:
        raise ValueError(f"SSLv2 challenge must be 16..32 bytes, got {len(challenge)}")
    specs = b""
    for kind in cipher_kinds:
        if not 0 <= kind <= 0xFFFFFF:
            raise ValueError(f"SSLv2 cipher kind {kind:#x} does not fit three bytes")
        specs += kind.to_bytes(3, "big")
    msg = (
        u8(_SSL2_MT_CLIENT_HELLO)
        + u16(version)
        + u16(len(specs))
        + u16(0)  # session-id length
        + u16(len(challenge))
        + specs
        + challenge
    )
    if len(msg) > 0x7FFF:
        raise ValueError(f"SSLv2 CLIENT-HELLO of {len(msg)} bytes exceeds a two-byte header")
    return u16(0x8000 | len(msg)) + msg
