"""`tlsprobe run` plans against real peers: the lab, openssl s_server; JUnit, history, drift."""

from __future__ import annotations

import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from junitparser import JUnitXml
from labproc import running_lab
from peers import openssl_server

from probe.pki import (
    CertSpec,
    Credential,
    Purpose,
    TestPKI,
    issue,
    load_certs_pem,
    load_private_key,
    write_certs_pem,
    write_private_key,
)

ROOT = Path(__file__).resolve().parents[1]
LAB_PLAN = ROOT / "profiles" / "plans" / "lab.toml"


def cli(*args: str | Path, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "probe", *map(str, args)],
        capture_output=True, text=True, timeout=timeout,
    )  # fmt: skip


def free_block(n: int) -> int:
    """A base port with n free ports after it (the lab takes base, base+1, ...)."""
    for base in range(21000, 60000, 97):
        socks = []
        try:
            for p in range(base, base + n):
                s = socket.socket()
                s.bind(("127.0.0.1", p))
                socks.append(s)
            return base
        except OSError:
            continue
        finally:
            for s in socks:
                s.close()
    raise RuntimeError("no free port block")


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[int, Path]]:
    pki = tmp_path_factory.mktemp("plan-lab-pki")
    base = free_block(26)
    with running_lab(pki, port_base=base):
        yield base, pki


def test_the_lab_plan_passes(lab: tuple[int, Path], tmp_path: Path) -> None:
    base, pki = lab
    junit = tmp_path / "lab.xml"
    db = tmp_path / "h.sqlite"
    proc = cli("run", LAB_PLAN, "--lab-port-base", base, "--lab-pki-dir", pki,
               "--db", db, "--junit", junit, "--json")  # fmt: skip
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr
    doc = json.loads(proc.stdout)
    assert doc["failed"] == 0 and doc["passed"] == 29
    assert {c["name"] for c in doc["checks"]} >= {"good", "expired", "mq-certlabl"}
    xml = JUnitXml.fromfile(str(junit))
    assert xml.tests == 29 and xml.failures == 0
    # The expired scenario's certificate is on the expiry calendar, soonest first.
    assert doc["expiry"][0]["days_left"] < 0


def write_plan(path: Path, body: str) -> Path:
    path.write_text(body)
    return path


def test_wrong_expectation_fails_with_exit_1_and_junit(
    lab: tuple[int, Path], tmp_path: Path
) -> None:
    base, pki = lab
    plan = write_plan(
        tmp_path / "wrong.toml",
        f'''
[defaults]
lab_port_base = {base}
lab_pki_dir = "{pki}"
[[check]]
name = "good is good"
target = "lab:good"
[[check]]
name = "expired is fine (wrong on purpose)"
target = "lab:expired"
[check.expect]
outcome = "connected"
[[check]]
name = "tls10 speaks 1.3 (wrong on purpose)"
target = "lab:tls10-only"
[check.expect]
version = "TLSv1.3"
''',
    )
    junit = tmp_path / "wrong.xml"
    proc = cli("run", plan, "--junit", junit, "--no-history")
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "expected 'connected', got 'server_cert_expired'" in proc.stdout
    xml = JUnitXml.fromfile(str(junit))
    assert xml.tests == 3 and xml.failures == 2
    messages = [c.result[0].message for suite in xml for c in suite if c.result]
    assert any("server_cert_expired" in m for m in messages)


@pytest.mark.parametrize(
    ("body", "line", "words"),
    [
        ('[[check]]\nname = "a"\ntarget = "h:1"\ncolour = "red"\n', 4, "unknown key 'colour'"),
        ('[[check]]\nname = "a"\ntarget = "h:1"\ntimeout = "soon"\n', 4, "timeout must be"),
        ('[defaults]\nretries = 3\n[[check]]\nname = "a"\ntarget = "h:1"\n', 2, "unknown key"),
        (
            '[[check]]\nname = "a"\ntarget = "h:1"\n[check.expect]\noutcome = "fine"\n',
            5,
            "unknown outcome",
        ),
        ('[[check]]\nname = "a"\n', 1, "target is required"),
        ('[[check]\nname = "a"\n', 1, "plan"),
    ],
)
def test_malformed_plan_exit_2_with_line(tmp_path: Path, body: str, line: int, words: str) -> None:
    plan = write_plan(tmp_path / "bad.toml", body)
    proc = cli("run", plan, "--no-history")
    assert proc.returncode == 2, proc.stdout + proc.stderr
    err = proc.stderr.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err
    assert words in err
    if "Invalid" not in err and "Expected" not in err:
        assert f"bad.toml:{line}:" in err, err


