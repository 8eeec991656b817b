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
from labproc import free_block, running_lab, running_lab_at_free_base
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


def test_lab_targets_reach_a_lab_serving_a_subset(tmp_path: Path) -> None:
    # README's `tlsprobe lab expired client-cert-required --port-base N`: each scenario is on
    # N + its catalog index, where `lab:NAME` looks, not on N, N+1 (which was client-cert-required
    # answering for lab:expired).
    with running_lab_at_free_base(tmp_path / "pki", "expired", "client-cert-required") as lab:
        base = lab.ports["expired"] - 1
        plan = write_plan(
            tmp_path / "subset.toml",
            '[defaults]\ntimeout = 5\n'
            '[[check]]\nname = "expired"\ntarget = "lab:expired"\n'
            '[check.expect]\noutcome = "server_cert_expired"\n'
            '[[check]]\nname = "mtls"\ntarget = "lab:client-cert-required"\n'
            '[check.expect]\noutcome = "client_cert_required"\n',
        )
        proc = cli("run", plan, "--lab-port-base", base, "--lab-pki-dir", lab.pki,
                   "--no-history", "--json")  # fmt: skip
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr
    doc = json.loads(proc.stdout)
    assert doc["passed"] == 2 and doc["failed"] == 0
    assert {c["target"] for c in doc["checks"]} == {
        f"127.0.0.1:{lab.ports['expired']}", f"127.0.0.1:{lab.ports['client-cert-required']}"
    }


def write_plan(path: Path, body: str) -> Path:
    path.write_text(body)
    return path


def one_line_exit_2(proc: subprocess.CompletedProcess[str]) -> str:
    """The one stderr line of a command that stopped on bad input (exit 2), no traceback."""
    assert proc.returncode == 2, proc.stdout + proc.stderr
    err = proc.stderr.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err, err
    assert "internal error" not in err, err
    return err


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
    err = one_line_exit_2(cli("run", plan, "--no-history"))
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


def _lab_defaults(lab: tuple[int, Path]) -> str:
    base, pki = lab
    return f'[defaults]\nlab_port_base = {base}\nlab_pki_dir = "{pki}"\ntimeout = 5\n'


def test_expect_table_without_outcome_keeps_the_default(
    lab: tuple[int, Path], tmp_path: Path
) -> None:
    # An expectation on the version alone still expects a connection (and an overlap's empty
    # table still expects "connects"): an untrusted server must not pass.
    plan = write_plan(
        tmp_path / "partial.toml",
        _lab_defaults(lab)
        + """[[check]]
name = "untrusted, version only"
target = "lab:self-signed"
expect = { version = "TLSv1.3" }
[[check]]
name = "good, version only"
target = "lab:good"
expect = { version = "TLSv1.3" }
[[check]]
name = "overlap, empty expect"
kind = "overlap"
target = "lab:tls10-only"
profile = "mq:ANY_TLS12_OR_HIGHER"
expect = {}
""",
    )
    proc = cli("run", plan, "--no-history", "--json")
    assert proc.returncode == 1, proc.stdout[-3000:] + proc.stderr
    checks = {c["name"]: c for c in json.loads(proc.stdout)["checks"]}
    untrusted = checks["untrusted, version only"]
    assert untrusted["expected"] == {"outcome": "connected", "version": "TLSv1.3"}
    assert "outcome: expected 'connected', got 'server_cert_untrusted'" in untrusted["failures"]
    assert checks["good, version only"]["passed"]
    assert checks["overlap, empty expect"]["expected"] == {"verdict": "connects"}
    assert not checks["overlap, empty expect"]["passed"]


