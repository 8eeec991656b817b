"""STARTTLS against real servers: every protocol upgrades, and refusals are classified.

Servers (Debian packages, started by conftest.py on loopback ports with private configs and
the test PKI's ``good`` chain): exim (SMTP), dovecot (IMAP, POP3), slapd (LDAP), PostgreSQL,
vsftpd (FTP); telnet START_TLS is a scripted trio peer (telnetpeers.py) since no Debian
package serves it. Each has a variant that does not offer or refuses the upgrade.

For every protocol: ``probe --starttls X`` connects (TLS 1.3, and 1.2 when forced), verifies the
chain against the test CA, and the transcript shows the upgrade exchange; the other variant
gives ``starttls_refused`` with the server's words and the right cause. ``scan --starttls``
is checked against SMTP and IMAP, its accepted suites confirmed by ``openssl s_client
-starttls``, a client we did not write.
"""

from __future__ import annotations

import json
import subprocess
import sys

import jsonschema
import pytest
import trio
from bytepeers import plaintext_banner, serve_script, silent
from peers import HOST, Peer, _require, vsftpd_server
from probing import causes, probe_port, schema
from telnetpeers import telnet_server

from probe.pki import TestPKI
from probe.result import to_jsonable
from probe.scan import ScanOptions, ScanResult, scan
from probe.starttls import resolve_protocol
from probe.target import Target

# protocol -> (fixture that upgrades, transcript lines expected in this order, as prefixes)
UPGRADES: dict[str, tuple[str, list[str]]] = {
    "smtp": ("smtp_tls", ["S: 220 tlsprobe test exim", "C: EHLO [127.0.0.1]", "S: 250-STARTTLS",
                          "C: STARTTLS", "S: 220 TLS go ahead"]),
    "imap": ("imap_tls", ["S: * OK", "C: T1 CAPABILITY", "S: * CAPABILITY", "S: T1 OK",
                          "C: T2 STARTTLS", "S: T2 OK"]),
    "pop3": ("pop3_tls", ["S: +OK tlsprobe test dovecot", "C: CAPA", "S: STLS", "C: STLS",
                          "S: +OK Begin TLS"]),
    "ldap": ("ldap_tls", ["C: ExtendedRequest StartTLS (1.3.6.1.4.1.1466.20037)",
                          "S: ExtendedResponse messageID 1 resultCode 0 (success)"]),
    "postgres": ("postgres_tls", ["C: SSLRequest", "S: S (willing to perform TLS)"]),
    # PBSZ and PROT cross the wire inside TLS, and the transcript says so.
    "ftp": ("vsftpd_tls", ["S: 220 tlsprobe test vsftpd", "C: AUTH TLS", "S: 234",
                           "(TLS) C: PBSZ 0", "(TLS) S: 200", "(TLS) C: PROT P",
                           "(TLS) S: 200"]),
}  # fmt: skip

# protocol, fixture, cause, words the diagnosis detail must hold, a server line of the transcript
REFUSALS = [
    ("smtp", "smtp_no_tls", "starttls_not_offered", "lists no STARTTLS", "S: 250 HELP"),
    ("smtp", "smtp_broken_tls", "starttls_refused", "454", "S: 454"),
    ("imap", "imap_no_tls", "starttls_not_offered", "no STARTTLS", "S: T1 OK"),
    ("pop3", "pop3_no_tls", "starttls_not_offered", "no STLS", "S: USER"),
    ("ldap", "ldap_no_tls", "starttls_refused", "protocolError", "resultCode 2"),
    ("postgres", "postgres_no_tls", "starttls_refused", "answered N", "S: N"),
    ("ftp", "vsftpd_plain", "starttls_refused", "AUTH TLS answered", "S: 5"),
    # The wrong --starttls for the port: exim's greeting is no IMAP greeting.
    ("imap", "smtp_tls", "starttls_not_offered", "not an IMAP greeting", "S: 220"),
]


def in_order(lines: tuple[str, ...], prefixes: list[str]) -> bool:
    it = iter(lines)
    return all(any(line.startswith(p) for line in it) for p in prefixes)


@pytest.mark.parametrize("tls", [None, "1.2"])
@pytest.mark.parametrize("protocol", list(UPGRADES))
async def test_starttls_connects(
    protocol: str, tls: str | None, request: pytest.FixtureRequest, pki: TestPKI
) -> None:
    fixture, expected = UPGRADES[protocol]
    peer: Peer = request.getfixturevalue(fixture)
    r = await probe_port(peer.port, ca=pki.ca, starttls=protocol, tls=tls)
    assert (r.outcome, r.phase) == ("connected", "done"), (r.starttls, r.diagnosis)
    assert r.negotiated is not None and r.negotiated.version == f"TLSv{tls or '1.3'}"
    assert r.verification is not None and r.verification.verified
    assert any("tlsprobe lab root CA" in s for s in r.verification.chain_verified)
    assert r.starttls is not None and r.starttls.protocol == protocol and r.starttls.upgraded
    assert in_order(r.starttls.transcript, expected), r.starttls.transcript
    assert r.diagnosis == ()
    if protocol == "ftp":
        # The PBSZ/PROT replies are in the transcript, so not again as application data.
        assert r.application_data is None, r.application_data