def _reissue(pki: TestPKI, out: Path) -> Path:
    """A new leaf for localhost from the same intermediate: same names, new certificate."""
    inter = load_certs_pem(pki.intermediate)[0]
    inter_key = load_private_key(pki.directory / "intermediate.key")

    cred = issue(
        CertSpec(common_name="localhost", dns_names=("localhost",), ip_addresses=("127.0.0.1",),
                 purposes=(Purpose.SERVER_AUTH,)),
        key=load_private_key(pki.good.key),
        issuer=Credential(cert=inter, key=inter_key),
    )  # fmt: skip
    write_certs_pem(out, [cred.cert, inter])
    write_private_key(out.with_suffix(".key"), load_private_key(pki.good.key))
    return out


def test_drift_reports_exactly_the_reissued_certificate(pki: TestPKI, tmp_path: Path) -> None:
    db = tmp_path / "h.sqlite"
    chain2 = _reissue(pki, tmp_path / "reissued.crt")
    serve_a = ["-cert", str(pki.good.cert), "-key", str(pki.good.key), "-cert_chain",
               str(pki.intermediate)]  # fmt: skip
    serve_b = ["-cert", str(pki.expired.cert), "-key", str(pki.expired.key), "-cert_chain",
               str(pki.intermediate)]  # fmt: skip
    with openssl_server(serve_a) as a, openssl_server(serve_b) as b:
        plan = write_plan(
            tmp_path / "drift.toml",
            f'''
[defaults]
ca = "{pki.ca}"
[[check]]
name = "partner A"
target = "127.0.0.1:{a.port}"
[[check]]
name = "partner B"
target = "127.0.0.1:{b.port}"
[check.expect]
outcome = "server_cert_expired"
''',
        )
        first = cli("run", plan, "--db", db, "--json")
        assert first.returncode == 0, first.stdout + first.stderr
        assert [d for d in json.loads(first.stdout)["drift"] if d["kind"] != "expiry"] == []
        reissued = ["-cert", str(chain2), "-key", str(chain2.with_suffix(".key")),
                    "-cert_chain", str(pki.intermediate)]  # fmt: skip
        with openssl_server(reissued) as a2:
            plan.write_text(plan.read_text().replace(f":{a.port}", f":{a2.port}"))
            second = cli("run", plan, "--db", db, "--json")
    assert second.returncode == 0, second.stdout + second.stderr
    changes = [d for d in json.loads(second.stdout)["drift"] if d["kind"] != "expiry"]
    assert [(d["check"], d["kind"]) for d in changes] == [("partner A", "certificate")]
    hist = cli("history", plan, "--db", db, "--json")
    assert len(json.loads(hist.stdout)["runs"]) == 2


def test_killed_run_leaves_history_consistent(pki: TestPKI, tmp_path: Path) -> None:
    db = tmp_path / "h.sqlite"
    with openssl_server(["-cert", str(pki.good.cert), "-key", str(pki.good.key)]) as srv:
        quick = write_plan(
            tmp_path / "quick.toml",
            f"""
[[check]]
name = "quick"
target = "127.0.0.1:{srv.port}"
no_verify = true
""",
        )
        assert cli("run", quick, "--db", db).returncode == 0
    # A plan that hangs on a silent listener, killed while it runs.
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(16)
    slow = write_plan(
        tmp_path / "slow.toml",
        f"""
[[check]]
name = "silent"
target = "127.0.0.1:{silent.getsockname()[1]}"
timeout = 30
""",
    )
    proc = subprocess.Popen([sys.executable, "-m", "probe", "run", str(slow), "--db", str(db)])
    time.sleep(1.5)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    silent.close()
    conn = sqlite3.connect(db)
    assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    assert conn.execute("SELECT count(*) FROM runs").fetchone()[0] == 1
    assert conn.execute("SELECT count(*) FROM runs WHERE plan = ?", (str(slow),)).fetchone()[0] == 0
    conn.close()
    hist = cli("history", quick, "--db", db)
    assert hist.returncode == 0 and "1 passed" in hist.stdout


def test_jsonl_streams_one_line_per_check(lab: tuple[int, Path], tmp_path: Path) -> None:
    base, pki = lab
    proc = cli("run", LAB_PLAN, "--lab-port-base", base, "--lab-pki-dir", pki,
               "--no-history", "--jsonl")  # fmt: skip
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr
    lines = [json.loads(line) for line in proc.stdout.splitlines()]
    checks, summary = lines[:-1], lines[-1]
    assert len(checks) == summary["passed"] + summary["failed"] == 29
    assert all(c["passed"] for c in checks) and "checks" not in summary
