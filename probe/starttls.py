"""Sans-IO readers for the plaintext step before TLS (SPEC "Targets and STARTTLS").

Bytes in, complete replies out, however the server splits them into segments: each reader
gives the same replies fed a whole buffer or one byte at a time. Everything is bounded (a line,
a reply, a BER element, a telnet subnegotiation), so a server that never ends a line cannot
grow our memory; a violation raises `ReplyError`, the one error these readers raise.

* `LineReader`: CRLF- or LF-terminated lines (the base of the text protocols).
* `FTPReplyReader` (RFC 959 §4.2) and `SMTPReplyReader` (RFC 5321 §4.2): numbered replies,
  multi-line ``123-first`` ... ``123 last``.
* `IMAPReader` (RFC 3501 §7, §4.3): tagged and untagged responses, literals ``{n}`` skipped.
* `POP3Reader` (RFC 1939 §3, RFC 2449): ``+OK`` / ``-ERR``, multi-line lists ending in ``.``.
* `BERReader` and `parse_ldap_result` (RFC 4511 §4.1.1, §4.12): LDAPMessages framed by BER.
* `PostgresReader`: the one-byte answer to an SSLRequest (or an ErrorResponse).
* `TelnetReader` (RFC 854, RFC 855): IAC commands, subnegotiations and data.

The conversations that use them are in `probe.upgrade`.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field, replace

from .errors import InputError

MAX_LINE = 4096
MAX_LINES = 200
MAX_LITERAL = 16 * 1024  # an IMAP literal in a pre-TLS response: far more than any real one
MAX_BER = 64 * 1024  # one LDAPMessage before TLS: an ExtendedResponse is tens of bytes
MAX_SUBNEGOTIATION = 1024

# Port -> protocol for --starttls auto (SPEC "Targets and STARTTLS"); every other port is
# implicit TLS, including 990 (FTPS), 992 (telnets), 636, 993 and 995.
AUTO_BY_PORT = {
    21: "ftp",
    25: "smtp",
    587: "smtp",
    110: "pop3",
    143: "imap",
    389: "ldap",
    5432: "postgres",
    23: "telnet",
}
IMPLEMENTED = {"none", "ftp", "smtp", "pop3", "imap", "ldap", "postgres", "telnet"}
CHOICES = ("auto", "none", "ftp", "smtp", "pop3", "imap", "ldap", "postgres", "telnet")


class ReplyError(Exception):
    """The server's plaintext is not a well-formed reply (too long, binary, ...)."""


def resolve_protocol(choice: str, port: int) -> str:
    if choice not in CHOICES:
        raise InputError(f"--starttls {choice}: choose one of {', '.join(CHOICES)}")
    proto = AUTO_BY_PORT.get(port, "none") if choice == "auto" else choice
    if proto not in IMPLEMENTED:
        how = "give --starttls none for implicit TLS" if choice == "auto" else "not yet"
        raise InputError(f"STARTTLS for {proto} (port {port}) is not implemented yet; {how}")
    return proto


# --- lines ---------------------------------------------------------------------------------------


class LineReader:
    """Bytes in, complete CRLF- or LF-terminated lines out (latin-1, CR stripped)."""

    def __init__(self, max_line: int = MAX_LINE) -> None:
        self._buf = b""
        self._max = max_line
        self._consumed = 0  # stream offset just past the last complete line

    def feed(self, data: bytes) -> list[str]:
        return [line for line, _ in self.feed_ends(data)]

    def feed_ends(self, data: bytes) -> list[tuple[str, int]]:
        """``feed``, with each line's end: the stream offset just past its newline. A dialog
        needs it to hand on exactly the bytes after a go-ahead (CR and all), not a rebuild."""
        self._buf += data
        lines: list[tuple[str, int]] = []
        while (end := self._buf.find(b"\n")) >= 0:
            raw, self._buf = self._buf[:end], self._buf[end + 1 :]
            self._consumed += end + 1
            # Checked per line, not only on what is left over, so a long line is an error
            # whether it arrives whole or a byte at a time.
            if len(raw) > self._max:
                raise ReplyError(f"a reply line longer than {self._max} bytes")
            lines.append((raw.rstrip(b"\r").decode("latin-1"), self._consumed))
        if len(self._buf) > self._max:
            raise ReplyError(f"a reply line longer than {self._max} bytes")
        return lines

    @property
    def partial(self) -> bytes:
        """Bytes received but not yet part of a complete line."""
        return self._buf


