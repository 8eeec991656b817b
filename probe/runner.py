"""Running a plan: every check a real probe, scan or overlap, concurrently, bounded overall and
per host.

All requests are built before the first connection, so a check with an unreadable certificate
or an unset password variable stops the plan with exit 2, at the plan line of the key at fault,
and nothing half-run (names and numbers are checked earlier, by load_plan).

Theory of the limits
--------------------
``--concurrency`` bounds checks in flight; ``--per-host`` bounds connections open to one host.
A probe is one connection: it borrows one token of the host's gate. A scan opens many (one per
accepted suite, several versions at once), and ``scan()`` makes its first reachability connect
and its TLS 1.3 certificate handshake outside the gate it is given. So a scan or overlap check
reserves every token of its host (one reservation at a time per host, so two scans never hold
half each) and runs with a private gate of ``per_host`` connections: the per-host limit holds
whatever the scan does inside. ``RunStats`` counts connections per host as they start (a scan's
through its gate); an overlap check is counted as the most its hello and scan can open at once
(``OVERLAP_CONNECTIONS``), since overlap.py runs its scan with its own gate.
"""

from __future__ import annotations

import os
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import trio

from .cipherlist import apply_pinned_versions, parse_cipher_list, parse_cipher_selection
from .defaults import DEFAULT_GRACE, DEFAULT_TIMEOUT
from .identity import load_certificates, load_identity, read_input_file
from .overlap import Predicted, run_overlap
from .plan import Check, Plan, PlanError, located
from .prober import ProbeRequest, run_probe
from .result import ProbeResult
from .scan import HostGate, ScanOptions, VersionResult, scan
from .starttls import resolve_protocol
from .target import Target, parse_target
from .tlsconfig import Offer, make_offer
from .wire import registry

LAB_PORT_BASE = 9440
# overlap.py's scan gate (HostGate() allows 5) plus the profile's own hello, sent alongside.
OVERLAP_CONNECTIONS = 6


def default_lab_pki() -> Path:
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "tlsprobe" / "lab-pki"


@dataclass(frozen=True, slots=True, kw_only=True)
class ScanSummary:
    """What a plan keeps of a scan: its outcome and, per version, the accepted suites."""

    target: str
    outcome: str  # "scanned", or why not: refused, unreachable, dns_failure, ...
    protocols: tuple[VersionResult, ...]
    connections: int
    error: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class OverlapSummary:
    """What a plan keeps of an overlap: the verdict, why, and the predicted pair."""

    profile: str
    target: str
    verdict: str  # connects | fails | likely_fails
    reason: str
    predicted: Predicted | None
    causes: tuple[str, ...]

    @property
    def outcome(self) -> str:
        return self.verdict


@dataclass(frozen=True, slots=True, kw_only=True)
class CheckResult:
    name: str
    target: str
    passed: bool
    expected: dict[str, Any]
    got: dict[str, Any]
    failures: tuple[str, ...]
    result: ProbeResult | ScanSummary | OverlapSummary
    duration_ms: float
    kind: str = "probe"


@dataclass(frozen=True, slots=True, kw_only=True)
class OverlapJob:
    profile: str
    target: Target
    timeout: float


Job = ProbeRequest | ScanOptions | OverlapJob


@dataclass(frozen=True, slots=True, kw_only=True)
class RunSettings:
    concurrency: int = 20
    per_host: int = 10
    lab_port_base: int | None = None
    lab_pki_dir: Path | None = None


def _lab_target(check: Check, settings: RunSettings) -> tuple[Target, dict[str, Any]]:
    from .lab import scenario_port
    from .lab.catalog import scenario_names

    scenario = check.target.split(":", 1)[1]
    index = scenario_names().index(scenario)  # load_plan checked the name
    if settings.lab_port_base is not None:
        base, source = settings.lab_port_base, f"--lab-port-base {settings.lab_port_base}"
    else:
        base = int(check.options.get("lab_port_base", LAB_PORT_BASE))
        source = f"{check.at('lab_port_base')}: lab_port_base {base}"
    # The lab serves the scenario at catalog index i on base + i whether it serves all
    # scenarios or a subset, so the port needs only the catalog. A port past 65535 must not
    # wrap to another service.
    port = scenario_port(base, index)
    if not 1 <= port <= 65535:
        raise PlanError(
            f"{source}: lab:{scenario} would be port {port}; the port base plus the"
            " scenario's index must be from 1 to 65535"
        )
    opts = dict(check.options)
    pki = settings.lab_pki_dir or Path(opts.get("lab_pki_dir") or default_lab_pki())
    opts.setdefault("ca", str(pki / "ca.crt"))
    return Target(host="127.0.0.1", port=port), opts


