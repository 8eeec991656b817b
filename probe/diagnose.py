"""From an outcome and its facts to likely causes, with fixes and vendor codes.

The knowledge (summaries, fixes, what MQ, z/OS, IBM i and Transfer CFT log) is data in
``profiles/diagnosis.toml``; this module only picks cause ids and adds the facts of this probe
as ``detail``. A cause id that the data lacks is a bug, caught by the tests.

The STARTTLS causes are worded for every protocol; the protocol a probe used picks its line
from ``profiles/starttls_hints.toml`` (added to the fix) and its vendor lines (an entry with
``protocols`` shows only for those).
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType

from .causes import Cause, load_causes
from .result import Diagnosis, VendorLine
from .tomldata import DataError, read_toml
from .upgrade import DIALOGS
from .wire import registry

# Transfer CFT refuses CertificateRequests whose CA names exceed its RRUSIZE (32,750 bytes).
CFT_CA_LIST_LIMIT = 32750


@dataclass(frozen=True, slots=True, kw_only=True)
class DiagContext:
    alert: int | None = None
    alert_origin: str | None = None
    verify_codes: tuple[int, ...] = ()
    untrusted_kind: str | None = None  # from verify.untrusted_kind
    hostname_error: str | None = None
    verify_detail: str | None = None
    partner_versions: tuple[int, ...] | None = None
    offered_versions: tuple[int, ...] = ()
    cert_requested: bool = False
    cert_sent: bool = False
    ca_names_count: int = 0
    ca_names_bytes: int = 0
    chains_to_requested_ca: bool | None = None
    ca_names: tuple[str, ...] = ()  # the CA names of the CertificateRequest, readable
    cert_subject: str | None = None  # the client certificate given (sent or not)
    cert_issuer: str | None = None
    cert_expired_on: str | None = None  # the client certificate's notAfter, if already past
    starttls_protocol: str | None = None  # the --starttls dialog used; None without one
    starttls_reply: str | None = None
    starttls_problem: str | None = None
    starttls_injected: int = 0  # plaintext bytes after the go-ahead
    starttls_stalled: bool = False  # the deadline passed inside the upgrade
    first_bytes: bytes = b""
    error: str | None = None
    mq_channel: str | None = None
    port: int = 0
    sni: str | None = None
    # Further certificate problems behind the one that stopped verification (cause, detail),
    # listed after the main causes so that fixing one does not hide the next.
    also: tuple[tuple[str, str], ...] = ()
    partner_suites: tuple[int, ...] = ()  # the suites the partner picked at its versions
    partner_suites_unavailable: bool = False  # ... none of which this OpenSSL can offer


def _names(versions: tuple[int, ...]) -> str:
    return ", ".join(registry.version_name(v) or hex(v) for v in versions)


def _flag(v: int) -> str:
    name = registry.version_name(v) or ""
    return name.replace("TLSv", "").replace("SSLv3", "ssl3")


def _suite_text(code: int) -> str:
    suite = registry.suite(code)
    return f"{suite.iana} (0x{code:04X})" if suite else f"0x{code:04X}"


def _version_causes(ctx: DiagContext) -> list[tuple[str, str | None]]:
    pv = ctx.partner_versions
    if pv:
        offered = ctx.offered_versions or (0x0303, 0x0304)
        lo, hi = min(offered), max(offered)
        if max(pv) < 0x0301:
            return [
                (
                    "partner_version_too_old",
                    f"partner speaks only {_names(pv)}, which current TLS libraries (this one"
                    " included) no longer negotiate: the partner must be upgraded",
                )
            ]
        # One version offered means --tls (or a pinned MQ CipherSpec): --tls-min/--tls-max
        # cannot be combined with it, so the advice names --tls.
        if max(pv) < lo:
            allow = f"--tls {_flag(max(pv))}" if lo == hi else f"--tls-min {_flag(max(pv))}"
            if max(pv) >= 0x0303:
                # A partner at TLS 1.2 is not old: we asked for more than it has.
                return [
                    (
                        "version_mismatch",
                        f"partner does not speak {_names(offered)}; it accepts {_names(pv)}:"
                        f" offer it with `{allow}`",
                    )
                ]
            detail = f"partner speaks only {_names(pv)}; allow it with `{allow}`"
            if ctx.partner_suites and ctx.partner_suites_unavailable:
                # Allowing the version would only trade this failure for a cipher mismatch.
                picked = ", ".join(_suite_text(c) for c in ctx.partner_suites)
                detail = (
                    f"partner speaks only {_names(pv)} and picks {picked}, which this OpenSSL"
                    " cannot offer: the partner must be upgraded (`tlsprobe scan` lists"
                    " everything it accepts)"
                )
            return [("partner_version_too_old", detail)]
        if min(pv) > hi:
            allow = f"--tls {_flag(min(pv))}" if lo == hi else f"--tls-max {_flag(min(pv))}"
            return [
                ("partner_version_too_new", f"partner speaks only {_names(pv)}; allow it with"
                 f" `{allow}`")
            ]  # fmt: skip
        return [
            (
                "version_mismatch",
                f"partner accepts {_names(pv)}; we offered {_names(offered)}",
            )
        ]
    if pv == ():
        return [
            ("version_mismatch", "the partner accepted none of the versions tried (TLS 1.0-1.3)")
        ]
    return [("version_mismatch", None)]


_CLIENT_CERT_BY_ALERT = {
    48: "client_cert_unknown_ca",
    45: "client_cert_expired",
    42: "client_cert_bad",
    43: "client_cert_unsupported",
    44: "client_cert_revoked",
    46: "client_cert_unknown",
    49: "client_cert_access_denied",
}

_UNTRUSTED_CAUSE = {
    "self_signed": "server_cert_self_signed",
    "unknown_ca": "server_cert_unknown_ca",
    "missing_intermediate": "server_cert_missing_intermediate",
}


# How many of the server's CA names a detail line shows; the count says how many there were.
SHOWN_CA_NAMES = 3


def _wanted(ctx: DiagContext) -> str:
    """The CA names the server asked for: the first few and how many."""
    names = ctx.ca_names
    if not names:
        return "no CA named in its request (any CA it trusts)"
    shown = "; ".join(names[:SHOWN_CA_NAMES])
    if len(names) == 1:
        return f"1 CA: {shown}"
    if len(names) <= SHOWN_CA_NAMES:
        return f"{len(names)} CAs: {shown}"
    return f"{len(names)} CAs, the first {SHOWN_CA_NAMES}: {shown}; ..."


def _client_cert_detail(ctx: DiagContext, alert_text: str | None) -> str:
    """What was sent and what was wanted, for client_cert_required / client_cert_rejected."""
    if ctx.cert_sent and ctx.cert_subject:
        sent = f"sent {ctx.cert_subject}"
    elif ctx.cert_subject:
        sent = f"{ctx.cert_subject} was given but not sent"
    else:
        sent = "no client certificate sent"
    parts = [p for p in (alert_text, sent) if p]
    if ctx.cert_requested:
        parts.append(f"the server wanted {_wanted(ctx)}")
    return "; ".join(parts)


def pick_causes(outcome: str, ctx: DiagContext) -> list[tuple[str, str | None]]:
    """Cause ids (most likely first) with a detail line from this probe's facts."""
    alert_text = (
        f"{ctx.alert_origin} alert {ctx.alert} {registry.alert_name(ctx.alert) or ''}".strip()
        if ctx.alert is not None
        else None
    )
    simple = {
        "refused": "port_closed",
        "unreachable": "host_unreachable",
        "dns_failure": "name_not_resolved",
        "server_cert_expired": "server_cert_expired",
        "server_cert_not_yet_valid": "server_cert_not_yet_valid",
        "peer_closed": "peer_closed_during_handshake",
        "timeout": "handshake_timeout",
        "post_handshake_close": "post_handshake_rejected",
        "protocol_error": "protocol_violation",
    }
    out: list[tuple[str, str | None]] = []
    if outcome == "timeout" and ctx.starttls_stalled:
        # No TLS byte was sent: "never completed the handshake" would send the reader to the
        # wrong layer; the detail names the unanswered step.
        out.append(("starttls_timeout", ctx.starttls_problem))
    elif outcome in simple:
        out.append((simple[outcome], ctx.verify_detail or alert_text or ctx.error))
    elif outcome == "starttls_refused":
        if ctx.starttls_injected:
            cid = "starttls_plaintext_injection"
        else:
            cid = "starttls_refused" if ctx.starttls_reply else "starttls_not_offered"
        out.append((cid, ctx.starttls_problem))
    elif outcome == "not_tls":
        shown = ctx.first_bytes[:40].decode("latin-1")
        printable = "".join(ch if ch.isprintable() else "." for ch in shown)
        out.append(
            ("peer_not_tls", f"the peer answered {printable!r} ({ctx.first_bytes[:8].hex()})")
        )
    elif outcome == "version_mismatch":
        out.extend(_version_causes(ctx))
    elif outcome == "cipher_mismatch":
        out.append(("insufficient_security" if ctx.alert == 71 else "no_shared_cipher", alert_text))
    elif outcome == "client_cert_required":
        out.append(("client_cert_missing", _client_cert_detail(ctx, alert_text)))
    elif outcome == "client_cert_rejected":
        cid = _CLIENT_CERT_BY_ALERT.get(ctx.alert or 0, "client_cert_bad")
        if ctx.chains_to_requested_ca is False:
            issuer = f" (issued by {ctx.cert_issuer})" if ctx.cert_issuer else ""
            out.append(
                (
                    "client_cert_no_matching_ca",
                    f"our certificate {ctx.cert_subject or ''}{issuer} does not chain to any CA"
                    f" the server named; it wanted {_wanted(ctx)}",
                )
            )
        if ctx.cert_expired_on and cid != "client_cert_expired":
            # Servers differ in the alert (OpenSSL 45, GnuTLS 49 access_denied, others 42):
            # a certificate past its notAfter explains any of them, so it comes first.
            out.insert(
                0,
                (
                    "client_cert_expired",
                    f"our certificate {ctx.cert_subject} expired on {ctx.cert_expired_on};"
                    f" the server answered {alert_text or 'with a rejection'}",
                ),
            )
        out.append((cid, _client_cert_detail(ctx, alert_text)))
    elif outcome == "server_cert_untrusted":
        if any(c in (66, 67, 68) for c in ctx.verify_codes):
            out.append(("server_cert_weak_key", ctx.verify_detail))
        elif ctx.untrusted_kind in _UNTRUSTED_CAUSE:
            out.append((_UNTRUSTED_CAUSE[ctx.untrusted_kind], ctx.verify_detail))
            if ctx.untrusted_kind == "missing_intermediate":
                out.append(
                    (
                        "server_cert_unknown_ca",
                        "or the issuer is a root missing from the trust store",
                    )
                )
        else:
            out.append(("server_cert_invalid", ctx.verify_detail))
    elif outcome == "hostname_mismatch":
        out.append(("hostname_mismatch", ctx.hostname_error))
    elif outcome == "peer_error":
        if ctx.alert == 80:
            out.append(("peer_internal_error", alert_text))
        elif ctx.alert == 112:
            # An MQ listener with per-channel certificates (CERTLABL) refuses a client that
            # does not send the channel SNI; on 1414 or with --mq-channel that comes first.
            sent = f"server name sent: {ctx.sni or 'none'}"
            generic = ("unrecognized_name", f"{alert_text}; {sent}")
            if ctx.mq_channel:
                # The channel's SNI was sent and refused: the name, not its absence, is wrong.
                unknown = f"channel {ctx.mq_channel} sent as {ctx.sni}; the listener refused it"
                out.extend([("mq_channel_unknown", unknown), generic])
            else:
                mq = ("mq_channel_sni_required", sent)
                out.extend([mq, generic] if ctx.port == 1414 else [generic, mq])
        else:
            out.append(("peer_alert_other", alert_text))
    if outcome in ("client_cert_required", "client_cert_rejected") or (
        outcome == "protocol_error" and ctx.cert_requested
    ):
        # A CA list a client cannot use (none named, or more than Transfer CFT reads) is why a
        # client holding certificates sends none, so it comes before "no certificate sent".
        if ctx.cert_requested and ctx.ca_names_bytes > CFT_CA_LIST_LIMIT:
            out.insert(
                0,
                (
                    "ca_list_too_large",
                    f"the server's CA list is {ctx.ca_names_bytes} bytes"
                    f" ({ctx.ca_names_count} names)",
                ),
            )
        elif ctx.cert_requested and ctx.ca_names_count == 0:
            out.insert(0, ("ca_list_empty", "the CertificateRequest named no CA"))
    if outcome in ("peer_closed", "post_handshake_close") and ctx.port == 1414:
        out.append(("mq_channel_sni_required", None))
    out.extend(ctx.also)
    return out


