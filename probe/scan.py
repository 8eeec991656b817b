"""`tlsprobe scan`: every protocol version and every accepted suite, with the fewest handshakes.

Theory of operation
-------------------
Per version, the raw hello engine offers every suite the registry knows for it; the server picks
one; that suite is removed and the rest offered again, until the server refuses (alert, EOF).
So a version costs one connection per accepted suite plus one. Versions run in parallel, bounded
by a per-host gate (concurrency and an optional pause between connections, so a scan does not
look like an attack to the partner's IDS).

With server order, the server picks its favourite of what is left each round, so the discovery
order is its preference order. Offering the accepted suites in our order and then reversed tells
the two apart: the same pick both times means the server decides.

A version whose big hello gets EOF or garbage (old middleware that chokes on long suite lists or
extensions) is tried again with a small, extension-free hello of common suites; if that works,
the version is enumerated in small chunks and the intolerance is reported. Chunks only order
their own suites, so with server order the accepted ones are drained once more together.

Groups come from the same engine: TLS 1.3 with an empty key_share, so the server answers with a
HelloRetryRequest naming its group; TLS 1.2 from the ServerKeyExchange of an ECDHE suite.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

import trio

from .rawhello import Counter, HelloAnswer, Offer, exchange, tls_suites_for
from .result import SCHEMA_VERSION, CertInfo
from .target import Target
from .wire import registry

VERSIONS = (0x0002, 0x0300, 0x0301, 0x0302, 0x0303, 0x0304)
# A small offer for intolerant servers: what clients of every era had in common.
COMMON = (0x002F, 0x0035, 0x000A, 0x0005, 0x0004, 0x009C, 0x009D, 0x003C, 0x003D,
          0xC02F, 0xC030, 0xC013, 0xC014, 0xC02B, 0xC02C, 0xC009, 0xC00A, 0x0033, 0x0039,
          0x0016, 0x0009)  # fmt: skip
CHUNK = 40


@dataclass(frozen=True, slots=True, kw_only=True)
class ScanSuite:
    code: str
    iana: str | None
    openssl: str | None
    kx: str | None
    auth: str | None
    bits: int | None
    weak: tuple[str, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class VersionResult:
    version: str
    supported: bool
    server_order: bool | None
    ciphers: tuple[ScanSuite, ...]
    intolerance: str | None = None
    note: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class ScanResult:
    target: str
    outcome: str  # "scanned" or a connection outcome: refused, unreachable, dns_failure, ...
    protocols: tuple[VersionResult, ...]
    groups: dict[str, tuple[str, ...]]
    certificates: dict[str, tuple[CertInfo, ...]]
    secure_renegotiation: bool | None
    extended_master_secret: bool | None
    connections: int
    timings_ms: dict[str, float]
    error: str | None = None
    schema_version: int = SCHEMA_VERSION


@dataclass(slots=True)
class HostGate:
    """Per-host politeness: at most ``limit`` connections at once, ``pause`` s between starts."""

    limit: int = 5
    pause: float = 0.0
    _limiter: trio.CapacityLimiter | None = None
    _lock: trio.Lock = field(default_factory=trio.Lock)
    _last: float = 0.0

    def limiter(self) -> trio.CapacityLimiter:
        if self._limiter is None:
            self._limiter = trio.CapacityLimiter(self.limit)
        return self._limiter

    async def wait_turn(self) -> None:
        if self.pause <= 0:
            return
        async with self._lock:
            wait = self._last + self.pause - trio.current_time()
            if wait > 0:
                await trio.sleep(wait)
            self._last = trio.current_time()


@dataclass(frozen=True, slots=True, kw_only=True)
class ScanOptions:
    target: Target
    starttls: str = "none"
    sni: str | None = None
    timeout: float = 5.0
    versions: tuple[int, ...] = VERSIONS


def suite_info(code: int) -> ScanSuite:
    s = registry.suite(code)
    if s is None:
        return ScanSuite(code=f"0x{code:04X}", iana=None, openssl=None, kx=None, auth=None,
                         bits=None, weak=())  # fmt: skip
    return ScanSuite(code=s.hex, iana=s.iana, openssl=s.openssl, kx=s.kx, auth=s.auth,
                     bits=s.bits, weak=tuple(registry.is_weak(s)))  # fmt: skip


def sslv2_info(code: int) -> ScanSuite:
    c = registry.sslv2_cipher(code)
    weak = ("SSLv2",) if c is None or c.bits >= 56 else ("SSLv2", "EXPORT")
    return ScanSuite(code=f"0x{code:06X}", iana=c.name if c else None,
                     openssl=c.openssl if c else None, kx="RSA", auth="RSA",
                     bits=c.bits if c else None, weak=weak)  # fmt: skip


class Scanner:
    """One target's scan (see the module docstring)."""

    def __init__(
        self,
        opts: ScanOptions,
        gate: HostGate,
        progress: Callable[[str], None] | None = None,
    ) -> None:
        self.opts = opts
        self.gate = gate
        self.counter = Counter()
        self.progress = progress or (lambda _msg: None)
        self.answers: list[HelloAnswer] = []
        # A peer that accepts TCP and then never answers: once a short hello has gone unanswered
        # too, with no answer of any kind so far, the scan stops waiting (two timeouts in all,
        # not one per round of the host gate).
        self.silent = False
        self.on_silence: Callable[[], None] = lambda: None

    async def ask(self, offer: Offer, *, full: bool = False) -> HelloAnswer:
        async with self.gate.limiter():
            await self.gate.wait_turn()
            ans = await exchange(
                self.opts.target,
                offer,
                timeout=self.opts.timeout,
                starttls=self.opts.starttls,
                full=full,
                counter=self.counter,
            )
        self.answers.append(ans)
        return ans

    def _offer(self, version: int, suites: tuple[int, ...], **kw: object) -> Offer:
        return Offer(version=version, suites=suites, sni=self.opts.sni, **kw)  # type: ignore[arg-type]

    # -- one version ---------------------------------------------------------------------------

    async def _drain(self, version: int, suites: tuple[int, ...], small: bool) -> list[int]:
        """Offer, remove the pick, repeat: the accepted suites in discovery order."""
        remaining = list(suites)
        accepted: list[int] = []
        while remaining:
            ans = await self.ask(self._offer(version, tuple(remaining), small=small))
            pick = ans.cipher
            if ans.kind != "server_hello" or ans.version != version or pick not in remaining:
                break
            accepted.append(pick)
            remaining.remove(pick)
            self.progress(f"{registry.version_name(version)}: {len(accepted)} suites")
        return accepted

    async def _order(self, version: int, accepted: list[int], small: bool) -> bool | None:
        if len(accepted) < 2:
            return None
        picks: list[int | None] = [None, None]

        async def pick(i: int, order: tuple[int, ...]) -> None:
            picks[i] = (await self.ask(self._offer(version, order, small=small))).cipher

        async with trio.open_nursery() as nursery:  # independent questions: one round trip
            nursery.start_soon(pick, 0, tuple(accepted))
            nursery.start_soon(pick, 1, tuple(reversed(accepted)))
        if picks[0] is None or picks[1] is None:
            return None
        return picks[0] == picks[1]

    async def scan_version(self, version: int) -> VersionResult:
        name = registry.version_name(version) or hex(version)
        if version == 0x0002:
            ans = await self.ask(Offer(version=0x0002, suites=()))
            if ans.kind == "sslv2" and ans.sslv2 is not None and ans.sslv2.cipher_kinds:
                return VersionResult(
                    version=name, supported=True, server_order=None,
                    ciphers=tuple(sslv2_info(k) for k in ans.sslv2.cipher_kinds),
                )  # fmt: skip
            return _not_offered(version)
        suites = tls_suites_for(version)
        first = await self.ask(self._offer(version, suites))
        small = False
        intolerance = None
        known_order: bool | None = None
        if first.kind == "server_hello" and first.version == version:
            accepted = [c for c in [first.cipher] if c is not None]
            rest = tuple(c for c in suites if c not in accepted)
            second = await self.ask(self._offer(version, rest))
            if (
                second.kind == "server_hello"
                and second.version == version
                and second.cipher in rest
            ):
                accepted.append(second.cipher)
                rest = tuple(c for c in rest if c != second.cipher)
                known_order = await self._order(version, accepted, False)
            if known_order is False:
                # The server follows our order, so each slice of the rest drains on its own:
                # the slices run in parallel (bounded by the host gate), which matters when
                # every handshake costs a round trip.
                parts = max(1, self.gate.limit)
                found: list[list[int]] = [[] for _ in range(parts)]

                async def drain_part(i: int) -> None:
                    found[i] = await self._drain(version, rest[i::parts], False)

                async with trio.open_nursery() as nursery:
                    for i in range(parts):
                        nursery.start_soon(drain_part, i)
                accepted += [c for part in found for c in part]
            elif second.kind == "server_hello" and second.cipher in accepted:
                accepted += await self._drain(version, rest, False)
        elif first.kind in ("eof", "not_tls", "timeout") and version < 0x0304 and not self.silent:
            # Old middleware closes on a long hello (or hangs); try a short, extension-free one.
            probe = await self.ask(self._offer(version, COMMON, small=True))
            if probe.kind == "timeout" and all(a.kind == "timeout" for a in self.answers):
                self.silent = True
                self.on_silence()
            if not (probe.kind == "server_hello" and probe.version == version):
                return _not_offered(version)
            small = True
            intolerance = (
                f"closed on a hello of {len(suites)} suites with extensions ({first.kind})"
            )
            accepted = []
            for i in range(0, len(suites), CHUNK):
                accepted += await self._drain(version, suites[i : i + CHUNK], True)
        else:
            return _not_offered(version)
        server_order = (
            known_order if known_order is False else await self._order(version, accepted, small)
        )
        note = None
        if small and server_order:
            # Each chunk was drained in the server's order, but their concatenation is not its
            # order: drain the accepted suites once more, alone, in one short hello.
            again: list[int] = []
            if len(accepted) <= CHUNK:
                again = await self._drain(version, tuple(accepted), True)
            if sorted(again) == sorted(accepted):
                accepted = again
            else:
                note = f"server order known only within chunks of {CHUNK} suites"
        if server_order is False:
            accepted = [c for c in suites if c in accepted]  # our (registry) order
        return VersionResult(
            version=name,
            supported=bool(accepted),
            server_order=server_order,
            ciphers=tuple(suite_info(c) for c in accepted),
            intolerance=intolerance,
            note=note,
        )

    # -- groups and certificates ----------------------------------------------------------------

    async def tls13_groups(self) -> tuple[str, ...]:
        remaining = list(registry_group_codes())
        found: list[str] = []
        while remaining:
            # An empty key_share (RFC 8446 §4.2.8) makes the server name its group in a
            # HelloRetryRequest, whatever groups we could compute shares for.
            offer = self._offer(0x0304, tls_suites_for(0x0304), groups=tuple(remaining),
                                key_share_groups=())  # fmt: skip
            ans = await self.ask(offer)
            g = ans.server_hello.key_share_group if ans.server_hello else None
            if g is None or g not in remaining:
                break
            found.append(registry.group_name(g) or str(g))
            remaining.remove(g)
        return tuple(found)

    async def tls12_groups(self, version: int, ecdhe: tuple[int, ...]) -> tuple[str, ...]:
        from .rawhello import TLS12_GROUPS

        remaining = list(TLS12_GROUPS)
        found: list[str] = []
        while remaining and ecdhe:
            ans = await self.ask(self._offer(version, ecdhe, groups=tuple(remaining)), full=True)
            g = ans.ske_group
            if ans.kind != "server_hello" or g is None or g not in remaining:
                break
            found.append(registry.group_name(g) or str(g))
            remaining.remove(g)
        return tuple(found)

    async def chains(
        self, version: int, accepted: tuple[int, ...]
    ) -> dict[str, tuple[CertInfo, ...]]:
        by_auth: dict[str, list[int]] = {}
        for code in accepted:
            s = registry.suite(code)
            if s is not None and s.auth in ("RSA", "ECDSA", "DSS"):
                by_auth.setdefault(s.auth, []).append(code)
        from cryptography import x509  # with the first chain, not at start-up

        from . import verify

        out: dict[str, tuple[CertInfo, ...]] = {}
        for auth, codes in by_auth.items():
            ans = await self.ask(self._offer(version, tuple(codes)), full=True)
            certs: list[CertInfo] = []
            for der in ans.certificates:
                try:
                    certs.append(verify.cert_info(x509.load_der_x509_certificate(der)))
                except ValueError:
                    continue
            if certs:
                out[auth] = tuple(certs)
        return out