def _password(check: Check, opts: dict[str, Any]) -> str | None:
    if "cert_password_env" in opts:
        value = os.environ.get(str(opts["cert_password_env"]))
        if value is None:
            raise PlanError(
                f"{check.at('cert_password_env')}: environment variable"
                f" {opts['cert_password_env']} is not set"
            )
        return value
    if "cert_password_file" in opts:
        with located(check, "cert_password_file"):
            raw = read_input_file(Path(opts["cert_password_file"]), "password file")
        return raw.decode("utf-8", "replace").rstrip("\r\n")
    return None


def _target(check: Check, settings: RunSettings) -> tuple[Target, dict[str, Any]]:
    if check.target.startswith("lab:"):
        return _lab_target(check, settings)
    with located(check, "target"):
        return parse_target(check.target), dict(check.options)


def _starttls(check: Check, opts: dict[str, Any], target: Target) -> str:
    # The name was checked at load; "auto" resolves by the port, known only now for lab targets.
    with located(check, "starttls"):
        return resolve_protocol(str(opts.get("starttls", "auto")), target.port)


def build_job(check: Check, settings: RunSettings) -> Job:
    """A probe request, scan options or overlap job; PlanError (exit 2, at the plan line of the
    key at fault) when it cannot run."""
    if check.kind == "probe":
        return build_request(check, settings)
    target, opts = _target(check, settings)
    timeout = float(opts.get("timeout", DEFAULT_TIMEOUT))
    if check.kind == "overlap":
        assert check.profile is not None  # load_plan requires it
        return OverlapJob(profile=check.profile, target=target, timeout=timeout)
    sni = opts.get("sni")
    return ScanOptions(
        target=target,
        starttls=_starttls(check, opts, target),
        sni=str(sni) if sni is not None else (None if target.is_ip else target.host),
        timeout=timeout,
    )


def _offer(check: Check, opts: dict[str, Any]) -> Offer:
    """The versions and suites to offer; load_plan checked each name, so what can fail here is
    their combination (suites no allowed version can use, a version the engine cannot speak)."""

    def version(key: str) -> int | None:
        return registry.find_version(str(opts[key])) if key in opts else None

    blame = next((k for k in ("ciphers", "tls", "tls_min", "tls_max") if k in opts), "target")
    with located(check, blame):
        selection = parse_cipher_selection(opts["ciphers"]) if "ciphers" in opts else None
        exact, lo, hi = apply_pinned_versions(
            selection, version("tls"), version("tls_min"), version("tls_max")
        )
        return make_offer(exact, lo, hi, selection.suites if selection else None)


def build_request(check: Check, settings: RunSettings) -> ProbeRequest:
    target, opts = _target(check, settings)
    offer = _offer(check, opts)
    if "ca" in opts:
        # Unreadable: stop before any probe. The lab's CA is implied by a lab: target's line.
        with located(check, "ca" if "ca" in check.options else "lab_pki_dir"):
            load_certificates(Path(opts["ca"]), "CA file")
    identity = None
    if "cert" in opts:
        key = Path(opts["key"]) if "key" in opts else None
        password = _password(check, opts)
        with located(check, "cert"):
            identity = load_identity(Path(opts["cert"]), key, password)
    return ProbeRequest(
        target=target,
        starttls=_starttls(check, opts, target),
        sni=opts.get("sni"),
        offer=offer,
        identity=identity,
        ca_file=Path(opts["ca"]) if "ca" in opts else None,
        verify=not opts.get("no_verify", False),
        timeout=float(opts.get("timeout", DEFAULT_TIMEOUT)),
        grace=float(opts.get("grace", DEFAULT_GRACE)),
        mq_channel=opts.get("mq_channel"),
    )


def _facts(r: ProbeResult) -> dict[str, Any]:
    n = r.negotiated
    days = [c.days_left for c in r.server_certificates]
    return {
        "outcome": r.outcome,
        "version": n.version if n else None,
        "cipher": n.cipher.code if n and n.cipher else None,
        "days_left_min": min(days) if days else None,
        "client_cert_requested": r.client_auth.requested,
        "cause": r.diagnosis[0].cause if r.diagnosis else None,
    }


