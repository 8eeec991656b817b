"""Scan and overlap checks in `tlsprobe run` plans, against the real lab: expectations, JUnit,
history and drift, strict validation, and the per-host limit with scans in the mix."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest
from junitparser import JUnitXml
from labproc import free_block, running_lab
from test_plan import cli, one_line_exit_2, write_plan

from probe.store import MIGRATIONS


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[int, Path]]:
    pki = tmp_path_factory.mktemp("plan-scan-lab-pki")
    base = free_block(26)
    with running_lab(pki, port_base=base):
        yield base, pki


def _defaults(lab: tuple[int, Path]) -> str:
    base, pki = lab
    return f'[defaults]\nlab_port_base = {base}\nlab_pki_dir = "{pki}"\ntimeout = 5\n'


def test_scan_and_overlap_checks_pass_and_fail(lab: tuple[int, Path], tmp_path: Path) -> None:
    plan = write_plan(
        tmp_path / "kinds.toml",
        _defaults(lab)
        + """
[[check]]
name = "tls10 offers 1.0 only"
kind = "scan"
target = "lab:tls10-only"
[check.expect]
versions_offered = ["TLSv1.0"]
versions_not_offered = ["TLSv1.2", "TLSv1.3", "SSLv3"]
no_weak_suites = true
suites_include = ["ECDHE-RSA-AES128-SHA"]
suites_exclude = ["TLS_RSA_WITH_3DES_EDE_CBC_SHA"]

[[check]]
name = "tls10 offers 1.2 (wrong on purpose)"
kind = "scan"
target = "lab:tls10-only"
[check.expect]
versions_offered = ["1.2"]

[[check]]
name = "legacy-3des has no weak suites (wrong on purpose)"
kind = "scan"
target = "lab:legacy-3des"
[check.expect]
no_weak_suites = true

[[check]]
name = "legacy-3des is weak"
kind = "scan"
target = "lab:legacy-3des"
[check.expect]
no_weak_suites = false
suites_include = ["DES-CBC3-SHA"]

[[check]]
name = "mq any tls12 to good"
kind = "overlap"
target = "lab:good"
profile = "mq:ANY_TLS12_OR_HIGHER"

[[check]]
name = "mq any tls12 to tls10-only fails"
kind = "overlap"
target = "lab:tls10-only"
profile = "mq:ANY_TLS12_OR_HIGHER"
[check.expect]
verdict = "fails"

[[check]]
name = "mq any tls12 to tls10-only connects (wrong on purpose)"
kind = "overlap"
target = "lab:tls10-only"
profile = "mq:ANY_TLS12_OR_HIGHER"
""",
    )
    junit = tmp_path / "kinds.xml"
    proc = cli("run", plan, "--junit", junit, "--no-history", "--json")
    assert proc.returncode == 1, proc.stdout[-3000:] + proc.stderr
    doc = json.loads(proc.stdout)
    checks = {c["name"]: c for c in doc["checks"]}
    wrong = {n for n, c in checks.items() if not c["passed"]}
    assert wrong == {n for n in checks if "wrong on purpose" in n}
    assert doc["passed"] == 4 and doc["failed"] == 3
    # The JSON shape holds for every kind; result is the scan or overlap summary.
    for c in checks.values():
        assert set(c) >= {"name", "kind", "passed", "expected", "got", "failures", "result"}
    scan = checks["tls10 offers 1.0 only"]
    assert scan["kind"] == "scan" and scan["got"]["versions_offered"] == ["TLSv1.0"]
    offered = [p["version"] for p in scan["result"]["protocols"] if p["supported"]]
    assert offered == ["TLSv1.0"]
    legacy = checks["legacy-3des is weak"]["got"]
    assert legacy["no_weak_suites"] is False and legacy["weak_suites"]
    good = checks["mq any tls12 to good"]
    assert good["result"]["verdict"] == "connects" and good["result"]["predicted"]["version"]
    assert good["expected"] == {"verdict": "connects"}
    # JUnit: every kind is a testcase; the failure says expected vs got.
    xml = JUnitXml.fromfile(str(junit))
    assert xml.tests == 7 and xml.failures == 3
    messages = {c.name: c.result[0].message for suite in xml for c in suite if c.result}
    assert messages["tls10 offers 1.2 (wrong on purpose)"] == (
        "versions_offered: expected ['1.2'], got ['TLSv1.0'] (1.2 not offered)"
    )
    assert (
        "expected True, got weak suites"
        in messages["legacy-3des has no weak suites (wrong on purpose)"]
    )
    assert (
        "verdict: expected 'connects', got 'fails'"
        in messages["mq any tls12 to tls10-only connects (wrong on purpose)"]
    )


def test_drift_of_a_scan_and_an_overlap_check(lab: tuple[int, Path], tmp_path: Path) -> None:
    db = tmp_path / "h.sqlite"
    plan = write_plan(
        tmp_path / "drift.toml",
        _defaults(lab)
        + """
