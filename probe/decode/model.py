"""``decode`` results: frozen dataclasses (their fields are the JSON) and the names of the
numbers in them.

Alert meanings are RFC 8446 §6.2 and RFC 5246 §7.2 restated for an operator; ``explain`` shows
the same sentences.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from ..wire import registry
from ..wire.handshake import HandshakeType

SCHEMA_VERSION = 1


# RFC 8446 §6.2 and RFC 5246 §7.2 (with RFC 6066, 7301, 7507 for the extension alerts),
# restated in a sentence an operator can act on.
ALERT_MEANINGS: dict[int, str] = {
    0: "the sender closes the connection in order (close_notify); not an error by itself",
    10: "an inappropriate message arrived (out of order or of the wrong type)",
    20: "a record failed its integrity check: wrong keys, corruption, or a middlebox "
    "altering bytes",
    21: "a record could not be decrypted (TLS 1.0 only; reserved since)",
    22: "a record longer than the protocol allows was received",
    30: "decompression failed (reserved)",
    40: "the sender could not agree on security parameters: typically no cipher suite in "
    "common, or (TLS 1.2 and older) a required client certificate was not sent",
    41: "no certificate was available (SSL 3.0 only)",
    42: "a certificate was corrupt, badly signed or refused (OpenSSL also sends it for a "
    "certificate that is not yet valid or whose key is too weak)",
    43: "the certificate's type or purpose is not supported (key usage, extended key usage)",
    44: "a certificate was revoked by its issuer",
    45: "a certificate has expired or is not currently valid",
    46: "a certificate was unacceptable for an unspecified reason",
    47: "a handshake field was out of range or inconsistent with other fields",
    48: "the certificate chain does not lead to a CA the sender trusts",
    49: "the certificate is valid but access was refused by policy",
    50: "a message could not be decoded (bad length or field out of range)",
    51: "a cryptographic check failed (signature, Finished, key exchange)",
    60: "export-restricted negotiation (reserved)",
    70: "the protocol version offered is recognised but not supported by the sender",
    71: "the server requires more secure cipher suites than the client offered",
    80: "the sender hit a failure of its own, unrelated to the peer (for example no usable "
    "certificate or private key); the cause is in its log",
    86: "the client retried with a lower version although the server supports a higher one "
    "(TLS_FALLBACK_SCSV)",
    90: "the handshake was cancelled for a reason not related to a protocol failure",
    100: "a renegotiation request was refused",
    109: "a required extension was not sent (TLS 1.3)",
    110: "an extension was sent that was not offered or is not allowed there",
    111: "a certificate could not be obtained from its URL (reserved)",
    112: "no server is known by the name sent in SNI",
    113: "the certificate status (OCSP) response was invalid or unacceptable",
    114: "a certificate hash value did not match (reserved)",
    115: "no acceptable PSK identity was offered",
    116: "a client certificate is required but none was sent (TLS 1.3)",
    120: "no application protocol (ALPN) in common",
}


# --- results ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class SuiteRef:
    code: str  # "0x002F"
    iana: str | None
    openssl: str | None


@dataclass(frozen=True, slots=True, kw_only=True)
class ExtensionRef:
    type: int
    name: str
    length: int
    present: int
    detail: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class CertRef:
    index: int
    length: int  # DER length declared
    present: int
    missing: int
    subject: str | None = None
    issuer: str | None = None
    not_before: str | None = None
    not_after: str | None = None
    serial: str | None = None
    key: str | None = None
    signature: str | None = None
    san: tuple[str, ...] = ()
    sha256: str | None = None
    problem: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class AlertRef:
    level: int
    level_name: str
    code: int
    name: str
    meaning: str


@dataclass(frozen=True, slots=True, kw_only=True)
class RecordRef:
    content_type: int
    content_type_name: str
    version: str
    version_code: str
    length: int
    present: int
    offset: int


@dataclass(frozen=True, slots=True, kw_only=True)
class Item:
    """One thing found in the dump: a handshake message, an alert, a record, ..."""

    kind: str  # see KINDS
    name: str  # "ClientHello", "Alert fatal handshake_failure(40)", ...
    direction: str | None  # "client" | "server" | None when the bytes cannot tell
    chunk: int
    line: int
    offset: int  # in the chunk
    records: tuple[RecordRef, ...] = ()  # the record(s) it came in; () when bare
    msg_type: int | None = None
    length: int | None = None  # declared length (handshake body, record fragment, DER)
    present: int = 0
    missing: int = 0
    version: str | None = None
    selected_version: str | None = None
    supported_versions: tuple[str, ...] = ()
    random: str | None = None
    session_id: str | None = None
    cipher_suites: tuple[SuiteRef, ...] = ()
    cipher_suite: SuiteRef | None = None
    compression: tuple[int, ...] = ()
    extensions: tuple[ExtensionRef, ...] | None = None  # None: no extension block
    certificates: tuple[CertRef, ...] = ()
    certificate_types: tuple[str, ...] = ()
    signature_algorithms: tuple[str, ...] = ()
    ca_names: tuple[str, ...] = ()
    ca_names_bytes: int | None = None
    alert: AlertRef | None = None
    details: tuple[str, ...] = ()
    problems: tuple[str, ...] = ()
    hex: str = ""


KINDS = (
    "handshake",
    "encrypted_handshake",
    "alert",
    "change_cipher_spec",
    "application_data",
    "heartbeat",
    "record_header",
    "inner_content",
    "opaque",
    "certificate",
    "sslv2_client_hello",
    "skipped",
    "continuation",
    "unknown",
)


@dataclass(frozen=True, slots=True, kw_only=True)
class ChunkInfo:
    index: int
    line: int
    style: str
    label: str | None
    direction: str | None
    bytes: int
    announced: int | None
    start_offset: int | None
    notes: tuple[str, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class DecodeResult:
    styles: tuple[str, ...]
    bytes: int
    chunks: tuple[ChunkInfo, ...]
    items: tuple[Item, ...]
    summary: tuple[str, ...]
    notes: tuple[str, ...]
    schema_version: int = SCHEMA_VERSION


# --- small helpers ----------------------------------------------------------------------------


def version_text(code: int) -> str:
    name = registry.version_name(code)
    return f"{name} (0x{code:04X})" if name else f"0x{code:04X}"


def version_name(code: int) -> str:
    return registry.version_name(code) or f"0x{code:04X}"


def suite_ref(code: int) -> SuiteRef:
    s = registry.suite(code)
    return SuiteRef(
        code=f"0x{code:04X}", iana=s.iana if s else None, openssl=s.openssl if s else None
    )


def suite_text(ref: SuiteRef) -> str:
    if ref.iana is None:
        return f"{ref.code} (not in the IANA registry)"
    if ref.openssl and ref.openssl != ref.iana:
        return f"{ref.code} {ref.iana} ({ref.openssl})"
    return f"{ref.code} {ref.iana}"


def alert_ref(level: int, code: int) -> AlertRef:
    return AlertRef(
        level=level,
        level_name={1: "warning", 2: "fatal"}.get(level, f"level {level}"),
        code=code,
        name=registry.alert_name(code) or registry.describe_unknown("alert", code),
        meaning=ALERT_MEANINGS.get(code, "not an alert the registry defines"),
    )


def alert_title(a: AlertRef) -> str:
    return f"Alert {a.level_name} {a.name}({a.code})"


def handshake_title(msg_type: int) -> str:
    try:
        words = HandshakeType(msg_type).name
    except ValueError:
        return f"HandshakeType{msg_type}"
    return words.replace("_", " ").title().replace(" ", "")


def short_hex(data: bytes, limit: int = 32) -> str:
    return data[:limit].hex() + ("..." if len(data) > limit else "")


def random_time(random: bytes) -> str | None:
    """RFC 2246 §7.4.1.2: the first 4 bytes of a TLS 1.0/1.1 random were gmt_unix_time."""
    t = int.from_bytes(random[:4], "big")
    when = dt.datetime.fromtimestamp(t, dt.UTC)
    if not 1995 <= when.year <= 2040:
        return None
    return when.strftime("%Y-%m-%dT%H:%M:%SZ")