def evaluate(expect: dict[str, Any], r: ProbeResult) -> tuple[dict[str, Any], list[str]]:
    """What was got, and one line per unmet expectation (expected vs got)."""
    got = _facts(r)
    failures: list[str] = []
    for key, want in expect.items():
        have = got.get(key)
        if key == "version":
            ok = registry.find_version(str(want)) == (registry.find_version(have) if have else None)
        elif key == "cipher":
            ok = have in {s.hex for s in parse_cipher_list(str(want))}  # checked by load_plan
        elif key == "days_left_min":
            ok = have is not None and have >= int(want)
        elif key == "cause":
            ok = want in [d.cause for d in r.diagnosis]
        else:
            ok = have == want
        if not ok:
            failures.append(f"{key}: expected {want!r}, got {have!r}")
    if failures and r.diagnosis:
        d = r.diagnosis[0]
        failures.append(
            f"diagnosis: {d.summary} [{d.cause}]" + (f" ({d.detail})" if d.detail else "")
        )
    return got, failures


def _suite_name(code: str, iana: str | None, openssl: str | None) -> str:
    return iana or openssl or code


def scan_facts(s: ScanSummary) -> dict[str, Any]:
    """Offered versions and accepted suites (IANA names, each once, in scan order)."""
    suites: dict[str, str] = {}
    weak: dict[str, str] = {}
    for p in s.protocols:
        for c in p.ciphers:
            name = _suite_name(c.code, c.iana, c.openssl)
            suites.setdefault(c.code, name)
            if c.weak:
                weak.setdefault(c.code, f"{name} ({', '.join(c.weak)})")
    return {
        "outcome": s.outcome,
        "versions_offered": [p.version for p in s.protocols if p.supported],
        "suites": list(suites.values()),
        "weak_suites": list(weak.values()),
        "no_weak_suites": not weak,
    }


def evaluate_scan(expect: dict[str, Any], s: ScanSummary) -> tuple[dict[str, Any], list[str]]:
    """Scan expectations; an unscanned target fails them all (nothing offered proves nothing)."""
    got = scan_facts(s)
    if s.outcome != "scanned":
        return got, [f"outcome: expected 'scanned', got {s.outcome!r} ({s.error or 'no detail'})"]
    failures: list[str] = []
    offered = {registry.find_version(v) for v in got["versions_offered"]}
    accepted = {c.code for p in s.protocols for c in p.ciphers}
    for key, want in expect.items():
        if key in ("versions_offered", "versions_not_offered"):
            must = key == "versions_offered"
            bad = [v for v in want if (registry.find_version(v) in offered) != must]
            if bad:
                what = "not offered" if must else "offered"
                failures.append(f"{key}: expected {want!r}, got {got['versions_offered']!r}"
                                f" ({', '.join(bad)} {what})")  # fmt: skip
        elif key == "no_weak_suites":
            if got["no_weak_suites"] != want:
                have = got["weak_suites"] or "none"
                failures.append(f"no_weak_suites: expected {want!r}, got weak suites {have}")
        elif key in ("suites_include", "suites_exclude"):
            must = key == "suites_include"
            bad = []
            for entry in want:
                codes = {x.hex for x in parse_cipher_list(str(entry))}  # checked by load_plan
                ok = codes <= accepted if must else not codes & accepted
                if not ok:
                    bad.append(entry)
            if bad:
                what = "not accepted" if must else "accepted"
                failures.append(f"{key}: expected {want!r}, got {got['suites']!r}"
                                f" ({', '.join(bad)} {what})")  # fmt: skip
    return got, failures


def evaluate_overlap(expect: dict[str, Any], o: OverlapSummary) -> tuple[dict[str, Any], list[str]]:
    p = o.predicted
    got = {
        "verdict": o.verdict,
        "predicted": f"{p.version} {p.cipher.iana or p.cipher.name}" if p else None,
        "causes": list(dict.fromkeys(o.causes)),
    }
    failures = []
    if "verdict" in expect and expect["verdict"] != o.verdict:
        failures.append(f"verdict: expected {expect['verdict']!r}, got {o.verdict!r}")
        causes = f" [{', '.join(got['causes'])}]" if got["causes"] else ""
        failures.append(f"reason: {o.reason}{causes}")
    return got, failures


@dataclass(slots=True)
class RunStats:
    """Measured, not assumed: the most checks in flight at once overall, and the most
    connections open at once per host (a probe is one; a scan's are counted as they start; an
    overlap counts as ``OVERLAP_CONNECTIONS``, the most it can open)."""

    max_in_flight: int = 0
    max_in_flight_per_host: dict[str, int] = field(default_factory=dict)

    def saw(self, host: str, connections: int) -> None:
        have = self.max_in_flight_per_host.get(host, 0)
        self.max_in_flight_per_host[host] = max(have, connections)


