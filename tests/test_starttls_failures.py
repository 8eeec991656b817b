"""STARTTLS failures: a stalled dialog, refusals in each protocol's words, plaintext injected
after the go-ahead, and FTP's commands inside TLS.

Scripted byte servers (bytepeers.py) play the hung and the hostile SMTP servers; the real
servers of conftest.py (exim, dovecot, slapd, PostgreSQL, vsftpd) and the telnet peer play
the refusals, so the diagnosis is checked against what those servers really answer.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import trio
from bytepeers import (
    SMTP_EHLO_STARTTLS,
    SMTP_GREETING,
    plaintext_dialog,
    serve_script,
    silent,
    start_script,
)
from peers import HOST, Peer
from probing import causes, probe_port
from telnetpeers import telnet_server

from probe.causes import CauseDataError, load_causes
from probe.diagnose import load_starttls_hints
from probe.pki import TestPKI
from probe.rawhello import Offer, exchange
from probe.render import render_probe
from probe.scan import ScanOptions, scan
from probe.target import Target
from probe.upgrade import DIALOGS, FTPProtect, StartTLSLog, dialog_for

TIMEOUT = 0.5


# --- 1. a dialog that stalls --------------------------------------------------------------------


async def test_stall_after_ehlo_keeps_the_transcript_and_names_the_step() -> None:
    async with serve_script(plaintext_dialog(SMTP_GREETING)) as port:
        with trio.fail_after(5):
            r = await probe_port(port, starttls="smtp", timeout=TIMEOUT)
    assert (r.outcome, r.phase) == ("timeout", "starttls")
    assert r.starttls is not None and not r.starttls.upgraded
    assert r.starttls.transcript == ("S: 220 mx.test ESMTP", "C: EHLO [127.0.0.1]")
    assert causes(r) == ["starttls_timeout"]
    d = r.diagnosis[0]
    assert d.detail == "no reply to EHLO within 0.5 s"
    assert r.error == d.detail
    assert "handshake" not in d.summary and d.scenario is None
    view = render_probe(r)
    assert "starttls  smtp, stalled" in view
    assert "C: EHLO [127.0.0.1]" in view and "error     no reply to EHLO within 0.5 s" in view
    assert "tlsprobe lab silent" not in view


async def test_stall_mid_reply_quotes_what_arrived() -> None:
    async with serve_script(plaintext_dialog(SMTP_GREETING, b"250-mx.test\r\n")) as port:
        r = await probe_port(port, starttls="smtp", timeout=TIMEOUT)
    assert causes(r) == ["starttls_timeout"]
    assert r.diagnosis[0].detail == (
        "no reply to EHLO within 0.5 s; only part of one arrived: '250-mx.test\\r\\n'"
    )


async def test_silent_from_the_start_says_no_greeting() -> None:
    async with serve_script(silent) as port:
        r = await probe_port(port, starttls="smtp", timeout=TIMEOUT)
    assert (r.outcome, r.phase) == ("timeout", "starttls")
    assert r.starttls is not None and r.starttls.transcript == ()
    assert causes(r) == ["starttls_timeout"]
    assert r.diagnosis[0].detail == "no greeting within 0.5 s"


@pytest.mark.parametrize(
    ("protocol", "server", "words"),
    [
        ("smtp", b"220 hi\r\n", "no reply to EHLO within 2 s"),
        ("ftp", b"220 hi\r\n", "no reply to AUTH TLS within 2 s"),
        ("imap", b"* OK hi\r\n", "no reply to CAPABILITY within 2 s"),
        ("pop3", b"+OK hi\r\n", "no reply to CAPA within 2 s"),
        ("ldap", b"", "no reply to the StartTLS request within 2 s"),
        ("postgres", b"", "no reply to the SSLRequest within 2 s"),
        ("telnet", b"", "no offer of START_TLS (IAC DO START_TLS) within 2 s"),
        ("telnet", b"\xff\xfd\x2e", "no reply to WILL START_TLS within 2 s"),
    ],
)
def test_every_dialog_names_its_unanswered_step(protocol: str, server: bytes, words: str) -> None:
    d = dialog_for(protocol)
    d.start()
    d.feed(server)
    assert not d.done
    d.stalled(2)
    assert d.done and d.log.stalled and not d.log.upgraded
    assert d.log.problem == words


def test_cli_shows_the_stalled_dialog() -> None:
    async def run() -> subprocess.CompletedProcess[str]:
        async with serve_script(plaintext_dialog(SMTP_GREETING)) as port:
            args = [sys.executable, "-m", "probe", "probe", f"{HOST}:{port}", "--starttls",
                    "smtp", "--timeout", str(TIMEOUT)]  # fmt: skip
            return await trio.run_process(args, capture_stdout=True, capture_stderr=True,
                                          check=False)  # fmt: skip

    proc = trio.run(run)
    out = proc.stdout.decode()
    assert proc.returncode == 1, proc.stderr
    assert "timeout   (phase: starttls)" in out
    assert "starttls  smtp, stalled" in out and "C: EHLO" in out
    assert "[starttls_timeout]" in out and "seen: no reply to EHLO within 0.5 s" in out
    assert "lab silent" not in out and "never completed the handshake" not in out


async def test_raw_hello_reports_the_stalled_upgrade() -> None:
    async with serve_script(plaintext_dialog(SMTP_GREETING)) as port:
        ans = await exchange(
            Target(host=HOST, port=port),
            Offer(version=0x0303, suites=(0xC02F,)),
            timeout=TIMEOUT,
            starttls="smtp",
        )
    assert ans.kind == "timeout" and ans.starttls_stalled
    assert ans.detail == "no reply to EHLO within 0.5 s"


async def test_scan_says_the_upgrade_stalled_not_that_hellos_went_unanswered() -> None:
    async with trio.open_nursery() as nursery:
        port = await start_script(nursery, plaintext_dialog(SMTP_GREETING))
        opts = ScanOptions(target=Target(host=HOST, port=port), starttls="smtp", timeout=TIMEOUT)
        with trio.fail_after(10):
            r = await scan(opts)
        nursery.cancel_scope.cancel()
    assert r.outcome == "timeout" and r.protocols == ()
    assert r.error == "the smtp upgrade stalled: no reply to EHLO within 0.5 s", r.error
    assert "ClientHello" not in (r.error or "")


# --- 2. refusals in the words of the protocol used ----------------------------------------------

# protocol, fixture (real server), expected cause
REFUSED = [
    ("smtp", "smtp_broken_tls", "starttls_refused"),  # 454 to STARTTLS
    ("smtp", "smtp_no_tls", "starttls_not_offered"),
    ("imap", "imap_no_tls", "starttls_not_offered"),
    ("pop3", "pop3_no_tls", "starttls_not_offered"),
    ("ldap", "ldap_no_tls", "starttls_refused"),  # resultCode 2
    ("postgres", "postgres_no_tls", "starttls_refused"),  # N
    ("ftp", "vsftpd_plain", "starttls_refused"),
]


@pytest.mark.parametrize(("protocol", "fixture", "cause"), REFUSED)
async def test_refusal_is_explained_for_the_protocol_used(
    protocol: str, fixture: str, cause: str, request: pytest.FixtureRequest
) -> None:
    peer: Peer = request.getfixturevalue(fixture)
    r = await probe_port(peer.port, starttls=protocol)
    assert r.outcome == "starttls_refused" and causes(r) == [cause]
    check_protocol_words(r.diagnosis[0], protocol)


@pytest.mark.parametrize(
    ("script", "cause"), [("refuse", "starttls_refused"), ("no-start-tls", "starttls_not_offered")]
)
async def test_telnet_refusal_is_explained_for_telnet(
    script: str, cause: str, pki: TestPKI
) -> None:
    async with telnet_server(script, pki.good.chain, pki.good.key) as server:
        r = await probe_port(server.port, starttls="telnet")
    assert causes(r) == [cause]
    check_protocol_words(r.diagnosis[0], "telnet")


async def test_imap_bye_is_explained_for_imap() -> None:
    async with serve_script(plaintext_dialog(b"* BYE too many connections\r\n")) as port:
        r = await probe_port(port, starttls="imap")
    assert causes(r) == ["starttls_refused"]
    assert "BYE" in (r.diagnosis[0].detail or "")
    check_protocol_words(r.diagnosis[0], "imap")


def check_protocol_words(d: object, protocol: str) -> None:
    from probe.result import Diagnosis

    assert isinstance(d, Diagnosis)
    hint = load_starttls_hints().hint[protocol]
    assert d.fix.endswith(hint), d.fix
    others = [h for p, h in load_starttls_hints().hint.items() if p != protocol]
    assert not any(h in d.fix for h in others)
    vendor_codes = [c for v in d.vendor for c in v.codes]
    if protocol == "ftp":
        assert "234" in d.fix and vendor_codes == ["FTP 234"]
    else:
        # The cause's own words are protocol-neutral; only the hint names products.
        for text in (d.summary, d.fix.removesuffix(hint), hint):
            assert "FTP" not in text and "234" not in text, text
        assert "FTP 234" not in vendor_codes


def test_hints_cover_every_protocol_and_name_its_go_ahead() -> None:
    hints = load_starttls_hints()
    assert set(hints.hint) == set(DIALOGS)
    assert hints.causes <= set(load_causes())
    # What the go-ahead is in each protocol, after the protocol's name.
    expected = {"ftp": ("FTP:", "234"), "smtp": ("SMTP:", "220"), "imap": ("IMAP:", "OK"),
                "pop3": ("POP3:", "+OK"), "ldap": ("LDAP:", "resultCode 0"),
                "postgres": ("PostgreSQL:", "'S'"), "telnet": ("Telnet:", "DO START_TLS")}
    for protocol, (name, words) in expected.items():
        assert hints.hint[protocol].startswith(name), protocol
        assert words in hints.hint[protocol], protocol
    for cid in hints.causes:
        cause = load_causes()[cid]
        assert "FTP" not in cause.summary and "234" not in cause.summary


def test_hints_file_is_checked(tmp_path: Path) -> None:
    from probe.tomldata import DataError

    good = (Path(__file__).parents[1] / "profiles" / "starttls_hints.toml").read_text()
    bad = tmp_path / "hints.toml"
    bad.write_text(good.replace("telnet = ", "gopher = "))
    with pytest.raises(DataError, match=r"hint\.gopher"):
        load_starttls_hints(bad)
    bad.write_text(good.replace('"starttls_refused"', '"no_such_cause"'))
    with pytest.raises(DataError, match="causes"):
        load_starttls_hints(bad)


def test_vendor_protocols_must_be_starttls_protocols(tmp_path: Path) -> None:
    path = tmp_path / "diagnosis.toml"
    path.write_text(
        '[cause.x]\noutcome = "starttls_refused"\nsummary = "s"\nfix = "f"\nside = "remote"\n'
        '[[cause.x.vendor]]\nproduct = "z/OS System SSL"\ncodes = ["FTP 234"]\nwhere = "server"\n'
        'text = "t"\nconfidence = "C"\nsource = "SPEC.md"\nprotocols = ["gopher"]\n'
    )
    with pytest.raises(CauseDataError, match=r"vendor\[0\]\.protocols\[0\]"):
        load_causes(path)


async def test_lab_ftp_refusal_keeps_its_vendor_line(vsftpd_plain: Peer) -> None:
    r = await probe_port(vsftpd_plain.port, starttls="ftp")
    d = r.diagnosis[0]
    assert d.cause == "starttls_refused" and d.scenario == "ftp-auth-tls-refused"
    assert [v.product for v in d.vendor] == ["z/OS System SSL"]


# --- 3. plaintext after the go-ahead ------------------------------------------------------------

INJECTED = b"220 go ahead\r\n250 injected\r\n"


async def test_injected_plaintext_has_its_own_cause_and_is_quoted() -> None:
    async with serve_script(plaintext_dialog(SMTP_GREETING, SMTP_EHLO_STARTTLS, INJECTED)) as port:
        r = await probe_port(port, starttls="smtp")
    assert (r.outcome, r.phase) == ("starttls_refused", "starttls")
    assert r.negotiated is None  # nothing was handed to TLS
    assert causes(r) == ["starttls_plaintext_injection"]
    d = r.diagnosis[0]
    assert "14 more bytes after agreeing to start TLS" in (d.detail or ""), d.detail
    assert "does not offer" not in d.summary
    assert r.starttls is not None
    assert r.starttls.transcript[-2:] == (
        "S: 220 go ahead",
        "S: [14 more bytes before TLS] 250 injected\\r\\n",
    )
    assert "[14 more bytes before TLS] 250 injected\\r\\n" in render_probe(r)


async def test_a_flood_after_the_go_ahead_is_counted_but_quoted_bounded() -> None:
    flood = b"220 go ahead\r\n" + b"\x00\xff" * 5000
    async with serve_script(plaintext_dialog(SMTP_GREETING, SMTP_EHLO_STARTTLS, flood)) as port:
        r = await probe_port(port, starttls="smtp")
    assert causes(r) == ["starttls_plaintext_injection"]
    assert r.starttls is not None
    line = next(x for x in r.starttls.transcript if "more bytes before TLS" in x)
    assert line.startswith("S: [") and line.endswith("...") and len(line) < 400
    assert "\\x00\\xff" in line


@pytest.mark.parametrize(
    ("protocol", "script", "extra"),
    [
        ("ftp", [b"220 hi\r\n", b"234 go\r\n+junk\r\n"], b"+junk\r\n"),
        ("imap", [b"* OK hi\r\n", b"* CAPABILITY STARTTLS\r\nT1 OK\r\n", b"T2 OK go\nX\r\n"],
         b"X\r\n"),
        ("pop3", [b"+OK hi\r\n", b"+OK\r\nSTLS\r\n.\r\n", b"+OK go\r\n+OK more"], b"+OK more"),
        ("smtp", [b"220 hi\r\n", b"250-x\r\n250 STARTTLS\r\n", b"220 go\r\n\r\n"], b"\r\n"),
    ],
)  # fmt: skip
def test_the_injected_bytes_are_exactly_what_followed(
    protocol: str, script: list[bytes], extra: bytes
) -> None:
    d = dialog_for(protocol)
    for chunk in script:
        d.feed(chunk)
    assert d.done and not d.log.upgraded
    assert d.log.injected == len(extra)
    assert d.log.lines[-1].startswith(f"S: [{len(extra)} more bytes before TLS] ")


# --- 4. FTP's PBSZ and PROT inside TLS ----------------------------------------------------------


def test_ftp_protect_hands_on_only_what_it_did_not_quote() -> None:
    log = StartTLSLog(lines=["C: AUTH TLS"], upgraded=True)
    d = FTPProtect(log)
    d.start()
    d.feed(b"200 PBSZ=0\r\n")
    d.feed(b"200 PROT now Private.\r\nhello")
    assert d.done and d.unquoted == b"hello"
    assert all(line.startswith("(TLS) ") for line in log.lines[1:])


async def test_ftp_transcript_marks_tls_lines_and_shows_them_once(
    vsftpd_tls: Peer, pki: TestPKI
) -> None:
    r = await probe_port(vsftpd_tls.port, ca=pki.ca, starttls="ftp")
    assert r.outcome == "connected" and r.starttls is not None
    before, inside = r.starttls.transcript[:3], r.starttls.transcript[3:]
    assert [x[:6] for x in before] == ["S: 220", "C: AUT", "S: 234"]
    assert inside and all(x.startswith("(TLS) ") for x in inside), inside
    assert r.application_data is None
    view = render_probe(r)
    assert "(TLS) C: PROT P" in view and "after TLS" not in view
