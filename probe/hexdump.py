"""Hex dumps as operators paste them, turned into byte chunks for :mod:`probe.decode`.

Theory of operation
-------------------
Vendor traces wrap the TLS bytes in very different dress, and the dumps in the seeds have been
through OCR as well. The reader does not try to understand TLS; it finds the bytes, keeps the
boundaries the dump itself draws (one logged read or write, one message dump) and says what it
had to guess. Each input line is classified first, then the lines are grouped into chunks:

``cft``
    Axway Transfer CFT ``CFTY02Z>> CTX = 200003 16030100 35010000 ... >ascii<``. The context id
    is skipped, the ASCII column between ``>`` and ``<`` is ignored (it may be ragged or carry a
    stray ``"``). ``ndata () _ 47 RECEIVED ...`` / ``SSLact () _ 58 ... SENDING`` lines start a
    chunk and tell how many bytes the log announced and whether they were sent or received.
``offset``
    A dump with an offset column: z/OS System SSL ``00000000: 0100002D 03025089 ... "ascii"``,
    ``xxd``, ``hexdump -C``, Wireshark ``0000  16 03 01 ...   ascii``. An offset of zero starts a
    new dump; a jump forward is a gap (the bytes in it are missing and said so).
``msg``
    ``openssl s_client -msg`` (``>>> TLS 1.2, Handshake [length 00f4], ClientHello`` followed by
    indented hex) and tlsprobe's own ``--trace`` ladder (``──> ClientHello``): the header gives
    a direction and the kind of the bytes that follow.
``plain``
    Lines of nothing but hex (``16 03 01``, ``160301``, ``0x16, 0x03``, ``16:03:01``). When the
    input also holds CFT or offset lines, bare hex lines are annotation (the seeds explain
    ``16030100 2A02: 02 => Server_hello`` between dump lines) and are ignored, with a note.
``json``
    ``tlsprobe probe --trace --json`` output: each trace entry is a chunk with its direction.

Repairs (Transfer CFT lines only, where the seeds show OCR damage), each reported in the notes:
a context id split into ``200 003`` and moved among the hex groups is removed and a record
header group moved back to the front; short stray tokens (ASCII characters that landed among
the groups, making a line longer than 16 bytes or odd) are dropped; and when the first line of
a chunk starts with a record header whose handshake header does not fit the record length,
the one order of that line's groups that makes both agree is used. Offset dumps keep their
byte count exactly: a group with an odd number of digits (one digit lost) is padded with a
leading zero and flagged, so the lengths after it still line up.

Everything here is pure: text in, :class:`Dump` out. No hex at all is the one error
(:class:`~probe.wire.errors.DecodeError`).
"""

from __future__ import annotations

import itertools
import json
import re
from dataclasses import dataclass, field
from typing import Any

from .wire.errors import DecodeError
from .wire.handshake import HandshakeType

MAX_NOTES = 200  # a pathological input must not produce megabytes of notes

_HANDSHAKE_TYPES = frozenset(int(t) for t in HandshakeType)


@dataclass(frozen=True, slots=True, kw_only=True)
class Chunk:
    """Bytes the dump shows as one unit (one logged read/write, one message dump)."""

    data: bytes
    line: int  # 1-based line of the first byte
    style: str  # "cft" | "offset" | "msg" | "plain" | "json"
    label: str | None = None  # the text that introduced the chunk
    direction: str | None = None  # "client" | "server" | "sent" | "received" | None
    party: str | None = None  # who "sent"/"received" is relative to (CFT context, "openssl")
    hint: str | None = None  # what the dump says the bytes are (see decode._HINTS)
    start_offset: int | None = None  # offset column of the first byte
    announced: int | None = None  # byte count the log line announced
    missing_after: int = 0  # bytes the source says it left out at the end
    after_gap: bool = False  # continues a dump after skipped bytes: its start is missing
    notes: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class Dump:
    chunks: tuple[Chunk, ...]
    styles: tuple[str, ...]
    notes: tuple[str, ...]
    lines: int


# --- line classification ----------------------------------------------------------------------


@dataclass(slots=True)
class _Line:
    no: int
    kind: str  # cft_data | cft_head | offset | msg_head | plain | text | blank
    text: str
    data: bytes = b""
    ctx: str | None = None
    offset: int | None = None
    direction: str | None = None
    hint: str | None = None
    announced: int | None = None
    missing_after: int = 0
    groups: list[str] = field(default_factory=list)  # hex groups as found (cft)
    notes: list[str] = field(default_factory=list)