@dataclass(slots=True)
class _CountingGate(HostGate):
    """A scan's private gate that reports each connection's start to the run's statistics."""

    on_start: Callable[[int], None] = lambda _n: None

    async def wait_turn(self) -> None:
        # Called by Scanner.ask inside the limiter: borrowed tokens = connections now open.
        self.on_start(self.limiter().borrowed_tokens)
        await HostGate.wait_turn(self)


async def run_plan(
    plan: Plan,
    settings: RunSettings,
    progress: Callable[[CheckResult, int, int], None] | None = None,
    stats: RunStats | None = None,
) -> list[CheckResult]:
    jobs = [(check, build_job(check, settings)) for check in plan.checks]
    results: dict[str, CheckResult] = {}
    overall = trio.CapacityLimiter(settings.concurrency)
    gates: dict[str, HostGate] = {}  # one per host, shared by every check of the run
    reserving: dict[str, trio.Lock] = {}
    open_now: dict[str, int] = {}
    st = stats if stats is not None else RunStats()

    @asynccontextmanager
    async def whole_host(host: str) -> AsyncIterator[None]:
        """Every token of the host's gate, taken one by one under the host's reservation lock."""
        limiter = gates.setdefault(host, HostGate(limit=settings.per_host)).limiter()
        held: list[object] = []
        try:
            async with reserving.setdefault(host, trio.Lock()):
                for _ in range(settings.per_host):
                    borrower = object()
                    await limiter.acquire_on_behalf_of(borrower)
                    held.append(borrower)
            yield
        finally:
            for borrower in held:
                limiter.release_on_behalf_of(borrower)

    async def execute(job: Job, host: str) -> ProbeResult | ScanSummary | OverlapSummary:
        if isinstance(job, ProbeRequest):
            async with gates.setdefault(host, HostGate(limit=settings.per_host)).limiter():
                open_now[host] = open_now.get(host, 0) + 1
                st.saw(host, open_now[host])
                try:
                    return await run_probe(job)
                finally:
                    open_now[host] -= 1
        async with whole_host(host):
            if isinstance(job, ScanOptions):
                st.saw(host, 1)  # scan()'s reachability connect, outside any gate
                gate = _CountingGate(limit=settings.per_host,
                                     on_start=lambda n: st.saw(host, n))  # fmt: skip
                r = await scan(job, gate)
                return ScanSummary(target=r.target, outcome=r.outcome, protocols=r.protocols,
                                   connections=r.connections, error=r.error)  # fmt: skip
            st.saw(host, OVERLAP_CONNECTIONS)
            o = await run_overlap(job.profile, str(job.target), timeout=job.timeout)
            return OverlapSummary(profile=job.profile, target=str(job.target),
                                  verdict=o.verdict, reason=o.reason, predicted=o.predicted,
                                  causes=o.causes)  # fmt: skip

    async def one(check: Check, job: Job) -> None:
        host = job.target.host
        async with overall:
            st.max_in_flight = max(st.max_in_flight, overall.borrowed_tokens)
            started = time.perf_counter()
            r = await execute(job, host)
            duration = time.perf_counter() - started
        if isinstance(r, ScanSummary):
            got, failures = evaluate_scan(check.expect, r)
        elif isinstance(r, OverlapSummary):
            got, failures = evaluate_overlap(check.expect, r)
        else:
            got, failures = evaluate(check.expect, r)
        res = CheckResult(
            name=check.name,
            target=str(job.target),
            passed=not failures,
            expected=check.expect,
            got=got,
            failures=tuple(failures),
            result=r,
            duration_ms=round(duration * 1000, 1),
            kind=check.kind,
        )
        results[check.name] = res
        if progress is not None:
            progress(res, len(results), len(jobs))

    async with trio.open_nursery() as nursery:
        for check, job in jobs:
            nursery.start_soon(one, check, job)
    return [results[c.name] for c in plan.checks]


@dataclass(frozen=True, slots=True, kw_only=True)
class ExpiryRow:
    check: str
    subject: str
    not_after: str
    days_left: int
    sha256: str


def expiry_calendar(results: list[CheckResult], within_days: int | None = None) -> list[ExpiryRow]:
    """Every certificate seen, soonest expiry first (optionally only those within N days)."""
    rows: dict[str, ExpiryRow] = {}
    for res in results:
        if not isinstance(res.result, ProbeResult):
            continue  # scans and overlaps keep no certificates
        for c in res.result.server_certificates:
            if c.sha256 not in rows:
                rows[c.sha256] = ExpiryRow(check=res.name, subject=c.subject, not_after=c.not_after,
                                           days_left=c.days_left, sha256=c.sha256)  # fmt: skip
    out = sorted(rows.values(), key=lambda r: r.days_left)
    if within_days is not None:
        out = [r for r in out if r.days_left <= within_days]
    return out
