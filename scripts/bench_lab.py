"""The lab's speed: start-up (cold and warm PKI) and handshakes per second of `good`.

Start-up is the wall time from launching `tlsprobe lab --json` to its ready line (every port
listening), with an empty --pki-dir (cold: keys generated) and again with the same directory
(warm: reused). Throughput is `openssl s_time -new` against the lab's `good` scenario and
against `openssl s_server` serving the same certificate chain, one after the other in one run,
TLS 1.3 and TLS 1.2. Goals (issue 3): warm start within 1.5 s, cold within 5 s; the lab serves
at least 0.5x the handshakes per second of s_server.
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchlib import s_server


def start_lab(pki_dir: Path, *names: str) -> tuple[subprocess.Popen[str], float, dict[str, int]]:
    t0 = time.perf_counter()
    proc = subprocess.Popen(
        [sys.executable, "-m", "probe", "lab", "--json", "--port-base", "0",
         "--pki-dir", str(pki_dir), *names],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert proc.stdout is not None
    line = proc.stdout.readline()
    elapsed = time.perf_counter() - t0
    if not line:
        raise RuntimeError(f"lab failed: {proc.stderr.read() if proc.stderr else ''}")
    doc = json.loads(line)
    return proc, elapsed, {s["name"]: s["port"] for s in doc["scenarios"]}


def stop(proc: subprocess.Popen[str]) -> None:
    proc.terminate()
    proc.wait(10)


def s_time(port: int, seconds: int, version: str) -> float:
    """Handshakes per second of wall time. (s_time's own "N connections in T s" divides by its
    user CPU time, which measures the client, not the server.)"""
    started = time.perf_counter()
    out = subprocess.run(
        ["openssl", "s_time", "-connect", f"127.0.0.1:{port}", "-new", "-time", str(seconds),
         version],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    wall = time.perf_counter() - started
    m = re.search(r"(\d+) connections in ([\d.]+)s", out)
    if not m:
        raise RuntimeError(f"unexpected s_time output:\n{out}")
    return int(m.group(1)) / wall


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    ap.add_argument("--seconds", type=int, default=5, help="s_time duration per measurement")
    ap.add_argument("--markdown", action="store_true", help="print a BENCHMARKS.md section")
    ns = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        pki = Path(tmp) / "pki"
        proc, cold, _ = start_lab(pki)
        stop(proc)
        warm_runs = []
        for _ in range(3):
            proc, warm, _ = start_lab(pki)
            stop(proc)
            warm_runs.append(warm)
        warm = sorted(warm_runs)[1]
        rows = []
        proc, _, ports = start_lab(pki, "good")
        try:
            with s_server(pki) as ref:
                for version in ("-tls1_3", "-tls1_2"):
                    lab_rate = s_time(ports["good"], ns.seconds, version)
                    ref_rate = s_time(ref, ns.seconds, version)
                    rows.append((version.lstrip("-"), lab_rate, ref_rate, lab_rate / ref_rate))
        finally:
            stop(proc)
    sysssl = subprocess.run(["openssl", "version"], capture_output=True, text=True).stdout.strip()
    lines = [
        "| measurement | result | goal |",
        "|---|---|---|",
        f"| lab start-up, cold PKI (26 scenarios listening) | {cold:.2f} s | <= 5 s |",
        f"| lab start-up, warm PKI (median of 3) | {warm:.2f} s | <= 1.5 s |",
    ]
    for version, lab_rate, ref_rate, ratio in rows:
        lines.append(
            f"| `good` handshakes/s, {version}: lab {lab_rate:.0f} vs s_server {ref_rate:.0f}"
            f" | {ratio:.2f}x | >= 0.5x |"
        )
    lines.append("")
    lines.append(
        f"- Both servers measured by `openssl s_time -new` ({sysssl}), {ns.seconds} s each;"
        " rates are handshakes per second of wall time."
    )
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