_HEX = re.compile(r"[0-9A-Fa-f]+\Z")
_CTX = re.compile(r"CTX\s*(?:ndata\s*)?=\s*(?P<rest>.*)$")
_CFT_ID = re.compile(r"[0-9A-Fa-f]{6}\Z")
_RECORD_GROUP = re.compile(r"1[4-8]030[0-4][0-9A-Fa-f]{2}\Z")  # type, version, length high byte
_OFFSET = re.compile(
    r"^\s*(?:[•·\-*.]\s+)?(?:0x)?(?P<off>[0-9A-Fa-f]{4,8})(?::\s*|\s{2,})(?P<rest>\S.*)$"
)
_MSG_HEAD = re.compile(r"^\s*(?P<arrow>>>>|<<<|──>|<──|───)\s*(?P<text>.*)$")
_PLAIN_PREFIX = re.compile(r"0x|\\x", re.IGNORECASE)
_PLAIN_SEPARATORS = re.compile(r"[\s,;:]+")
_PLAIN_CHARS = frozenset("0123456789abcdefABCDEF \t,;:")
_SHOWN_IN_JSON = re.compile(r"\.\.\. \((\d+) bytes")
_CFT_HEAD_WORDS = re.compile(r"ndata|SSLact|PDataRq|SENDING|RECEIVED", re.IGNORECASE)
_INT = re.compile(r"(?<![0-9A-Za-z])(\d{1,6})(?![0-9A-Za-z])")


def _hex_tokens(text: str) -> list[str]:
    """The leading run of hex tokens in ``text`` (stops at the first non-hex token). A token
    that starts with hex and runs into the ASCII column ("5D." in ``BF6CDD76 5D. "L.v.``)
    gives its hex part and ends the run."""
    out: list[str] = []
    for tok in text.split():
        if _HEX.match(tok):
            out.append(tok)
            continue
        m = re.match(r"([0-9A-Fa-f]{2,})[^0-9A-Za-z]", tok)
        if m is not None:
            out.append(m.group(1))
        break
    return out


def _cut_ascii(text: str) -> str:
    """Text before an ASCII column: CFT ``>...<``, z/OS ``"..."`` or ``*...*``, ``|...|``."""
    cut = len(text)
    for mark in '><"|*':
        i = text.find(mark)
        if i != -1:
            cut = min(cut, i)
    return text[:cut]


def _classify(no: int, raw: str, known_ctx: set[str]) -> _Line:
    text = raw.rstrip("\r\n")
    stripped = text.strip()
    if not stripped:
        return _Line(no, "blank", text)
    if (m := _CTX.search(text)) is not None:
        line = _cft_line(no, text, m.group("rest"), known_ctx)
        if line is not None:
            return line
    if (m := _MSG_HEAD.match(text)) is not None:
        return _msg_head(no, text, m.group("arrow"), m.group("text"))
    if (m := _OFFSET.match(text)) is not None:
        line = _offset_line(no, text, int(m.group("off"), 16), m.group("rest"))
        if line is not None:
            return line
    if (m := _SHOWN_IN_JSON.search(stripped)) is not None and stripped.startswith("..."):
        # tlsprobe's ladder: "... (812 bytes shown in JSON)" after the hex it printed.
        return _Line(no, "text", text, announced=int(m.group(1)))
    plain = _plain_line(no, text, stripped)
    if plain is not None:
        return plain
    return _Line(no, "text", text)


def _plain_line(no: int, text: str, stripped: str) -> _Line | None:
    # A trailing colon marks an annotation ("16030100 2A02: Server_hello"), not data; a line
    # without a digit is a word that happens to be hex ("added", "Cafe").
    if stripped.endswith(":") or not any(c.isdigit() for c in stripped):
        return None
    # Character checks and one split, no backtracking regex: a long line of hex must not cost
    # more than its length.
    body = _PLAIN_PREFIX.sub(" ", stripped).strip(" \t,;:")
    if not body or not _PLAIN_CHARS.issuperset(body):
        return None
    tokens = _PLAIN_SEPARATORS.split(body)
    if any(len(t) < 2 for t in tokens):
        return None  # a single hex letter is a word ("a"), not a byte
    digits = "".join(tokens)
    line = _Line(no, "plain", text)
    if len(digits) % 2:
        line.notes.append(f"line {no}: odd number of hex digits; the last one is ignored")
        digits = digits[:-1]
    line.data = bytes.fromhex(digits)
    return line