@dataclass(frozen=True, slots=True, kw_only=True)
class Reply:
    code: int
    lines: tuple[str, ...]
    end: int = field(default=0, compare=False)  # stream offset just past the reply

    @property
    def text(self) -> str:
        return "\n".join(self.lines)


class FTPReplyReader:
    """RFC 959 replies, single- and multi-line (inner lines of a multi-line reply are free)."""

    strict_lines = False  # SMTP: every line carries the code

    def __init__(self) -> None:
        self._lines = LineReader()
        self._current: list[str] = []
        self._code: int | None = None
        self.end = 0  # stream offset just past the last complete reply

    def feed(self, data: bytes) -> list[Reply]:
        out: list[Reply] = []
        for line, end in self._lines.feed_ends(data):
            if self._code is None or self.strict_lines:
                if len(line) < 3 or not line[:3].isdigit() or line[3:4] not in ("", " ", "-"):
                    raise ReplyError(f"not a numbered reply: {line[:80]!r}")
                if self._code is not None and int(line[:3]) != self._code:
                    raise ReplyError(f"reply code changed inside a reply: {line[:80]!r}")
                self._code = int(line[:3])
            self._current.append(line)
            if len(self._current) > MAX_LINES:
                raise ReplyError(f"a reply of more than {MAX_LINES} lines")
            # The last line of a reply repeats the code followed by a space (or ends there).
            if line[:3] == f"{self._code:03d}" and (len(line) == 3 or line[3] == " "):
                out.append(Reply(code=self._code, lines=tuple(self._current), end=end))
                self.end = end
                self._current, self._code = [], None
        return out

    @property
    def pending(self) -> bytes:
        """What arrived after the last complete reply (none is expected after a go-ahead)."""
        partial = "\n".join(self._current).encode("latin-1")
        return partial + self._lines.partial


class SMTPReplyReader(FTPReplyReader):
    """RFC 5321 §4.2: ``250-first`` ... ``250 last``, the code on every line."""

    strict_lines = True


# --- IMAP -----------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class IMAPResponse:
    """One response line (literals inlined as ``{n}``): ``tag`` is ``*``, ``+`` or the
    command tag; ``kind`` the first word after it, upper case (OK, NO, BAD, BYE, PREAUTH,
    CAPABILITY, ...)."""

    tag: str
    kind: str
    text: str
    end: int = field(default=0, compare=False)  # stream offset just past the response

    @property
    def words(self) -> list[str]:
        return self.text.split()


class IMAPReader:
    """RFC 3501 responses. A line ending in ``{n}`` (or ``{n+}``, RFC 7888) announces a
    literal of n bytes that belongs to the same response (§4.3); the literal is skipped."""

    def __init__(self) -> None:
        self._buf = b""
        self._parts: list[str] = []
        self._literal = 0  # bytes of a literal still to skip
        self._size = 0
        self._consumed = 0  # stream offset of the first byte still in _buf
        self.end = 0  # stream offset just past the last complete response

    def feed(self, data: bytes) -> list[IMAPResponse]:
        self._buf += data
        out: list[IMAPResponse] = []
        while True:
            if self._literal:
                skipped = min(self._literal, len(self._buf))
                self._buf = self._buf[skipped:]
                self._consumed += skipped
                self._literal -= skipped
                if self._literal:
                    return out
            end = self._buf.find(b"\n")
            if end < 0:
                if len(self._buf) > MAX_LINE:
                    raise ReplyError(f"a reply line longer than {MAX_LINE} bytes")
                return out
            raw, self._buf = self._buf[:end], self._buf[end + 1 :]
            self._consumed += end + 1
            if len(raw) > MAX_LINE:
                raise ReplyError(f"a reply line longer than {MAX_LINE} bytes")
            response = self._line(raw.rstrip(b"\r").decode("latin-1"))
            if response is not None:
                self.end = self._consumed
                out.append(replace(response, end=self.end))

    def _line(self, line: str) -> IMAPResponse | None:
        self._size += len(line)
        if self._size > MAX_LINE * 4:
            raise ReplyError(f"an IMAP response longer than {MAX_LINE * 4} bytes")
        self._parts.append(line)
        literal = _literal_size(line)
        if literal is not None:
            if literal > MAX_LITERAL:
                raise ReplyError(f"an IMAP literal of {literal} bytes before TLS")
            self._literal = literal
            return None
        text = " ".join(self._parts)
        self._parts, self._size = [], 0
        tag, _, rest = text.partition(" ")
        if not tag:
            raise ReplyError(f"not an IMAP response: {text[:80]!r}")
        kind = rest.split(" ", 1)[0].upper() if rest else ""
        return IMAPResponse(tag=tag, kind=kind, text=text)

    @property
    def pending(self) -> bytes:
        return " ".join(self._parts).encode("latin-1") + self._buf