[[check]]
name = "partner"
kind = "scan"
target = "lab:good"

[[check]]
name = "partner via mq"
kind = "overlap"
target = "lab:good"
profile = "mq:ANY_TLS12_OR_HIGHER"
[check.expect]
verdict = "connects"
""",
    )
    first = cli("run", plan, "--db", db, "--json")
    assert first.returncode == 0, first.stdout[-3000:] + first.stderr
    assert [d for d in json.loads(first.stdout)["drift"] if d["kind"] != "expiry"] == []
    # The same checks, now pointed at a server that speaks only TLS 1.1 with 3DES.
    plan.write_text(plan.read_text().replace("lab:good", "lab:legacy-3des"))
    second = cli("run", plan, "--db", db, "--json")
    assert second.returncode == 1, second.stdout[-3000:] + second.stderr
    changes = [d for d in json.loads(second.stdout)["drift"] if d["kind"] != "expiry"]
    scan = {(d["kind"], d["after"] or d["before"]) for d in changes if d["check"] == "partner"}
    assert ("version_added", "TLSv1.1") in scan
    assert {("version_removed", "TLSv1.2"), ("version_removed", "TLSv1.3")} <= scan
    assert ("new_weak_suite", "TLS_RSA_WITH_3DES_EDE_CBC_SHA") in scan
    assert ("suite_removed", "TLS_AES_128_GCM_SHA256") in scan
    # A newly accepted weak suite is reported once, as new_weak_suite, not also as suite_added.
    assert not any(k == "suite_added" for k, _ in scan)
    overlap = [(d["kind"], d["before"], d["after"]) for d in changes if d["check"] != "partner"]
    assert overlap == [("verdict", "connects", "fails")]
    conn = sqlite3.connect(db)
    kinds = conn.execute("SELECT DISTINCT kind FROM checks ORDER BY kind").fetchall()
    conn.close()
    assert kinds == [("overlap",), ("scan",)]


def test_schema_1_history_upgrades_and_keeps_probe_drift(
    lab: tuple[int, Path], tmp_path: Path
) -> None:
    db = tmp_path / "old.sqlite"
    plan = write_plan(
        tmp_path / "old.toml",
        _defaults(lab) + '[[check]]\nname = "good"\ntarget = "lab:good"\n',
    )
    # A database written by the version before scan checks: migration 1 only.
    conn = sqlite3.connect(db)
    conn.executescript(MIGRATIONS[0])
    conn.execute("PRAGMA user_version = 1")
    conn.execute(
        "INSERT INTO runs VALUES (1, ?, 'old', '2026-01-01T00:00:00+00:00',"
        " '2026-01-01T00:00:01+00:00', 1, 0)",
        (str(plan.resolve()),),
    )
    conn.execute(
        "INSERT INTO checks VALUES (1, 'good', 'x', 1, 'connected', 'TLSv1.2', '0xC02F', '{}')"
    )
    conn.commit()
    conn.close()
    proc = cli("run", plan, "--db", db, "--json")
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr
    changes = [d for d in json.loads(proc.stdout)["drift"] if d["kind"] != "expiry"]
    assert ("version", "TLSv1.2", "TLSv1.3") in {(d["kind"], d["before"], d["after"])
                                                  for d in changes}  # fmt: skip
    conn = sqlite3.connect(db)
    assert conn.execute("PRAGMA user_version").fetchone()[0] == len(MIGRATIONS)
    assert conn.execute("SELECT kind FROM checks WHERE run_id = 1").fetchone()[0] == "probe"
    conn.close()


def test_scans_keep_the_per_host_limit(lab: tuple[int, Path], tmp_path: Path) -> None:
    body = _defaults(lab)
    for i in range(6):
        body += f'[[check]]\nname = "probe {i}"\ntarget = "lab:good"\n'
    for i, scenario in enumerate(["good", "tls10-only", "legacy-3des"]):
        body += f'[[check]]\nname = "scan {i}"\nkind = "scan"\ntarget = "lab:{scenario}"\n'
    plan = write_plan(tmp_path / "limits.toml", body)
    proc = cli("run", plan, "--no-history", "--json", "--per-host", "2")
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr
    stats = json.loads(proc.stdout)["stats"]
    assert 1 <= stats["max_in_flight_per_host"]["127.0.0.1"] <= 2
    # One connection at a time is still enough for a scan to finish.
    one = cli("run", plan, "--no-history", "--json", "--per-host", "1")
    assert one.returncode == 0, one.stdout[-3000:] + one.stderr
    assert json.loads(one.stdout)["stats"]["max_in_flight_per_host"]["127.0.0.1"] == 1


SCAN = '[[check]]\nname = "s"\nkind = "scan"\ntarget = "h:1"\n'
OVERLAP = '[[check]]\nname = "o"\nkind = "overlap"\ntarget = "h:1"\n'


@pytest.mark.parametrize(
    ("body", "line", "words"),
    [
        (SCAN + 'ca = "ca.crt"\n', 5, "unknown key 'ca' (not for a scan check)"),
        (SCAN + "[check.expect]\noutcome = 'connected'\n", 6, "unknown key 'outcome'"),
        (SCAN + "[check.expect]\nversions_offered = 'TLSv1.2'\n", 6, "must be list"),
        (SCAN + "[check.expect]\nversions_offered = ['TLSv9']\n", 6, "unknown version 'TLSv9'"),
        (SCAN + "[check.expect]\nno_weak_suites = 'yes'\n", 6, "no_weak_suites must be bool"),
        (SCAN + "[check.expect]\nsuites_exclude = ['RC5-SHA']\n", 6, "suites_exclude"),
        (SCAN + "[check.expect]\nsuites_include = [1]\n", 6, "list of strings"),
        (SCAN.replace('"scan"', '"sweep"'), 3, "kind must be one of probe, scan, overlap"),
        (OVERLAP, 1, "needs profile"),
        (OVERLAP + 'profile = "profile:no-such-partner"\n', 5, "no-such-partner"),
        (OVERLAP + 'profile = "example.com:443"\n', 5, "is an endpoint"),
        (OVERLAP + 'profile = "mq:ANY_TLS12"\nsni = "x"\n', 6, "unknown key 'sni'"),
        (OVERLAP + 'profile = "mq:ANY_TLS12"\n[check.expect]\nverdict = "maybe"\n', 7, "verdict"),
        ('[[check]]\nname = "p"\ntarget = "h:1"\nprofile = "mq:ANY"\n', 4, "not for a probe"),
    ],
)
def test_malformed_scan_and_overlap_checks_exit_2(
    tmp_path: Path, body: str, line: int, words: str
) -> None:
    plan = write_plan(tmp_path / "bad.toml", body)
    err = one_line_exit_2(cli("run", plan, "--no-history"))
    assert words in err, err
    assert f"bad.toml:{line}:" in err, err
