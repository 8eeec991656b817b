"""The outcome taxonomy (SPEC "Outcomes"), classified in one place.

Order of evidence, strongest first (STYLE habit 3):
1. what happened on the socket (refused, no route, silence, EOF);
2. what the peer said on the wire: the alert code and the message it answered (before our
   ServerHello arrived, after we sent an empty Certificate, after our Finished);
3. what our own verification found (OpenSSL's X509 error codes, the host-name check);
4. only then OpenSSL's error reasons, through ``REASON_TABLE`` (one line per reason, each with a
   test), for failures the bytes cannot explain.
"""

from __future__ import annotations

from dataclasses import dataclass

from . import verify


@dataclass(frozen=True, slots=True, kw_only=True)
class Facts:
    tcp_failure: str | None = None  # "refused" | "unreachable" | "dns_failure"
    timed_out_in: str | None = None  # phase name when a deadline fired
    starttls_failed: bool = False
    not_tls: bool = False
    too_much: bool = False  # the peer sent more than a handshake can need
    server_hello: bool = False
    server_version: int | None = None
    offered_versions: tuple[int, ...] = ()
    handshake_done: bool = False
    peer_alert: int | None = None  # first alert the peer sent during the handshake
    local_alert: int | None = None  # first alert we sent during the handshake
    cert_requested: bool = False
    cert_sent: bool = False
    verify_enabled: bool = True
    verify_codes: tuple[int, ...] = ()
    hostname_error: str | None = None
    peer_eof: bool = False
    decode_error_after_hello: bool = False
    reasons: tuple[str, ...] = ()  # OpenSSL's reason strings, lower case
    post: str | None = None  # "quiet" | "data" | "closed" | "eof" | "failed"
    post_alert: int | None = None
    # Versions the partner accepted in extra raw hellos (None when not asked).
    partner_versions: tuple[int, ...] | None = None


CLIENT_CERT_ALERTS = {42, 43, 44, 45, 46, 48, 49}

# OpenSSL reason strings (lower case substrings) -> outcome, for failures with no wire evidence.
REASON_TABLE: tuple[tuple[str, str], ...] = (
    ("unsupported protocol", "version_mismatch"),
    ("wrong ssl version", "version_mismatch"),
    ("version too low", "version_mismatch"),
    ("no protocols available", "version_mismatch"),
    ("wrong version number", "not_tls"),
    ("packet length too long", "not_tls"),
    ("http request", "not_tls"),
    ("no ciphers available", "cipher_mismatch"),
    ("no shared cipher", "cipher_mismatch"),
    ("dh key too small", "cipher_mismatch"),
    ("wrong cipher returned", "protocol_error"),
    ("unexpected message", "protocol_error"),
    ("decode error", "protocol_error"),
    ("length mismatch", "protocol_error"),
    ("bad packet", "protocol_error"),
    ("record layer failure", "protocol_error"),
    ("unexpected eof", "peer_closed"),
    ("certificate verify failed", "server_cert_untrusted"),
)


def from_reasons(reasons: tuple[str, ...]) -> str | None:
    for reason in reasons:
        for needle, outcome in REASON_TABLE:
            if needle in reason:
                return outcome
    return None


def _cert_outcome(codes: tuple[int, ...], hostname_error: str | None) -> str | None:
    """The server-certificate outcome: trust first (nothing else about an untrusted
    certificate can be believed), then dates, then the name."""
    if any(c in verify.UNTRUSTED or c in verify.WEAK for c in codes):
        return "server_cert_untrusted"
    if any(c in verify.EXPIRED for c in codes):
        return "server_cert_expired"
    if any(c in verify.NOT_YET_VALID for c in codes):
        return "server_cert_not_yet_valid"
    if hostname_error or any(c in (62, 64) for c in codes):
        return "hostname_mismatch"
    if codes:
        return "server_cert_untrusted"
    return None


def _peer_alert_outcome(f: Facts, code: int) -> str:
    if code == 70:
        return "version_mismatch"
    if code == 116:
        return "client_cert_required"
    if code in (40, 71) and not f.server_hello:
        # Some stacks (GnuTLS) answer a version they do not speak with handshake_failure, not
        # protocol_version; the raw hellos tell: if the partner accepts only versions we did
        # not offer, the versions are the mismatch.
        pv = f.partner_versions
        if pv and not set(pv) & set(f.offered_versions):
            return "version_mismatch"
        return "cipher_mismatch"
    if f.cert_requested and f.cert_sent and (code == 40 or code in CLIENT_CERT_ALERTS):
        return "client_cert_rejected"
    if f.cert_requested and not f.cert_sent and code not in (80, 112):
        # The server asked, we sent an empty Certificate, it aborted: whatever alert it chose
        # (OpenSSL 40, GnuTLS 50 "No certificate was found"), the missing certificate is why.
        return "client_cert_required"
    return "peer_error"


def classify(f: Facts) -> tuple[str, str]:
    """(outcome, phase) for the facts of one probe."""
    if f.tcp_failure:
        return f.tcp_failure, "tcp"
    if f.timed_out_in == "tcp":
        return "unreachable", "tcp"
    if f.timed_out_in == "starttls":
        return "timeout", "starttls"
    if f.starttls_failed:
        return "starttls_refused", "starttls"
    if f.not_tls:
        return "not_tls", "handshake"
    if f.too_much:
        return "protocol_error", "handshake"
    if not f.handshake_done:
        return _handshake_failure(f)
    if f.verify_enabled:
        cert = _cert_outcome(f.verify_codes, f.hostname_error)
        if cert:  # only reached with --no-verify off if OpenSSL accepted anyway; be safe
            return cert, "verify"
    return _post_handshake(f)


def _handshake_failure(f: Facts) -> tuple[str, str]:
    if f.peer_alert is not None:
        return _peer_alert_outcome(f, f.peer_alert), "handshake"
    if f.verify_enabled and (f.verify_codes or f.hostname_error):
        cert = _cert_outcome(f.verify_codes, f.hostname_error)
        if cert:
            return cert, "verify"
    if (
        f.server_version is not None
        and f.offered_versions
        and f.server_version not in f.offered_versions
    ):
        return "version_mismatch", "handshake"
    if f.timed_out_in == "handshake":
        return "timeout", "handshake"
    if f.decode_error_after_hello:
        return "protocol_error", "handshake"
    by_reason = from_reasons(f.reasons)
    if by_reason == "peer_closed" or (by_reason is None and f.peer_eof):
        return "peer_closed", "handshake"
    if by_reason:
        return by_reason, "handshake"
    if f.local_alert is not None:
        return "protocol_error", "handshake"
    return "protocol_error", "handshake"


def _post_handshake(f: Facts) -> tuple[str, str]:
    if f.post_alert is not None:
        code = f.post_alert
        if code == 116:
            return "client_cert_required", "post_handshake"
        if code in CLIENT_CERT_ALERTS or code == 40:
            if f.cert_sent:
                return "client_cert_rejected", "post_handshake"
            if f.cert_requested:
                return "client_cert_required", "post_handshake"
        return "post_handshake_close", "post_handshake"
    if f.post in ("closed", "eof", "failed"):
        return "post_handshake_close", "post_handshake"
    return "connected", "done"