def _msg_head(no: int, text: str, arrow: str, rest: str) -> _Line:
    direction = {
        ">>>": "sent",
        "<<<": "received",
        "──>": "client",
        "<──": "server",
        "───": None,
    }[arrow]
    words = rest.lower()
    hint: str | None
    if "recordheader" in words:
        hint = "record_header"
    elif "innercontent" in words:
        hint = "inner_content"
    elif "changecipherspec" in words:
        hint = "ccs"
    elif "alert" in words:
        hint = "alert"
    elif "handshake" in words or arrow in ("──>", "<──"):
        hint = "handshake"
    elif "applicationdata" in words or "encrypted" in words:
        hint = "opaque"
    else:
        hint = None
    if arrow in ("──>", "<──", "───"):
        # tlsprobe's ladder: alerts, CCS and opaque records are named by their first word.
        first = rest.split()[0].lower() if rest.split() else ""
        hint = {
            "alert": "alert",
            "changecipherspec": "ccs",
            "encrypted": "opaque",
            "application": "opaque",
            "heartbeat": "opaque",
        }.get(first, "handshake")
    line = _Line(no, "msg_head", text, direction=direction, hint=hint)
    return line


def _offset_line(no: int, text: str, offset: int, rest: str) -> _Line | None:
    body = _cut_ascii(rest)
    groups: list[str] = []
    nibbles = 0
    prev_end = 0
    for m in re.finditer(r"\S+", body):
        if groups and m.start() - prev_end >= 3:
            break  # Wireshark / xxd: the ASCII column starts after a wide gap
        tok = m.group(0)
        if not _HEX.match(tok):
            break
        if groups and nibbles >= 32 and len(groups[0]) <= 8:
            break  # a full 16-byte line; what follows is the ASCII column
        groups.append(tok)
        nibbles += len(tok)
        prev_end = m.end()
    if not groups:
        return None
    line = _Line(no, "offset", text, offset=offset)
    fixed: list[str] = []
    for g in groups:
        if len(g) % 2:
            line.notes.append(
                f"line {no}: group {g!r} has {len(g)} hex digits (one lost, OCR?); padded to "
                f"{'0' + g!r} to keep the byte count, its value is unreliable"
            )
            g = "0" + g
        fixed.append(g)
    line.data = bytes.fromhex("".join(fixed))
    return line


def _cft_line(no: int, text: str, rest: str, known_ctx: set[str]) -> _Line | None:
    """A Transfer CFT line: a data line, a header line, or None (ordinary text)."""
    body = _cut_ascii(rest)
    tokens = body.split()
    if not tokens:
        return None
    if _CFT_ID.match(tokens[0]) and len(tokens) > 1 and not _HEX.match(tokens[1]):
        # "200003 ndata () _ 47 RECEIVED FROM ..." / "200003 DONE SUCCESSFULLY HANDSHAKE"
        ctx = tokens[0].lower()
        if _CFT_HEAD_WORDS.search(rest):
            counts = [int(n) for n in _INT.findall(rest[len(tokens[0]) :])]
            direction = (
                "sent"
                if re.search(r"SENDING", rest, re.I)
                else "received"
                if re.search(r"RECEIVED", rest, re.I)
                else None
            )
            return _Line(
                no,
                "cft_head",
                text,
                ctx=ctx,
                direction=direction,
                announced=counts[0] if counts else None,
            )
        return None
    if not _CFT_ID.match(tokens[0]) and not _HEX.match(tokens[0]):
        # "CTX ndata = 200003 () 9 _ RECEIVED" has the id after "=" already; anything else with
        # a word first is a log message, not a dump line.
        return None
    line = _Line(no, "cft_data", text)
    groups = _hex_tokens(body)
    if _CFT_ID.match(groups[0]) and len(groups) > 1:
        line.ctx = groups[0].lower()
        groups = groups[1:]
    else:
        groups = _unscramble_ctx(no, groups, known_ctx, line)
    if not groups:
        return None
    line.groups = _drop_strays(no, groups, line)
    digits = "".join(line.groups)
    if len(digits) % 2:
        line.notes.append(f"line {no}: odd number of hex digits; the last one is ignored")
        digits = digits[:-1]
    line.data = bytes.fromhex(digits)
    return line if line.data else None


