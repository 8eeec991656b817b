"""`tlsprobe overlap A B`: what two partners have in common and what they would negotiate.

Theory of operation
-------------------
A is the initiator (TLS client), B the responder (TLS server). Each is an endpoint
(``HOST:PORT``) or a partner profile (``profile:NAME``, a TOML path, ``mq:SSLCIPH``; see
:mod:`probe.profiles`). Three modes:

* **profile vs profile** -- a prediction from both preference orders (:func:`predict`).
* **endpoint vs profile** -- a real answer: the profile's own ClientHello (its versions, suites in
  its order, groups, signature algorithms) goes to the endpoint through the raw hello engine and
  the ServerHello (or alert) is reported as ``observed``; a ``scan`` of the endpoint gives the
  full per-suite overlap. An endpoint is a listener, so it always plays the server here, in
  whichever argument position it was given.
* **endpoint vs endpoint** -- both are scanned and what each accepts is intersected; what A
  accepts as a server stands in for what it would offer as a client (a scan cannot see a
  client's offer), so a disagreement between the two is ``likely_fails``, not ``fails``.

The prediction itself (TLS rules and IBM MQ semantics) is :mod:`probe.negotiate`.

The vendor messages for a failing pair come from ``profiles/diagnosis.toml`` (the same causes a
probe reports), limited to the products of the two partners when they are known.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass

import trio

from . import ciphers
from .causes import load_causes
from .errors import InputError
from .negotiate import negotiate, predict, version_causes, vname, vnames
from .profiles import Profile, Side, load_profile
from .rawhello import GROUPS, SIGALGS, TLS12_GROUPS, HelloAnswer, Offer, exchange
from .result import SCHEMA_VERSION
from .scan import ScanOptions, ScanResult, scan
from .starttls import resolve_protocol
from .target import Target, parse_target
from .tomldata import SSL_TLS_VERSIONS
from .wire import registry
from .wire.hello import ClientHelloSpec, build_client_hello, make_key_share
from .wire.registry import Suite

VERDICTS = ("connects", "fails", "likely_fails")
MODES = ("profile_profile", "endpoint_profile", "endpoint_endpoint")


# ---------------------------------------------------------------------------------------------
# Results
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class MQNameInfo:
    name: str
    protocol: str
    confidence: str


@dataclass(frozen=True, slots=True, kw_only=True)
class CodeInfo:
    value: str
    confidence: str  # C | K | U | inferred


@dataclass(frozen=True, slots=True, kw_only=True)
class SuiteEntry:
    """A suite in an overlap, with the names each vendor gives it."""

    code: str  # "0xC02F"
    iana: str | None  # None for the few non-IANA codepoints vendors use
    name: str
    openssl: str | None
    versions: tuple[str, ...]  # where this entry applies (both: the versions both sides use it)
    mq: tuple[MQNameInfo, ...]
    gskit: CodeInfo | None  # the 2-character code for 0x00XX suites, else the 4-character one
    cft: CodeInfo | None
    weak: tuple[str, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class PartyInfo:
    kind: str  # "profile" | "endpoint"
    name: str
    role: str  # "client" | "server"
    description: str | None
    source: str | None
    product: str | None
    versions: tuple[str, ...]
    suites: int
    sslciph: str | None = None
    derived: str | None = None
    notes: tuple[str, ...] = ()
    confidence: str | None = None  # of a profile's facts: C | K | U
    scan_outcome: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Predicted:
    version: str
    cipher: SuiteEntry
    basis: str  # "observed" (a real ServerHello) | "predicted"


@dataclass(frozen=True, slots=True, kw_only=True)
class Observed:
    """The endpoint's real answer to the profile's ClientHello."""

    answer: str  # server_hello | alert | eof | not_tls | timeout | tcp_error | starttls_refused
    version: str | None
    cipher: SuiteEntry | None
    alert: int | None
    alert_name: str | None
    detail: str | None


@dataclass(frozen=True, slots=True, kw_only=True)
class Message:
    """What a vendor product logs for the failure (from profiles/diagnosis.toml)."""

    cause: str
    product: str
    codes: tuple[str, ...]
    where: str
    text: str
    confidence: str


@dataclass(frozen=True, slots=True, kw_only=True)
class OverlapResult:
    a: PartyInfo
    b: PartyInfo
    mode: str
    common_versions: tuple[str, ...]
    both: tuple[SuiteEntry, ...]
    only_a: tuple[SuiteEntry, ...]
    only_b: tuple[SuiteEntry, ...]
    predicted: Predicted | None
    verdict: str
    reason: str
    messages: tuple[Message, ...]
    causes: tuple[str, ...]
    steps: tuple[str, ...]  # how the verdict was reached, in words
    observed: Observed | None = None
    schema_version: int = SCHEMA_VERSION

    @property
    def ok(self) -> bool:
        return self.verdict == "connects"


# ---------------------------------------------------------------------------------------------
# Suite sets and entries
# ---------------------------------------------------------------------------------------------


def suite_entry(s: Suite, versions: Iterable[int] = (), *, mq_at: int | None = None) -> SuiteEntry:
    """A suite with its vendor names; ``mq_at`` keeps only the MQ name of that version."""
    r = ciphers.row(s.code)
    vs = tuple(vname(v) for v in sorted(set(versions)))
    if r is None:
        return SuiteEntry(
            code=s.hex,
            iana=s.iana,
            name=s.iana,
            openssl=s.openssl,
            versions=vs,
            mq=(),
            gskit=None,
            cft=None,
            weak=tuple(registry.is_weak(s)),
        )
    gsk = r.gsk_short or r.gsk_long
    return SuiteEntry(
        code=s.hex,
        iana=s.iana if r.iana_assigned else None,
        name=s.iana,
        openssl=s.openssl or r.openssl_legacy,
        versions=vs,
        mq=tuple(
            MQNameInfo(name=m.name, protocol=m.protocol_name, confidence=m.confidence)
            for m in r.mq
            if mq_at is None or m.protocol == mq_at
        ),
        gskit=CodeInfo(value=gsk.value, confidence=gsk.confidence) if gsk else None,
        cft=CodeInfo(value=r.cft.value, confidence=r.cft.confidence) if r.cft else None,
        weak=tuple(registry.is_weak(s)),
    )


def _pairs(side: Side) -> dict[Suite, list[int]]:
    """Suite -> versions at which this side can use it, in the side's order."""
    out: dict[Suite, list[int]] = {}
    for v in side.versions:
        for s in side.suites_at(v):
            if not s.scsv:
                out.setdefault(s, []).append(v)
    # Keep the side's own order (suites_at preserves it per version; merge by first sight).
    order = [s for s in side.suites if s in out]
    order += [s for s in out if s not in order]
    return {s: out[s] for s in order}


