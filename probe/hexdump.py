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

Repairs (Transfer CFT lines only, where the seeds show OCR damage), each reported in the notes:
a context id split into ``200 003`` and moved among the hex groups is removed and a record
header group moved back to the front; short stray tokens (ASCII characters that landed among
the groups, making a line longer than 16 bytes or odd) are dropped; and when the first line of
a chunk starts with a record header whose handshake header does not fit the record length,
the one order of that line's groups that makes both agree is used.

Damage that cannot be repaired is never guessed at. A hex group with an odd number of digits
(``A030201`` for ``A0030201``: OCR lost a digit, nobody knows which) stands for bytes whose
values are unknown: the chunk ends before it with a :class:`Damage` (how many bytes, which
group on which line), and the bytes after it on the dump go to a new chunk marked
``after_damage``, shown as they are but not parsed, since their context is lost. In offset and
Transfer CFT dumps the group is counted at its full width (the offset column or the 8-digit
groups say so), so the offsets after it stay right. A plain hex line cut with a trailing
ellipsis (``16030100 2A020000 26...``, how people paste a truncated dump) gives the hex before
it and ends its chunk there, said in a note.

The inputs ``decode`` takes that are not hex dumps (``tlsprobe probe --trace --json`` output,
PEM certificates) are read in :mod:`probe.decode`. Everything here is pure: text in,
:class:`Dump` out. No hex at all (or no text at all) is the one error
(:class:`~probe.wire.errors.DecodeError`).
"""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass, field

from .wire.errors import DecodeError
from .wire.handshake import HandshakeType

MAX_NOTES = 200  # a pathological input must not produce megabytes of notes

_HANDSHAKE_TYPES = frozenset(int(t) for t in HandshakeType)


@dataclass(frozen=True, slots=True, kw_only=True)
class Damage:
    """A hex group printed with a digit lost: the bytes it stood for are not known."""

    line: int
    group: str  # as printed
    size: int  # bytes the group stood for (one digit more than printed, halved)

    def finding(self) -> str:
        return (
            f"the dump is damaged here (group {self.group!r} on line {self.line} has "
            f"{len(self.group)} digits)"
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class Chunk:
    """Bytes the dump shows as one unit (one logged read/write, one message dump)."""

    data: bytes
    line: int  # 1-based line of the first byte
    style: str  # "cft" | "offset" | "msg" | "plain" | "json" | "binary" | "pem"
    label: str | None = None  # the text that introduced the chunk
    direction: str | None = None  # "client" | "server" | "sent" | "received" | None
    party: str | None = None  # who "sent"/"received" is relative to (CFT context, "openssl")
    hint: str | None = None  # what the dump says the bytes are (see decode._HINTS)
    start_offset: int | None = None  # offset column of the first byte
    announced: int | None = None  # byte count the log line announced
    missing_after: int = 0  # bytes the source says it left out at the end
    after_gap: bool = False  # continues a dump after skipped bytes: its start is missing
    damage: Damage | None = None  # the chunk ends at damaged bytes (their values unknown)
    after_damage: Damage | None = None  # continues a dump after damaged bytes
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
    # Each damaged group on the line and the bytes after it (up to the next one): ``data``
    # holds only the bytes before the first.
    pieces: list[tuple[Damage, bytes]] = field(default_factory=list)
    cut: str | None = None  # the ellipsis that ends a plain line ("...")
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
SHOWN_IN_JSON = re.compile(r"\.\.\. \((\d+) bytes")
_CFT_HEAD_WORDS = re.compile(r"ndata|SSLact|PDataRq|SENDING|RECEIVED", re.IGNORECASE)
_INT = re.compile(r"(?<![0-9A-Za-z])(\d{1,6})(?![0-9A-Za-z])")
_CFT_DAMAGED = 5  # an odd CFT group this long lost a digit; a shorter one is a stray or a split
_ELLIPSIS = re.compile(r"\.{2,}|…")
# What may follow the ellipsis that cuts a plain line: a closing bracket, a short remark.
_CUT_TAIL = re.compile(r"(?:\.{2,}|…)\s*[\])]?\s*(?:[\[(][^\[\]()]{0,60}[\])])?\s*")


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
    if (m := SHOWN_IN_JSON.search(stripped)) is not None and stripped.startswith("..."):
        # tlsprobe's ladder: "... (812 bytes shown in JSON)" after the hex it printed.
        return _Line(no, "text", text, announced=int(m.group(1)))
    plain = _plain_line(no, text, stripped)
    if plain is not None:
        return plain
    return _Line(no, "text", text)


def _cut_marker(stripped: str) -> tuple[str, str | None]:
    """Split a trailing ellipsis ("26...", "26 [...]", "26 ... (truncated)") off a line."""
    m = _ELLIPSIS.search(stripped)
    if m is None or _CUT_TAIL.fullmatch(stripped, m.start()) is None:
        return stripped, None
    return stripped[: m.start()].rstrip(" \t[("), m.group(0)


def _plain_line(no: int, text: str, stripped: str) -> _Line | None:
    # A trailing colon marks an annotation ("16030100 2A02: Server_hello"), not data; a line
    # without a digit is a word that happens to be hex ("added", "Cafe").
    stripped, cut = _cut_marker(stripped)
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
    line = _Line(no, "plain", text, cut=cut)
    if len(tokens) > 1:
        _take_groups(no, tokens, line)  # a group with a digit lost is damage, as in a dump
        return line
    digits = tokens[0]
    if len(digits) % 2:
        # One run of digits: where a digit went missing cannot be told, so only the last
        # (half a byte, where a paste is usually cut) is left out.
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
    _take_groups(no, groups, line)
    return line


def _take_groups(no: int, groups: list[str], line: _Line, shortest: int = 1) -> None:
    """The line's bytes, split at each group of ``shortest`` or more digits with an odd number
    of them: such a group lost a digit and nobody knows which, so its bytes are unknown (never
    padded into a guess). Shorter odd groups are joined to their neighbours (Transfer CFT:
    OCR split "020233" into "020 233")."""
    runs: list[list[str]] = [[]]
    marks: list[Damage] = []
    for g in groups:
        if len(g) % 2 == 0 or len(g) < shortest:
            runs[-1].append(g)
            continue
        d = Damage(line=no, group=g, size=(len(g) + 1) // 2)
        marks.append(d)
        runs.append([])
        line.notes.append(
            f"line {no}: group {g!r} has {len(g)} hex digits (one lost, OCR?): the {d.size} "
            "byte(s) it stands for are unknown"
        )

    def as_bytes(digits: str) -> bytes:
        if len(digits) % 2:
            line.notes.append(f"line {no}: odd number of hex digits; the last one is ignored")
            digits = digits[:-1]
        return bytes.fromhex(digits)

    line.data = as_bytes("".join(runs[0]))
    line.pieces = [(d, as_bytes("".join(r))) for d, r in zip(marks, runs[1:], strict=True)]


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
    _take_groups(no, line.groups, line, shortest=_CFT_DAMAGED)
    return line if line.data or line.pieces else None


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
    moved among the groups make a line longer than 32 digits or odd: drop them. A group of 5
    or 7 digits is not a stray but a group that lost a digit: it counts at its full width and
    stays, for :func:`_take_groups` to mark as damaged."""
    out = list(groups)

    def width(g: str) -> int:
        return len(g) + 1 if len(g) % 2 and len(g) >= _CFT_DAMAGED else len(g)

    def total() -> int:
        return sum(width(g) for g in out)

    while total() % 2 or total() > 32:
        odd = [i for i, g in enumerate(out) if width(g) % 2]
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
    damage: Damage | None = None
    after_damage: Damage | None = None
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
        if (
            self.announced is not None
            and self.announced != len(data)
            and self.style == "cft"
            and self.damage is None  # the count after the damage is not known
        ):
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
            damage=self.damage,
            after_damage=self.after_damage,
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
    if not text.strip():
        raise DecodeError("the input is empty: no hex bytes to decode")
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
        if cur is not None and (cur.buf or cur.damage):
            chunks.append(cur.close())
        cur = None

    def take(ln: _Line) -> None:
        """After ``ln``'s first bytes went into ``cur``: end the chunk at each damaged group
        and go on in a new one after it; end it after a trailing ellipsis."""
        nonlocal cur
        for damage, after in ln.pieces:
            assert cur is not None
            prev = cur
            prev.damage = damage
            close()
            cur = _Open(
                style=prev.style,
                line=ln.no,
                first=after,
                label=prev.label,
                direction=prev.direction,
                party=prev.party,
                ctx=prev.ctx,
                start_offset=None
                if prev.start_offset is None
                else prev.start_offset + prev.size + damage.size,
                after_damage=damage,
                scan=-1,
                notes=[
                    f"continues the dump after the damaged group {damage.group!r} on line "
                    f"{damage.line} ({damage.size} byte(s) unknown); its context is missing"
                ],
            )
        if ln.cut is not None and cur is not None:
            cur.notes.append(
                f"line {ln.no} ends with {ln.cut!r}: the dump leaves out the bytes after it"
            )
            close()

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
                take(ln)
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
            take(ln)
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
                take(ln)
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
                first_groups=[] if ln.pieces else list(ln.groups),
                notes=list(ln.notes),
            )
            take(ln)
            pending, junk = None, 0
            continue
        # offset lines
        assert ln.offset is not None
        if cur is not None and cur.style == "offset" and cur.start_offset is not None:
            expected = cur.start_offset + cur.size
            if ln.offset == expected:
                cur.add(ln)
                take(ln)
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
                take(ln)
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
        take(ln)
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