def _unscramble_ctx(no: int, groups: list[str], known: set[str], line: _Line) -> list[str]:
    """OCR moved the context id among the groups, split in two ("040E0000 16030100 200 003
    00"): take the id out and put the record-header group back in front."""
    for i in range(len(groups) - 1):
        a, b = groups[i], groups[i + 1]
        if len(a) == 3 and len(b) == 3 and (a + b).lower() in known:
            line.ctx = (a + b).lower()
            rest = groups[:i] + groups[i + 2 :]
            line.notes.append(
                f"line {no}: context id {a + b} was split among the hex groups (OCR damage); "
                "removed"
            )
            heads = [j for j, g in enumerate(rest) if _RECORD_GROUP.match(g)]
            if heads and heads[0] != 0:
                j = heads[0]
                rest = [rest[j], *rest[:j], *rest[j + 1 :]]
                line.notes.append(
                    f"line {no}: record header group {rest[0]} moved back to the front"
                )
            return rest
    return groups


def _drop_strays(no: int, groups: list[str], line: _Line) -> list[str]:
    """CFT prints 16 bytes a line in 8-digit groups. Characters of the ASCII column that OCR
    moved among the groups make a line longer than 32 digits or odd: drop them."""
    out = list(groups)

    def total() -> int:
        return sum(len(g) for g in out)

    while total() % 2 or total() > 32:
        odd = [i for i, g in enumerate(out) if len(g) % 2]
        short = [i for i, g in enumerate(out[:-1]) if len(g) < 8]
        if odd:
            i = odd[-1]
        elif short:
            i = short[0]
        elif len(out[-1]) < 8 and total() > 32:
            i = len(out) - 1
        else:
            break
        line.notes.append(
            f"line {no}: dropped {out[i]!r} (stray characters among the hex groups, OCR damage)"
        )
        del out[i]
    return out


# --- grouping into chunks ---------------------------------------------------------------------


@dataclass(slots=True)
class _Open:
    style: str
    line: int
    first: bytes  # the first line's bytes
    label: str | None
    direction: str | None = None
    party: str | None = None
    hint: str | None = None
    start_offset: int | None = None
    announced: int | None = None
    ctx: str | None = None
    after_gap: bool = False
    missing_after: int = 0
    notes: list[str] = field(default_factory=list)
    first_groups: list[str] = field(default_factory=list)
    buf: bytearray = field(default_factory=bytearray)
    scan: int = 0  # where the next record header is due (-1: not a record stream)

    def __post_init__(self) -> None:
        self.buf += self.first

    @property
    def size(self) -> int:
        return len(self.buf)

    def add(self, line: _Line) -> None:
        self.buf += line.data
        self.notes.extend(line.notes)

    def inside_record(self) -> bool:
        """Do the bytes so far end inside a TLS record? Records seen once are not walked
        again (the bytes only grow), so asking after every line stays linear."""
        data = self.buf
        pos = self.scan
        while 0 <= pos < len(data):
            if len(data) - pos < 5:
                break
            if not (20 <= data[pos] <= 24 and data[pos + 1] == 3):
                self.scan = -1
                return False
            pos += 5 + int.from_bytes(data[pos + 3 : pos + 5], "big")
        self.scan = pos
        return pos >= 0 and (pos > len(data) or len(data) - pos in range(1, 5))

    def close(self) -> Chunk:
        data = bytes(self.buf)
        if self.style == "cft" and self.first_groups:
            data = _reorder_first_line(self, data)
        if self.announced is not None and self.announced != len(data) and self.style == "cft":
            self.notes.append(
                f"the log line announces {self.announced} bytes, the dump shows {len(data)}"
            )
        return Chunk(
            data=data,
            line=self.line,
            style=self.style,
            label=self.label,
            direction=self.direction,
            party=self.party,
            hint=self.hint,
            start_offset=self.start_offset,
            announced=self.announced,
            missing_after=self.missing_after,
            after_gap=self.after_gap,
            notes=tuple(self.notes),
        )


def _headers_agree(head: bytes) -> bool | None:
    """Does a handshake record header agree with the handshake header after it?"""
    if len(head) < 9 or head[0] != 22:
        return None
    rec_len = int.from_bytes(head[3:5], "big")
    msg_len = int.from_bytes(head[6:9], "big")
    return head[5] in _HANDSHAKE_TYPES and msg_len + 4 <= rec_len