@pytest.mark.parametrize(("protocol", "fixture", "cause", "words", "line"), REFUSALS)
async def test_starttls_refused(
    protocol: str, fixture: str, cause: str, words: str, line: str, request: pytest.FixtureRequest
) -> None:
    peer: Peer = request.getfixturevalue(fixture)
    r = await probe_port(peer.port, starttls=protocol)
    assert (r.outcome, r.phase) == ("starttls_refused", "starttls"), r.diagnosis
    assert r.negotiated is None and r.alert is None  # no TLS byte was sent
    assert r.starttls is not None and not r.starttls.upgraded
    assert any(x.startswith("S: ") for x in r.starttls.transcript)
    assert any(line in x for x in r.starttls.transcript), r.starttls.transcript
    assert causes(r) == [cause]
    assert words in (r.diagnosis[0].detail or ""), r.diagnosis[0].detail


async def test_silent_server_times_out_in_the_starttls_phase() -> None:
    async with serve_script(silent) as port:
        with trio.fail_after(5):
            r = await probe_port(port, starttls="smtp", timeout=0.5)
    assert (r.outcome, r.phase) == ("timeout", "starttls")


async def test_endless_greeting_is_bounded() -> None:
    async def endless(stream: trio.SocketStream) -> None:
        await stream.send_all(b"220 ")
        while True:
            await stream.send_all(b"x" * 4096)

    async with serve_script(endless) as port:
        with trio.fail_after(5):
            r = await probe_port(port, starttls="smtp")
    assert (r.outcome, r.phase) == ("starttls_refused", "starttls")
    assert causes(r) == ["starttls_not_offered"]
    assert "longer than" in (r.diagnosis[0].detail or "")


async def test_implicit_tls_port_gets_a_hint() -> None:
    # A server that speaks first in TLS: a record header where the greeting should be.
    async with serve_script(plaintext_banner(b"\x15\x03\x03\x00\x02\x02\x46")) as port:
        r = await probe_port(port, starttls="pop3")
    assert r.outcome == "starttls_refused"
    assert "--starttls none" in (r.diagnosis[0].detail or "")


async def test_implicit_ftps_is_plain_implicit_tls(pki: TestPKI) -> None:
    # Port 990 maps to "none": TLS from the first byte, then the FTP banner inside it.
    assert resolve_protocol("auto", 990) == "none"
    with vsftpd_server(pki.good, implicit=True) as peer:
        r = await probe_port(peer.port, ca=pki.ca)
    assert (r.outcome, r.phase) == ("connected", "done"), r.diagnosis
    assert r.starttls is None
    assert (r.application_data or "").startswith("220 tlsprobe test vsftpd")


# --- telnet START_TLS (scripted peer) ---------------------------------------------------------

IAC, DONT, DO, WONT, WILL = 255, 254, 253, 252, 251


@pytest.mark.parametrize("script", ["start-tls", "start-tls-after-options"])
@pytest.mark.parametrize("tls", [None, "1.2"])
async def test_telnet_start_tls_connects(script: str, tls: str | None, pki: TestPKI) -> None:
    async with telnet_server(script, pki.good.chain, pki.good.key) as server:
        r = await probe_port(server.port, ca=pki.ca, starttls="telnet", tls=tls)
    assert (r.outcome, r.phase) == ("connected", "done"), (r.starttls, r.diagnosis)
    assert server.tls_done
    assert r.negotiated is not None and r.negotiated.version == f"TLSv{tls or '1.3'}"
    assert r.verification is not None and r.verification.verified
    assert r.starttls is not None and r.starttls.upgraded
    assert in_order(r.starttls.transcript, [
        "S: IAC DO START_TLS", "C: IAC WILL START_TLS",
        "S: IAC SB START_TLS FOLLOWS IAC SE", "C: IAC SB START_TLS FOLLOWS IAC SE",
    ]), r.starttls.transcript  # fmt: skip
    # What the server heard before TLS: polite refusals of everything else, then our FOLLOWS.
    expected = bytes([IAC, WILL, 46, IAC, 250, 46, 1, IAC, 240])
    if script == "start-tls-after-options":
        expected = bytes([IAC, DONT, 1, IAC, WONT, 24]) + expected
    assert bytes(server.heard) == expected
    # The server's first bytes inside TLS (IAC DO TN3270E) are what the post-handshake read saw.
    assert r.application_data == bytes([IAC, DO, 40]).decode("latin-1")


