"""The lab, started as a user starts it (`tlsprobe lab --json`), probed scenario by scenario.

Every scenario's declared outcome and first cause (profiles/lab/scenarios.toml) must be what
`tlsprobe probe` reports; then `openssl s_client`, a client we did not write, must see the same
failures from its side.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from labproc import Lab, running_lab, running_lab_at_free_base
from probing import causes, probe_port

from probe.errors import InputError
from probe.lab.catalog import load_catalog, scenario_names
from probe.lab.server import check_host
from probe.wire import registry


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    with running_lab(tmp_path_factory.mktemp("lab-pki")) as running:
        yield running


def test_ready_line_lists_every_scenario_with_its_expectation(lab: Lab) -> None:
    doc = lab.doc
    assert doc["ready"] is True and doc["schema_version"] == 1
    assert doc["pki_dir"] == str(lab.pki)
    assert [s["name"] for s in doc["scenarios"]] == [s.name for s in load_catalog()]
    assert len(set(lab.ports.values())) == len(lab.ports) == 26
    for s in doc["scenarios"]:
        assert s["expect"]["outcome"]
    for name in ("ca.crt", "client.crt", "client.key", "client.p12"):
        assert (lab.pki / name).is_file()
    for key in lab.pki.glob("*.key"):
        assert key.stat().st_mode & 0o077 == 0, f"{key} must be 0600"


@pytest.mark.parametrize("scenario", load_catalog(), ids=lambda s: s.name)
async def test_every_scenario_gives_its_declared_outcome(lab: Lab, scenario: Any) -> None:
    opts = dict(scenario.expect.probe)
    r = await probe_port(lab.ports[scenario.name], ca=lab.ca, **opts)
    assert r.outcome == scenario.expect.outcome, (r.alert, r.error, r.diagnosis)
    if scenario.expect.cause is None:
        assert r.diagnosis == ()
    else:
        assert causes(r)[0] == scenario.expect.cause


async def test_client_identity_of_the_lab_is_accepted(lab: Lab) -> None:
    r = await probe_port(
        lab.ports["client-cert-required"],
        ca=lab.ca,
        cert=lab.pki / "client.p12",
        password=lab.doc["client_p12_password"],
    )
    assert r.outcome == "connected"
    assert r.client_auth.sent and r.client_auth.chains_to_requested_ca


async def test_huge_ca_list_is_over_the_cft_limit(lab: Lab) -> None:
    r = await probe_port(lab.ports["client-cert-huge-ca-list"], ca=lab.ca)
    assert r.client_auth.ca_names_bytes > 32750
    assert len(r.client_auth.ca_names) > 200


@pytest.mark.parametrize(
    ("channel", "cn"),
    [("TO.QMGR1", "channel TO.QMGR1"), ("SYSTEM.DEF.SVRCONN", "channel SYSTEM.DEF.SVRCONN")],
)
async def test_mq_certlabl_answers_each_channel_with_its_certificate(
    lab: Lab, channel: str, cn: str
) -> None:
    r = await probe_port(lab.ports["mq-certlabl"], ca=lab.ca, mq_channel=channel)
    assert r.outcome == "connected", r.diagnosis
    assert cn in r.server_certificates[0].subject


async def test_mq_certlabl_refuses_another_channel(lab: Lab) -> None:
    r = await probe_port(lab.ports["mq-certlabl"], ca=lab.ca, mq_channel="OTHER.CHL")
    assert r.outcome == "peer_error"
    assert r.alert is not None and r.alert.code == 112
    # The channel's SNI was sent: the name is what is wrong, not its absence.
    assert causes(r)[:2] == ["mq_channel_unknown", "unrecognized_name"]
    assert "OTHER.CHL" in (r.diagnosis[0].detail or "")


async def test_legacy_partners_answer_with_their_own_version(lab: Lab) -> None:
    from probe.rawhello import accepted_versions
    from probe.target import Target

    for name, want in (("sslv3-only", (0x0300,)), ("legacy-3des", (0x0302,))):
        got = await accepted_versions(
            Target(host="127.0.0.1", port=lab.ports[name]), sni=None, timeout=5
        )
        versions = tuple(v for v, _suite in got)
        assert versions == want, (name, [registry.version_name(v) for v in versions])
    # ... and the suite picked: the z/OS trace's "cipher specification 0A", 3DES.
    assert got == ((0x0302, 0x000A),)


async def test_legacy_3des_with_tls11_allowed_still_finds_no_common_suite(lab: Lab) -> None:
    # The bundled OpenSSL no longer has 3DES: offering TLS 1.1 is not enough.
    r = await probe_port(lab.ports["legacy-3des"], ca=lab.ca, tls_min="1.1")
    assert r.outcome == "cipher_mismatch"


async def test_legacy_3des_advice_does_not_lead_to_a_dead_end(lab: Lab) -> None:
    """The partner speaks TLS 1.1 and picks 3DES, which this OpenSSL cannot offer: allowing
    TLS 1.1 would only trade the version mismatch for a cipher mismatch, so the advice names
    the suite and says the partner must change."""
    r = await probe_port(lab.ports["legacy-3des"], ca=lab.ca)
    assert r.outcome == "version_mismatch"
    detail = r.diagnosis[0].detail or ""
    assert "TLS_RSA_WITH_3DES_EDE_CBC_SHA (0x000A)" in detail, detail
    assert "cannot offer" in detail and "--tls-min" not in detail, detail


# --- a client we did not write: openssl s_client -------------------------------------------


def s_client(lab: Lab, name: str, *args: str, stdin: str = "") -> str:
    proc = subprocess.run(
        ["openssl", "s_client", "-connect", f"127.0.0.1:{lab.ports[name]}",
         "-CAfile", str(lab.ca), *args],
        input=stdin, capture_output=True, text=True, timeout=30,
    )  # fmt: skip
    return proc.stdout + proc.stderr


def test_s_client_sees_the_expired_dates(lab: Lab) -> None:
    out = s_client(lab, "expired")
    assert "certificate has expired" in out
    assert "not-yet-valid" not in out
    assert "certificate is not yet valid" in s_client(lab, "not-yet-valid")


def test_s_client_sees_the_missing_intermediate(lab: Lab) -> None:
    out = s_client(lab, "missing-intermediate", "-showcerts")
    assert "unable to get local issuer certificate" in out or "unable to verify" in out
    assert out.count("-----BEGIN CERTIFICATE-----") == 1
    good = s_client(lab, "good", "-showcerts")
    assert good.count("-----BEGIN CERTIFICATE-----") == 2
    assert "Verify return code: 0 (ok)" in good


def test_s_client_sees_the_wrong_host(lab: Lab) -> None:
    out = s_client(lab, "wrong-host", "-verify_hostname", "localhost")
    assert "hostname mismatch" in out
    assert "other.example" in out


@pytest.mark.parametrize(("name", "alert"), [("insufficient-security", 71), ("internal-error", 80)])
def test_s_client_sees_the_alert_numbers(lab: Lab, name: str, alert: int) -> None:
    assert f"alert number {alert}" in s_client(lab, name)


def test_s_client_sees_the_ca_lists(lab: Lab) -> None:
    empty = s_client(lab, "client-cert-empty-ca-list")
    assert "No client certificate CA names sent" in empty
    huge = s_client(lab, "client-cert-huge-ca-list")
    names = [ln for ln in huge.splitlines() if "Partner Bank Issuing CA" in ln]
    assert len(names) >= 200
    lab_names = s_client(lab, "client-cert-required")
    assert "tlsprobe lab root CA" in lab_names


def test_s_client_sees_tls10_only_and_tls13_only(lab: Lab) -> None:
    # A TLS-1.0-only OpenSSL answers a TLS 1.2 hello with a TLS 1.0 ServerHello; the client
    # refuses it ("unsupported protocol"), as a current client refuses the seeds' partners.
    assert "unsupported protocol" in s_client(lab, "tls10-only", "-tls1_2")
    old = s_client(lab, "tls10-only", "-tls1", "-cipher", "DEFAULT:@SECLEVEL=0")
    assert "Protocol  : TLSv1\n" in old or "Protocol  : TLSv1\r\n" in old or "TLSv1," in old
    assert "alert protocol version" in s_client(lab, "tls13-only", "-no_tls1_3")
    assert "TLSv1.3" in s_client(lab, "tls13-only")


def test_s_client_sees_plaintext_and_reset(lab: Lab) -> None:
    plain = s_client(lab, "plaintext")
    assert "wrong version number" in plain or "packet length too long" in plain
    reset = s_client(lab, "reset-after-hello")
    assert "errno=104" in reset or "reset" in reset.lower()


def test_s_client_speaks_ftp_auth_tls_to_the_lab(lab: Lab) -> None:
    out = s_client(lab, "ftp-auth-tls", "-starttls", "ftp", stdin="PBSZ 0\r\nPROT P\r\nQUIT\r\n")
    assert "Verify return code: 0 (ok)" in out
    refused = s_client(lab, "ftp-auth-tls-refused", "-starttls", "ftp")
    assert "Didn't find STARTTLS" in refused or "error" in refused.lower()


# --- the command line ------------------------------------------------------------------------


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ)
    return subprocess.run(
        [sys.executable, "-m", "probe", *args], capture_output=True, text=True, timeout=60, env=env
    )


def test_lab_list_and_unknown_scenario(tmp_path: Path) -> None:
    listing = run_cli("lab", "--list", "--pki-dir", str(tmp_path), "--json")
    assert listing.returncode == 0
    doc = json.loads(listing.stdout)
    assert doc["ready"] is False and len(doc["scenarios"]) == 26
    assert doc["scenarios"][1]["port"] == doc["scenarios"][0]["port"] + 1
    bad = run_cli("lab", "no-such-scenario")
    assert bad.returncode == 2 and "unknown lab scenario" in bad.stderr
    assert "Traceback" not in bad.stderr


def test_lab_binds_loopback_unless_told() -> None:
    assert check_host("127.0.0.1", explicit=False) is None
    assert check_host("::1", explicit=False) is None
    with pytest.raises(InputError):
        check_host("0.0.0.0", explicit=False)
    warning = check_host("0.0.0.0", explicit=True)
    assert warning is not None and "reachable from the network" in warning


async def test_a_subset_keeps_each_scenario_on_its_catalog_port(tmp_path: Path) -> None:
    # Regression: a subset used to take consecutive ports, so `lab:expired` (base + its catalog
    # index) reached client-cert-required instead.
    names = ("expired", "client-cert-required", "mq-certlabl")
    index = {n: scenario_names().index(n) for n in names}
    with running_lab_at_free_base(tmp_path / "pki", *names) as lab:
        base = lab.ports["expired"] - index["expired"]
        assert lab.ports == {n: base + i for n, i in index.items()}
        listing = run_cli("lab", "--list", "--json", "--port-base", str(base),
                          "--pki-dir", str(lab.pki), *names)  # fmt: skip
        assert {r["name"]: r["port"] for r in json.loads(listing.stdout)["scenarios"]} == lab.ports
        # The scenario on each port is the one named: its declared outcome, not a neighbour's.
        for s in load_catalog():
            if s.name in names:
                r = await probe_port(lab.ports[s.name], ca=lab.ca, **s.expect.probe)
                assert r.outcome == s.expect.outcome, s.name


def test_port_range_is_decided_by_the_latest_chosen_scenario(tmp_path: Path) -> None:
    last = scenario_names()[-1]
    ok = run_cli("lab", "--list", "--json", "--port-base", "65535", "--pki-dir", str(tmp_path),
                 "good")  # fmt: skip
    assert ok.returncode == 0 and json.loads(ok.stdout)["scenarios"][0]["port"] == 65535
    far = 65535 - len(scenario_names()) + 2  # one scenario fits, the last in the catalog does not
    bad = run_cli("lab", "--list", "--port-base", str(far), "--pki-dir", str(tmp_path), last)
    assert bad.returncode == 2, bad.stdout + bad.stderr
    assert f"{last} would listen on port 65536" in bad.stderr and "Traceback" not in bad.stderr
    doubled = run_cli("lab", "--list", "--json", "--repeat", "2", "--port-base", "30000",
                      "--pki-dir", str(tmp_path), "expired")  # fmt: skip
    ports = [r["port"] for r in json.loads(doubled.stdout)["scenarios"]]
    assert ports == [30002, 30003]  # catalog index 1, copies 0 and 1


def test_a_writable_pki_directory_is_warned_about_and_left_alone(tmp_path: Path) -> None:
    pki = tmp_path / "shared-pki"
    with running_lab(pki, "good") as lab:
        pass
    assert "writable" not in lab.stderr[0]  # made by the lab: 0700, nothing to say
    pki.chmod(0o777)
    try:
        with running_lab(pki, "good") as lab:
            pass
        warned = [ln for ln in lab.stderr[0].splitlines() if "writable" in ln]
        assert len(warned) == 1, lab.stderr
        assert str(pki) in warned[0] and "could replace ca.crt or the keys" in warned[0]
        assert pki.stat().st_mode & 0o777 == 0o777  # warned, not changed
    finally:
        pki.chmod(0o700)