def _literal_size(line: str) -> int | None:
    if not line.endswith("}"):
        return None
    start = line.rfind("{")
    if start < 0:
        return None
    digits = line[start + 1 : -1].rstrip("+")
    if not digits.isdigit() or len(digits) > 9:
        return None
    return int(digits)


# --- POP3 -----------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class POP3Reply:
    ok: bool
    first: str  # the status line
    lines: tuple[str, ...] = ()  # a multi-line body, dot-unstuffed (RFC 1939 §3)
    end: int = field(default=0, compare=False)  # stream offset just past the reply

    @property
    def text(self) -> str:
        return "\n".join((self.first, *self.lines))


class POP3Reader:
    """``+OK`` / ``-ERR`` status lines; after ``expect_list()`` a ``+OK`` opens a list that
    ends with a line holding one ``.`` (CAPA, RFC 2449 §5). Set the expectation before
    sending the command: the reader cannot tell a list from the next reply by itself."""

    def __init__(self) -> None:
        self._lines = LineReader()
        self._list = False
        self._status: str | None = None
        self._body: list[str] = []
        self.end = 0  # stream offset just past the last complete reply

    def expect_list(self) -> None:
        self._list = True

    def feed(self, data: bytes) -> list[POP3Reply]:
        out: list[POP3Reply] = []
        for line, end in self._lines.feed_ends(data):
            if self._status is None:
                if line.startswith("+OK"):
                    ok = True
                elif line.startswith("-ERR"):
                    ok = False
                else:
                    raise ReplyError(f"not a POP3 reply: {line[:80]!r}")
                if ok and self._list:
                    self._status = line
                    continue
                self._list = False
                out.append(POP3Reply(ok=ok, first=line, end=end))
                self.end = end
                continue
            if line == ".":
                out.append(POP3Reply(ok=True, first=self._status, lines=tuple(self._body), end=end))
                self.end = end
                self._status, self._body, self._list = None, [], False
                continue
            self._body.append(line[1:] if line.startswith("..") else line)
            if len(self._body) > MAX_LINES:
                raise ReplyError(f"a POP3 list of more than {MAX_LINES} lines")
        return out

    @property
    def pending(self) -> bytes:
        head = [self._status] if self._status is not None else []
        return "\n".join(head + self._body).encode("latin-1") + self._lines.partial


# --- LDAP (BER) -----------------------------------------------------------------------------------


def ber_header(buf: bytes, pos: int = 0) -> tuple[int, int, int] | None:
    """(tag, length, offset of the contents) of the element at ``pos``, or None if the
    header is not complete yet. Single-byte tags and definite lengths only (RFC 4511 §5.1
    forbids the indefinite form); lengths above `MAX_BER` are errors."""
    if len(buf) < pos + 2:
        return None
    tag = buf[pos]
    if tag & 0x1F == 0x1F:
        raise ReplyError(f"a multi-byte BER tag (0x{tag:02x}) where LDAP uses none")
    first = buf[pos + 1]
    if first < 0x80:
        return tag, first, pos + 2
    count = first & 0x7F
    if count == 0:
        raise ReplyError("an indefinite BER length (RFC 4511 §5.1 forbids it)")
    if count > 4:
        raise ReplyError(f"a BER length of {count} bytes")
    if len(buf) < pos + 2 + count:
        return None
    length = int.from_bytes(buf[pos + 2 : pos + 2 + count], "big")
    if length > MAX_BER:
        raise ReplyError(f"a BER element of {length} bytes before TLS")
    return tag, length, pos + 2 + count


