"""Client CPU per full handshake: tlsprobe against `openssl s_time`, same server, same run.

Both clients do full handshakes (no resumption) with certificate verification against the same
`openssl s_server` on 127.0.0.1, in TLS 1.3 and in TLS 1.2. CPU is user+system time from
getrusage: for s_time the child's, for tlsprobe this process's while it runs N complete probes
in one trio.run (interpreter start-up is reported separately, as it is paid once per command).
Prints a table and the ratio tlsprobe/s_time; --markdown prints the BENCHMARKS.md section.

Each case also gets a "floor" row: a minimal trio + pyOpenSSL memory-BIO client doing only the
handshake (OpenSSL's own verification, no transcript tee, no callbacks, no close_notify, no
result), so readers see how much of tlsprobe's cost is the Python engine and how much is
the product's own work per probe.

The goal from issue 2: at most 1.5x the C client's CPU per handshake.
"""

from __future__ import annotations

import argparse
import platform
import re
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import trio
from benchlib import cpu_children, cpu_self, s_server
from OpenSSL import SSL

from probe.pki import TestPKI, build_test_pki
from probe.prober import ProbeRequest, run_probe
from probe.target import Target
from probe.tlsconfig import make_offer
from probe.wire import registry


@dataclass(frozen=True)
class Case:
    name: str
    server: list[str]
    s_time: list[str]
    version: int
    cipher: str


CASES = [
    Case(
        "TLS 1.3 AES128-GCM",
        ["-tls1_3", "-ciphersuites", "TLS_AES_128_GCM_SHA256"],
        ["-tls1_3", "-ciphersuites", "TLS_AES_128_GCM_SHA256"],
        0x0304,
        "TLS_AES_128_GCM_SHA256",
    ),
    Case(
        "TLS 1.2 ECDHE-RSA-AES128-GCM",
        ["-tls1_2", "-cipher", "ECDHE-RSA-AES128-GCM-SHA256"],
        ["-tls1_2", "-cipher", "ECDHE-RSA-AES128-GCM-SHA256"],
        0x0303,
        "ECDHE-RSA-AES128-GCM-SHA256",
    ),
]


