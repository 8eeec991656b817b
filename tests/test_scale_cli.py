"""The many-target commands as users run them: `lab --repeat`, `probe -f`, `scan -f --deadline`."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from pathlib import Path

from labproc import running_lab


def cli(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "probe", *map(str, args)],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip


def test_probe_file_streams_one_line_per_target(tmp_path: Path) -> None:
    pki = tmp_path / "pki"
    proc = subprocess.Popen(
        [sys.executable, "-m", "probe", "lab", "--json", "--port-base", "0", "--pki-dir",
         str(pki), "--repeat", "30", "good", "expired"],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert proc.stdout is not None
        doc = json.loads(proc.stdout.readline())
        rows = doc["scenarios"]
        assert len(rows) == 60 and {r["index"] for r in rows} == set(range(30))
        targets = tmp_path / "targets.txt"
        targets.write_text("# lab copies\n" + "".join(f"127.0.0.1:{r['port']}\n" for r in rows))
        run = cli("probe", "-f", targets, "--ca", pki / "ca.crt", "--concurrency", "20",
                  "--per-host", "10")  # fmt: skip
    finally:
        proc.terminate()
        proc.wait(10)
    lines = [json.loads(line) for line in run.stdout.splitlines()]
    assert len(lines) == 60
    outcomes = sorted(r["outcome"] for r in lines)
    assert outcomes == ["connected"] * 30 + ["server_cert_expired"] * 30
    summary = json.loads(run.stderr.strip().splitlines()[-1])
    assert summary["results"] == 60 and summary["max_in_flight_per_host"] <= 10
    assert run.returncode == 1  # not everything connected


def test_scan_file_deadline_marks_the_unfinished(tmp_path: Path) -> None:
    silent = [socket.socket() for _ in range(4)]
    try:
        for s in silent:
            s.bind(("127.0.0.1", 0))
            s.listen(16)
        targets = tmp_path / "silent.txt"
        targets.write_text("".join(f"127.0.0.1:{s.getsockname()[1]}\n" for s in silent))
        run = cli("scan", "-f", targets, "--timeout", "30", "--deadline", "1")
    finally:
        for s in silent:
            s.close()
    lines = [json.loads(line) for line in run.stdout.splitlines()]
    assert len(lines) == 4 and all(r["outcome"] == "timeout" for r in lines)
    assert run.returncode == 1


def test_lab_repeat_list_and_bad_values(tmp_path: Path) -> None:
    listing = cli("lab", "--list", "--json", "--repeat", "3", "--port-base", "20000",
                  "--pki-dir", tmp_path, "good", "expired")  # fmt: skip
    ports = [r["port"] for r in json.loads(listing.stdout)["scenarios"]]
    assert ports == [20000, 20001, 20002, 20003, 20004, 20005]
    bad = cli("lab", "--repeat", "0")
    assert bad.returncode == 2 and "--repeat" in bad.stderr
    both = cli("probe")
    assert both.returncode == 2 and "TARGET or -f" in both.stderr
    with running_lab(tmp_path / "pki2", "good"):
        pass