@pytest.mark.parametrize(
    ("args", "plan_base", "scenario", "words"),
    [
        (["--lab-port-base", "99999"], None, "good", "--lab-port-base 99999"),
        (["--lab-port-base", "-1"], None, "good", "--lab-port-base -1"),
        (["--lab-port-base", "0"], None, "good", "--lab-port-base 0"),
        (["--lab-port-base", "65530"], None, "last", "would be port"),
        ([], 70000, "good", "partial.toml:2: [defaults]: lab_port_base must be"),
        ([], 65530, "last", "partial.toml:2: [defaults]: lab_port_base 65530"),
    ],
)
def test_lab_port_base_out_of_range_exit_2(
    lab: tuple[int, Path],
    tmp_path: Path,
    args: list[str],
    plan_base: int | None,
    scenario: str,
    words: str,
) -> None:
    # Port 99999 used to wrap to 34463 and -1 to a resolver error; the probe ran either way.
    from probe.lab.catalog import scenario_names

    base, pki = lab
    name = scenario_names()[-1] if scenario == "last" else scenario
    plan = write_plan(
        tmp_path / "partial.toml",
        f'[defaults]\nlab_port_base = {plan_base or base}\nlab_pki_dir = "{pki}"\n'
        f'[[check]]\nname = "c"\ntarget = "lab:{name}"\ntimeout = 2\n',
    )
    err = one_line_exit_2(cli("run", plan, "--no-history", *args, timeout=60))
    assert words in err, err


BAD_VALUES = [
    # numbers: at load, with the line (NaN and -1 used to crash with exit 3, 0 to probe and
    # fail as unreachable, -5 to pass, 1e300 to hang)
    ("timeout = -1\n", 1, "timeout must be above 0"),
    ("timeout = nan\n", 1, "timeout must be above 0"),
    ("timeout = 0\n", 1, "timeout must be above 0"),
    ("timeout = inf\n", 1, "timeout must be above 0"),
    ("grace = nan\n", 1, "grace must be at least 0"),
    ("grace = -5\n", 1, "grace must be at least 0"),
    ("grace = 1e300\n", 1, "at most 60"),
    # expectations nobody can meet: at load
    ('[check.expect]\ncause = "nonexistent_cause"\n', 2, "unknown cause 'nonexistent_cause'"),
    ('[check.expect]\ncipher = "NOPE-CIPHER"\n', 2, "cipher: 'NOPE-CIPHER': unknown"),
    ('[check.expect]\nversion = "TLSv9"\n', 2, "version: unknown version 'TLSv9'"),
    # option values, targets, files and variables: with the line of their key
    ('ciphers = "NOPE-CIPHER"\n', 1, "ciphers: 'NOPE-CIPHER': unknown"),
    ("tls_min = '1.5'\n", 1, "tls_min: unknown version '1.5'"),
    ('starttls = "gopher"\n', 1, "starttls 'gopher': choose one of"),
    ('ca = "no-such-ca.pem"\n', 1, "no-such-ca.pem: no such file"),
    ('ca = "."\n', 1, "is a directory"),
    (
        'cert = "client.p12"\ncert_password_env = "TLSPROBE_TEST_UNSET_VARIABLE"\n',
        2,
        "environment variable TLSPROBE_TEST_UNSET_VARIABLE is not set",
    ),
]


@pytest.mark.parametrize(("extra", "line", "words"), BAD_VALUES)
def test_bad_values_stop_the_plan_at_their_line(
    lab: tuple[int, Path], tmp_path: Path, extra: str, line: int, words: str
) -> None:
    defaults = _lab_defaults(lab)
    head = '[[check]]\nname = "c"\ntarget = "lab:good"\n'
    plan = write_plan(tmp_path / "bad.toml", defaults + head + extra)
    err = one_line_exit_2(cli("run", plan, "--no-history", timeout=60))
    assert words in err, err
    at = len((defaults + head).splitlines()) + line
    assert f"bad.toml:{at}: check 'c':" in err, err