def run_s_time(port: int, case: Case, pki: TestPKI, seconds: int) -> tuple[int, float]:
    before = cpu_children()
    out = subprocess.run(
        [
            "openssl",
            "s_time",
            "-connect",
            f"127.0.0.1:{port}",
            "-new",
            "-time",
            str(seconds),
            "-verify",
            "2",
            "-CAfile",
            str(pki.ca),
            *case.s_time,
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    cpu = cpu_children() - before
    m = re.search(r"(\d+) connections in [\d.]+s", out)
    if not m:
        raise RuntimeError(f"unexpected s_time output:\n{out}")
    return int(m.group(1)), cpu


def run_tlsprobe(port: int, case: Case, pki: TestPKI, count: int) -> tuple[int, float, float, str]:
    suite = registry.find_suite(case.cipher)
    assert suite is not None
    req = ProbeRequest(
        target=Target(host="127.0.0.1", port=port),
        offer=make_offer(case.version, None, None, (suite,)),
        ca_file=pki.ca,
        grace=0.0,  # s_time does not wait after the handshake either
        partner_versions=False,
    )
    outcomes: set[str] = set()

    async def loop(n: int) -> None:
        for _ in range(n):
            r = await run_probe(req)
            outcomes.add(r.outcome)

    trio.run(loop, 20)  # warm-up: imports, first-use caches
    before, wall = cpu_self(), time.perf_counter()
    trio.run(loop, count)
    cpu, wall = cpu_self() - before, time.perf_counter() - wall
    if outcomes != {"connected"}:
        raise RuntimeError(f"tlsprobe did not connect: {outcomes}")
    return count, cpu, wall, ",".join(sorted(outcomes))


def floor_context(case: Case, pki: TestPKI) -> SSL.Context:
    ctx = SSL.Context(SSL.TLS_CLIENT_METHOD)
    version = SSL.TLS1_3_VERSION if case.version == 0x0304 else SSL.TLS1_2_VERSION
    ctx.set_min_proto_version(version)
    ctx.set_max_proto_version(version)
    if case.version == 0x0304:
        ctx.set_tls13_ciphersuites(case.cipher.encode())
    else:
        ctx.set_cipher_list(case.cipher.encode())
    ctx.load_verify_locations(str(pki.ca))
    ctx.set_verify(SSL.VERIFY_PEER)
    return ctx


async def floor_handshake(port: int, ctx: SSL.Context) -> None:
    """The least a trio client on memory BIOs does for one verified full handshake."""
    stream = await trio.open_tcp_stream("127.0.0.1", port)
    async with stream:
        conn = SSL.Connection(ctx, None)
        conn.set_connect_state()
        while True:
            try:
                conn.do_handshake()
                done = True
            except SSL.WantReadError:
                done = False
            try:
                out = conn.bio_read(65536)
            except SSL.WantReadError:
                out = b""
            if out:
                await stream.send_all(out)
            if done:
                return
            data = await stream.receive_some(65536)
            if not data:
                raise RuntimeError("floor client: server closed during the handshake")
            conn.bio_write(data)


def run_floor(port: int, case: Case, pki: TestPKI, count: int) -> tuple[int, float, float]:
    ctx = floor_context(case, pki)

    async def loop(n: int) -> None:
        for _ in range(n):
            await floor_handshake(port, ctx)

    trio.run(loop, 20)
    before, wall = cpu_self(), time.perf_counter()
    trio.run(loop, count)
    cpu, wall = cpu_self() - before, time.perf_counter() - wall
    return count, cpu, wall


def startup_cpu() -> float:
    before = cpu_children()
    subprocess.run([sys.executable, "-m", "probe", "--version"], capture_output=True, check=True)
    return cpu_children() - before


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    ap.add_argument("--seconds", type=int, default=5, help="s_time duration per case")
    ap.add_argument("--count", type=int, default=500, help="tlsprobe handshakes per case")
    ap.add_argument("--markdown", action="store_true", help="print a BENCHMARKS.md section")
    ns = ap.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        pki = build_test_pki(Path(tmp))
        for case in CASES:
            with s_server(pki.directory, ["-groups", "x25519", *case.server]) as port:
                n_c, cpu_c = run_s_time(port, case, pki, ns.seconds)
                n_p, cpu_p, wall_p, _ = run_tlsprobe(port, case, pki, ns.count)
                n_f, cpu_f, wall_f = run_floor(port, case, pki, ns.count)
            per_c = cpu_c / n_c * 1000
            for name, n, cpu, wall in (
                (case.name, n_p, cpu_p, wall_p),
                (f"{case.name}, floor (trio + pyOpenSSL only)", n_f, cpu_f, wall_f),
            ):
                per = cpu / n * 1000
                rows.append((name, n_c, per_c, n, per, wall / n * 1000, per / per_c))
    start = startup_cpu() * 1000
    lib = SSL.OpenSSL_version(SSL.OPENSSL_VERSION).decode()
    sysssl = subprocess.run(["openssl", "version"], capture_output=True, text=True).stdout.strip()
    header = (
        "| case | s_time handshakes | s_time CPU/handshake | tlsprobe handshakes"
        " | tlsprobe CPU/handshake | tlsprobe wall/handshake | ratio |"
    )
    lines = [header, "|---|---|---|---|---|---|---|"]
    for name, n_c, per_c, n_p, per_p, wall, ratio in rows:
        lines.append(
            f"| {name} | {n_c} | {per_c:.3f} ms | {n_p} | {per_p:.3f} ms"
            f" | {wall:.3f} ms | {ratio:.2f}x |"
        )
    notes = [
        f"- tlsprobe: Python {platform.python_version()}, pyOpenSSL on {lib}; s_time: {sysssl}.",
        f"- Interpreter start-up and imports of one `tlsprobe` command: {start:.0f} ms CPU,"
        " paid once per command, not per handshake.",
        "- Floor rows: a minimal trio + pyOpenSSL memory-BIO client (handshake with OpenSSL's"
        " verification only: no transcript, callbacks, close_notify or result); the gap to the"
        " tlsprobe row is the product's own work per probe.",
        f"- Machine: {platform.machine()}, {platform.system()} {platform.release()}.",
    ]
    if ns.markdown:
        print("\n".join([*lines, "", *notes]))
    else:
        print("\n".join(lines))
        print("\n".join(notes))
    return 0


if __name__ == "__main__":
    sys.exit(main())
