"""Demo: real `openssl s_server` partners on loopback, probed by tlsprobe, explained.

Until the lab (`tlsprobe lab`) exists, the partners are the system `openssl s_server` in
configurations that replay the seeds' failures. Everything binds 127.0.0.1 and is stopped at
the end; the PKI lives in a temporary directory (keys 0600) unless --pki-dir is given.
"""

from __future__ import annotations

import argparse
import contextlib
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import trio

from probe.identity import load_identity
from probe.pki import TestPKI, build_test_pki
from probe.prober import ProbeRequest, run_probe
from probe.render import render_probe
from probe.result import ProbeResult
from probe.target import Target
from probe.tlsconfig import make_offer


@dataclass(frozen=True)
class Partner:
    name: str
    story: str
    args: list[str]
    client_cert: bool = False
    tls_min: int | None = None


def partners(p: TestPKI) -> list[Partner]:
    good = ["-cert", str(p.good.cert), "-key", str(p.good.key), "-cert_chain", str(p.intermediate)]
    need_cert = ["-Verify", "1", "-verify_return_error", "-CAfile", str(p.ca)]
    return [
        Partner("good", "valid chain, TLS 1.2 and 1.3", good),
        Partner(
            "expired",
            "server certificate past notAfter (z/OS RC 401)",
            [
                "-cert",
                str(p.expired.cert),
                "-key",
                str(p.expired.key),
                "-cert_chain",
                str(p.intermediate),
            ],
        ),
        Partner(
            "missing-intermediate",
            "leaf sent without its intermediate (MQ AMQ9633)",
            ["-cert", str(p.good.cert), "-key", str(p.good.key)],
        ),
        Partner(
            "unknown-ca",
            "chain to a root we do not trust (CFT CR=48)",
            [
                "-cert",
                str(p.unknown_ca.cert),
                "-key",
                str(p.unknown_ca.key),
                "-cert_chain",
                str(p.other_intermediate),
            ],
        ),
        Partner(
            "wrong-host",
            "certificate names another host (z/OS 0335304B)",
            [
                "-cert",
                str(p.wrong_host.cert),
                "-key",
                str(p.wrong_host.key),
                "-cert_chain",
                str(p.intermediate),
            ],
        ),
        Partner(
            "tls10-only",
            "partner speaks only TLS 1.0 (IBM i V5R4)",
            [*good, "-tls1", "-cipher", "DEFAULT:@SECLEVEL=0"],
        ),
        Partner(
            "no-shared-cipher",
            "only a suite modern clients do not offer (CFT CR=40)",
            [*good, "-no_tls1_3", "-cipher", "CAMELLIA128-SHA"],
        ),
        Partner(
            "client-cert-required",
            "mutual TLS required, TLS 1.3 (MQ SSLCAUTH(REQUIRED))",
            [*good, "-tls1_3", *need_cert],
        ),
        Partner(
            "client-cert-required-tls12",
            "mutual TLS required, TLS 1.2",
            [*good, "-tls1_2", *need_cert],
        ),
        Partner(
            "client-cert-sent",
            "mutual TLS required, lab client identity sent",
            [*good, *need_cert],
            client_cert=True,
        ),
    ]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def s_server(args: list[str]) -> Iterator[int]:
    port = free_port()
    proc = subprocess.Popen(
        ["openssl", "s_server", "-accept", f"127.0.0.1:{port}", "-quiet", *args],
        stdin=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
                break
            if proc.poll() is not None:
                raise RuntimeError(f"openssl s_server {' '.join(args)} exited")
            time.sleep(0.02)
        yield port
    finally:
        proc.terminate()
        proc.wait(5)


async def probe_one(p: TestPKI, partner: Partner, port: int) -> ProbeResult:
    identity = (
        load_identity(p.client.pkcs12, None, p.pkcs12_password) if partner.client_cert else None
    )
    req = ProbeRequest(
        target=Target(host="127.0.0.1", port=port),
        offer=make_offer(None, partner.tls_min, None, None),
        identity=identity,
        ca_file=p.ca,
        timeout=5,
    )
    return await run_probe(req)


def vendor_summary(r: ProbeResult) -> str:
    if not r.diagnosis:
        return ""
    codes: list[str] = []
    for v in r.diagnosis[0].vendor:
        for c in v.codes:
            tag = "" if v.confirmed else "?"
            if f"{c}{tag}" not in codes:
                codes.append(f"{c}{tag}")
    return ", ".join(codes[:5])


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    ap.add_argument("--pki-dir", type=Path, help="keep the generated PKI here (reused next time)")
    ap.add_argument("--verbose", "-v", action="store_true", help="print every full result")
    ns = ap.parse_args()
    if shutil.which("openssl") is None:
        print("demo: openssl is not installed (scripts/bootstrap installs it)", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix="tlsprobe-demo-") as tmp:
        pki = build_test_pki(ns.pki_dir or Path(tmp))
        rows: list[tuple[str, str, str, str, str]] = []
        shown: list[ProbeResult] = []
        for partner in partners(pki):
            with s_server(partner.args) as port:
                r = trio.run(probe_one, pki, partner, port)
            cause = r.diagnosis[0].cause if r.diagnosis else "-"
            rows.append((partner.name, r.outcome, cause, vendor_summary(r), partner.story))
            if ns.verbose or partner.name in ("missing-intermediate", "tls10-only"):
                shown.append(r)
    width = [max(len(row[i]) for row in rows) for i in range(4)]
    head = ("partner", "outcome", "cause", "vendor codes (? = unconfirmed)")
    print("  ".join(h.ljust(w) for h, w in zip(head, width, strict=False)))
    for row in rows:
        print("  ".join(c.ljust(w) for c, w in zip(row[:4], width, strict=False)))
    for r in shown:
        print()
        print(render_probe(r))
    print("\nEvery partner above is a real `openssl s_server` on 127.0.0.1; probe your own with")
    print("  .venv/bin/tlsprobe probe HOST:PORT [--ca FILE] [--cert FILE] [--json]")
    return 0


if __name__ == "__main__":
    sys.exit(main())
