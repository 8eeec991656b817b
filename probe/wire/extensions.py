"""Hello extensions (RFC 8446 §4.2, RFC 5246 §7.4.1.4): the block codec, builders, decoders.

Theory of operation
-------------------
An extension is a ``u16`` type and an opaque ``u16``-length body. :func:`parse_extensions`
splits a block into :class:`Extension` values and refuses duplicate types (RFC 8446 §4.2:
"There MUST NOT be more than one extension of the same type in a given extension block").
Bodies stay raw; the ``decode_*`` functions read the bodies this project looks at, and
``hello.py`` / ``messages.py`` call them to fill their convenience fields.

Parsers enforce the vector bounds of the RFC presentation language (RFC 8446 §3.4), for example
``NamedGroup named_group_list<2..2^16-1>``: an empty group list is malformed, not "no groups".
Builders, on the other hand, encode whatever fits the length fields: a probe sometimes has to
send a list a strict peer will reject, and deciding what is sensible is the caller's business.
Builders raise ``ValueError`` (local misuse) only when a value cannot be encoded at all.

Codes are plain ints; :class:`ExtensionType` is here for readable code and ``repr``, and an
unknown type read from the wire stays an int.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from enum import IntEnum

from .buffer import Reader, u8, u16
from .errors import DecodeError


class ExtensionType(IntEnum):
    """IANA "TLS ExtensionType Values", spelled as the registry does."""

    server_name = 0
    max_fragment_length = 1
    client_certificate_url = 2
    trusted_ca_keys = 3
    truncated_hmac = 4
    status_request = 5
    user_mapping = 6
    client_authz = 7
    server_authz = 8
    cert_type = 9
    supported_groups = 10  # "elliptic_curves" before RFC 7919
    ec_point_formats = 11
    srp = 12
    signature_algorithms = 13
    use_srtp = 14
    heartbeat = 15
    application_layer_protocol_negotiation = 16
    status_request_v2 = 17
    signed_certificate_timestamp = 18
    client_certificate_type = 19
    server_certificate_type = 20
    padding = 21
    encrypt_then_mac = 22
    extended_master_secret = 23
    token_binding = 24
    cached_info = 25
    compress_certificate = 27
    record_size_limit = 28
    session_ticket = 35
    pre_shared_key = 41
    early_data = 42
    supported_versions = 43
    cookie = 44
    psk_key_exchange_modes = 45
    certificate_authorities = 47
    oid_filters = 48
    post_handshake_auth = 49
    signature_algorithms_cert = 50
    key_share = 51
    renegotiation_info = 65281


@dataclass(frozen=True, slots=True, kw_only=True)
class Extension:
    type: int
    data: bytes

    def to_bytes(self) -> bytes:
        return u16(self.type) + encode_vector(self.data, 2, f"extension {self.type}")


@dataclass(frozen=True, slots=True, kw_only=True)
class KeyShareEntry:
    """RFC 8446 §4.2.8 ``KeyShareEntry``: a group and the public value for it."""

    group: int
    key_exchange: bytes


# --- Shared helpers -----------------------------------------------------------------------------


def encode_vector(data: bytes, len_width: int, what: str) -> bytes:
    """``data`` with its length prefix; ValueError (our mistake) if it cannot fit."""
    if len(data) >= 1 << (8 * len_width):
        raise ValueError(f"{what}: {len(data)} bytes do not fit a {len_width}-byte length")
    return len(data).to_bytes(len_width, "big") + data


def encode_ints(values: Iterable[int], item_width: int, len_width: int, what: str) -> bytes:
    """A vector of fixed-width integers (``uint16 list<..>`` and friends)."""
    items = []
    for v in values:
        if not 0 <= v < 1 << (8 * item_width):
            raise ValueError(f"{what}: {v} does not fit in {item_width} bytes")
        items.append(v.to_bytes(item_width, "big"))
    return encode_vector(b"".join(items), len_width, what)


def read_ints(
    r: Reader, item_width: int, len_width: int, what: str, min_bytes: int = 0
) -> tuple[int, ...]:
    """Read a vector of fixed-width integers, checking its length against the RFC bound."""
    raw = r.vector(len_width)
    return split_ints(raw, item_width, what, min_bytes)


def split_ints(raw: bytes, item_width: int, what: str, min_bytes: int = 0) -> tuple[int, ...]:
    if len(raw) < min_bytes:
        raise DecodeError(f"{what}: {len(raw)} bytes, at least {min_bytes} required")
    if len(raw) % item_width:
        raise DecodeError(f"{what}: length {len(raw)} is not a multiple of {item_width}")
    return tuple(
        int.from_bytes(raw[i : i + item_width], "big") for i in range(0, len(raw), item_width)
    )


def read_opaque_list(
    r: Reader, len_width: int, item_len_width: int, what: str, min_bytes: int = 0
) -> tuple[bytes, ...]:
    """A vector of vectors, each item non-empty (``opaque X<1..2^n-1>`` in every use here)."""
    return split_opaque_list(r.vector(len_width), item_len_width, what, min_bytes)


def split_opaque_list(
    raw: bytes, item_len_width: int, what: str, min_bytes: int = 0
) -> tuple[bytes, ...]:
    if len(raw) < min_bytes:
        raise DecodeError(f"{what}: {len(raw)} bytes, at least {min_bytes} required")
    inner = Reader(raw, what)
    out: list[bytes] = []
    while not inner.at_end():
        item = inner.vector(item_len_width)
        if not item:
            raise DecodeError(f"{what}: empty entry")
        out.append(item)
    return tuple(out)


# --- The block ----------------------------------------------------------------------------------


def parse_extensions(data: bytes) -> tuple[Extension, ...]:
    """The body of an extensions block (without its own 2-byte length) as Extension values."""
    r = Reader(data, "extensions")
    out: list[Extension] = []
    seen: set[int] = set()
    while not r.at_end():
        ext_type = r.u16()
        body = r.vector(2)
        # RFC 8446 §4.2 (and RFC 5246 §7.4.1.4): one extension of a type per block.
        if ext_type in seen:
            raise DecodeError(f"extensions: duplicate extension type {ext_type}")
        seen.add(ext_type)
        out.append(Extension(type=ext_type, data=body))
    return tuple(out)


def build_extensions(exts: Iterable[Extension]) -> bytes:
    """An extensions block with its 2-byte length prefix.

    Duplicates are not refused: sending one on purpose is a legitimate probe.
    """
    return encode_vector(b"".join(e.to_bytes() for e in exts), 2, "extensions")


def find_extension(exts: Iterable[Extension], ext_type: int) -> Extension | None:
    for e in exts:
        if e.type == ext_type:
            return e
    return None


# --- Builders -----------------------------------------------------------------------------------


def server_name(host: str) -> Extension:
    """RFC 6066 §3: one ``host_name`` (type 0) entry.

    The name goes as ASCII without a trailing dot (RFC 6066 §3); a U-label must be converted
    to its A-label by the caller (ValueError otherwise), since IDNA is policy, not wire format.
    """
    name = host[:-1] if host.endswith(".") else host
    try:
        raw = name.encode("ascii")
    except UnicodeEncodeError as exc:
        raise ValueError(f"server_name: {host!r} is not ASCII; pass the A-label") from exc
    entry = u8(0) + encode_vector(raw, 2, "server_name")
    return Extension(type=ExtensionType.server_name, data=encode_vector(entry, 2, "server_name"))


def supported_groups(groups: Iterable[int]) -> Extension:
    """RFC 8446 §4.2.7 (RFC 8422 §5.1.1 called it elliptic_curves)."""
    return Extension(
        type=ExtensionType.supported_groups, data=encode_ints(groups, 2, 2, "supported_groups")
    )


def ec_point_formats(formats: Iterable[int] = (0,)) -> Extension:
    """RFC 8422 §5.1.2; 0 = uncompressed, the only format RFC 8422 still allows."""
    return Extension(
        type=ExtensionType.ec_point_formats, data=encode_ints(formats, 1, 1, "ec_point_formats")
    )


def signature_algorithms(algs: Iterable[int]) -> Extension:
    """RFC 8446 §4.2.3 (RFC 5246 §7.4.1.4.1 for TLS 1.2: hash byte + signature byte)."""
    return Extension(
        type=ExtensionType.signature_algorithms,
        data=encode_ints(algs, 2, 2, "signature_algorithms"),
    )


def signature_algorithms_cert(algs: Iterable[int]) -> Extension:
    """RFC 8446 §4.2.3: algorithms acceptable in certificates, when they differ."""
    return Extension(
        type=ExtensionType.signature_algorithms_cert,
        data=encode_ints(algs, 2, 2, "signature_algorithms_cert"),
    )


def supported_versions_client(versions: Iterable[int]) -> Extension:
    """RFC 8446 §4.2.1, ClientHello form: ``ProtocolVersion versions<2..254>``."""
    return Extension(
        type=ExtensionType.supported_versions,
        data=encode_ints(versions, 2, 1, "supported_versions"),
    )


def supported_versions_server(version: int) -> Extension:
    """RFC 8446 §4.2.1, ServerHello / HRR form: the one selected version."""
    return Extension(type=ExtensionType.supported_versions, data=u16(version))


def _key_share_entry(entry: KeyShareEntry) -> bytes:
    return u16(entry.group) + encode_vector(entry.key_exchange, 2, "key_share")


def key_share_client(entries: Iterable[KeyShareEntry]) -> Extension:
    """RFC 8446 §4.2.8 ``KeyShareClientHello``; an empty list is valid (ask for an HRR)."""
    body = b"".join(_key_share_entry(e) for e in entries)
    return Extension(type=ExtensionType.key_share, data=encode_vector(body, 2, "key_share"))


def key_share_server(entry: KeyShareEntry) -> Extension:
    """RFC 8446 §4.2.8 ``KeyShareServerHello``: one entry, no list length."""
    return Extension(type=ExtensionType.key_share, data=_key_share_entry(entry))


def key_share_hrr(group: int) -> Extension:
    """RFC 8446 §4.2.8 ``KeyShareHelloRetryRequest``: the selected group only."""
    return Extension(type=ExtensionType.key_share, data=u16(group))


def renegotiation_info(renegotiated_connection: bytes = b"") -> Extension:
    """RFC 5746 §3.2: empty ``renegotiated_connection`` on an initial handshake."""
    return Extension(
        type=ExtensionType.renegotiation_info,
        data=encode_vector(renegotiated_connection, 1, "renegotiation_info"),
    )


def extended_master_secret() -> Extension:
    """RFC 7627 §5.1: empty body."""
    return Extension(type=ExtensionType.extended_master_secret, data=b"")


def session_ticket(ticket: bytes = b"") -> Extension:
    """RFC 5077 §3.2: the body *is* the ticket (no inner length); empty asks for a new one."""
    return Extension(type=ExtensionType.session_ticket, data=ticket)


def certificate_authorities(names: Iterable[bytes]) -> Extension:
    """RFC 8446 §4.2.4: ``DistinguishedName authorities<3..2^16-1>``, each DER."""
    body = b"".join(encode_vector(n, 2, "certificate_authorities") for n in names)
    return Extension(
        type=ExtensionType.certificate_authorities,
        data=encode_vector(body, 2, "certificate_authorities"),
    )


def status_request() -> Extension:
    """RFC 6066 §8: status_type ocsp (1), no responder ids, no request extensions."""
    return Extension(type=ExtensionType.status_request, data=b"\x01\x00\x00\x00\x00")


def psk_key_exchange_modes(modes: Iterable[int] = (1,)) -> Extension:
    """RFC 8446 §4.2.9; 1 = psk_dhe_ke."""
    return Extension(
        type=ExtensionType.psk_key_exchange_modes,
        data=encode_ints(modes, 1, 1, "psk_key_exchange_modes"),
    )


def alpn(protocols: Iterable[bytes | str]) -> Extension:
    """RFC 7301 §3.1: ``ProtocolName protocol_name_list<2..2^16-1>``, names ``<1..2^8-1>``."""
    names = [p.encode("ascii") if isinstance(p, str) else p for p in protocols]
    body = b"".join(encode_vector(n, 1, "alpn") for n in names)
    return Extension(
        type=ExtensionType.application_layer_protocol_negotiation,
        data=encode_vector(body, 2, "alpn"),
    )


def padding(length: int) -> Extension:
    """RFC 7685 §3: ``length`` zero bytes."""
    if not 0 <= length < 1 << 16:
        raise ValueError(f"padding: {length} bytes does not fit")
    return Extension(type=ExtensionType.padding, data=bytes(length))


# --- Decoders of extension bodies ---------------------------------------------------------------
# Each takes ``Extension.data`` and raises DecodeError on anything that is not the structure
# the RFC describes, including trailing bytes.


def decode_server_name(data: bytes) -> str | None:
    """The ``host_name`` of a ClientHello server_name body (RFC 6066 §3), or None if absent.

    A ServerHello/EncryptedExtensions server_name body is empty; callers decode only the
    client form. The name must be ASCII without NUL: RFC 6066 §3 says so, and a NUL is the
    classic trick to make a certificate check and a log disagree.
    """
    r = Reader(data, "server_name")
    lst = r.sub(2)
    r.expect_end()
    if lst.at_end():
        raise DecodeError("server_name: empty server_name_list")  # <1..2^16-1>
    host: str | None = None
    seen: set[int] = set()
    while not lst.at_end():
        name_type = lst.u8()
        # Unknown name types have no defined syntax (RFC 6066 §3); every deployed parser and
        # the RFC's own future-proofing assume the same opaque<1..2^16-1> shape.
        name = lst.vector(2)
        if not name:
            raise DecodeError("server_name: empty name")
        if name_type in seen:
            raise DecodeError(f"server_name: two names of type {name_type}")
        seen.add(name_type)
        if name_type == 0:
            if not name.isascii() or b"\x00" in name:
                raise DecodeError("server_name: host_name is not ASCII")
            host = name.decode("ascii")
    return host


def decode_u16_list(data: bytes, what: str, min_bytes: int = 2) -> tuple[int, ...]:
    """Bodies that are one ``uint16 list<2..2^16-1>``: supported_groups, signature_algorithms."""
    r = Reader(data, what)
    out = read_ints(r, 2, 2, what, min_bytes)
    r.expect_end()
    return out


def decode_ec_point_formats(data: bytes) -> tuple[int, ...]:
    r = Reader(data, "ec_point_formats")
    out = read_ints(r, 1, 1, "ec_point_formats", 1)
    r.expect_end()
    return out


def decode_supported_versions_client(data: bytes) -> tuple[int, ...]:
    r = Reader(data, "supported_versions")
    out = read_ints(r, 2, 1, "supported_versions", 2)
    r.expect_end()
    return out


def decode_supported_versions_server(data: bytes) -> int:
    if len(data) != 2:
        raise DecodeError(f"supported_versions: server form has {len(data)} bytes, expected 2")
    return int.from_bytes(data, "big")


def _read_key_share_entry(r: Reader) -> KeyShareEntry:
    group = r.u16()
    key = r.vector(2)
    if not key:
        raise DecodeError("key_share: empty key_exchange")  # opaque key_exchange<1..2^16-1>
    return KeyShareEntry(group=group, key_exchange=key)


def decode_key_share_client(data: bytes) -> tuple[KeyShareEntry, ...]:
    r = Reader(data, "key_share")
    lst = r.sub(2)
    r.expect_end()
    out: list[KeyShareEntry] = []
    while not lst.at_end():
        out.append(_read_key_share_entry(lst))
    # RFC 8446 §4.2.8: "Clients MUST NOT offer multiple KeyShareEntry values for the same group".
    if len({e.group for e in out}) != len(out):
        raise DecodeError("key_share: two entries for one group")
    return tuple(out)


def decode_key_share_server(data: bytes) -> KeyShareEntry:
    r = Reader(data, "key_share")
    entry = _read_key_share_entry(r)
    r.expect_end()
    return entry


def decode_key_share_hrr(data: bytes) -> int:
    if len(data) != 2:
        raise DecodeError(f"key_share: HelloRetryRequest form has {len(data)} bytes, expected 2")
    return int.from_bytes(data, "big")


def decode_renegotiation_info(data: bytes) -> bytes:
    r = Reader(data, "renegotiation_info")
    out = r.vector(1)
    r.expect_end()
    return out


def decode_certificate_authorities(data: bytes) -> tuple[tuple[bytes, ...], int]:
    """The DER names and the length of the name list as sent (RFC 8446 §4.2.4)."""
    r = Reader(data, "certificate_authorities")
    names = read_opaque_list(r, 2, 2, "certificate_authorities", 3)
    r.expect_end()
    return names, len(data) - 2


def decode_alpn(data: bytes) -> tuple[bytes, ...]:
    r = Reader(data, "alpn")
    out = read_opaque_list(r, 2, 1, "alpn", 2)
    r.expect_end()
    return out