class BERReader:
    """Bytes in, complete top-level BER elements (LDAPMessages) out."""

    def __init__(self) -> None:
        self._buf = b""

    def feed(self, data: bytes) -> list[bytes]:
        self._buf += data
        out: list[bytes] = []
        while (head := ber_header(self._buf)) is not None:
            tag, length, start = head
            if tag != 0x30:
                raise ReplyError(f"not an LDAPMessage: BER tag 0x{tag:02x}, not SEQUENCE")
            if len(self._buf) < start + length:
                break
            out.append(self._buf[: start + length])
            self._buf = self._buf[start + length :]
        return out

    @property
    def pending(self) -> bytes:
        return self._buf


def _ber_elements(buf: bytes) -> list[tuple[int, bytes]]:
    """The (tag, contents) elements of a constructed element's contents."""
    out: list[tuple[int, bytes]] = []
    pos = 0
    while pos < len(buf):
        head = ber_header(buf, pos)
        if head is None:
            raise ReplyError("a truncated BER element")
        tag, length, start = head
        if start + length > len(buf):
            raise ReplyError("a BER element longer than its container")
        out.append((tag, buf[start : start + length]))
        pos = start + length
    return out


def _ber_int(data: bytes) -> int:
    if not data or len(data) > 4:
        raise ReplyError(f"a BER INTEGER of {len(data)} bytes")
    return int.from_bytes(data, "big", signed=True)


# RFC 4511 Appendix A.1 (and 4.14.2 for StartTLS's own codes), the ones a StartTLS may see.
LDAP_RESULT_NAMES = {
    0: "success", 1: "operationsError", 2: "protocolError", 3: "timeLimitExceeded",
    7: "authMethodNotSupported", 8: "strongerAuthRequired", 10: "referral",
    11: "adminLimitExceeded", 12: "unavailableCriticalExtension",
    13: "confidentialityRequired", 48: "inappropriateAuthentication",
    49: "invalidCredentials", 50: "insufficientAccessRights", 51: "busy", 52: "unavailable",
    53: "unwillingToPerform", 80: "other",
}  # fmt: skip

LDAP_EXTENDED_RESPONSE = 0x78  # [APPLICATION 24], constructed
OID_START_TLS = "1.3.6.1.4.1.1466.20037"  # RFC 4511 §4.14.1
OID_NOTICE_OF_DISCONNECTION = "1.3.6.1.4.1.1466.20036"  # RFC 4511 §4.4.1


@dataclass(frozen=True, slots=True, kw_only=True)
class LDAPResult:
    message_id: int
    op: int  # the protocolOp tag (0x78 for ExtendedResponse)
    result_code: int
    matched_dn: str
    diagnostic: str
    response_name: str | None = None

    @property
    def result_name(self) -> str:
        return LDAP_RESULT_NAMES.get(self.result_code, f"resultCode {self.result_code}")


def parse_ldap_result(message: bytes) -> LDAPResult:
    """An LDAPMessage whose protocolOp is an LDAPResult (RFC 4511 §4.1.9), such as the
    ExtendedResponse (§4.12): messageID, resultCode, matchedDN, diagnosticMessage and the
    optional responseName [10]."""
    outer = _ber_elements(message)
    if len(outer) != 1 or outer[0][0] != 0x30:
        raise ReplyError("not one LDAPMessage SEQUENCE")
    parts = _ber_elements(outer[0][1])
    if len(parts) < 2 or parts[0][0] != 0x02:
        raise ReplyError("an LDAPMessage without messageID and protocolOp")
    message_id = _ber_int(parts[0][1])
    op, body = parts[1]
    fields = _ber_elements(body) if op & 0x20 else []
    if len(fields) < 3 or fields[0][0] != 0x0A or fields[1][0] != 0x04 or fields[2][0] != 0x04:
        raise ReplyError(f"protocolOp 0x{op:02x} is not an LDAPResult")
    name = next((v for t, v in fields[3:] if t == 0x8A), None)
    return LDAPResult(
        message_id=message_id,
        op=op,
        result_code=_ber_int(fields[0][1]),
        matched_dn=fields[1][1].decode("utf-8", "replace"),
        diagnostic=fields[2][1].decode("utf-8", "replace"),
        response_name=name.decode("ascii", "replace") if name is not None else None,
    )