def split_sets(
    client: Side, server: Side
) -> tuple[tuple[SuiteEntry, ...], tuple[SuiteEntry, ...], tuple[SuiteEntry, ...]]:
    """Suites usable by both at a common version, by the client only, by the server only."""
    a, b = _pairs(client), _pairs(server)
    both_order = list(b) if server.server_preference else list(a)
    both: list[SuiteEntry] = []
    in_both: set[Suite] = set()
    for s in both_order:
        common = sorted(set(a.get(s, ())) & set(b.get(s, ())))
        if common:
            both.append(suite_entry(s, common))
            in_both.add(s)
    only_a = tuple(suite_entry(s, vs) for s, vs in a.items() if s not in in_both)
    only_b = tuple(suite_entry(s, vs) for s, vs in b.items() if s not in in_both)
    return tuple(both), only_a, only_b


# ---------------------------------------------------------------------------------------------
# Vendor messages
# ---------------------------------------------------------------------------------------------


def messages_for(causes: Iterable[str], products: Iterable[str | None]) -> tuple[Message, ...]:
    """Vendor lines of the causes, for the partners' products (all products if none known)."""
    wanted = {p for p in products if p}
    data = load_causes()
    out: list[Message] = []
    for cid in dict.fromkeys(causes):
        cause = data.get(cid)
        if cause is None:
            continue
        for v in cause.vendor:
            if wanted and v.product not in wanted:
                continue
            out.append(
                Message(
                    cause=cid,
                    product=v.product,
                    codes=v.codes,
                    where=v.where,
                    text=v.text,
                    confidence=v.confidence,
                )
            )
    return tuple(out)


