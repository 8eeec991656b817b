"""Demo: start the lab, probe every scenario, print what happened and why, stop the lab.

The lab (`tlsprobe lab`) replays the failures of the source documents on 127.0.0.1; each probe
is a real TLS session, and the table shows the outcome, the first likely cause and what IBM MQ,
z/OS, IBM i and Transfer CFT would log for it (`?` marks codes no source confirms).
"""

from __future__ import annotations

import argparse
import functools
import sys
import tempfile
from pathlib import Path

import trio

from probe.lab.catalog import Scenario
from probe.lab.server import Listening, select, serve_lab
from probe.pki import TestPKI
from probe.prober import ProbeRequest, run_probe
from probe.render import render_probe
from probe.result import ProbeResult
from probe.target import Target
from probe.tlsconfig import make_offer
from probe.wire import registry

SHOW = ("missing-intermediate", "tls10-only", "client-cert-huge-ca-list")


def request_for(s: Scenario, port: int, pki: TestPKI) -> ProbeRequest:
    opts = s.expect.probe

    def version(key: str) -> int | None:
        value = opts.get(key)
        return registry.find_version(str(value)) if value else None

    return ProbeRequest(
        target=Target(host="127.0.0.1", port=port),
        starttls=str(opts.get("starttls", "none")),
        offer=make_offer(None, version("tls_min"), version("tls_max"), None),
        ca_file=pki.ca,
        timeout=float(opts.get("timeout", 5)),
        mq_channel=opts.get("mq_channel"),
    )


def vendor_codes(r: ProbeResult) -> str:
    if not r.diagnosis:
        return ""
    codes: list[str] = []
    for v in r.diagnosis[0].vendor:
        for c in v.codes:
            shown = c if v.confirmed else f"{c}?"
            if shown not in codes:
                codes.append(shown)
    return ", ".join(codes[:4])


async def probe_all(listening: list[Listening], pki: TestPKI) -> list[tuple[Scenario, ProbeResult]]:
    results: dict[str, ProbeResult] = {}
    limiter = trio.CapacityLimiter(8)

    async def one(item: Listening) -> None:
        async with limiter:
            results[item.scenario.name] = await run_probe(
                request_for(item.scenario, item.port, pki)
            )

    async with trio.open_nursery() as nursery:
        for item in listening:
            nursery.start_soon(one, item)
    return [(item.scenario, results[item.scenario.name]) for item in listening]


async def demo(pki_dir: Path, names: list[str], verbose: bool) -> int:
    async with trio.open_nursery() as nursery:
        pki, listening = await nursery.start(
            functools.partial(
                serve_lab, select(names), host="127.0.0.1", port_base=0, pki_dir=pki_dir
            )
        )
        print(f"lab: {len(listening)} scenarios listening on 127.0.0.1 (PKI in {pki_dir})\n")
        rows = await probe_all(listening, pki)
        nursery.cancel_scope.cancel()
    table = [("scenario", "outcome", "cause", "vendor codes (? = unconfirmed)", "")]
    mismatches = 0
    for s, r in rows:
        cause = r.diagnosis[0].cause if r.diagnosis else "-"
        ok = r.outcome == s.expect.outcome and (s.expect.cause or "-") == cause
        mismatches += not ok
        table.append((s.name, r.outcome, cause, vendor_codes(r), "" if ok else "<- unexpected"))
    width = [max(len(row[i]) for row in table) for i in range(4)]
    for row in table:
        print("  ".join(c.ljust(w) for c, w in zip(row[:4], width, strict=False)) + row[4])
    for s, r in rows:
        if verbose or s.name in SHOW:
            print()
            print(f"--- {s.name}: {s.summary}")
            print(render_probe(r))
    print(
        "\nTry it yourself: `.venv/bin/tlsprobe lab` in one terminal, then"
        " `.venv/bin/tlsprobe probe 127.0.0.1:9440 --ca ~/.local/share/tlsprobe/lab-pki/ca.crt`."
    )
    return 1 if mismatches else 0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    ap.add_argument("scenarios", nargs="*", help="scenarios to run (default: all)")
    ap.add_argument("--pki-dir", type=Path, help="keep the lab PKI here (reused next time)")
    ap.add_argument("--verbose", "-v", action="store_true", help="print every full result")
    ns = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="tlsprobe-demo-") as tmp:
        return trio.run(demo, ns.pki_dir or Path(tmp), ns.scenarios, ns.verbose)


if __name__ == "__main__":
    sys.exit(main())
