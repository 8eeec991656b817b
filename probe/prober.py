"""One probe: TCP, the optional plaintext upgrade, a real handshake, verification, and the short
read after it; then the facts go to ``outcome.classify`` and ``diagnose.diagnose``.

Each phase has its own deadline (``timeout``), so a silent listener is a ``timeout`` in the phase
where it went silent, never a hang.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

import trio
from cryptography import x509

from . import diagnose as diag
from . import net, outcome, verify
from .defaults import DEFAULT_GRACE, DEFAULT_TIMEOUT
from .engine import ClientEngine, to_cryptography
from .identity import ClientIdentity
from .mq import channel_sni
from .result import (
    AlertInfo,
    ClientAuth,
    Negotiated,
    ProbeResult,
    StartTLSInfo,
    SuiteInfo,
    TraceEntry,
    Verification,
    VerifyError,
)
from .target import Target
from .tlsconfig import Offer, build_context, openssl_offers
from .upgrade import StartTLSLog
from .wire import registry
from .wire.errors import DecodeError
from .wire.handshake import HandshakeType
from .wire.messages import (
    CertificateRequest,
    ServerHello,
    decode_dn,
    parse_certificate,
    parse_certificate_request,
    parse_server_key_exchange,
)
from .wire.transcript import Transcript


@dataclass(frozen=True, slots=True, kw_only=True)
class ProbeRequest:
    target: Target
    starttls: str = "none"  # already resolved: "none" or a protocol of probe.upgrade.DIALOGS
    sni: str | None = None
    offer: Offer
    identity: ClientIdentity | None = None
    ca_file: Path | None = None
    verify: bool = True
    timeout: float = DEFAULT_TIMEOUT
    grace: float = DEFAULT_GRACE
    trace: bool = False
    mq_channel: str | None = None
    # Extra raw hellos after a version mismatch, to say which versions the partner does accept.
    partner_versions: bool = True


@dataclass(slots=True)
class _Run:
    """Mutable facts gathered while one probe runs; frozen into a ProbeResult at the end."""

    req: ProbeRequest
    timings: dict[str, float]
    tcp_failure: net.TcpFailure | None = None
    timed_out_in: str | None = None
    starttls: StartTLSLog | None = None
    engine: ClientEngine | None = None
    pump: net.PumpEnd | None = None
    post: net.PostEnd | None = None
    partner_versions: tuple[int, ...] | None = None
    partner_suites: tuple[int, ...] = ()  # what the partner picked at those versions


def _sni(req: ProbeRequest) -> str | None:
    if req.mq_channel is not None:
        return channel_sni(req.mq_channel)
    if req.sni is not None:
        return req.sni or None
    return None if req.target.is_ip else req.target.host


_CERT_OUTCOMES = frozenset(
    {"server_cert_untrusted", "server_cert_expired", "server_cert_not_yet_valid",
     "hostname_mismatch"}
)  # fmt: skip


async def partner_versions_of(req: ProbeRequest) -> tuple[tuple[int, int], ...]:
    """(version, suite picked) for each version the partner accepts (raw hellos, one per
    version). They depend only on the target, SNI and STARTTLS dialog, so probes of one target
    may share one answer."""
    from .rawhello import accepted_versions

    return await accepted_versions(
        req.target, sni=_sni(req), timeout=min(req.timeout, 5.0), starttls=req.starttls
    )


# How a probe learns the partner's versions after a version mismatch; callers probing one
# target many times (`matrix`) pass one that asks once and shares the answer.
PartnerLookup = Callable[[ProbeRequest], Awaitable[tuple[tuple[int, int], ...]]]


async def run_probe(
    req: ProbeRequest, *, partner_lookup: PartnerLookup = partner_versions_of
) -> ProbeResult:
    run = _Run(req=req, timings={})
    started = time.perf_counter()

    def mark(name: str) -> None:
        run.timings[name] = round((time.perf_counter() - started) * 1000, 2)

    stream = None
    with trio.move_on_after(req.timeout) as scope:
        got = await net.connect_tcp(req.target.host, req.target.port)
        if isinstance(got, net.TcpFailure):
            run.tcp_failure = got
        else:
            stream = got
    mark("tcp")
    if scope.cancelled_caught:
        run.timed_out_in = "tcp"
    if stream is not None:
        try:
            await _after_connect(run, stream, mark)
        finally:
            # What ``async with stream`` does, minus its closing checkpoint (one more trip
            # through the scheduler per probe, for nothing: closing never blocks).
            stream.socket.close()
    if run.engine is not None and _version_rejected(run) and req.partner_versions:
        picks = await partner_lookup(req)
        run.partner_versions = tuple(v for v, _ in picks)
        run.partner_suites = tuple(dict.fromkeys(c for _, c in picks))
        mark("partner_versions")
    mark("total")
    return _result(run)


async def _after_connect(run: _Run, stream: trio.SocketStream, mark: Callable[[str], None]) -> None:
    req = run.req
    if req.starttls != "none":
        dialog = net.upgrade_dialog(stream, req.starttls)
        with trio.move_on_after(req.timeout):
            await net.starttls(stream, dialog)
        mark("starttls")
        # A stall keeps what was exchanged: the transcript up to the unanswered step is the
        # evidence (a greeting and then silence is not the same fault as no greeting at all).
        run.starttls = dialog.log
        if not dialog.done:
            dialog.stalled(req.timeout)
            run.timed_out_in = "starttls"
            return
        if not dialog.log.upgraded:
            return
    ctx = build_context(req.offer, identity=req.identity, ca_file=req.ca_file)
    sni = _sni(req)
    check_name = None if req.mq_channel else (req.sni or req.target.host)
    engine = ClientEngine(
        ctx,
        server_name=sni,
        transcript=Transcript(keep_decrypted=req.trace),
        verify=req.verify,
        hostname_check=verify.hostname_checker(check_name) if check_name else None,
        verify_host=check_name,
    )
    run.engine = engine
    pump = None
    with trio.move_on_after(req.timeout):
        pump = await net.pump_handshake(stream, engine)
    mark("handshake")
    if pump is None:
        run.timed_out_in = "handshake"
        return
    run.pump = pump
    if pump.how == "done":
        if req.starttls == "ftp" and run.starttls is not None and req.grace > 0:
            # FTPS clients protect the data channel next; the replies are findings, and the
            # exchange is also the first read after the handshake (as below).
            with trio.move_on_after(max(req.grace, min(req.timeout, 2.0))):
                run.post = await net.ftp_protect(stream, engine, run.starttls)
            run.post = run.post or net.PostEnd(how="quiet")
        else:
            run.post = await net.read_after_handshake(stream, engine, req.grace)
        mark("post_handshake")
        out = engine.close_notify()
        sent = net.send_now(stream, out)
        if sent is not None and sent < len(out):
            with trio.move_on_after(0.2):  # only a full socket buffer makes this wait
                await net.send(stream, out[sent:])


def _version_rejected(run: _Run) -> bool:
    if run.engine is None or run.engine.state.handshake_done:
        return False
    peer = [a for a in run.engine.state.alerts if a.origin == "peer"]
    sh = _server_hello(run.engine.transcript)
    # 70 is the version alert; 40/71 before any ServerHello may be one too (GnuTLS sends 40).
    if peer and (peer[0].code == 70 or (peer[0].code in (40, 71) and sh is None)):
        return True
    return sh is not None and sh.selected_version not in run.req.offer.versions


# --- turning the run into a result -------------------------------------------------------------


def _server_hello(t: Transcript) -> ServerHello | None:
    return t.server_hello


def _wire_cert_request(t: Transcript, version: int) -> CertificateRequest | None:
    msg = t.first_handshake("server", HandshakeType.CERTIFICATE_REQUEST)
    if msg is None:
        return None
    try:
        return parse_certificate_request(msg.body, tls13=False, version=version)
    except DecodeError:
        return None


def _client_cert_on_wire(t: Transcript) -> bool | None:
    """TLS <= 1.2: did our Certificate message carry a certificate? None if not seen."""
    msg = t.first_handshake("client", HandshakeType.CERTIFICATE)
    if msg is None:
        return None
    try:
        return bool(parse_certificate(msg.body, tls13=False).certificates)
    except DecodeError:
        return None


def _suite_info(code: int) -> SuiteInfo:
    s = registry.suite(code)
    return SuiteInfo(
        code=f"0x{code:04X}", iana=s.iana if s else None, openssl=s.openssl if s else None
    )


def _negotiated(engine: ClientEngine, sh: ServerHello | None) -> Negotiated | None:
    if sh is None:
        return None
    group = None
    if engine.state.handshake_done:
        group = engine.conn.get_group_name()
    if group is None and sh.key_share_group is not None:
        group = registry.group_name(sh.key_share_group)
    if group is None:
        ske = engine.transcript.first_handshake("server", HandshakeType.SERVER_KEY_EXCHANGE)
        suite = registry.suite(sh.cipher_suite)
        if ske is not None and suite is not None and suite.kx in ("ECDHE", "DHE"):
            try:
                parsed = parse_server_key_exchange(ske.body, suite.kx)
                if parsed.group is not None:
                    group = registry.group_name(parsed.group)
                elif parsed.dh_prime_bits:
                    group = f"DH {parsed.dh_prime_bits}"
            except DecodeError:
                pass  # a malformed ServerKeyExchange already shows in the outcome
    return Negotiated(
        version=registry.version_name(sh.selected_version),
        cipher=_suite_info(sh.cipher_suite),
        group=group,
    )


def _server_certs(engine: ClientEngine, tls13: bool) -> list[x509.Certificate]:
    chain = engine.peer_chain()
    if chain:
        return chain
    msg = engine.transcript.first_handshake("server", HandshakeType.CERTIFICATE)
    if msg is not None and not tls13:
        try:
            ders = parse_certificate(msg.body, tls13=False).certificates
            return [x509.load_der_x509_certificate(d) for d in ders]
        except (DecodeError, ValueError):
            return []
    # TLS 1.3 with an aborted handshake: what the verify callback saw, leaf first.
    return [
        to_cryptography(engine.state.verify_chain[d]) for d in sorted(engine.state.verify_chain)
    ]


def _anchors(req: ProbeRequest) -> list[x509.Certificate]:
    if req.ca_file is None:
        return []
    from .tlsconfig import trust_anchors

    return list(trust_anchors(req.ca_file))


def _chains_to(identity: ClientIdentity, ca_ders: list[bytes]) -> bool | None:
    """Does our certificate or its chain name one of the requested CAs (DER compared)?"""
    if not ca_ders:
        return None
    wanted = set(ca_ders)
    return any(
        c.issuer.public_bytes() in wanted or c.subject.public_bytes() in wanted
        for c in (identity.cert, *identity.chain)
    )


def _client_auth(run: _Run, engine: ClientEngine, version: int) -> tuple[ClientAuth, int]:
    t = engine.transcript
    req_msg = _wire_cert_request(t, version)
    if req_msg is None and engine.state.tls13_certificate_request is not None:
        try:  # TLS 1.3: the request as OpenSSL decrypted it (signature algorithms, CA names)
            req_msg = parse_certificate_request(engine.state.tls13_certificate_request, tls13=True)
        except DecodeError:
            req_msg = None
    requested = req_msg is not None or engine.saw_state("certificate request")
    ca_ders: list[bytes] = list(req_msg.ca_names) if req_msg else []
    ca_bytes = req_msg.ca_names_bytes if req_msg else 0
    sigalgs: tuple[int, ...] = req_msg.signature_algorithms if req_msg else ()
    types: tuple[int, ...] = req_msg.certificate_types if req_msg else ()
    if req_msg is None and requested:
        # TLS 1.3 without the message callback: OpenSSL kept the CA names the request carried.
        for name in engine.conn.get_client_ca_list():
            der = name.der()
            ca_ders.append(der)
            ca_bytes += 2 + len(der)
    readable: list[str] = []
    for der in ca_ders:
        try:
            readable.append(decode_dn(der))
        except DecodeError:
            readable.append(f"<undecodable DN {der[:16].hex()}>")
    on_wire = _client_cert_on_wire(t)
    ident = run.req.identity
    sent = (
        on_wire
        if on_wire is not None
        else (requested and ident is not None and engine.saw_state("write client certificate"))
    )
    auth = ClientAuth(
        requested=requested,
        ca_names=tuple(readable),
        ca_names_bytes=ca_bytes,
        certificate_types=types,
        signature_algorithms=tuple(registry.sigscheme_name(s) or f"0x{s:04X}" for s in sigalgs),
        sent=bool(sent),
        sent_subject=ident.cert.subject.rfc4514_string() if (sent and ident) else None,
        chains_to_requested_ca=_chains_to(ident, ca_ders) if (ident and requested) else None,
    )
    return auth, len(ca_ders)


def _result(run: _Run) -> ProbeResult:
    req = run.req
    engine = run.engine
    offered_versions = req.offer.versions
    name_problem: str | None = None  # why the certificate does not name the host, if checked
    facts_kw: dict[str, object] = {
        "tcp_failure": run.tcp_failure.kind if run.tcp_failure else None,
        "timed_out_in": run.timed_out_in,
        "verify_enabled": req.verify,
        "offered_versions": offered_versions,
    }
    starttls_info = None
    if run.starttls is not None:
        facts_kw["starttls_failed"] = not run.starttls.upgraded
        starttls_info = StartTLSInfo(
            protocol=req.starttls,
            transcript=tuple(run.starttls.lines),
            upgraded=run.starttls.upgraded,
        )
    negotiated = None
    certs: list[x509.Certificate] = []
    verification = None
    client_auth = ClientAuth(requested=False)
    ca_count = 0
    alert_info = None
    alert_code: int | None = None
    untrusted = None
    verify_detail = None
    app_data = None
    if engine is not None:
        st = engine.state
        t = engine.transcript
        sh = _server_hello(t)
        version = sh.selected_version if sh else 0x0303
        peer_hs = [a for a in st.alerts if a.origin == "peer" and not a.after_handshake]
        local_hs = [a for a in st.alerts if a.origin == "local" and not a.after_handshake]
        peer_post = [
            a for a in st.alerts if a.origin == "peer" and a.after_handshake and a.code != 0
        ]
        client_auth, ca_count = _client_auth(run, engine, version)
        codes = tuple(f.code for f in st.verify_failures)
        facts_kw.update(
            not_tls=run.pump is not None and run.pump.how == "not_tls",
            too_much=run.pump is not None and run.pump.how == "too_much",
            server_hello=sh is not None,
            server_version=sh.selected_version if sh else None,
            handshake_done=st.handshake_done,
            peer_alert=peer_hs[0].code if peer_hs and peer_hs[0].code != 0 else None,
            local_alert=local_hs[0].code if local_hs else None,
            cert_requested=client_auth.requested,
            cert_sent=client_auth.sent,
            verify_codes=codes,
            hostname_error=st.hostname_error,
            peer_eof=st.peer_eof,
            decode_error_after_hello=bool(t.decode_error("server")) and sh is not None,
            reasons=tuple(r.lower() for r in st.error_reasons),
            post=run.post.how if run.post else None,
            post_alert=peer_post[0].code if peer_post else None,
            partner_versions=run.partner_versions,
        )
        seen = peer_hs or local_hs or peer_post
        if seen:
            first_alert = seen[0]
            alert_code = first_alert.code
            alert_info = AlertInfo(
                origin=first_alert.origin,
                code=first_alert.code,
                name=registry.alert_name(first_alert.code) or f"alert_{first_alert.code}",
                level="fatal" if first_alert.level == 2 else "warning",
            )
        negotiated = _negotiated(engine, sh)
        certs = _server_certs(engine, version >= 0x0304)
        errors = tuple(
            VerifyError(
                depth=f.depth,
                code=f.code,
                name=verify.error_name(f.code)[0],
                reason=verify.error_name(f.code)[1],
                subject=f.subject,
            )
            for f in st.verify_failures
        )
        if errors:
            verify_detail = "; ".join(f"depth {e.depth}: {e.reason} ({e.subject})" for e in errors)
        if any(c in verify.UNTRUSTED for c in codes):
            untrusted = verify.untrusted_kind(codes, certs, _anchors(req))
        check_name = None if req.mq_channel else (req.sni or req.target.host)
        name_problem = st.hostname_error
        name_checked = check_name is not None and bool(st.verify_chain.get(0))
        if check_name is not None and not name_checked and errors and engine.peer_chain():
            # The chain failed above the leaf, so OpenSSL stopped before the name: look at the
            # leaf that was sent, for the report (the outcome stays the chain's).
            name_problem = verify.hostname_checker(check_name)(engine.peer_chain()[0])
            name_checked = True
        # Verified means OpenSSL walked the chain down to the leaf without an error. A
        # handshake that ended before the check (a version we refuse, an alert after the
        # ServerHello) has certificates from the wire but no verification at all.
        verified = bool(st.verify_chain.get(0)) and not errors and st.hostname_error is None
        if certs or st.verify_failures:
            verification = Verification(
                enabled=req.verify,
                verified=verified,
                trust_anchors=str(req.ca_file) if req.ca_file else "system",
                hostname=check_name,
                hostname_matched=name_problem is None if name_checked else None,
                hostname_detail=name_problem,
                errors=errors,
                chain_sent=len(engine.peer_chain()),
                chain_verified=tuple(verify.subject(c) for c in engine.verified_chain())
                if verified
                else (),
            )
        if run.post is not None and run.post.data:
            app_data = run.post.data.decode("latin-1")
    facts = outcome.Facts(**facts_kw)  # type: ignore[arg-type]
    result_outcome, phase = outcome.classify(facts)
    if result_outcome == "peer_closed" and alert_info is not None and alert_info.origin == "local":
        # OpenSSL answers an unexpected EOF with an alert of its own (decode_error in 4.0) on a
        # connection that is already gone: nobody received it, and it is no decoding fault.
        alert_info = None
        alert_code = None
    also: list[tuple[str, str]] = []
    chain = engine.peer_chain() if engine is not None else []
    if result_outcome in _CERT_OUTCOMES and req.verify and chain:
        also = verify.further_problems(chain, facts.verify_codes)
        if name_problem and result_outcome != "hostname_mismatch":
            also.append(("hostname_mismatch", f"also: {name_problem}"))
    ctx = diag.DiagContext(
        also=tuple(also),
        partner_suites=run.partner_suites,
        partner_suites_unavailable=bool(run.partner_suites)
        and not any(map(openssl_offers, run.partner_suites)),
        alert=alert_code,
        alert_origin=alert_info.origin if alert_info else None,
        verify_codes=facts.verify_codes,
        untrusted_kind=untrusted,
        hostname_error=facts.hostname_error,
        verify_detail=verify_detail,
        partner_versions=run.partner_versions,
        offered_versions=offered_versions,
        cert_requested=client_auth.requested,
        cert_sent=client_auth.sent,
        ca_names_count=ca_count,
        ca_names_bytes=client_auth.ca_names_bytes,
        chains_to_requested_ca=client_auth.chains_to_requested_ca,
        ca_names=client_auth.ca_names,
        cert_subject=req.identity.subject if req.identity else None,
        cert_issuer=req.identity.cert.issuer.rfc4514_string() if req.identity else None,
        cert_expired_on=f"{req.identity.cert.not_valid_after_utc:%Y-%m-%d}"
        if req.identity and req.identity.expired
        else None,
        starttls_protocol=req.starttls if run.starttls else None,
        starttls_reply=run.starttls.reply if run.starttls else None,
        starttls_problem=run.starttls.problem if run.starttls else None,
        starttls_injected=run.starttls.injected if run.starttls else 0,
        starttls_stalled=run.starttls.stalled if run.starttls else False,
        first_bytes=engine.transcript.first_bytes("server") if engine else b"",
        error=_error(run),
        mq_channel=req.mq_channel,
        port=req.target.port,
        sni=_sni(req),
    )
    return ProbeResult(
        target=str(req.target),
        outcome=result_outcome,
        phase=phase,
        alert=alert_info,
        negotiated=negotiated,
        server_certificates=tuple(verify.cert_info(c) for c in certs),
        verification=verification,
        client_auth=client_auth,
        starttls=starttls_info,
        timings_ms=run.timings,
        diagnosis=diag.diagnose(result_outcome, ctx),
        error=ctx.error,
        offered={
            "versions": [registry.version_name(v) for v in offered_versions],
            "ciphers": "openssl-default"
            if req.offer.suites is None
            else [s.hex for s in req.offer.suites],
            "sni": _sni(req),
            "client_certificate": req.identity.cert.subject.rfc4514_string()
            if req.identity
            else None,
        },
        partner_versions=tuple(registry.version_name(v) or hex(v) for v in run.partner_versions)
        if run.partner_versions is not None
        else None,
        application_data=app_data,
        trace=_trace(engine) if (engine and req.trace) else (),
    )


def _error(run: _Run) -> str | None:
    if run.tcp_failure:
        return run.tcp_failure.message
    if run.engine:
        return run.engine.state.error
    if run.starttls and run.starttls.stalled:
        # No library error to quote: the step that went unanswered says what happened.
        return run.starttls.problem
    return None


def _trace(engine: ClientEngine) -> tuple[TraceEntry, ...]:
    # The decoders behind the ladder load only when --trace asks for them.
    from .trace import trace_entries

    return trace_entries(engine.transcript)
