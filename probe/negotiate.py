"""What two TLS configurations would negotiate: a pure prediction, no I/O.

The prediction (TLS, RFC 5246 §7.4.1 / RFC 8446 §4.1.3): the version is the highest both enable
(no real stack falls back to a lower version because the suites do not match); the suites are
those usable at that version on both sides (a server whose certificate key does not fit a
suite's authentication cannot pick it; with both group lists known, ECDHE needs a common group
and TLS 1.3 needs one at all); the server picks by its own order when it has
``server_preference``, else by the client's. No common version: ``fails`` (protocol_version
alert). No common suite at that version: ``fails`` (handshake_failure). A server that requires a
client certificate and a client without one: ``fails``.

IBM MQ semantics (vendor-codes.md §1a; derived here and held to IBM's alias matrix by the tests)
-------------------------------------------------------------------------------------------------
1. The queue manager's listener negotiates TLS before it knows the channel: it accepts every
   CipherSpec the queue manager enables (MQ 9.2+: TLS 1.2 and TLS 1.3 queue-manager-wide), at the
   highest protocol both ends enable, and picks the suite by its own order (TLS 1.3 first;
   TLS_CHACHA20_POLY1305_SHA256, TLS_AES_256_GCM_SHA384, TLS_AES_128_GCM_SHA256, ...).
2. An initiating channel offers only what its SSLCIPH allows: a specific CipherSpec is exactly
   one suite at its protocol version; an alias is every enabled suite in its version range.
3. After the handshake the *responding* channel checks the result against its own SSLCIPH: a
   specific CipherSpec must be the negotiated suite at its protocol, an alias must contain the
   negotiated version. A refusal is AMQ9631 at the responder and AMQ9641 at the initiator
   (CSQX631E / CSQX641E on z/OS).
4. When the initiator offers several suites at the negotiated version and the responder pins one
   of them, the outcome depends on which one the handshake picks (platform, AllowedCipherSpecs,
   the client's order): ``likely_fails``, whatever this model predicts the pick to be.

These four rules give every cell of IBM's matrix (client row, server column; C connects,
F fails, L likely fails), with TLS 1.3 enabled on both queue managers:

    client \\ server  spec1.2  spec1.3  ANY  ANY_TLS12  ANY_TLS13  ANY_TLS12+  ANY_TLS13+
    specific 1.2        C        F      C       C          F          C           F
    specific 1.3        F        C      C       F          C          C           C
    ANY                 F        L      C       F          C          C           C
    ANY_TLS12           L        F      C       C          F          C           F
    ANY_TLS13           F        L      C       F          C          C           C

(ANY_TLS12+ is ANY_TLS12_OR_HIGHER, ANY_TLS13+ is ANY_TLS13_OR_HIGHER.)
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from . import ciphers
from .profiles import Profile, Side
from .wire import registry
from .wire.registry import Suite

# ---------------------------------------------------------------------------------------------
# Prediction from two sides
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class Negotiation:
    version: int | None
    suite: Suite | None
    common: tuple[Suite, ...]  # usable by both at `version`, in the order the server picks
    verdict: str
    reason: str
    causes: tuple[tuple[str, str | None], ...]
    steps: tuple[str, ...]


def vname(v: int) -> str:
    return registry.version_name(v) or f"0x{v:04X}"


def vnames(vs: Iterable[int]) -> str:
    return ", ".join(vname(v) for v in vs) or "none"


def _slabel(s: Suite) -> str:
    return f"{s.hex} {s.iana}"


_AUTH_KEY = {"RSA": "RSA", "ECDSA": "ECDSA", "DSS": "DSA"}


def _cert_fits(s: Suite, server: Side) -> bool:
    if server.certificate_keys is None or s.tls13 or s.scsv:
        return True
    key = _AUTH_KEY.get(s.auth)
    return key is None or key in server.certificate_keys


def _ec_groups(groups: Sequence[int] | None) -> set[int] | None:
    return None if groups is None else {g for g in groups if g <= 41}


def _group_fits(s: Suite, client: Side, server: Side) -> bool:
    if s.kx not in ("ECDHE", "ECDH") or s.tls13:
        return True
    a, b = _ec_groups(client.groups), _ec_groups(server.groups)
    return a is None or b is None or bool(a & b)


def version_causes(client: Side, server: Side) -> tuple[str, str]:
    """The diagnosis cause for versions that do not meet, from the client's point of view."""
    if max(server.versions) < min(client.versions):
        return (
            "partner_version_too_old",
            f"the server stops at {vname(max(server.versions))}; the client starts at"
            f" {vname(min(client.versions))}",
        )
    if min(server.versions) > max(client.versions):
        return (
            "partner_version_too_new",
            f"the server starts at {vname(min(server.versions))}; the client stops at"
            f" {vname(max(client.versions))}",
        )
    return (
        "version_mismatch",
        f"client {vnames(client.versions)}; server {vnames(server.versions)}",
    )