def _reorder_first_line(chunk: _Open, data: bytes) -> bytes:
    """The seeds' OCR sometimes swapped the 8-digit groups of a line. When the first line of a
    chunk starts with a handshake record header that does not agree with the handshake header
    behind it, and exactly one order of that line's other groups makes them agree exactly, use
    that order (and say so)."""
    groups = chunk.first_groups
    if _headers_agree(data) is not False or len(groups) < 3:
        return data
    if not _RECORD_GROUP.match(groups[0]) or any(len(g) != 8 for g in groups):
        return data
    first_len = sum(len(g) for g in groups) // 2
    fits: list[tuple[str, ...]] = []
    for perm in itertools.permutations(groups[1:]):
        head = bytes.fromhex(groups[0] + "".join(perm))
        rec_len = int.from_bytes(head[3:5], "big")
        if head[5] in _HANDSHAKE_TYPES and int.from_bytes(head[6:9], "big") + 4 == rec_len:
            fits.append(perm)
    if len(set(fits)) != 1:
        return data
    order = " ".join((groups[0], *fits[0]))
    chunk.notes.append(
        f"line {chunk.line}: groups reordered to {order} so that the record and handshake "
        f"headers agree (OCR damage?); as printed: {' '.join(groups)}"
    )
    return bytes.fromhex(groups[0] + "".join(fits[0])) + data[first_len:]


def _label(text: str) -> str | None:
    s = " ".join(text.strip(" \t•·-*.").split())
    if not s:
        return None
    return s if len(s) <= 100 else s[:97] + "..."


def read_dump(text: str) -> Dump:
    """Every chunk of hex bytes in ``text`` (see the module docstring for the formats).

    Raises :class:`DecodeError` only when no hex bytes are found at all.
    """
    stripped = text.lstrip()
    if stripped[:1] in ("{", "["):
        from_json = _read_json(stripped)
        if from_json is not None:
            return from_json
    raw_lines = text.splitlines()
    known_ctx = {
        m.group(1).lower()
        for line in raw_lines
        if (m := re.search(r"CTX\s*(?:ndata\s*)?=\s*([0-9A-Fa-f]{6})(?:\s|$)", line))
    }
    lines = [_classify(i + 1, raw, known_ctx) for i, raw in enumerate(raw_lines)]
    structured = any(ln.kind in ("cft_data", "offset") for ln in lines)
    notes: list[str] = []
    chunks: list[Chunk] = []
    ignored_plain = 0

    cur: _Open | None = None
    pending: _Line | None = None  # the last header line (CFT, openssl, ladder) not yet used
    label: str | None = None
    junk = 0  # non-data lines since the last data line

    def close() -> None:
        nonlocal cur
        if cur is not None and cur.buf:
            chunks.append(cur.close())
        cur = None

    for ln in lines:
        if ln.kind in ("text", "blank", "cft_head", "msg_head"):
            notes.extend(ln.notes)
        if ln.kind in ("blank", "text"):
            if ln.kind == "text":
                if ln.announced is not None and cur is not None and cur.style == "msg":
                    cur.missing_after = max(0, ln.announced - cur.size)
                label = _label(ln.text) or label
            junk += 1
            if cur is not None and cur.style in ("plain", "msg") and ln.kind == "text":
                close()
            continue
        if ln.kind == "cft_head":
            close()
            pending, junk = ln, 0
            label = _label(ln.text)
            continue
        if ln.kind == "msg_head":
            close()
            pending, junk = ln, 0
            label = _label(ln.text)
            continue
        if ln.kind == "plain":
            if structured:
                ignored_plain += 1
                junk += 1
                continue
            if cur is not None and cur.style in ("plain", "msg") and junk == 0:
                cur.add(ln)
                continue
            close()
            head = pending if pending is not None and pending.kind == "msg_head" else None
            cur = _Open(
                style="msg" if head else "plain",
                line=ln.no,
                first=ln.data,
                label=_label(head.text) if head else label,
                direction=head.direction if head else None,
                party="openssl" if head and head.direction in ("sent", "received") else None,
                hint=head.hint if head else None,
                notes=list(ln.notes),
            )
            pending, junk = None, 0
            continue
        if ln.kind == "cft_data":
            cont = (
                cur is not None
                and cur.style == "cft"
                and (ln.ctx is None or ln.ctx == cur.ctx)
                and (junk == 0 or (junk <= 2 and cur.inside_record()))
            )
            if cont and cur is not None:
                cur.add(ln)
                junk = 0
                continue
            close()
            head = (
                pending
                if pending is not None
                and pending.kind == "cft_head"
                and (ln.ctx is None or pending.ctx == ln.ctx)
                else None
            )
            ctx = ln.ctx or (head.ctx if head else None)
            cur = _Open(
                style="cft",
                line=ln.no,
                first=ln.data,
                label=label,
                direction=head.direction if head else None,
                party=f"CTX {ctx}" if ctx else None,
                announced=head.announced if head else None,
                ctx=ctx,
                first_groups=list(ln.groups),
                notes=list(ln.notes),
            )
            pending, junk = None, 0
            continue
        # offset lines
        assert ln.offset is not None
        if cur is not None and cur.style == "offset" and cur.start_offset is not None:
            expected = cur.start_offset + cur.size
            if ln.offset == expected:
                cur.add(ln)
                junk = 0
                continue
            if ln.offset > expected and ln.offset != 0:
                gap = ln.offset - expected
                cur.notes.append(
                    f"the dump skips {gap} bytes after offset {expected - 1:#x} (the next line "
                    f"is at {ln.offset:#x})"
                )
                close()
                cur = _Open(
                    style="offset",
                    line=ln.no,
                    first=ln.data,
                    label=label,
                    start_offset=ln.offset,
                    after_gap=True,
                    notes=[
                        f"continues a dump after {gap} skipped bytes; its start is missing",
                        *ln.notes,
                    ],
                )
                junk = 0
                continue
        close()
        cur = _Open(
            style="offset",
            line=ln.no,
            first=ln.data,
            label=label,
            start_offset=ln.offset,
            notes=list(ln.notes),
        )
        pending, junk = None, 0
    close()
    if ignored_plain:
        notes.append(
            f"ignored {ignored_plain} line(s) of bare hex between the dump lines (annotations)"
        )
    if not chunks:
        raise DecodeError(
            "no hex bytes found: expected plain hex, an offset dump (z/OS, xxd, hexdump, "
            "Wireshark), Transfer CFT CFTY02Z lines, openssl s_client -msg output or "
            "tlsprobe --trace --json output"
        )
    styles = tuple(dict.fromkeys(c.style for c in chunks))
    if len(notes) > MAX_NOTES:
        notes = [*notes[:MAX_NOTES], f"... {len(notes) - MAX_NOTES} more notes"]
    return Dump(chunks=tuple(chunks), styles=styles, notes=tuple(notes), lines=len(raw_lines))