@pytest.mark.parametrize(
    ("script", "cause", "words"),
    [
        ("refuse", "starttls_refused", "IAC DONT START_TLS"),
        ("no-start-tls", "starttls_not_offered", "login:"),
    ],
)
async def test_telnet_start_tls_refused(script: str, cause: str, words: str, pki: TestPKI) -> None:
    async with telnet_server(script, pki.good.chain, pki.good.key) as server:
        r = await probe_port(server.port, ca=pki.ca, starttls="telnet")
    assert (r.outcome, r.phase) == ("starttls_refused", "starttls")
    assert causes(r) == [cause]
    assert words in (r.diagnosis[0].detail or "")
    assert r.starttls is not None and any(words in x for x in r.starttls.transcript)
    if script == "no-start-tls":
        # The terminal type and echo were declined, not left hanging.
        assert bytes(server.heard).startswith(bytes([IAC, WONT, 24, IAC, DONT, 1]))


# --- the CLI, end to end ----------------------------------------------------------------------


def test_cli_probe_starttls_smtp(smtp_tls: Peer, pki: TestPKI) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "probe", "probe", smtp_tls.hostport, "--starttls", "smtp",
         "--ca", str(pki.ca), "--json"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    assert doc["outcome"] == "connected"
    assert doc["starttls"]["protocol"] == "smtp"
    assert "C: STARTTLS" in doc["starttls"]["transcript"]


def test_cli_probe_starttls_refused_exits_1(smtp_no_tls: Peer) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "probe", "probe", smtp_no_tls.hostport, "--starttls", "smtp",
         "--json"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert proc.returncode == 1, proc.stderr
    doc = json.loads(proc.stdout)
    assert doc["outcome"] == "starttls_refused"
    assert doc["diagnosis"][0]["cause"] == "starttls_not_offered"


# --- scan through STARTTLS --------------------------------------------------------------------


def scan_schema_check(result: ScanResult) -> None:
    jsonschema.validate(json.loads(json.dumps(to_jsonable(result))), schema("scan"))


async def s_client_accepts(port: int, protocol: str, version: str, suite: str) -> bool:
    """One ``openssl s_client -starttls`` handshake offering only ``suite`` at ``version``."""
    args = [_require("openssl"), "s_client", "-connect", f"{HOST}:{port}", "-starttls", protocol,
            "-brief"]  # fmt: skip
    if version == "TLSv1.3":
        args += ["-tls1_3", "-ciphersuites", suite]
    else:
        args += ["-tls1_2", "-cipher", f"{suite}:@SECLEVEL=0"]
    proc = await trio.run_process(
        args, stdin=b"", capture_stdout=True, capture_stderr=True, check=False
    )
    return f"Ciphersuite: {suite}" in (proc.stdout + proc.stderr).decode(errors="replace")


async def refused_by_s_client(
    port: int, protocol: str, version: str, suites: list[str]
) -> list[str]:
    refused: list[str] = []
    limit = trio.CapacityLimiter(8)

    async def check(suite: str) -> None:
        async with limit:
            if not await s_client_accepts(port, protocol, version, suite):
                refused.append(suite)

    async with trio.open_nursery() as nursery:
        for suite in suites:
            nursery.start_soon(check, suite)
    return refused


@pytest.mark.parametrize(("protocol", "fixture"), [("smtp", "smtp_tls"), ("imap", "imap_tls")])
async def test_scan_through_starttls(
    protocol: str, fixture: str, request: pytest.FixtureRequest
) -> None:
    peer: Peer = request.getfixturevalue(fixture)
    with trio.fail_after(60):
        r = await scan(ScanOptions(target=Target(host=HOST, port=peer.port), starttls=protocol))
    scan_schema_check(r)
    assert r.outcome == "scanned"
    by_version = {p.version: p for p in r.protocols}
    assert not by_version["SSLv2"].supported and not by_version["SSLv3"].supported
    for version in ("TLSv1.2", "TLSv1.3"):
        assert by_version[version].supported, by_version[version]
        suites = [c.openssl or c.iana or c.code for c in by_version[version].ciphers]
        assert suites
        # A client we did not write agrees with every suite the scan found.
        refused = await refused_by_s_client(peer.port, protocol, version, suites)
        assert refused == [], (version, refused)
    chain = next(iter(r.certificates.values()))
    assert chain and chain[0].subject.startswith("CN=localhost")
    assert r.groups.get("TLSv1.3")


async def test_scan_reports_a_refused_upgrade(smtp_no_tls: Peer) -> None:
    r = await scan(ScanOptions(target=Target(host=HOST, port=smtp_no_tls.port), starttls="smtp"))
    assert not any(p.supported for p in r.protocols)