@dataclass(frozen=True, slots=True, kw_only=True)
class StartTLSHints:
    causes: frozenset[str]  # the cause ids whose fix gets the protocol's line
    hint: Mapping[str, str]  # protocol -> what a working upgrade looks like


@functools.cache  # read once per process: every STARTTLS diagnosis asks
def load_starttls_hints(path: Path | None = None) -> StartTLSHints:
    """``profiles/starttls_hints.toml``, checked: a line for every protocol of
    ``probe.upgrade.DIALOGS`` and nothing else, cause ids that the knowledge base has."""
    if path is None:
        from .paths import profiles_dir

        path = profiles_dir() / "starttls_hints.toml"
    data = read_toml(path)
    extra = sorted(set(data) - {"causes", "hint"})
    if extra:
        raise DataError(path, extra[0], "unknown key (expected causes, [hint])")
    known = load_causes()
    causes = data.get("causes")
    if not isinstance(causes, list) or not causes:
        raise DataError(path, "causes", "expected a list of cause ids")
    for i, cid in enumerate(causes):
        if cid not in known:
            raise DataError(path, f"causes[{i}]", f"{cid!r} is not a cause id")
    hint = data.get("hint")
    if not isinstance(hint, dict):
        raise DataError(path, "hint", "missing: expected a [hint] table")
    for proto in sorted(set(hint) ^ set(DIALOGS)):
        problem = "no such --starttls protocol" if proto in hint else "missing"
        raise DataError(path, f"hint.{proto}", problem)
    for proto, text in hint.items():
        if not isinstance(text, str) or not text.strip() or "\n" in text:
            raise DataError(path, f"hint.{proto}", "expected one line of text")
    return StartTLSHints(causes=frozenset(causes), hint=MappingProxyType(dict(hint)))


def _fix(cause: Cause, protocol: str | None) -> str:
    hints = load_starttls_hints()
    if protocol is None or cause.id not in hints.causes:
        return cause.fix
    return f"{cause.fix} {hints.hint[protocol]}"


def _vendor_lines(cause: Cause, protocol: str | None) -> tuple[VendorLine, ...]:
    return tuple(
        VendorLine(
            product=v.product,
            codes=v.codes,
            where=v.where,
            text=v.text,
            confidence=v.confidence,
            confirmed=v.confirmed,
        )
        for v in cause.vendor
        if v.applies_to(protocol)
    )


def diagnose(outcome: str, ctx: DiagContext) -> tuple[Diagnosis, ...]:
    causes = load_causes()
    seen: set[str] = set()
    out: list[Diagnosis] = []
    for cid, detail in pick_causes(outcome, ctx):
        if cid in seen:
            continue
        seen.add(cid)
        cause = causes[cid]
        out.append(
            Diagnosis(
                cause=cid,
                summary=cause.summary,
                fix=_fix(cause, ctx.starttls_protocol),
                detail=detail,
                scenario=cause.scenario,
                vendor=_vendor_lines(cause, ctx.starttls_protocol),
            )
        )
    return tuple(out)
