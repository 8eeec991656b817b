"""Probe results: frozen dataclasses, turned into JSON by one encoder (:func:`to_jsonable`).

Field names are the SPEC's JSON names, so the dataclasses are the schema; there is no parallel
model layer. ``SCHEMA_VERSION`` goes up when a field changes meaning or disappears (adding a
field does not break readers, see ``probe/schemas``).
"""

from __future__ import annotations

import dataclasses
import enum
from dataclasses import dataclass, field
from typing import Any

SCHEMA_VERSION = 1

OUTCOMES = (
    "connected",
    "refused",
    "unreachable",
    "dns_failure",
    "starttls_refused",
    "not_tls",
    "version_mismatch",
    "cipher_mismatch",
    "client_cert_required",
    "client_cert_rejected",
    "server_cert_untrusted",
    "server_cert_expired",
    "server_cert_not_yet_valid",
    "hostname_mismatch",
    "peer_error",
    "peer_closed",
    "timeout",
    "post_handshake_close",
    "protocol_error",
)

PHASES = ("tcp", "starttls", "handshake", "verify", "post_handshake", "done")


@dataclass(frozen=True, slots=True, kw_only=True)
class AlertInfo:
    origin: str  # "peer" | "local"
    code: int
    name: str
    level: str = "fatal"


@dataclass(frozen=True, slots=True, kw_only=True)
class SuiteInfo:
    code: str  # "0xC02F"
    iana: str | None
    openssl: str | None


@dataclass(frozen=True, slots=True, kw_only=True)
class Negotiated:
    version: str | None
    cipher: SuiteInfo | None
    group: str | None


@dataclass(frozen=True, slots=True, kw_only=True)
class CertInfo:
    subject: str
    issuer: str
    not_before: str
    not_after: str
    days_left: int
    key: str  # "RSA 2048", "EC secp256r1"
    signature: str
    san: tuple[str, ...]
    sha256: str
    serial: str
    is_ca: bool
    self_issued: bool


@dataclass(frozen=True, slots=True, kw_only=True)
class VerifyError:
    depth: int
    code: int
    name: str
    reason: str
    subject: str


@dataclass(frozen=True, slots=True, kw_only=True)
class Verification:
    enabled: bool
    verified: bool
    trust_anchors: str  # "system" or the --ca path
    hostname: str | None  # the name checked (None when the check was skipped)
    hostname_matched: bool | None
    hostname_detail: str | None
    errors: tuple[VerifyError, ...] = ()
    chain_sent: int = 0  # certificates the server sent
    # Subjects of the path OpenSSL verified, leaf first; empty unless ``verified``.
    chain_verified: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class ClientAuth:
    requested: bool
    ca_names: tuple[str, ...] = ()
    ca_names_bytes: int = 0
    certificate_types: tuple[int, ...] = ()
    signature_algorithms: tuple[str, ...] = ()
    sent: bool = False
    sent_subject: str | None = None
    chains_to_requested_ca: bool | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class StartTLSInfo:
    protocol: str
    transcript: tuple[str, ...]  # "S: 220 ready", "C: AUTH TLS"
    upgraded: bool


@dataclass(frozen=True, slots=True, kw_only=True)
class VendorLine:
    product: str
    codes: tuple[str, ...]
    where: str
    text: str
    confidence: str
    confirmed: bool


@dataclass(frozen=True, slots=True, kw_only=True)
class Diagnosis:
    cause: str
    summary: str
    fix: str
    detail: str | None
    scenario: str | None
    vendor: tuple[VendorLine, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class TraceEntry:
    direction: str  # "client" | "server"
    what: str  # "ClientHello", "Alert fatal handshake_failure(40)", "encrypted"
    record: str  # "handshake TLSv1.0 len 512"
    hex: str
    detail: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class ProbeResult:
    target: str
    outcome: str
    phase: str
    alert: AlertInfo | None
    negotiated: Negotiated | None
    server_certificates: tuple[CertInfo, ...]
    verification: Verification | None
    client_auth: ClientAuth
    starttls: StartTLSInfo | None
    timings_ms: dict[str, float]
    diagnosis: tuple[Diagnosis, ...]
    error: str | None = None  # the underlying library or socket message, for the curious
    offered: dict[str, Any] = field(default_factory=dict)  # versions and suites we offered
    partner_versions: tuple[str, ...] | None = (
        None  # versions the partner accepted in extra raw hellos
    )
    application_data: str | None = None  # first bytes the server sent after TLS, escaped
    trace: tuple[TraceEntry, ...] = ()
    schema_version: int = SCHEMA_VERSION

    @property
    def ok(self) -> bool:
        return self.outcome == "connected"


def to_jsonable(value: Any) -> Any:
    """Dataclasses, enums, tuples and dicts into plain JSON values (the one encoder)."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: to_jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, dict):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [to_jsonable(v) for v in value]
    if isinstance(value, bytes):
        return value.hex()
    return value
