"""Sans-IO readers for the plaintext step before TLS (SPEC "Targets and STARTTLS").

Replies are parsed from bytes as they arrive, however the server splits them into segments,
with multi-line replies (RFC 959 §4.2: ``123-first`` ... ``123 last``) assembled whole. Lines and
replies are bounded so a server that never ends a line cannot grow our memory.
"""

from __future__ import annotations

from dataclasses import dataclass

from .errors import InputError

MAX_LINE = 4096
MAX_LINES = 200

# Port -> protocol for --starttls auto. Only FTP is implemented so far; the others are
# recognised so that `auto` can say so instead of sending a ClientHello at an SMTP banner.
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
IMPLEMENTED = {"none", "ftp"}
CHOICES = ("auto", "none", "ftp", "smtp", "pop3", "imap", "ldap", "postgres", "telnet")


class ReplyError(Exception):
    """The server's plaintext is not a well-formed reply (too long, binary, ...)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Reply:
    code: int
    lines: tuple[str, ...]

    @property
    def text(self) -> str:
        return "\n".join(self.lines)


class LineReader:
    """Bytes in, complete CRLF- or LF-terminated lines out."""

    def __init__(self) -> None:
        self._buf = b""

    def feed(self, data: bytes) -> list[str]:
        self._buf += data
        lines: list[str] = []
        while b"\n" in self._buf:
            raw, self._buf = self._buf.split(b"\n", 1)
            lines.append(raw.rstrip(b"\r").decode("latin-1"))
        if len(self._buf) > MAX_LINE:
            raise ReplyError(f"a reply line longer than {MAX_LINE} bytes")
        return lines

    @property
    def partial(self) -> bytes:
        return self._buf


class FTPReplyReader:
    """RFC 959 replies, single- and multi-line."""

    def __init__(self) -> None:
        self._lines = LineReader()
        self._current: list[str] = []
        self._code: int | None = None

    def feed(self, data: bytes) -> list[Reply]:
        out: list[Reply] = []
        for line in self._lines.feed(data):
            if self._code is None:
                if len(line) < 3 or not line[:3].isdigit():
                    raise ReplyError(f"not an FTP reply: {line[:80]!r}")
                self._code = int(line[:3])
            self._current.append(line)
            if len(self._current) > MAX_LINES:
                raise ReplyError(f"a reply of more than {MAX_LINES} lines")
            # The last line of a reply repeats the code followed by a space (or ends there).
            if line[:3] == f"{self._code:03d}" and (len(line) == 3 or line[3] == " "):
                out.append(Reply(code=self._code, lines=tuple(self._current)))
                self._current, self._code = [], None
        return out


def resolve_protocol(choice: str, port: int) -> str:
    if choice not in CHOICES:
        raise InputError(f"--starttls {choice}: choose one of {', '.join(CHOICES)}")
    proto = AUTO_BY_PORT.get(port, "none") if choice == "auto" else choice
    if proto not in IMPLEMENTED:
        how = "give --starttls none for implicit TLS" if choice == "auto" else "not yet"
        raise InputError(f"STARTTLS for {proto} (port {port}) is not implemented yet; {how}")
    return proto
