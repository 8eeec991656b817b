"""The sans-IO side of STARTTLS: reply readers and upgrade dialogs, byte by byte.

Every reader must give the same replies whether the server's bytes arrive whole or one byte at
a time, must bound what it buffers, and must raise only `ReplyError` on garbage (hypothesis
checks the last two on random input). Every dialog is run against a scripted server: the
client bytes it answers with, the transcript and the ending, again whole and byte by byte.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from probe.errors import InputError
from probe.starttls import (
    AUTO_BY_PORT,
    CHOICES,
    IMPLEMENTED,
    MAX_LINE,
    PG_SSL_REQUEST,
    BERReader,
    FTPReplyReader,
    IMAPReader,
    LineReader,
    POP3Reader,
    PostgresReader,
    ReplyError,
    SMTPReplyReader,
    TelnetEvent,
    TelnetReader,
    ldap_start_tls_request,
    parse_ldap_result,
    resolve_protocol,
)
from probe.upgrade import (
    MAX_STARTTLS_BYTES,
    Dialog,
    FTPProtect,
    StartTLSLog,
    dialog_for,
)

# --- helpers --------------------------------------------------------------------------------------


def whole_and_bytewise(make: Callable[[], Any], data: bytes) -> tuple[list[Any], list[Any]]:
    """What a fresh reader returns for ``data`` fed at once, and fed one byte at a time."""
    whole = list(make().feed(data))
    reader = make()
    bytewise: list[Any] = []
    for i in range(len(data)):
        bytewise.extend(reader.feed(data[i : i + 1]))
    return whole, bytewise


def same_both_ways(make: Callable[[], Any], data: bytes) -> list[Any]:
    whole, bytewise = whole_and_bytewise(make, data)
    assert whole == bytewise
    return whole


def raises_both_ways(make: Callable[[], Any], data: bytes, match: str) -> None:
    with pytest.raises(ReplyError, match=match):
        make().feed(data)
    reader = make()
    with pytest.raises(ReplyError, match=match):
        for i in range(len(data)):
            reader.feed(data[i : i + 1])


def merge_data(events: Sequence[TelnetEvent]) -> list[TelnetEvent]:
    """Adjacent data events joined: how data is split is not part of the contract."""
    out: list[TelnetEvent] = []
    for ev in events:
        if ev.kind == "data" and out and out[-1].kind == "data":
            out[-1] = TelnetEvent(kind="data", payload=out[-1].payload + ev.payload)
        else:
            out.append(ev)
    return out


# --- protocol choice ------------------------------------------------------------------------------


def test_every_protocol_is_implemented() -> None:
    assert set(CHOICES) - {"auto"} == IMPLEMENTED
    assert set(AUTO_BY_PORT.values()) <= IMPLEMENTED


@pytest.mark.parametrize(
    ("port", "proto"),
    [(21, "ftp"), (25, "smtp"), (587, "smtp"), (110, "pop3"), (143, "imap"), (389, "ldap"),
     (5432, "postgres"), (23, "telnet"), (990, "none"), (992, "none"), (993, "none"),
     (995, "none"), (636, "none"), (1414, "none"), (443, "none")],
)  # fmt: skip
def test_auto_picks_by_port(port: int, proto: str) -> None:
    assert resolve_protocol("auto", port) == proto


def test_explicit_choice_overrides_the_port() -> None:
    assert resolve_protocol("smtp", 2525) == "smtp"
    assert resolve_protocol("none", 25) == "none"
    with pytest.raises(InputError, match="choose one of"):
        resolve_protocol("gopher", 70)


# --- lines and numbered replies -------------------------------------------------------------------


def test_line_reader_splits_crlf_and_lf() -> None:
    assert same_both_ways(LineReader, b"one\r\ntwo\nthree\r\n") == ["one", "two", "three"]


def test_line_reader_bounds_a_line_arriving_either_way() -> None:
    raises_both_ways(LineReader, b"x" * (MAX_LINE + 1) + b"\r\n", "longer than")
    raises_both_ways(LineReader, b"x" * (MAX_LINE + 1), "longer than")


def test_ftp_multiline_reply() -> None:
    data = b"220-welcome\r\n  free text 230 inside\r\n220 ready\r\n234 go\r\n"
    replies = same_both_ways(FTPReplyReader, data)
    assert [(r.code, len(r.lines)) for r in replies] == [(220, 3), (234, 1)]


def test_smtp_ehlo_reply() -> None:
    data = b"250-mx.example Hello\r\n250-PIPELINING\r\n250-STARTTLS\r\n250 HELP\r\n"
    [reply] = same_both_ways(SMTPReplyReader, data)
    assert reply.code == 250 and reply.lines[2] == "250-STARTTLS"


@pytest.mark.parametrize(
    ("data", "match"),
    [
        (b"250-one\r\nxyz\r\n", "not a numbered reply"),  # SMTP: the code on every line
        (b"250-one\r\n251 two\r\n", "code changed"),
        (b"hello\r\n", "not a numbered reply"),
        (b"".join(b"250-x\r\n" for _ in range(300)), "more than"),
    ],
)
def test_smtp_reader_rejects(data: bytes, match: str) -> None:
    raises_both_ways(SMTPReplyReader, data, match)


# --- IMAP -----------------------------------------------------------------------------------------


def test_imap_responses() -> None:
    data = (
        b"* OK [CAPABILITY IMAP4rev1 STARTTLS] ready\r\n"
        b"* CAPABILITY IMAP4rev1 STARTTLS LOGINDISABLED\r\n"
        b"T1 OK done\r\n"
    )
    rs = same_both_ways(IMAPReader, data)
    assert [(r.tag, r.kind) for r in rs] == [("*", "OK"), ("*", "CAPABILITY"), ("T1", "OK")]
    assert "STARTTLS" in rs[1].words


def test_imap_literal_is_part_of_its_response() -> None:
    data = b'* ID ("name" {11}\r\nline\r\nbreak)\r\nT1 OK\r\n'
    rs = same_both_ways(IMAPReader, data)
    assert [(r.tag, r.kind) for r in rs] == [("*", "ID"), ("T1", "OK")]


def test_imap_literal_is_bounded() -> None:
    raises_both_ways(IMAPReader, b"* X {99999999}\r\n", "literal")


# --- POP3 -----------------------------------------------------------------------------------------


def test_pop3_capa_list() -> None:
    def make() -> POP3Reader:
        r = POP3Reader()
        r.expect_list()
        return r

    [reply] = same_both_ways(make, b"+OK caps\r\nTOP\r\n..dot\r\nSTLS\r\n.\r\n")
    assert reply.ok and reply.lines == ("TOP", ".dot", "STLS")


def test_pop3_err_ends_a_list_request() -> None:
    def make() -> POP3Reader:
        r = POP3Reader()
        r.expect_list()
        return r

    [reply] = same_both_ways(make, b"-ERR no CAPA here\r\n")
    assert not reply.ok and reply.lines == ()


def test_pop3_rejects_non_replies() -> None:
    raises_both_ways(POP3Reader, b"* OK imap here\r\n", "not a POP3 reply")


# --- LDAP -----------------------------------------------------------------------------------------

SUCCESS = bytes.fromhex("300c02010178070a010004000400")


def ext_response(code: int, diag: bytes, message_id: int = 1, name: bytes = b"") -> bytes:
    body = bytes([0x0A, 1, code, 0x04, 0, 0x04, len(diag)]) + diag
    if name:
        body += bytes([0x8A, len(name)]) + name
    op = bytes([0x78, len(body)]) + body
    inner = bytes([0x02, 1, message_id]) + op
    return bytes([0x30, len(inner)]) + inner


def test_start_tls_request_encoding() -> None:
    # RFC 4511 §4.14.1 by hand: SEQUENCE { INTEGER 1, [APPLICATION 23] { [0] OID } }.
    oid = b"1.3.6.1.4.1.1466.20037"
    assert ldap_start_tls_request(1) == b"\x30\x1d\x02\x01\x01\x77\x18\x80\x16" + oid


def test_ldap_success_response() -> None:
    [msg] = same_both_ways(BERReader, SUCCESS)
    res = parse_ldap_result(msg)
    assert (res.message_id, res.op, res.result_code, res.result_name) == (1, 0x78, 0, "success")


def test_ldap_refusal_with_diagnostic_and_long_form_length() -> None:
    diag = b"x" * 200  # forces the long form of every enclosing length
    body = bytes([0x0A, 1, 52, 0x04, 0, 0x04, 0x81, len(diag)]) + diag
    op = bytes([0x78, 0x81, len(body)]) + body
    inner = bytes([0x02, 1, 1]) + op
    message = bytes([0x30, 0x82]) + len(inner).to_bytes(2, "big") + inner
    [msg] = same_both_ways(BERReader, message + SUCCESS[:3])
    res = parse_ldap_result(msg)
    assert res.result_code == 52 and res.result_name == "unavailable"
    assert res.diagnostic == "x" * 200


def test_ldap_notice_of_disconnection() -> None:
    name = b"1.3.6.1.4.1.1466.20036"
    res = parse_ldap_result(ext_response(2, b"bye", message_id=0, name=name))
    assert res.message_id == 0 and res.response_name == name.decode()


@pytest.mark.parametrize(
    ("data", "match"),
    [
        (b"\x30\x80\x02\x01\x01", "indefinite"),
        (b"\x30\x85\x01\x00\x00\x00\x00", "length of 5 bytes"),
        (b"\x30\x83\x10\x00\x00", "before TLS"),  # 1 MiB element
        (b"\x04\x01x", "not an LDAPMessage"),
        (b"\x1f\x01x", "multi-byte"),
    ],
)
def test_ber_reader_rejects(data: bytes, match: str) -> None:
    raises_both_ways(BERReader, data, match)


def test_ldap_result_rejects_what_is_not_a_result() -> None:
    with pytest.raises(ReplyError):
        parse_ldap_result(bytes.fromhex("3006020101600100"))  # a BindRequest-like op


# --- PostgreSQL -----------------------------------------------------------------------------------


def test_postgres_answers() -> None:
    assert PostgresReader().feed(b"S") is not None
    answer = PostgresReader().feed(b"N")
    assert answer is not None and answer.kind == "N" and answer.rest == b""
    fields = b"SFATAL\x00C0A000\x00Munsupported frontend protocol\x00\x00"
    err = b"E" + (4 + len(fields)).to_bytes(4, "big") + fields
    reader = PostgresReader()
    got = [reader.feed(err[i : i + 1]) for i in range(len(err))]
    assert got[:-1] == [None] * (len(err) - 1)
    last = got[-1]
    assert last is not None and last.kind == "E"
    assert last.message == "FATAL 0A000 unsupported frontend protocol"


def test_postgres_rejects_others() -> None:
    with pytest.raises(ReplyError, match="not a PostgreSQL answer"):
        PostgresReader().feed(b"HTTP/1.1 400")
    with pytest.raises(ReplyError, match="ErrorResponse of"):
        PostgresReader().feed(b"E\x7f\xff\xff\xff")


# --- telnet ---------------------------------------------------------------------------------------

IAC, DONT, DO, WONT, WILL, SB, SE = 255, 254, 253, 252, 251, 250, 240


def test_telnet_reader_events() -> None:
    data = bytes([IAC, DO, 46, IAC, WILL, 1]) + b"hi" + bytes([IAC, IAC])
    data += bytes([IAC, SB, 46, 1, IAC, SE, IAC, 241]) + b"x"
    whole, bytewise = whole_and_bytewise(TelnetReader, data)
    assert merge_data(whole) == merge_data(bytewise)
    assert [e.describe() for e in merge_data(whole)] == [
        "IAC DO START_TLS", "IAC WILL ECHO", "hi\xff", "IAC SB START_TLS FOLLOWS IAC SE",
        "IAC 241", "x",
    ]  # fmt: skip
    assert merge_data(whole)[2].payload == b"hi\xff"


def test_telnet_subnegotiation_escapes_and_bounds() -> None:
    [ev] = same_both_ways(TelnetReader, bytes([IAC, SB, 24, 0, IAC, IAC, 7, IAC, SE]))
    assert (ev.kind, ev.option, ev.payload) == ("sb", 24, bytes([0, IAC, 7]))
    raises_both_ways(TelnetReader, bytes([IAC, SB, 24]) + b"x" * 2000, "longer than")
    raises_both_ways(TelnetReader, bytes([IAC, SB, 24, IAC, 7]), "inside a telnet")


# --- no reader raises anything but ReplyError, and never differs by segmentation ----------------

READERS: dict[str, Callable[[], Any]] = {
    "line": LineReader,
    "ftp": FTPReplyReader,
    "smtp": SMTPReplyReader,
    "imap": IMAPReader,
    "pop3": POP3Reader,
    "ber": BERReader,
    "telnet": TelnetReader,
}
# Inputs that look like the protocols, so the fuzz reaches past the first check.
TOKENS = [
    b"\r\n", b"\n", b"250", b"250-", b"234 ", b"* ", b"T1 OK", b"{3}", b"+OK", b"-ERR", b".",
    b"\x30", b"\x81", b"\x02\x01\x01", b"\xff", b"\xfb\x01", b"\xfa", b"\xf0", b"x",
]  # fmt: skip


@pytest.mark.parametrize("name", list(READERS))
@settings(max_examples=150, deadline=None)
@given(
    data=st.one_of(
        st.binary(max_size=300),
        st.lists(st.sampled_from(TOKENS), max_size=60).map(b"".join),
    )
)
def test_readers_on_garbage(name: str, data: bytes) -> None:
    make = READERS[name]
    try:
        whole: list[Any] | None = list(make().feed(data))
    except ReplyError:
        whole = None
    reader = make()
    bytewise: list[Any] | None = []
    try:
        for i in range(len(data)):
            bytewise.extend(reader.feed(data[i : i + 1]))  # type: ignore[union-attr]
    except ReplyError:
        bytewise = None
    if name == "telnet" and whole is not None and bytewise is not None:
        whole, bytewise = merge_data(whole), merge_data(bytewise)
    assert whole == bytewise


# --- dialogs: scripted servers --------------------------------------------------------------------

Script = list[tuple[bytes, bytes]]  # (server sends, client must answer)


def run_dialog(protocol: str, first: bytes, script: Script, *, bytewise: bool) -> Dialog:
    d = dialog_for(protocol, client_name="[192.0.2.1]")
    assert d.start() == first
    for server, expected in script:
        got = b""
        chunks = [server[i : i + 1] for i in range(len(server))] if bytewise else [server]
        for chunk in chunks:
            got += d.feed(chunk)
        assert got == expected, (server, got)
    assert d.done
    return d


def both_ways(protocol: str, first: bytes, script: Script) -> StartTLSLog:
    a = run_dialog(protocol, first, script, bytewise=False).log
    b = run_dialog(protocol, first, script, bytewise=True).log
    assert (a.upgraded, a.problem, a.reply) == (b.upgraded, b.problem, b.reply)
    assert a.lines == b.lines
    return a


SMTP_OK: Script = [
    (b"220-mx.example ESMTP\r\n220 ready\r\n", b"EHLO [192.0.2.1]\r\n"),
    (b"250-mx.example\r\n250-SIZE 10\r\n250-STARTTLS\r\n250 HELP\r\n", b"STARTTLS\r\n"),
    (b"220 2.0.0 Ready to start TLS\r\n", b""),
]
IMAP_OK: Script = [
    (b"* OK IMAP4rev1 ready\r\n", b"T1 CAPABILITY\r\n"),
    (b"* CAPABILITY IMAP4rev1 STARTTLS\r\nT1 OK done\r\n", b"T2 STARTTLS\r\n"),
    (b"T2 OK Begin TLS negotiation now\r\n", b""),
]
POP3_OK: Script = [
    (b"+OK POP3 ready\r\n", b"CAPA\r\n"),
    (b"+OK\r\nUSER\r\nSTLS\r\n.\r\n", b"STLS\r\n"),
    (b"+OK Begin TLS\r\n", b""),
]
FTP_OK: Script = [
    (b"120 wait\r\n220 FTP ready\r\n", b"AUTH TLS\r\n"),
    (b"234 AUTH TLS OK.\r\n", b""),
]
TELNET_OK: Script = [
    (bytes([IAC, WILL, 1, IAC, DO, 24, IAC, DO, 46]),
     bytes([IAC, DONT, 1, IAC, WONT, 24, IAC, WILL, 46])),
    (bytes([IAC, DO, 24, IAC, SB, 46, 1, IAC, SE]), bytes([IAC, SB, 46, 1, IAC, SE])),
]  # fmt: skip


@pytest.mark.parametrize(
    ("protocol", "first", "script"),
    [
        ("smtp", b"", SMTP_OK),
        ("imap", b"", IMAP_OK),
        ("pop3", b"", POP3_OK),
        ("ftp", b"", FTP_OK),
        ("ldap", ldap_start_tls_request(1), [(SUCCESS, b"")]),
        ("postgres", PG_SSL_REQUEST, [(b"S", b"")]),
        ("telnet", b"", TELNET_OK),
    ],
)
def test_dialog_upgrades(protocol: str, first: bytes, script: Script) -> None:
    log = both_ways(protocol, first, script)
    assert log.upgraded and log.problem is None and log.reply is None
    assert log.lines[0].startswith(("S: ", "C: "))
    assert any(line.startswith("C: ") for line in log.lines)


@pytest.mark.parametrize(
    ("protocol", "first", "script", "refused", "words"),
    [
        ("smtp", b"", [*SMTP_OK[:2], (b"454 4.7.0 TLS not available\r\n", b"")], True, "454"),
        ("smtp", b"", [SMTP_OK[0], (b"250-mx\r\n250 HELP\r\n", b"")], False, "no STARTTLS"),
        ("smtp", b"", [(b"554 no service\r\n", b"")], True, "554"),
        ("imap", b"", [IMAP_OK[0], (b"* CAPABILITY IMAP4rev1\r\nT1 OK\r\n", b"")], False,
         "no STARTTLS"),
        ("imap", b"", [*IMAP_OK[:2], (b"T2 BAD not now\r\n", b"")], True, "T2 BAD"),
        ("imap", b"", [(b"* BYE go away\r\n", b"")], True, "BYE"),
        ("pop3", b"", [POP3_OK[0], (b"+OK\r\nUSER\r\n.\r\n", b"")], False, "no STLS"),
        ("pop3", b"", [POP3_OK[0], (b"-ERR what\r\n", b"STLS\r\n"), (b"-ERR no\r\n", b"")],
         True, "-ERR no"),
        ("ftp", b"", [FTP_OK[0], (b"530 Please login with USER and PASS.\r\n", b"")], True,
         "530"),
        ("ldap", ldap_start_tls_request(1), [(ext_response(2, b"unsupported"), b"")], True,
         "protocolError"),
        ("ldap", ldap_start_tls_request(1),
         [(ext_response(52, b"", message_id=0, name=b"1.3.6.1.4.1.1466.20036"), b"")], True,
         "disconnected"),
        ("postgres", PG_SSL_REQUEST, [(b"N", b"")], True, "answered N"),
        ("telnet", b"", [(bytes([IAC, DO, 46]), bytes([IAC, WILL, 46])),
                         (bytes([IAC, DONT, 46]), b"")], True, "DONT START_TLS"),
        ("telnet", b"", [(bytes([IAC, DO, 24]) + b"\r\nlogin: ", bytes([IAC, WONT, 24]))], False,
         "text before offering"),
    ],
)  # fmt: skip
def test_dialog_refused_or_not_offered(
    protocol: str, first: bytes, script: Script, refused: bool, words: str
) -> None:
    log = both_ways(protocol, first, script)
    assert not log.upgraded
    assert (log.reply is not None) is refused, log
    assert log.problem is not None and words in log.problem, log.problem


def test_dialog_sees_implicit_tls() -> None:
    d = dialog_for("smtp")
    d.feed(b"\x16\x03\x03\x00\x10")
    assert d.done and d.log.problem is not None and "--starttls none" in d.log.problem


def test_dialog_eof_says_where() -> None:
    d = dialog_for("imap")
    d.feed(b"* OK hi\r\n")
    d.eof()
    assert d.log.problem == "the server closed the connection after CAPABILITY"


def test_dialog_is_bounded() -> None:
    d = dialog_for("smtp")
    d.feed(b"220 hi\r\n")
    for _ in range(MAX_STARTTLS_BYTES // 100 + 2):
        if d.done:
            break
        d.feed(b"250-" + b"x" * 94 + b"\r\n")
    assert d.done and not d.log.upgraded


@pytest.mark.parametrize(
    ("protocol", "script"),
    [
        ("smtp", [*SMTP_OK[:2], (b"220 go\r\n250 injected\r\n", b"")]),
        ("postgres", [(b"Sinjected", b"")]),
    ],
)
def test_plaintext_after_the_go_ahead_is_not_handed_to_tls(protocol: str, script: Script) -> None:
    # CVE-2011-0411 (SMTP) and CVE-2021-23214 (PostgreSQL): bytes after the go-ahead.
    first = PG_SSL_REQUEST if protocol == "postgres" else b""
    log = run_dialog(protocol, first, script, bytewise=False).log
    assert not log.upgraded and log.problem is not None and "injected" in log.problem


def test_ftp_protect_records_replies_even_5xx() -> None:
    log = StartTLSLog(lines=["C: AUTH TLS"], upgraded=True)
    d = FTPProtect(log)
    assert d.start() == b"PBSZ 0\r\n"
    assert d.feed(b"200 PBSZ=0\r\n") == b"PROT P\r\n"
    assert d.feed(b"536 PROT P not supported\r\n") == b""
    assert d.done and [r.code for r in d.replies] == [200, 536]
    assert log.lines[-4:] == ["(TLS) C: PBSZ 0", "(TLS) S: 200 PBSZ=0", "(TLS) C: PROT P",
                              "(TLS) S: 536 PROT P not supported"]  # fmt: skip
    assert d.unquoted == b""