def negotiate(client: Side, server: Side) -> Negotiation:
    """The TLS handshake between two sides, without vendor post-checks (module docstring)."""
    steps = [
        f"client offers {vnames(client.versions)} and {len(client.suites)} suites",
        f"server accepts {vnames(server.versions)} and {len(server.suites)} suites, picking by "
        + ("its own order" if server.server_preference else "the client's order"),
    ]
    common_versions = sorted(set(client.versions) & set(server.versions))
    if not common_versions:
        cause = version_causes(client, server)
        steps.append("no protocol version in common: the server answers protocol_version (70)")
        return Negotiation(
            version=None,
            suite=None,
            common=(),
            verdict="fails",
            reason=f"no protocol version in common ({cause[1]})",
            causes=(cause,),
            steps=tuple(steps),
        )
    v = common_versions[-1]
    steps.append(f"negotiated version: {vname(v)} (the highest both enable)")
    offered = client.suites_at(v)
    accepted = [s for s in server.suites_at(v) if _cert_fits(s, server)]
    groups_known = client.groups is not None and server.groups is not None
    if v == 0x0304 and groups_known and not set(client.groups or ()) & set(server.groups or ()):
        steps.append("TLS 1.3 needs a key-exchange group both support: there is none")
        return Negotiation(
            version=v,
            suite=None,
            common=(),
            verdict="fails",
            reason="no key-exchange group in common for TLS 1.3",
            causes=(("no_shared_cipher", "no key-exchange group in common"),),
            steps=tuple(steps),
        )
    accepted = [s for s in accepted if _group_fits(s, client, server)]
    if server.server_preference:
        common = [s for s in accepted if s in offered]
    else:
        common = [s for s in offered if s in accepted]
    if not common:
        steps.append(f"no suite in common at {vname(v)}: the server answers handshake_failure (40)")
        causes: list[tuple[str, str | None]] = [
            ("no_shared_cipher", f"no suite in common at {vname(v)}")
        ]
        if accepted and all(registry.is_weak(s) for s in accepted):
            causes.append(("legacy_cipher_only", "the server accepts only legacy suites"))
        return Negotiation(
            version=v,
            suite=None,
            common=(),
            verdict="fails",
            reason=f"no cipher suite in common at {vname(v)}",
            causes=tuple(causes),
            steps=tuple(steps),
        )
    pick = common[0]
    steps.append(f"{len(common)} suites in common at {vname(v)}; the server picks {_slabel(pick)}")
    if server.client_certificate == "required" and not client.has_certificate:
        steps.append("the server requires a client certificate and the client has none")
        return Negotiation(
            version=v,
            suite=pick,
            common=tuple(common),
            verdict="fails",
            reason="the server requires a client certificate; the client has none",
            causes=(("client_cert_missing", None),),
            steps=tuple(steps),
        )
    return Negotiation(
        version=v,
        suite=pick,
        common=tuple(common),
        verdict="connects",
        reason=f"{vname(v)} with {pick.iana}",
        causes=(),
        steps=tuple(steps),
    )


def predict(a: Profile, b: Profile) -> Negotiation:
    """A (initiator, client side) against B (responder, server side), MQ rules included."""
    n = negotiate(a.client, b.server)
    if n.verdict != "connects" or n.version is None or n.suite is None:
        return n
    steps = list(n.steps)
    v, pick = n.version, n.suite
    if b.mq is not None:
        ch = b.mq
        if ch.spec is not None:
            pinned = ciphers.suite_for(ch.spec.code)
            if ch.spec.protocol == v and pinned in n.common and len(n.common) > 1:
                steps.append(
                    f"B's SSLCIPH({ch.sslciph}) pins one of the {len(n.common)} suites A offers at"
                    f" {vname(v)}: it holds only if the handshake picks it (this model picks"
                    f" {pick.iana})"
                )
                return _mq_refusal(
                    n,
                    steps,
                    "likely_fails",
                    f"B pins {ch.sslciph} ({vname(ch.spec.protocol)}) while A"
                    f" offers {len(n.common)} suites at {vname(v)}: the outcome"
                    " depends on the handshake's pick",
                )
            if not ch.admits(v, pick.code):
                steps.append(
                    f"B's SSLCIPH({ch.sslciph}) requires {ch.spec.name} at"
                    f" {ch.spec.protocol_name}; the handshake gave {pick.iana} at {vname(v)}"
                )
                return _mq_refusal(
                    n, steps, "fails", f"B's SSLCIPH({ch.sslciph}) refuses {vname(v)} {pick.iana}"
                )
            steps.append(f"B's SSLCIPH({ch.sslciph}) matches the negotiated suite")
        else:
            assert ch.alias is not None
            if not ch.admits(v, pick.code):
                steps.append(f"B's SSLCIPH({ch.sslciph}) does not admit {vname(v)}")
                return _mq_refusal(
                    n, steps, "fails", f"B's SSLCIPH({ch.sslciph}) does not admit {vname(v)}"
                )
            steps.append(f"B's SSLCIPH({ch.sslciph}) admits {vname(v)}")
    if a.mq is not None and not a.mq.admits(v, pick.code):
        steps.append(f"A's own SSLCIPH({a.mq.sslciph}) does not admit {vname(v)} {pick.iana}")
        return _mq_refusal(
            n, steps, "fails", f"A's SSLCIPH({a.mq.sslciph}) refuses what was negotiated"
        )
    return Negotiation(
        version=v,
        suite=pick,
        common=n.common,
        verdict="connects",
        reason=n.reason,
        causes=(),
        steps=tuple(steps),
    )


def _mq_refusal(n: Negotiation, steps: list[str], verdict: str, reason: str) -> Negotiation:
    return Negotiation(
        version=n.version,
        suite=n.suite,
        common=n.common,
        verdict=verdict,
        reason=reason,
        causes=(("mq_cipherspec_mismatch", reason),),
        steps=tuple(steps),
    )