# ---------------------------------------------------------------------------------------------
# Parties
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class Party:
    """One argument of `overlap`: a profile or an endpoint."""

    text: str
    profile: Profile | None = None
    target: Target | None = None


def parse_party(text: str) -> Party:
    """``profile:NAME``, a TOML path, ``mq:SSLCIPH`` or ``HOST:PORT``."""
    raw = text.strip()
    low = raw.lower()
    if low.startswith("profile:"):
        return Party(text=raw, profile=load_profile(raw[len("profile:") :]))
    if low.startswith("mq:"):
        return Party(text=raw, profile=load_profile(raw))
    if low.endswith(".toml") or os.path.isfile(raw):
        return Party(text=raw, profile=load_profile(raw if "/" in raw else f"./{raw}"))
    target = parse_target(raw, default_port=0)
    if target.port == 0:
        raise InputError(
            f"{raw!r}: give HOST:PORT for an endpoint, or profile:NAME, a TOML path or"
            " mq:SSLCIPH for a partner profile"
        )
    return Party(text=raw, target=target)


def _profile_info(p: Profile, role: str, label: str) -> PartyInfo:
    side = p.client if role == "client" else p.server
    return PartyInfo(
        kind="profile",
        name=label,
        role=role,
        description=p.description,
        source=p.source,
        product=p.product,
        versions=tuple(map(vname, side.versions)),
        suites=len([s for s in side.suites if not s.scsv]),
        sslciph=p.mq.sslciph if p.mq else None,
        derived=side.derived,
        notes=p.notes,
        confidence=p.confidence,
    )


def _profile_label(party: Party) -> str:
    assert party.profile is not None
    if party.text.lower().startswith(("profile:", "mq:")):
        return party.text
    return f"profile:{party.profile.path or party.profile.name}"


# ---------------------------------------------------------------------------------------------
# Modes
# ---------------------------------------------------------------------------------------------


def overlap_profiles(a: Party, b: Party) -> OverlapResult:
    assert a.profile is not None and b.profile is not None
    pa, pb = a.profile, b.profile
    n = predict(pa, pb)
    both, only_a, only_b = split_sets(pa.client, pb.server)
    common = sorted(set(pa.client.versions) & set(pb.server.versions))
    predicted = (
        Predicted(
            version=vname(n.version),
            cipher=suite_entry(n.suite, [n.version], mq_at=n.version),
            basis="predicted",
        )
        if n.version is not None and n.suite is not None
        else None
    )
    causes = tuple(c for c, _ in n.causes)
    return OverlapResult(
        a=_profile_info(pa, "client", _profile_label(a)),
        b=_profile_info(pb, "server", _profile_label(b)),
        mode="profile_profile",
        common_versions=tuple(map(vname, common)),
        both=both,
        only_a=only_a,
        only_b=only_b,
        predicted=predicted,
        verdict=n.verdict,
        reason=n.reason,
        messages=messages_for(causes, (pa.product, pb.product)) if n.verdict != "connects" else (),
        causes=causes,
        steps=n.steps,
    )


def endpoint_side(result: ScanResult) -> Side:
    """What a scanned endpoint accepts, per version, in its order."""
    by_version: list[tuple[int, tuple[Suite, ...]]] = []
    order: list[Suite] = []
    for p in result.protocols:
        v = registry.find_version(p.version)
        if v is None or v not in SSL_TLS_VERSIONS or not p.supported:
            continue
        suites = tuple(s for c in p.ciphers if (s := ciphers.suite_for(int(c.code, 16))))
        by_version.append((v, suites))
        order += [s for s in suites if s not in order]
    return Side(
        versions=tuple(sorted(v for v, _ in by_version)),
        suites=tuple(order),
        by_version=tuple(sorted(by_version)),
        server_preference=any(p.server_order for p in result.protocols),
        derived="from a scan of the endpoint",
    )