@pytest.mark.parametrize(
    ("body", "line", "words"),
    [
        ('[[check]]\nname = "c"\ntarget = "lab:nope"\n', 3, "unknown lab scenario 'nope'"),
        ('[[check]]\nname = "c"\ntarget = "127.0.0.1:70000"\n', 3, "port must be a number"),
        (
            '[[check]]\nname = "c"\nkind = "scan"\ntarget = "lab:good"\nstarttls = "gopher"\n',
            5,
            "starttls 'gopher'",
        ),
        ('[defaults]\nca = "missing.pem"\n[[check]]\nname = "c"\ntarget = "h:1"\n', 2,
         "[defaults]: CA file"),
        ('[defaults]\ntimeout = nan\n[[check]]\nname = "c"\ntarget = "h:1"\n', 2,
         "[defaults]: timeout must be"),
    ],
)  # fmt: skip
def test_plan_errors_name_file_and_line(
    lab: tuple[int, Path], tmp_path: Path, body: str, line: int, words: str
) -> None:
    plan = write_plan(tmp_path / "bad.toml", body)
    err = one_line_exit_2(cli("run", plan, "--no-history", "--lab-port-base", lab[0],
                               "--lab-pki-dir", lab[1], timeout=60))  # fmt: skip
    assert words in err and f"bad.toml:{line}: " in err, err


def test_json_expiry_follows_expiry_days(lab: tuple[int, Path], tmp_path: Path) -> None:
    plan = write_plan(
        tmp_path / "expiry.toml",
        _lab_defaults(lab)
        + '[[check]]\nname = "good"\ntarget = "lab:good"\n'
        + '[[check]]\nname = "expired"\ntarget = "lab:expired"\n'
        + '[check.expect]\noutcome = "server_cert_expired"\n',
    )
    proc = cli("run", plan, "--no-history", "--json", "--expiry-days", "1")
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr
    expiry = json.loads(proc.stdout)["expiry"]
    assert expiry and all(row["days_left"] <= 1 for row in expiry), expiry
    assert {row["check"] for row in expiry} == {"expired"}
    # The text lists the same certificates.
    text = cli("run", plan, "--no-history", "--expiry-days", "1")
    listed = [line for line in text.stdout.splitlines() if line.rstrip().endswith("]")]
    assert len(listed) == len(expiry), text.stdout
    everything = json.loads(cli("run", plan, "--no-history", "--json").stdout)["expiry"]
    assert len(everything) == len(expiry)  # the good chain is years from expiry either way
    wide = cli("run", plan, "--no-history", "--json", "--expiry-days", "100000")
    assert len(json.loads(wide.stdout)["expiry"]) > len(expiry)


def test_history_reads_only(lab: tuple[int, Path], tmp_path: Path) -> None:
    plan = write_plan(
        tmp_path / "h.toml", _lab_defaults(lab) + '[[check]]\nname = "good"\ntarget = "lab:good"\n'
    )
    missing = tmp_path / "nowhere" / "x.sqlite"
    for extra in ([], ["--json"]):
        proc = cli("history", plan, "--db", missing, *extra)
        assert proc.returncode == 0, proc.stdout + proc.stderr
        assert not missing.parent.exists()
    assert f"no history database at {missing} yet" in cli("history", plan, "--db", missing).stdout
    assert json.loads(cli("history", plan, "--db", missing, "--json").stdout)["runs"] == []
    # An existing database is read, and the directory is left as it was (no -wal, no -shm).
    db = tmp_path / "db" / "h.sqlite"
    assert cli("run", plan, "--db", db).returncode == 0
    before = sorted(p.name for p in db.parent.iterdir())
    hist = cli("history", plan, "--db", db)
    assert hist.returncode == 0 and "1 passed, 0 failed" in hist.stdout, hist.stdout + hist.stderr
    assert sorted(p.name for p in db.parent.iterdir()) == before
    # A plan path that is not a file is a mistake, not "no runs recorded".
    for wrong in (tmp_path / "no-such-plan.toml", tmp_path):
        err = one_line_exit_2(cli("history", wrong, "--db", db))
        assert str(wrong) in err, err
