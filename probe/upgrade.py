"""The plaintext conversations before TLS (STARTTLS and its relatives), as sans-IO dialogs.

Theory of operation
-------------------
A `Dialog` is one protocol's upgrade conversation written as a state machine with no I/O,
the way h11 is written: ``start()`` gives the bytes a client sends first (nothing when the
server speaks first), ``feed(data)`` takes what the server sent and returns what to answer,
``eof()`` says the server hung up. When ``done`` is set, ``log`` says how it ended:

* ``upgraded``: the server agreed, the next bytes on the socket are TLS;
* ``reply`` set: the server refused, in its own words (cause ``starttls_refused``);
* ``reply`` None: the upgrade is not offered, or the conversation broke (capability absent,
  a server that hung up, a reply that is not the protocol) (cause ``starttls_not_offered``);
* ``injected`` set: the server agreed, then sent more plaintext (see below;
  cause ``starttls_plaintext_injection``);
* ``stalled``: the caller's deadline passed first; ``stalled()`` names the step that got no
  answer, and the lines exchanged until then stay in the transcript (outcome ``timeout``).

``log.lines`` is the transcript a user reads: ``S: ...`` for the server, ``C: ...`` for us,
``(TLS) `` before lines exchanged inside TLS (FTP's PBSZ and PROT). The one driver that moves
these bytes over a socket is ``probe.net.starttls``; `rawhello` (scan) and `prober` (probe)
both use it, so every engine upgrades the same way.

Conversations (RFCs inline): FTP ``AUTH TLS`` (RFC 4217 §4), SMTP ``EHLO`` + ``STARTTLS``
(RFC 3207 §4), IMAP ``CAPABILITY`` + ``STARTTLS`` (RFC 3501 §6.2.1, RFC 2595 §3.1), POP3
``CAPA`` + ``STLS`` (RFC 2449 §5, RFC 2595 §4), the LDAP StartTLS extended operation (RFC 4511
§4.14), the PostgreSQL SSLRequest, and the telnet START_TLS option (draft-altman-telnet-
starttls; what TN3270 servers speak).

Bytes that arrive after the server's go-ahead and before our ClientHello are never TLS (the
client speaks first in TLS): they are plaintext injected into the stream (CVE-2011-0411 for
SMTP, CVE-2021-23214 for PostgreSQL), so a dialog that sees them ends with a problem instead
of handing them to the TLS engine. Readers mark where each reply ends in the stream, so the
bytes quoted and counted are exactly those the server sent after its go-ahead.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from .starttls import (
    DO,
    DONT,
    IAC,
    PG_SSL_REQUEST,
    SB,
    SE,
    START_TLS_FOLLOWS,
    TELOPT_START_TLS,
    TLS_FOLLOWS,
    WILL,
    WONT,
    BERReader,
    FTPReplyReader,
    IMAPReader,
    IMAPResponse,
    POP3Reader,
    PostgresReader,
    Reply,
    ReplyError,
    SMTPReplyReader,
    TelnetEvent,
    TelnetReader,
    ldap_start_tls_request,
    parse_ldap_result,
    telnet_command,
)

MAX_STARTTLS_BYTES = 64 * 1024
DEFAULT_CLIENT_NAME = "[127.0.0.1]"
# Bytes of unexpected plaintext quoted in a transcript line or a problem (all are counted):
# enough to recognise a reply, bounded so that a flood cannot fill the report.
QUOTED_BYTES = 80
TLS_MARK = "(TLS) "  # before transcript lines that crossed the wire inside TLS


@dataclass(slots=True)
class StartTLSLog:
    lines: list[str]
    upgraded: bool = False
    problem: str | None = None
    reply: str | None = None  # the server's refusing words; None when not offered
    injected: int = 0  # plaintext bytes the server sent after agreeing to start TLS
    stalled: bool = False  # the deadline passed with the dialog unfinished


def _lines_of(data: bytes) -> list[bytes]:
    """``data`` cut after each LF (the last piece may be a line's start)."""
    pieces = data.split(b"\n")
    out = [piece + b"\n" for piece in pieces[:-1]]
    return [*out, pieces[-1]] if pieces[-1] else out


def quote_bytes(data: bytes, limit: int = QUOTED_BYTES) -> str:
    """Peer bytes as one printable line: escapes for CR, LF and non-ASCII, cut at ``limit``."""
    shown = data[:limit].decode("latin-1").encode("unicode_escape").decode("ascii")
    return shown + ("..." if len(data) > limit else "")


class Dialog:
    """The shared part: bounds, the implicit-TLS hint, transcript and endings."""

    protocol: ClassVar[str] = ""
    # The step names: what the server owes an answer to (None: its opening words).
    STEPS: ClassVar[dict[str, str | None]] = {"greeting": None}
    OPENING: ClassVar[str] = "its greeting"  # what the server sends first, for messages
    NO_OPENING: ClassVar[str] = "no greeting"
    INSIDE_TLS: ClassVar[bool] = False  # the lines of this dialog cross the wire inside TLS
    # Line protocols get their bytes one line at a time, so a go-ahead ends the dialog before
    # the reader sees what follows it: injected bytes are reported as such, not as a broken
    # reply, whatever they are.
    BY_LINE: ClassVar[bool] = False

    def __init__(self, *, client_name: str = DEFAULT_CLIENT_NAME) -> None:
        self.log = StartTLSLog(lines=[])
        self.done = False
        self.client_name = client_name
        self._received = 0
        self._step = next(iter(self.STEPS))
        # Everything the server sent (bounded by MAX_STARTTLS_BYTES): what follows a go-ahead
        # is cut from here at the offset the reader marked.
        self._raw = bytearray()

    # -- the sans-IO surface ---------------------------------------------------------------------

    def start(self) -> bytes:
        return b""

    def feed(self, data: bytes) -> bytes:
        if self.done or not data:
            return b""
        if self._received == 0 and data[0] in (0x15, 0x16):
            # A TLS record header (alert or handshake) where plaintext was expected.
            self._fail("the server speaks TLS at once (implicit TLS?); try --starttls none")
            return b""
        self._received += len(data)
        if self._received > MAX_STARTTLS_BYTES:
            self._fail(f"more than {MAX_STARTTLS_BYTES} bytes without finishing the upgrade")
            return b""
        self._raw += data
        out = b""
        try:
            for piece in _lines_of(data) if self.BY_LINE else (data,):
                out += self._on_data(piece)
                if self.done:
                    break
        except ReplyError as exc:
            self._fail(str(exc))
            return b""
        return out

    def eof(self) -> None:
        if not self.done:
            self._fail("the server closed the connection" + self._waiting_for())

    def stalled(self, seconds: float) -> None:
        """The caller's deadline passed before the dialog ended: say which step went
        unanswered ("no reply to EHLO within 2 s"), with what little arrived of a reply."""
        if self.done:
            return
        self.done = True
        self.log.stalled = True
        step = self.STEPS.get(self._step)
        problem = f"{f'no reply to {step}' if step else self.NO_OPENING} within {seconds:g} s"
        partial = self._unread()
        if partial:
            problem += f"; only part of one arrived: '{quote_bytes(partial)}'"
        self.log.problem = problem

    # -- for subclasses ----------------------------------------------------------------------------

    def _on_data(self, data: bytes) -> bytes:
        raise NotImplementedError

    def _waiting_for(self) -> str:
        step = self.STEPS.get(self._step)
        return f" after {step}" if step else f" before {self.OPENING}"

    def _unread(self) -> bytes:
        """Bytes received but not yet part of a complete reply (for the stall message)."""
        return b""

    def _after(self, end: int) -> bytes:
        """What the server sent after stream offset ``end`` (a reply's end), as it was sent."""
        return bytes(self._raw[end:])

    def _mark(self, who: str) -> str:
        return f"{TLS_MARK}{who}: " if self.INSIDE_TLS else f"{who}: "

    def _say(self, line: str) -> bytes:
        self.log.lines.append(self._mark("C") + line)
        return line.encode("ascii") + b"\r\n"

    def _heard(self, *lines: str) -> None:
        self.log.lines.extend(self._mark("S") + line for line in lines)

    def _go(self, leftover: bytes = b"") -> bytes:
        self.done = True
        if leftover:
            # Never TLS (the client speaks first in TLS): quoted, bounded, and not handed on.
            self.log.injected = len(leftover)
            self.log.lines.append(
                f"S: [{len(leftover)} more bytes before TLS] {quote_bytes(leftover)}"
            )
            self.log.problem = (
                f"the server sent {len(leftover)} more bytes after agreeing to start TLS"
                f" (plaintext injected before the handshake?): '{quote_bytes(leftover, 40)}'"
            )
            return b""
        self.log.upgraded = True
        return b""

    def _refuse(self, problem: str, reply: str) -> bytes:
        self.done = True
        self.log.problem = problem
        self.log.reply = reply
        return b""

    def _fail(self, problem: str) -> bytes:
        """Not offered, or the conversation broke: no refusal to quote."""
        self.done = True
        self.log.problem = problem
        return b""


# --- numbered replies: FTP and SMTP ---------------------------------------------------------------


class FTPDialog(Dialog):
    """RFC 4217 §4: greeting 220, ``AUTH TLS``, 234 means go ahead."""

    protocol = "ftp"
    STEPS: ClassVar[dict[str, str | None]] = {"greeting": None, "auth": "AUTH TLS"}
    BY_LINE = True

    def __init__(self, *, client_name: str = DEFAULT_CLIENT_NAME) -> None:
        super().__init__(client_name=client_name)
        self._reader = FTPReplyReader()

    def _unread(self) -> bytes:
        return self._after(self._reader.end)

    def _on_data(self, data: bytes) -> bytes:
        out = b""
        for reply in self._reader.feed(data):
            self._heard(*reply.lines)
            # 1xx replies are preliminary (RFC 959 §4.2.1): keep reading for the real one.
            if reply.code < 200:
                continue
            out += self._on_reply(reply)
            if self.done:
                break
        return out

    def _on_reply(self, reply: Reply) -> bytes:
        if self._step == "greeting":
            if reply.code != 220:
                return self._refuse(f"FTP greeting {_last(reply)!r}, expected 220", reply.text)
            self._step = "auth"
            return self._say("AUTH TLS")
        if reply.code != 234:
            return self._refuse(f"AUTH TLS answered {_last(reply)!r}, not 234", reply.text)
        return self._go(self._after(reply.end))


def _last(reply: Reply) -> str:
    return reply.lines[-1][:120]


class SMTPDialog(Dialog):
    """RFC 3207 §4: greeting 220, ``EHLO`` lists ``STARTTLS``, ``STARTTLS`` answered 220."""

    protocol = "smtp"
    STEPS: ClassVar[dict[str, str | None]] = {
        "greeting": None,
        "ehlo": "EHLO",
        "starttls": "STARTTLS",
    }
    BY_LINE = True

    def __init__(self, *, client_name: str = DEFAULT_CLIENT_NAME) -> None:
        super().__init__(client_name=client_name)
        self._reader = SMTPReplyReader()

    def _unread(self) -> bytes:
        return self._after(self._reader.end)

    def _on_data(self, data: bytes) -> bytes:
        out = b""
        for reply in self._reader.feed(data):
            self._heard(*reply.lines)
            out += self._on_reply(reply)
            if self.done:
                break
        return out

    def _on_reply(self, reply: Reply) -> bytes:
        if self._step == "greeting":
            if reply.code != 220:
                # 554 "no SMTP service here" (RFC 5321 §3.1), 421 "try later".
                return self._refuse(f"SMTP greeting {_last(reply)!r}, expected 220", reply.text)
            self._step = "ehlo"
            return self._say(f"EHLO {self.client_name}")
        if self._step == "ehlo":
            if reply.code != 250:
                return self._fail(f"EHLO answered {_last(reply)!r}: no ESMTP, so no STARTTLS")
            # The first line is the server's name; each later line starts with a keyword.
            keywords = {line[4:].split(" ", 1)[0].upper() for line in reply.lines[1:]}
            if "STARTTLS" not in keywords:
                return self._fail("the EHLO reply lists no STARTTLS: the server does not offer TLS")
            self._step = "starttls"
            return self._say("STARTTLS")
        if reply.code != 220:
            return self._refuse(f"STARTTLS answered {_last(reply)!r}, not 220", reply.text)
        return self._go(self._after(reply.end))


# --- IMAP -----------------------------------------------------------------------------------------


class IMAPDialog(Dialog):
    """RFC 3501: greeting ``* OK``, ``CAPABILITY`` lists ``STARTTLS``, ``STARTTLS`` answered
    with a tagged OK (§6.2.1; RFC 2595 §3.1)."""

    protocol = "imap"
    STEPS: ClassVar[dict[str, str | None]] = {
        "greeting": None,
        "capability": "CAPABILITY",
        "starttls": "STARTTLS",
    }
    BY_LINE = True

    def __init__(self, *, client_name: str = DEFAULT_CLIENT_NAME) -> None:
        super().__init__(client_name=client_name)
        self._reader = IMAPReader()
        self._caps: set[str] = set()

    def _unread(self) -> bytes:
        return self._after(self._reader.end)

    def _on_data(self, data: bytes) -> bytes:
        out = b""
        for r in self._reader.feed(data):
            self._heard(r.text)
            out += self._on_response(r)
            if self.done:
                break
        return out

    def _on_response(self, r: IMAPResponse) -> bytes:
        if r.tag == "*" and r.kind == "BYE":
            return self._refuse(f"the server said {r.text[:120]!r}", r.text)
        if self._step == "greeting":
            if r.tag != "*" or r.kind not in ("OK", "PREAUTH"):
                return self._fail(f"not an IMAP greeting: {r.text[:80]!r}")
            self._step = "capability"
            return self._say("T1 CAPABILITY")
        if self._step == "capability":
            if r.tag == "*" and r.kind == "CAPABILITY":
                self._caps.update(w.upper() for w in r.words[2:])
                return b""
            if r.tag != "T1":
                return b""
            # A server that fails CAPABILITY (it must not, RFC 3501 §6.1.1) still gets asked.
            if r.kind == "OK" and "STARTTLS" not in self._caps:
                return self._fail(
                    "the CAPABILITY reply lists no STARTTLS: the server does not offer TLS"
                )
            self._step = "starttls"
            return self._say("T2 STARTTLS")
        if r.tag != "T2":
            return b""
        if r.kind != "OK":
            return self._refuse(f"STARTTLS answered {r.text[:120]!r}", r.text)
        return self._go(self._after(r.end))


# --- POP3 -----------------------------------------------------------------------------------------


class POP3Dialog(Dialog):
    """RFC 2595 §4: greeting ``+OK``, ``CAPA`` lists ``STLS`` (RFC 2449), ``STLS`` answered
    ``+OK``. A server without CAPA (``-ERR``) is asked for STLS all the same."""

    protocol = "pop3"
    STEPS: ClassVar[dict[str, str | None]] = {"greeting": None, "capa": "CAPA", "stls": "STLS"}
    BY_LINE = True

    def __init__(self, *, client_name: str = DEFAULT_CLIENT_NAME) -> None:
        super().__init__(client_name=client_name)
        self._reader = POP3Reader()

    def _unread(self) -> bytes:
        return self._after(self._reader.end)

    def _on_data(self, data: bytes) -> bytes:
        out = b""
        for r in self._reader.feed(data):
            self._heard(r.first, *r.lines)
            if self._step == "greeting":
                if not r.ok:
                    return self._refuse(f"the POP3 greeting is {r.first[:120]!r}", r.text)
                self._step = "capa"
                self._reader.expect_list()
                out += self._say("CAPA")
            elif self._step == "capa":
                caps = {line.split(" ", 1)[0].upper() for line in r.lines}
                if r.ok and "STLS" not in caps:
                    return self._fail("the CAPA reply lists no STLS: the server does not offer TLS")
                self._step = "stls"
                out += self._say("STLS")
            else:
                if not r.ok:
                    return self._refuse(f"STLS answered {r.first[:120]!r}", r.text)
                return self._go(self._after(r.end))
        return out


# --- LDAP -----------------------------------------------------------------------------------------


class LDAPDialog(Dialog):
    """RFC 4511 §4.14: the client sends the StartTLS ExtendedRequest (messageID 1) at once;
    an ExtendedResponse with resultCode 0 means go ahead. A Notice of Disconnection
    (messageID 0, §4.4.1) is the server hanging up with a reason."""

    protocol = "ldap"
    STEPS: ClassVar[dict[str, str | None]] = {"request": "the StartTLS request"}

    def __init__(self, *, client_name: str = DEFAULT_CLIENT_NAME) -> None:
        super().__init__(client_name=client_name)
        self._reader = BERReader()

    def start(self) -> bytes:
        self.log.lines.append("C: ExtendedRequest StartTLS (1.3.6.1.4.1.1466.20037), messageID 1")
        return ldap_start_tls_request(1)

    def _unread(self) -> bytes:
        return self._reader.pending

    def _on_data(self, data: bytes) -> bytes:
        messages = self._reader.feed(data)
        for i, message in enumerate(messages):
            res = parse_ldap_result(message)
            op = "ExtendedResponse" if res.op == 0x78 else f"protocolOp 0x{res.op:02x}"
            words = f"{op} messageID {res.message_id} resultCode {res.result_code}"
            words += f" ({res.result_name})"
            if res.response_name:
                words += f" responseName {res.response_name}"
            if res.diagnostic:
                words += f' diagnosticMessage "{res.diagnostic}"'
            self._heard(words)
            if res.message_id == 0:
                return self._refuse(f"the server disconnected: {res.diagnostic or words}", words)
            if res.message_id != 1 or res.op != 0x78:
                return self._fail(f"not an answer to StartTLS: {words}")
            if res.result_code != 0:
                detail = f": {res.diagnostic}" if res.diagnostic else ""
                return self._refuse(
                    f"StartTLS answered resultCode {res.result_code} ({res.result_name}){detail}",
                    words,
                )
            return self._go(b"".join(messages[i + 1 :]) + self._reader.pending)
        return b""


# --- PostgreSQL -----------------------------------------------------------------------------------


class PostgresDialog(Dialog):
    """SSLRequest (int32 8, int32 80877103); the server answers ``S`` or ``N``, one byte."""

    protocol = "postgres"
    STEPS: ClassVar[dict[str, str | None]] = {"request": "the SSLRequest"}

    def __init__(self, *, client_name: str = DEFAULT_CLIENT_NAME) -> None:
        super().__init__(client_name=client_name)
        self._reader = PostgresReader()

    def start(self) -> bytes:
        self.log.lines.append("C: SSLRequest (int32 8, int32 80877103)")
        return PG_SSL_REQUEST

    def _on_data(self, data: bytes) -> bytes:
        answer = self._reader.feed(data)
        if answer is None:
            return b""
        if answer.kind == "S":
            self._heard("S (willing to perform TLS)")
            return self._go(answer.rest)
        if answer.kind == "N":
            self._heard("N (TLS not supported)")
            return self._refuse("the server answered N to SSLRequest: TLS is off there", "N")
        self._heard(f"ErrorResponse {answer.message}")
        return self._refuse(f"SSLRequest answered with an error: {answer.message}", answer.message)


# --- telnet START_TLS -----------------------------------------------------------------------------


class TelnetDialog(Dialog):
    """The telnet START_TLS option (46), as TN3270 servers and x3270 speak it: the server
    sends ``IAC DO START_TLS``, we ``IAC WILL START_TLS``; the server sends ``IAC SB START_TLS
    FOLLOWS IAC SE``, we send the same, and TLS starts. Every other option is refused
    politely (``WONT`` to a ``DO``, ``DONT`` to a ``WILL``, once each: RFC 854 forbids
    acknowledging a state we are already in, which is how negotiation loops are avoided).

    A server that sends text (a login prompt) before ``DO START_TLS`` does not offer it;
    ``WONT``/``DONT START_TLS`` is a refusal. Text is judged when it is complete enough to
    quote: at a line end, a prompt character, `TEXT_ENOUGH` bytes, or the next command, so
    the verdict and the transcript do not depend on how the server's bytes were split."""

    protocol = "telnet"
    STEPS: ClassVar[dict[str, str | None]] = {"offer": None, "will": "WILL START_TLS"}
    OPENING = "offering START_TLS"
    NO_OPENING = "no offer of START_TLS (IAC DO START_TLS)"
    TEXT_ENOUGH: ClassVar[int] = 80
    PROMPT_ENDS: ClassVar[tuple[str, ...]] = (":", ">", "$", "#", "?", "\n")

    def __init__(self, *, client_name: str = DEFAULT_CLIENT_NAME) -> None:
        super().__init__(client_name=client_name)
        self._reader = TelnetReader()
        self._offered = False
        self._follows = False
        self._refused: set[tuple[int, int]] = set()
        self._text = bytearray()  # server text not yet in the transcript

    def _unread(self) -> bytes:
        return bytes(self._text)

    def eof(self) -> None:
        self._flush_text()
        super().eof()

    def _send(self, verb: int, option: int) -> bytes:
        event = TelnetEvent(kind="negotiate", verb=verb, option=option)
        self.log.lines.append(f"C: {event.describe()}")
        return telnet_command(verb, option)

    def _flush_text(self) -> str:
        raw = bytes(self._text).strip(b" \t\r\n\x00")
        text = TelnetEvent(kind="data", payload=raw).describe()
        if text:
            self._heard(text)
        self._text.clear()
        return text

    def _on_data(self, data: bytes) -> bytes:
        out = b""
        events = self._reader.feed(data)
        for i, ev in enumerate(events):
            if ev.kind == "data":
                self._text += ev.payload
                out += self._on_text()
            else:
                if self._text:
                    out += self._on_text(complete=True)
                    if self.done:
                        break
                self._heard(ev.describe())
                out += self._on_event(ev)
            if self._follows:
                # Our FOLLOWS goes out either way (the server waits for it); what the server
                # sent after its own FOLLOWS decides whether TLS may start.
                rest = b"".join(_raw(e) for e in events[i + 1 :])
                self._go(rest or (b"\xff" if self._reader.in_command else b""))
                break
            if self.done:
                break
        return out

    def _on_text(self, *, complete: bool = False) -> bytes:
        text = self._text.decode("latin-1")
        if not complete and len(text) < self.TEXT_ENOUGH:
            stripped = text.rstrip(" ")
            if not stripped.strip() or not stripped.endswith(self.PROMPT_ENDS):
                return b""
        quoted = self._flush_text()
        if quoted and not self._offered:
            return self._fail(
                f"the server sent text before offering START_TLS (IAC DO START_TLS): {quoted!r}"
            )
        return b""

    def _on_event(self, ev: TelnetEvent) -> bytes:
        start_tls = ev.option == TELOPT_START_TLS
        if ev.kind == "negotiate":
            if start_tls and ev.verb == DO:
                if self._offered:
                    return b""
                self._offered = True
                self._step = "will"
                return self._send(WILL, TELOPT_START_TLS)
            if start_tls and ev.verb in (DONT, WONT):
                return self._refuse(f"the server refused START_TLS: {ev.describe()}", ev.describe())
            answer = {DO: WONT, WILL: DONT}.get(ev.verb)
            if answer is None or (answer, ev.option) in self._refused:
                return b""
            self._refused.add((answer, ev.option))
            return self._send(answer, ev.option)
        if ev.kind == "sb" and start_tls:
            if ev.payload != bytes([TLS_FOLLOWS]):
                return self._fail(f"unexpected START_TLS subnegotiation: {ev.describe()}")
            self.log.lines.append("C: IAC SB START_TLS FOLLOWS IAC SE")
            self._follows = True
            return START_TLS_FOLLOWS
        return b""


def _raw(ev: TelnetEvent) -> bytes:
    """The bytes behind an event (near enough to count them)."""
    if ev.kind == "negotiate":
        return telnet_command(ev.verb, ev.option)
    if ev.kind == "sb":
        return bytes([IAC, SB, ev.option]) + ev.payload + bytes([IAC, SE])
    if ev.kind == "command":
        return bytes([IAC, ev.verb])
    return ev.payload


# --- after TLS: FTP's data-channel protection -----------------------------------------------------


class FTPProtect(Dialog):
    """After AUTH TLS and the handshake: ``PBSZ 0`` then ``PROT P`` over TLS (RFC 4217 §8, §9),
    as every FTPS client sends before its first transfer. Both replies go to the transcript,
    marked as inside TLS; a 5xx here is a finding about the server's FTPS set-up, not a failed
    handshake. ``unquoted`` is what the server sent that the transcript does not show (the
    application data of the result), so no reply is reported twice."""

    protocol = "ftp"
    STEPS: ClassVar[dict[str, str | None]] = {"pbsz": "PBSZ 0", "prot": "PROT P"}
    INSIDE_TLS = True
    BY_LINE = True

    def __init__(self, log: StartTLSLog) -> None:
        super().__init__()
        self.log = log
        self._reader = FTPReplyReader()
        self._commands = ["PBSZ 0", "PROT P"]
        self.replies: list[Reply] = []

    @property
    def unquoted(self) -> bytes:
        # Lines are fed one at a time, so everything past the last complete reply is what
        # the transcript does not show: after PROT's reply, an unfinished one, or no reply.
        return self._after(self._reader.end)

    def start(self) -> bytes:
        return self._say(self._commands.pop(0))

    def _on_data(self, data: bytes) -> bytes:
        out = b""
        for reply in self._reader.feed(data):
            self._heard(*reply.lines)
            if reply.code < 200:
                continue
            self.replies.append(reply)
            if not self._commands:
                self.done = True
                break
            self._step = "prot"
            out += self._say(self._commands.pop(0))
        return out

    def eof(self) -> None:
        self.done = True


DIALOGS: dict[str, type[Dialog]] = {
    "ftp": FTPDialog,
    "smtp": SMTPDialog,
    "imap": IMAPDialog,
    "pop3": POP3Dialog,
    "ldap": LDAPDialog,
    "postgres": PostgresDialog,
    "telnet": TelnetDialog,
}


def dialog_for(protocol: str, *, client_name: str = DEFAULT_CLIENT_NAME) -> Dialog:
    return DIALOGS[protocol](client_name=client_name)