def _endpoint_info(t: Target, role: str, side: Side | None, res: ScanResult | None) -> PartyInfo:
    return PartyInfo(
        kind="endpoint",
        name=str(t),
        role=role,
        description=None,
        source=None,
        product=None,
        versions=tuple(map(vname, side.versions)) if side else (),
        suites=len(side.suites) if side else 0,
        derived=side.derived if side else None,
        scan_outcome=res.outcome if res else None,
    )


def _scan_failure(res: ScanResult) -> tuple[str, str]:
    cause = {
        "refused": "port_closed",
        "unreachable": "host_unreachable",
        "dns_failure": "name_not_resolved",
    }.get(res.outcome, "peer_closed_during_handshake")
    return cause, f"{res.target}: {res.outcome} ({res.error or 'no detail'})"


async def _scan(t: Target, timeout: float) -> ScanResult:
    return await scan(
        ScanOptions(
            target=t,
            starttls=resolve_protocol("auto", t.port),
            sni=None if t.is_ip else t.host,
            timeout=timeout,
        )
    )


async def overlap_endpoints(a: Party, b: Party, *, timeout: float) -> OverlapResult:
    assert a.target is not None and b.target is not None
    results: dict[str, ScanResult] = {}

    async def one(key: str, t: Target) -> None:
        results[key] = await _scan(t, timeout)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(one, "a", a.target)
        nursery.start_soon(one, "b", b.target)
    ra, rb = results["a"], results["b"]
    for res in (ra, rb):
        if res.outcome != "scanned":
            cause, detail = _scan_failure(res)
            return OverlapResult(
                a=_endpoint_info(a.target, "client", None, ra),
                b=_endpoint_info(b.target, "server", None, rb),
                mode="endpoint_endpoint",
                common_versions=(),
                both=(),
                only_a=(),
                only_b=(),
                predicted=None,
                verdict="fails",
                reason=detail,
                messages=messages_for([cause], ()),
                causes=(cause,),
                steps=(f"scan of {res.target}: {res.outcome}",),
            )
    sa, sb = endpoint_side(ra), endpoint_side(rb)
    # A as a client is unknown: what it accepts stands in for what it offers, in its order.
    client = Side(
        versions=sa.versions,
        suites=sa.suites,
        by_version=sa.by_version,
        has_certificate=True,
        derived="what A accepts as a server stands in for what it offers as a client",
    )
    n = negotiate(client, sb)
    both, only_a, only_b = split_sets(client, sb)
    common = sorted(set(sa.versions) & set(sb.versions))
    steps = [
        f"scanned {ra.target}: {vnames(sa.versions)}, {len(sa.suites)} suites",
        f"scanned {rb.target}: {vnames(sb.versions)}, {len(sb.suites)} suites",
        *n.steps,
    ]
    verdict, reason = n.verdict, n.reason
    if verdict == "fails" and both:
        # Suites meet at some version, just not at the one this model picks: a real client of A
        # may well be configured differently from A's listener.
        verdict = "likely_fails"
        reason += " (suites do meet at another common version)"
    causes = tuple(c for c, _ in n.causes)
    predicted = (
        Predicted(
            version=vname(n.version),
            cipher=suite_entry(n.suite, [n.version], mq_at=n.version),
            basis="predicted",
        )
        if n.version is not None and n.suite is not None
        else None
    )
    return OverlapResult(
        a=_endpoint_info(a.target, "client", sa, ra),
        b=_endpoint_info(b.target, "server", sb, rb),
        mode="endpoint_endpoint",
        common_versions=tuple(map(vname, common)),
        both=both,
        only_a=only_a,
        only_b=only_b,
        predicted=predicted,
        verdict=verdict,
        reason=reason,
        messages=messages_for(causes, ()) if verdict != "connects" else (),
        causes=causes,
        steps=tuple(steps),
    )