def _ber(tag: int, contents: bytes) -> bytes:
    n = len(contents)
    if n < 0x80:
        return bytes([tag, n]) + contents
    size = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes([tag, 0x80 | len(size)]) + size + contents


def ldap_start_tls_request(message_id: int = 1) -> bytes:
    """LDAPMessage { messageID, extendedReq [APPLICATION 23] { requestName [0] StartTLS } }
    (RFC 4511 §4.12, §4.14.1): 30 1d 02 01 01 77 18 80 16 "1.3.6.1.4.1.1466.20037"."""
    request = _ber(0x77, _ber(0x80, OID_START_TLS.encode("ascii")))
    mid = message_id.to_bytes((message_id.bit_length() + 8) // 8, "big")
    return _ber(0x30, _ber(0x02, mid) + request)


# --- PostgreSQL -----------------------------------------------------------------------------------

# Frontend/Backend protocol, "SSLSessionEncryption": int32 length 8, int32 80877103.
PG_SSL_REQUEST = struct.pack("!ii", 8, 80877103)
MAX_PG_ERROR = 8 * 1024


@dataclass(frozen=True, slots=True, kw_only=True)
class PostgresAnswer:
    kind: str  # "S" | "N" | "E"
    fields: dict[str, str]  # ErrorResponse fields by type letter (S severity, C code, M message)
    rest: bytes = b""  # anything after the answer (nothing is allowed after 'S')

    @property
    def message(self) -> str:
        f = self.fields
        return " ".join(x for x in (f.get("S", ""), f.get("C", ""), f.get("M", "")) if x)


class PostgresReader:
    """The server's answer to an SSLRequest: one byte, ``S`` (go ahead) or ``N`` (no TLS),
    or, from a server that does not know the request, an ErrorResponse (``E``, int32
    length, fields each a type byte and a C string, a final zero byte)."""

    def __init__(self) -> None:
        self._buf = b""

    def feed(self, data: bytes) -> PostgresAnswer | None:
        self._buf += data
        if not self._buf:
            return None
        kind = chr(self._buf[0])
        if kind in ("S", "N"):
            return PostgresAnswer(kind=kind, fields={}, rest=self._buf[1:])
        if kind != "E":
            raise ReplyError(f"not a PostgreSQL answer to SSLRequest: 0x{self._buf[0]:02x}")
        if len(self._buf) < 5:
            return None
        (length,) = struct.unpack("!i", self._buf[1:5])
        if length < 5 or length > MAX_PG_ERROR:
            raise ReplyError(f"a PostgreSQL ErrorResponse of {length} bytes")
        if len(self._buf) < 1 + length:
            return None
        body = self._buf[5 : 1 + length]
        fields: dict[str, str] = {}
        for item in body.split(b"\x00"):
            if item:
                fields[chr(item[0])] = item[1:].decode("utf-8", "replace")
        return PostgresAnswer(kind="E", fields=fields, rest=self._buf[1 + length :])


# --- telnet ---------------------------------------------------------------------------------------

IAC, DONT, DO, WONT, WILL, SB, SE = 255, 254, 253, 252, 251, 250, 240
VERBS = {WILL: "WILL", WONT: "WONT", DO: "DO", DONT: "DONT"}
TELOPT_START_TLS = 46  # draft-altman-telnet-starttls
TLS_FOLLOWS = 1
# Option names as in the IANA telnet options registry; others print as numbers.
TELOPT_NAMES = {
    0: "BINARY", 1: "ECHO", 3: "SUPPRESS-GO-AHEAD", 5: "STATUS", 6: "TIMING-MARK",
    24: "TERMINAL-TYPE", 25: "END-OF-RECORD", 31: "NAWS", 32: "TERMINAL-SPEED",
    33: "TOGGLE-FLOW-CONTROL", 34: "LINEMODE", 35: "X-DISPLAY-LOCATION", 36: "OLD-ENVIRON",
    37: "AUTHENTICATION", 38: "ENCRYPT", 39: "NEW-ENVIRON", 40: "TN3270E", 46: "START_TLS",
}  # fmt: skip


def telopt_name(option: int) -> str:
    return TELOPT_NAMES.get(option, str(option))


@dataclass(frozen=True, slots=True, kw_only=True)
class TelnetEvent:
    """``kind`` is "negotiate" (``verb`` WILL/WONT/DO/DONT, ``option``), "sb" (``option``,
    ``payload`` unescaped), "command" (another IAC command in ``verb``: NOP, GA, ...) or
    "data" (``payload``)."""

    kind: str
    verb: int = 0
    option: int = 0
    payload: bytes = b""

    def describe(self) -> str:
        if self.kind == "negotiate":
            return f"IAC {VERBS[self.verb]} {telopt_name(self.option)}"
        if self.kind == "sb":
            if self.option == TELOPT_START_TLS and self.payload == bytes([TLS_FOLLOWS]):
                return "IAC SB START_TLS FOLLOWS IAC SE"
            return f"IAC SB {telopt_name(self.option)} {self.payload.hex()} IAC SE"
        if self.kind == "command":
            return f"IAC {self.verb}"
        text = self.payload.decode("latin-1")
        return "".join(ch if ch.isprintable() else "." for ch in text)


class TelnetReader:
    """RFC 854 stream parsing: ``IAC IAC`` is a data byte 255; ``IAC WILL/WONT/DO/DONT
    option`` a negotiation; ``IAC SB option ... IAC SE`` a subnegotiation (RFC 855), bounded
    by `MAX_SUBNEGOTIATION`; other ``IAC x`` commands are reported as they are. Runs of data
    come out as one event per feed, so callers must not depend on how data is split."""

    def __init__(self) -> None:
        self._state = "data"  # data | iac | verb | sb_option | sb | sb_iac
        self._verb = 0
        self._option = 0
        self._sb = bytearray()

    def feed(self, data: bytes) -> list[TelnetEvent]:
        out: list[TelnetEvent] = []
        text = bytearray()

        def flush() -> None:
            if text:
                out.append(TelnetEvent(kind="data", payload=bytes(text)))
                text.clear()

        for byte in data:
            state = self._state
            if state == "data":
                if byte == IAC:
                    self._state = "iac"
                else:
                    text.append(byte)
            elif state == "iac":
                if byte == IAC:
                    text.append(IAC)
                    self._state = "data"
                elif byte in VERBS:
                    self._verb, self._state = byte, "verb"
                elif byte == SB:
                    self._state = "sb_option"
                else:
                    flush()
                    out.append(TelnetEvent(kind="command", verb=byte))
                    self._state = "data"
            elif state == "verb":
                flush()
                out.append(TelnetEvent(kind="negotiate", verb=self._verb, option=byte))
                self._state = "data"
            elif state == "sb_option":
                self._option, self._state = byte, "sb"
                self._sb.clear()
            elif state == "sb":
                if byte == IAC:
                    self._state = "sb_iac"
                else:
                    self._sb_append(byte)
            elif state == "sb_iac":
                if byte == SE:
                    flush()
                    out.append(TelnetEvent(kind="sb", option=self._option, payload=bytes(self._sb)))
                    self._state = "data"
                elif byte == IAC:
                    self._sb_append(IAC)
                    self._state = "sb"
                else:
                    raise ReplyError(f"IAC {byte} inside a telnet subnegotiation")
        flush()
        return out

    def _sb_append(self, byte: int) -> None:
        if len(self._sb) >= MAX_SUBNEGOTIATION:
            raise ReplyError(f"a telnet subnegotiation longer than {MAX_SUBNEGOTIATION} bytes")
        self._sb.append(byte)

    @property
    def in_command(self) -> bool:
        """True while a command or subnegotiation is incomplete."""
        return self._state != "data"


def telnet_command(verb: int, option: int) -> bytes:
    return bytes([IAC, verb, option])


START_TLS_FOLLOWS = bytes([IAC, SB, TELOPT_START_TLS, TLS_FOLLOWS, IAC, SE])