def registry_group_codes() -> tuple[int, ...]:
    from .rawhello import GROUPS

    return GROUPS


async def scan(opts: ScanOptions, gate: HostGate | None = None,
               progress: Callable[[str], None] | None = None) -> ScanResult:  # fmt: skip
    from . import net

    started = time.perf_counter()
    gate = gate or HostGate()
    target = opts.target
    sc = Scanner(opts, gate, progress)
    results: dict[int, VersionResult] = {}
    failed: list[tuple[str, str]] = []

    async def reachable(
        scope: trio.CancelScope, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
    ) -> None:
        # One plain TCP connect, so an unreachable target is one clear outcome. It runs beside
        # the version scans instead of before them (on a link with latency that saves a round
        # trip), holding the host gate's first slot, and a failure cancels them at once.
        async with gate.limiter():
            task_status.started()
            with trio.move_on_after(opts.timeout) as cs:
                got = await net.connect_tcp(target.host, target.port)
            sc.counter.connections += 1
        if cs.cancelled_caught:
            failed.append(("unreachable", "connect timed out"))
        elif isinstance(got, net.TcpFailure):
            failed.append((got.kind, got.message))
        else:
            await got.aclose()
            return
        scope.cancel()

    async def one(v: int) -> None:
        results[v] = await sc.scan_version(v)

    groups13: list[tuple[str, ...]] = []

    async def tls13_groups() -> None:
        # Needs nothing from the version scans (an empty key_share asks for the group), so it
        # runs beside them; kept only if TLS 1.3 turns out to be supported.
        if 0x0304 in opts.versions:
            groups13.append(await sc.tls13_groups())

    async with trio.open_nursery() as nursery:
        sc.on_silence = nursery.cancel_scope.cancel
        await nursery.start(reachable, nursery.cancel_scope)
        for v in opts.versions:
            nursery.start_soon(one, v)
        nursery.start_soon(tls13_groups)
    if failed:
        kind, msg = failed[0]
        return ScanResult(target=str(target), outcome=kind, protocols=(), groups={},
                          certificates={}, secure_renegotiation=None,
                          extended_master_secret=None, connections=sc.counter.connections,
                          timings_ms={"total": round((time.perf_counter() - started) * 1000, 1)},
                          error=msg)  # fmt: skip
    protocols = tuple(results.get(v) or _not_offered(v) for v in opts.versions)
    if not any(p.supported for p in protocols):
        kind, why = nothing_accepted(sc.answers, opts)
        # Versions are listed only when the peer spoke TLS (as for refused, unreachable, ...).
        return ScanResult(target=str(target), outcome=kind,
                          protocols=protocols if kind == "scanned" else (), groups={},
                          certificates={}, secure_renegotiation=None,
                          extended_master_secret=None, connections=sc.counter.connections,
                          timings_ms={"total": round((time.perf_counter() - started) * 1000, 1)},
                          error=why)  # fmt: skip
    groups: dict[str, tuple[str, ...]] = {}
    certificates: dict[str, tuple[CertInfo, ...]] = {}
    newest12 = next(
        (v for v in (0x0303, 0x0302, 0x0301, 0x0300) if v in results and results[v].supported), None
    )
    if 0x0304 in results and results[0x0304].supported and groups13:
        groups["TLSv1.3"] = groups13[0]
    if newest12 is not None:
        v12 = newest12
        codes = tuple(int(c.code, 16) for c in results[v12].ciphers)
        ecdhe = tuple(c for c in codes if (s := registry.suite(c)) and s.kx == "ECDHE")
        name = registry.version_name(v12) or ""

        async def tls12_groups() -> None:
            if ecdhe:
                groups[name] = await sc.tls12_groups(v12, ecdhe)

        async def chains() -> None:
            certificates.update(await sc.chains(v12, codes))

        async with trio.open_nursery() as nursery:  # independent: side by side
            nursery.start_soon(tls12_groups)
            nursery.start_soon(chains)
    if not certificates and 0x0304 in results and results[0x0304].supported:
        certificates = await _tls13_chain(opts)
    renego = [a.server_hello.renegotiation_info for a in sc.answers
              if a.server_hello and a.server_hello.selected_version < 0x0304]  # fmt: skip
    ems = [a.server_hello.extended_master_secret for a in sc.answers
           if a.server_hello and 0x0301 <= a.server_hello.selected_version < 0x0304]  # fmt: skip
    return ScanResult(
        target=str(target),
        outcome="scanned",
        protocols=protocols,
        groups=groups,
        certificates=certificates,
        secure_renegotiation=any(renego) if renego else None,
        extended_master_secret=any(ems) if ems else None,
        connections=sc.counter.connections,
        timings_ms={"total": round((time.perf_counter() - started) * 1000, 1)},
    )


