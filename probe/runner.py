"""Running a plan: every check a real probe, concurrently, bounded overall and per host.

All requests are built before the first connection, so a check with an unreadable certificate
or an unknown cipher name stops the plan with exit 2 and nothing half-run.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import trio

from .cipherlist import apply_pinned_versions, parse_cipher_list, parse_cipher_selection
from .errors import InputError
from .identity import load_certificates, load_identity, read_input_file
from .plan import Check, Plan, PlanError
from .prober import DEFAULT_GRACE, DEFAULT_TIMEOUT, ProbeRequest, run_probe
from .result import ProbeResult
from .starttls import resolve_protocol
from .target import Target, parse_target
from .tlsconfig import make_offer
from .wire import registry

LAB_PORT_BASE = 9440


def default_lab_pki() -> Path:
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "tlsprobe" / "lab-pki"


@dataclass(frozen=True, slots=True, kw_only=True)
class CheckResult:
    name: str
    target: str
    passed: bool
    expected: dict[str, Any]
    got: dict[str, Any]
    failures: tuple[str, ...]
    result: ProbeResult
    duration_ms: float


@dataclass(frozen=True, slots=True, kw_only=True)
class RunSettings:
    concurrency: int = 20
    per_host: int = 10
    lab_port_base: int | None = None
    lab_pki_dir: Path | None = None


def _lab_target(check: Check, settings: RunSettings) -> tuple[Target, dict[str, Any]]:
    from .lab.catalog import scenario_names

    scenario = check.target.split(":", 1)[1]
    names = scenario_names()
    if scenario not in names:
        raise PlanError(f"check {check.name!r}: unknown lab scenario {scenario!r}")
    base = settings.lab_port_base or int(check.options.get("lab_port_base", LAB_PORT_BASE))
    opts = dict(check.options)
    pki = settings.lab_pki_dir or Path(opts.get("lab_pki_dir") or default_lab_pki())
    opts.setdefault("ca", str(pki / "ca.crt"))
    return Target(host="127.0.0.1", port=base + names.index(scenario)), opts


def _password(opts: dict[str, Any], name: str) -> str | None:
    if "cert_password_env" in opts:
        value = os.environ.get(str(opts["cert_password_env"]))
        if value is None:
            raise PlanError(
                f"check {name!r}: environment variable {opts['cert_password_env']} is not set"
            )
        return value
    if "cert_password_file" in opts:
        raw = read_input_file(Path(opts["cert_password_file"]), "password file")
        return raw.decode("utf-8", "replace").rstrip("\r\n")
    return None


def build_request(check: Check, settings: RunSettings) -> ProbeRequest:
    try:
        if check.target.startswith("lab:"):
            target, opts = _lab_target(check, settings)
        else:
            target, opts = parse_target(check.target), dict(check.options)

        def version(key: str) -> int | None:
            if key not in opts:
                return None
            v = registry.find_version(str(opts[key]))
            if v is None:
                raise InputError(f"{key} {opts[key]!r}: choose one of ssl2 ssl3 1.0 1.1 1.2 1.3")
            return v

        selection = parse_cipher_selection(opts["ciphers"]) if "ciphers" in opts else None
        exact, lo, hi = apply_pinned_versions(
            selection, version("tls"), version("tls_min"), version("tls_max")
        )
        offer = make_offer(exact, lo, hi, selection.suites if selection else None)
        if "ca" in opts:
            load_certificates(Path(opts["ca"]), "CA file")  # unreadable: stop before any probe
        identity = None
        if "cert" in opts:
            key = Path(opts["key"]) if "key" in opts else None
            identity = load_identity(Path(opts["cert"]), key, _password(opts, check.name))
        return ProbeRequest(
            target=target,
            starttls=resolve_protocol(str(opts.get("starttls", "auto")), target.port),
            sni=opts.get("sni"),
            offer=offer,
            identity=identity,
            ca_file=Path(opts["ca"]) if "ca" in opts else None,
            verify=not opts.get("no_verify", False),
            timeout=float(opts.get("timeout", DEFAULT_TIMEOUT)),
            grace=float(opts.get("grace", DEFAULT_GRACE)),
            mq_channel=opts.get("mq_channel"),
        )
    except PlanError:
        raise
    except InputError as exc:
        raise PlanError(f"check {check.name!r}: {exc}") from None


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
            try:
                want_codes = {s.hex for s in parse_cipher_list(str(want))}
            except InputError as exc:
                failures.append(f"cipher: {exc}")
                continue
            ok = have in want_codes
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


@dataclass(slots=True)
class RunStats:
    """Measured, not assumed: the most checks in flight at once, overall and per host."""

    max_in_flight: int = 0
    max_in_flight_per_host: dict[str, int] = field(default_factory=dict)


async def run_plan(
    plan: Plan,
    settings: RunSettings,
    progress: Callable[[CheckResult, int, int], None] | None = None,
    stats: RunStats | None = None,
) -> list[CheckResult]:
    requests = [(check, build_request(check, settings)) for check in plan.checks]
    results: dict[str, CheckResult] = {}
    overall = trio.CapacityLimiter(settings.concurrency)
    hosts: dict[str, trio.CapacityLimiter] = {}
    st = stats if stats is not None else RunStats()

    async def one(check: Check, req: ProbeRequest) -> None:
        name = req.target.host
        host = hosts.setdefault(name, trio.CapacityLimiter(settings.per_host))
        async with overall, host:
            st.max_in_flight = max(st.max_in_flight, overall.borrowed_tokens)
            st.max_in_flight_per_host[name] = max(
                st.max_in_flight_per_host.get(name, 0), host.borrowed_tokens
            )
            started = time.perf_counter()
            r = await run_probe(req)
        got, failures = evaluate(check.expect, r)
        res = CheckResult(
            name=check.name,
            target=str(req.target),
            passed=not failures,
            expected=check.expect,
            got=got,
            failures=tuple(failures),
            result=r,
            duration_ms=round((time.perf_counter() - started) * 1000, 1),
        )
        results[check.name] = res
        if progress is not None:
            progress(res, len(results), len(requests))

    async with trio.open_nursery() as nursery:
        for check, req in requests:
            nursery.start_soon(one, check, req)
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
        for c in res.result.server_certificates:
            if c.sha256 not in rows:
                rows[c.sha256] = ExpiryRow(check=res.name, subject=c.subject, not_after=c.not_after,
                                           days_left=c.days_left, sha256=c.sha256)  # fmt: skip
    out = sorted(rows.values(), key=lambda r: r.days_left)
    if within_days is not None:
        out = [r for r in out if r.days_left <= within_days]
    return out
