"""`scan` through the telnet START_TLS option (TN3270 on 23/992 style) with several connections
at once: each connection negotiates on its own, so the scan sees what a single probe sees."""

from __future__ import annotations

import trio
from telnetpeers import telnet_server

from probe.pki import TestPKI
from probe.scan import HostGate, ScanOptions, scan
from probe.target import Target


async def test_scan_through_telnet_start_tls_with_parallel_connections(pki: TestPKI) -> None:
    async with telnet_server("start-tls", pki.good.chain, pki.good.key) as server:
        opts = ScanOptions(target=Target(host="127.0.0.1", port=server.port), starttls="telnet")
        with trio.fail_after(60):
            r = await scan(opts, HostGate(limit=5))
    assert r.outcome == "scanned", r.error
    supported = {p.version for p in r.protocols if p.supported}
    assert {"TLSv1.2", "TLSv1.3"} <= supported, supported
    # One negotiation per connection (the plain TCP reachability check says nothing).
    assert len(server.conversations) == r.connections
    negotiated = [c for c in server.conversations if c]
    assert len(negotiated) == r.connections - 1
    assert all(c.startswith(bytes([255, 251, 46])) for c in negotiated)  # IAC WILL START_TLS