def _not_offered(version: int) -> VersionResult:
    name = registry.version_name(version) or hex(version)
    return VersionResult(version=name, supported=False, server_order=None, ciphers=())


# The probe's outcome for a refusal of the ClientHello (probe.outcome), by alert.
_ALERT_OUTCOME = {40: "cipher_mismatch", 71: "cipher_mismatch", 70: "version_mismatch"}


def nothing_accepted(answers: list[HelloAnswer], opts: ScanOptions) -> tuple[str, str]:
    """Outcome and reason when no version was accepted, from what the hellos got back.

    A peer that never got as far as a ServerHello gets the probe's outcome for the same
    failure (not_tls, starttls_refused, peer_closed, timeout, or the outcome of the alert it
    sent to every hello), so a banner or an SNI-only listener is named, not shown as six
    versions "not offered"."""
    kinds = {a.kind for a in answers}
    if kinds & {"server_hello", "sslv2"}:
        return "scanned", "no version accepted"
    if "alert" in kinds:
        # Every hello met an alert: which versions the listener has is unknown, so the
        # outcome is the probe's word for that alert, and the reason comes with it.
        alerts = sorted({a.alert for a in answers if a.kind == "alert" and a.alert is not None})
        named = ", ".join(f"{n} {registry.alert_name(n) or ''}".strip() for n in alerts)
        why = f"every ClientHello was refused (alert {named}); versions unknown"
        if 112 in alerts:
            why += (
                "; the listener wants a server name it knows: give --sni NAME (IBM MQ: "
                "--mq-channel NAME sends the channel's SNI)"
            )
        kind = _ALERT_OUTCOME.get(alerts[0], "peer_error") if len(alerts) == 1 else "peer_error"
        return kind, why
    if "not_tls" in kinds:
        head = next((a.head for a in answers if a.kind == "not_tls" and a.head), b"")
        shown = "".join(ch if ch.isprintable() else "." for ch in head[:40].decode("latin-1"))
        hint = "" if opts.starttls != "none" else "; if it upgrades with STARTTLS, use --starttls"
        return "not_tls", (
            f"the peer answered {shown!r} ({head[:8].hex()}), not TLS{hint}"
            if head else f"the peer's answers are not TLS{hint}"
        )
    if "starttls_refused" in kinds:
        detail = next(a.detail for a in answers if a.kind == "starttls_refused")
        return "starttls_refused", f"the {opts.starttls} upgrade failed: {detail}"
    if "eof" in kinds:
        return "peer_closed", "the peer closed every connection without answering a ClientHello"
    stalled = next((a.detail for a in answers if a.starttls_stalled), None)
    if kinds <= {"timeout"} and stalled is not None:
        # No ClientHello left: the plaintext dialog before it went unanswered.
        return "timeout", f"the {opts.starttls} upgrade stalled: {stalled}"
    if kinds <= {"timeout"}:
        return "timeout", (
            f"the peer accepted TCP but answered none of {len(answers)} ClientHellos within "
            f"{opts.timeout:g} s"
        )
    detail = next((a.detail for a in answers if a.detail), "")
    return "unreachable", f"connections failed during the scan: {detail}"


async def _tls13_chain(opts: ScanOptions) -> dict[str, tuple[CertInfo, ...]]:
    """TLS 1.3 encrypts the Certificate: one real handshake (no verification) reads it."""
    from .prober import ProbeRequest, run_probe
    from .tlsconfig import make_offer

    r = await run_probe(ProbeRequest(
        target=opts.target, starttls=opts.starttls, sni=opts.sni,
        offer=make_offer(0x0304, None, None, None), verify=False, timeout=opts.timeout,
        grace=0.0, partner_versions=False,
    ))  # fmt: skip
    if not r.server_certificates:
        return {}
    key = r.server_certificates[0].key.split()[0]
    return {{"EC": "ECDSA"}.get(key, key): r.server_certificates}