# --- tlsprobe JSON ----------------------------------------------------------------------------

_JSON_HINTS = {
    "alert": "alert",
    "changecipherspec": "ccs",
    "encrypted": "opaque",
    "application": "opaque",
    "heartbeat": "opaque",
}


def _read_json(text: str) -> Dump | None:
    """``tlsprobe probe --trace --json`` output, or its ``trace`` list alone."""
    try:
        doc: Any = json.loads(text)
    except (ValueError, RecursionError):
        return None
    entries = doc.get("trace") if isinstance(doc, dict) else doc
    if not isinstance(entries, list):
        return None
    if isinstance(doc, dict) and not entries:
        raise DecodeError("the probe result holds no trace: run tlsprobe probe with --trace --json")
    chunks: list[Chunk] = []
    notes: list[str] = []
    for n, e in enumerate(entries, 1):
        if not isinstance(e, dict) or not isinstance(e.get("hex"), str):
            continue
        shown, _, rest = e["hex"].partition(" ")
        if not shown:
            continue
        if not _HEX.match(shown) or len(shown) % 2:
            notes.append(f"trace entry {n}: hex field is not hex; skipped")
            continue
        data = bytes.fromhex(shown)
        missing = 0
        if (m := _SHOWN_IN_JSON.search(rest)) is not None:
            missing = max(0, int(m.group(1)) - len(data))
        raw_what = e.get("what")
        what = raw_what if isinstance(raw_what, str) else ""
        first = what.split()[0].lower() if what.split() else ""
        direction = e.get("direction") if e.get("direction") in ("client", "server") else None
        chunks.append(
            Chunk(
                data=data,
                line=n,
                style="json",
                label=what or None,
                direction=direction,
                hint=_JSON_HINTS.get(first, "handshake"),
                missing_after=missing,
            )
        )
    if not chunks:
        return None
    return Dump(chunks=tuple(chunks), styles=("json",), notes=tuple(notes), lines=len(entries))