def profile_hello(side: Side, sni: str | None) -> bytes | Offer:
    """The profile's own ClientHello: an engine Offer when it tops out at TLS 1.2 or below
    (one version in the hello, as such clients send), else codec-built bytes carrying every
    version in supported_versions (RFC 8446 §4.2.1), which an Offer cannot express."""
    top = max(side.versions)
    codes = [s.code for s in side.suites if s.code != 0x00FF]
    ec = tuple(g for g in side.groups or () if g <= 41) or None
    if top < 0x0304:
        return Offer(version=top, suites=tuple(codes), groups=ec or TLS12_GROUPS, sni=sni)
    groups = side.groups or GROUPS
    shares = []
    for g in groups:
        try:
            shares.append(make_key_share(g))
        except (ValueError, KeyError):
            continue
        break
    legacy = any(v < 0x0304 for v in side.versions)
    spec = ClientHelloSpec(
        legacy_version=0x0303,
        suites=(*codes, 0x00FF) if legacy else tuple(codes),
        random=os.urandom(32),
        session_id=os.urandom(32),
        server_name=sni,
        supported_versions=tuple(sorted(side.versions, reverse=True)),
        groups=groups,
        signature_algorithms=side.signature_algorithms or SIGALGS,
        key_shares=tuple(shares),
        ec_point_formats=(0,) if legacy else None,
        extended_master_secret=legacy,
    )
    return build_client_hello(spec)


async def send_hello(
    target: Target, hello: bytes | Offer, *, timeout: float, starttls: str
) -> HelloAnswer:
    """One connection through the raw hello engine: an Offer, or caller-built hello bytes."""
    return await exchange(target, hello, timeout=timeout, starttls=starttls)


_ANSWER_CAUSE = {
    "eof": "peer_closed_during_handshake",
    "not_tls": "peer_not_tls",
    "timeout": "handshake_timeout",
}
_ALERT_CAUSE = {40: "no_shared_cipher", 71: "insufficient_security", 80: "peer_internal_error"}


async def overlap_endpoint_profile(
    endpoint: Party, profile: Party, *, endpoint_is_a: bool, timeout: float
) -> OverlapResult:
    assert endpoint.target is not None and profile.profile is not None
    t, p = endpoint.target, profile.profile
    starttls = resolve_protocol("auto", t.port)
    sni = None if t.is_ip else t.host
    answers: dict[str, HelloAnswer] = {}
    scans: dict[str, ScanResult] = {}

    async def ask() -> None:
        answers["hello"] = await send_hello(
            t, profile_hello(p.client, sni), timeout=timeout, starttls=starttls
        )

    async def survey() -> None:
        scans["scan"] = await _scan(t, timeout)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(ask)
        nursery.start_soon(survey)
    ans, res = answers["hello"], scans["scan"]
    side = endpoint_side(res) if res.outcome == "scanned" else None
    p_info = _profile_info(p, "client", _profile_label(profile))
    e_info = _endpoint_info(t, "server", side, res)
    a_info, b_info = (e_info, p_info) if endpoint_is_a else (p_info, e_info)
    steps = [
        f"sent {p_info.name}'s ClientHello ({vnames(p.client.versions)},"
        f" {p_info.suites} suites) to {t}"
    ]

    observed = _observed(ans)
    verdict, reason, causes = _judge_answer(ans, p.client, side)
    # Many stacks answer a version they cannot meet with handshake_failure (40), not 70.
    no_version = side is not None and not set(p.client.versions) & set(side.versions)
    if verdict != "connects" and side is not None and side.versions and no_version:
        causes = [version_causes(p.client, side)[0], *causes]
    steps.append(f"{t} answered: {_describe(observed)}")
    if side is not None:
        n = negotiate(p.client, side)
        guess = f"{vname(n.version)} {n.suite.iana}" if n.version and n.suite else n.reason
        steps.append(f"prediction from the scan: {guess}")
    predicted = None
    if observed.version and observed.cipher and verdict == "connects":
        predicted = Predicted(version=observed.version, cipher=observed.cipher, basis="observed")
    if side is not None:
        both, only_p, only_e = split_sets(p.client, side)
        common = sorted(set(p.client.versions) & set(side.versions))
    else:
        both, only_p, only_e, common = (), (), (), []
        steps.append(f"scan of {t}: {res.outcome}")
    only_a, only_b = (only_e, only_p) if endpoint_is_a else (only_p, only_e)
    return OverlapResult(
        a=a_info,
        b=b_info,
        mode="endpoint_profile",
        common_versions=tuple(map(vname, common)),
        both=both,
        only_a=only_a,
        only_b=only_b,
        predicted=predicted,
        verdict=verdict,
        reason=reason,
        messages=messages_for(causes, (p.product,)) if verdict != "connects" else (),
        causes=tuple(causes),
        steps=tuple(steps),
        observed=observed,
    )


