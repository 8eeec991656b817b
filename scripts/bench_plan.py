"""200 checks against the lab: wall time of `tlsprobe run` and the per-host limit, measured.

Starts the lab, writes a plan of N checks cycling through the lab's fast scenarios (silent is
left out: it only measures the timeout), runs it with a per-host limit and prints the wall time,
checks per second, and the most checks the runner had in flight against the one lab host.
"""

from __future__ import annotations

import argparse
import json
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from probe.lab.catalog import load_catalog


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    ap.add_argument("--checks", type=int, default=200)
    ap.add_argument("--per-host", type=int, default=10)
    ap.add_argument("--markdown", action="store_true")
    ns = ap.parse_args()
    scenarios = [s for s in load_catalog() if s.name != "silent"]
    with tempfile.TemporaryDirectory() as tmp:
        pki = Path(tmp) / "pki"
        lab = subprocess.Popen(
            [sys.executable, "-m", "probe", "lab", "--json", "--port-base", "0",
             "--pki-dir", str(pki)],
            stdout=subprocess.PIPE, text=True,
        )  # fmt: skip
        assert lab.stdout is not None
        ports = {s["name"]: s["port"] for s in json.loads(lab.stdout.readline())["scenarios"]}
        try:
            lines = [f'[defaults]\nca = "{pki / "ca.crt"}"\ntimeout = 5\n']
            for i in range(ns.checks):
                s = scenarios[i % len(scenarios)]
                lines.append(
                    f'[[check]]\nname = "{s.name} #{i}"\ntarget = "127.0.0.1:{ports[s.name]}"'
                )
                for k, v in s.expect.probe.items():
                    lines.append(f'{k} = "{v}"' if isinstance(v, str) else f"{k} = {v}")
                lines.append(f'[check.expect]\noutcome = "{s.expect.outcome}"\n')
            plan = Path(tmp) / "bench.toml"
            plan.write_text("\n".join(lines))
            t0 = time.perf_counter()
            proc = subprocess.run(
                [sys.executable, "-m", "probe", "run", str(plan), "--json", "--no-history",
                 "--per-host", str(ns.per_host), "--concurrency", "100"],
                capture_output=True, text=True,
            )  # fmt: skip
            wall = time.perf_counter() - t0
        finally:
            lab.send_signal(signal.SIGTERM)
            lab.wait(10)
    doc = json.loads(proc.stdout)
    in_flight = doc["stats"]["max_in_flight_per_host"].get("127.0.0.1", 0)
    rows = [
        "| measurement | result |",
        "|---|---|",
        f"| {ns.checks} checks against the lab, `--per-host {ns.per_host}` | {wall:.2f} s wall"
        f" ({ns.checks / wall:.0f} checks/s, command start-up included) |",
        f"| checks passed | {doc['passed']} of {ns.checks} |",
        f"| most checks in flight against the lab host | {in_flight} (limit {ns.per_host}) |",
    ]
    print("\n".join(rows))
    return 0 if doc["failed"] == 0 and in_flight <= ns.per_host else 1


if __name__ == "__main__":
    sys.exit(main())