def _observed(ans: HelloAnswer) -> Observed:
    if ans.kind == "server_hello" and ans.server_hello is not None:
        v, code = ans.version, ans.cipher
        s = ciphers.suite_for(code) if code is not None else None
        entry = suite_entry(s, [v] if v else [], mq_at=v) if s else None
        if s is None and code is not None:
            entry = SuiteEntry(
                code=f"0x{code:04X}",
                iana=None,
                name=f"unknown 0x{code:04X}",
                openssl=None,
                versions=(),
                mq=(),
                gskit=None,
                cft=None,
                weak=(),
            )
        return Observed(
            answer="server_hello",
            version=vname(v) if v else None,
            cipher=entry,
            alert=None,
            alert_name=None,
            detail=None,
        )
    name = registry.alert_name(ans.alert) if ans.alert is not None else None
    return Observed(
        answer=ans.kind,
        version=None,
        cipher=None,
        alert=ans.alert,
        alert_name=name,
        detail=ans.detail or None,
    )


def _describe(o: Observed) -> str:
    if o.answer == "server_hello" and o.cipher is not None:
        return f"ServerHello {o.version} {o.cipher.code} {o.cipher.name}"
    if o.answer == "alert":
        return f"alert {o.alert} {o.alert_name or ''}".strip()
    return o.answer + (f" ({o.detail})" if o.detail else "")


def _judge_answer(
    ans: HelloAnswer, client: Side, server: Side | None
) -> tuple[str, str, list[str]]:
    if ans.kind == "server_hello" and ans.version is not None and ans.cipher is not None:
        if ans.version not in client.versions:
            return (
                "fails",
                f"the server chose {vname(ans.version)}, which the profile does not enable",
                ["version_mismatch"],
            )
        if ans.cipher not in {s.code for s in client.suites}:
            return (
                "fails",
                f"the server chose 0x{ans.cipher:04X}, which the profile did not offer",
                ["protocol_violation"],
            )
        s = ciphers.suite_for(ans.cipher)
        return "connects", f"{vname(ans.version)} with {s.iana if s else hex(ans.cipher)}", []
    if ans.kind == "alert":
        if ans.alert == 70:
            cause = (
                version_causes(client, server)[0]
                if server and server.versions
                else ("version_mismatch")
            )
            return "fails", "the server refused the protocol versions (alert 70)", [cause]
        cause = _ALERT_CAUSE.get(ans.alert or 0, "peer_alert_other")
        causes = [cause]
        if (
            cause == "no_shared_cipher"
            and server
            and server.suites
            and all(registry.is_weak(s) for s in server.suites)
        ):
            causes.append("legacy_cipher_only")
        name = registry.alert_name(ans.alert) if ans.alert is not None else None
        return "fails", f"the server answered alert {ans.alert} {name or ''}".strip(), causes
    if ans.kind == "tcp_error":
        return "fails", f"no connection: {ans.detail}", ["port_closed"]
    if ans.kind == "starttls_refused":
        return "fails", f"the plaintext upgrade failed: {ans.detail}", ["starttls_refused"]
    return (
        "fails",
        f"the server answered {ans.kind}",
        [_ANSWER_CAUSE.get(ans.kind, "peer_alert_other")],
    )


async def run_overlap(a_text: str, b_text: str, *, timeout: float = 5.0) -> OverlapResult:
    """Parse both arguments (InputError on bad input) and run the matching mode."""
    a, b = parse_party(a_text), parse_party(b_text)
    if a.profile is not None and b.profile is not None:
        return overlap_profiles(a, b)
    if a.target is not None and b.target is not None:
        return await overlap_endpoints(a, b, timeout=timeout)
    if a.target is not None:
        return await overlap_endpoint_profile(a, b, endpoint_is_a=True, timeout=timeout)
    return await overlap_endpoint_profile(b, a, endpoint_is_a=False, timeout=timeout)
