"""One line of a hex dump, recognised: which dump style it belongs to and the bytes it shows.

Theory of operation
-------------------
:mod:`probe.hexdump` groups lines into chunks; this module looks at one line at a time (with
one fact from the whole input: the Transfer CFT context ids it names) and says what it is:

``cft``
    Axway Transfer CFT ``CFTY02Z>> CTX = 200003 16030100 35010000 ... >ascii<``. The context id
    is skipped, the ASCII column between ``>`` and ``<`` is ignored (it may be ragged or carry a
    stray ``"``). ``ndata () _ 47 RECEIVED ...`` / ``SSLact () _ 58 ... SENDING`` lines are
    headers: they tell how many bytes the log announced and whether they were sent or received.
``offset``
    A dump with an offset column: z/OS System SSL ``00000000: 0100002D 03025089 ... "ascii"``,
    ``xxd``, ``hexdump -C``, Wireshark ``0000  16 03 01 ...   ascii``.
``msg``
    ``openssl s_client -msg`` (``>>> TLS 1.2, Handshake [length 00f4], ClientHello`` followed by
    indented hex) and tlsprobe's own ``--trace`` ladder (``──> ClientHello``): the header gives
    a direction and the kind of the bytes that follow.
``plain``
    Lines of nothing but hex (``16 03 01``, ``160301``, ``0x16, 0x03``, ``16:03:01``).

Anything else is text (a label for what follows) or blank.

Repairs (Transfer CFT lines only, where the seeds show OCR damage), each reported in the line's
notes: a context id split into ``200 003`` and moved among the hex groups is removed and a
record header group moved back to the front; short stray tokens (ASCII characters that landed
among the groups, making a line longer than 16 bytes or odd) are dropped.

A hex group with an odd number of digits (``A030201`` for ``A0030201``: OCR lost a digit,
nobody knows which) is never padded into a guess: the line's bytes are split there into the
bytes before the first such group and, for each :class:`Damage`, the bytes after it. In offset
and Transfer CFT dumps the group is counted at its full width (the offset column or the
8-digit groups say so). A plain hex line cut with a trailing ellipsis
(``16030100 2A020000 26...``, how people paste a truncated dump) gives the hex before it and
records the cut.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field


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


@dataclass(slots=True)
class Line:
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
RECORD_GROUP = re.compile(r"1[4-8]030[0-4][0-9A-Fa-f]{2}\Z")  # type, version, length high byte
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


def classify_lines(raw_lines: list[str]) -> list[Line]:
    """Each line of the input, classified. The Transfer CFT context ids are gathered from the
    whole input first: only an id that intact lines show can be recognised where OCR split it
    among the hex groups of another line."""
    known_ctx = {
        m.group(1).lower()
        for line in raw_lines
        if (m := re.search(r"CTX\s*(?:ndata\s*)?=\s*([0-9A-Fa-f]{6})(?:\s|$)", line))
    }
    return [_classify(i + 1, raw, known_ctx) for i, raw in enumerate(raw_lines)]


def _classify(no: int, raw: str, known_ctx: set[str]) -> Line:
    text = raw.rstrip("\r\n")
    stripped = text.strip()
    if not stripped:
        return Line(no, "blank", text)
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
        return Line(no, "text", text, announced=int(m.group(1)))
    plain = _plain_line(no, text, stripped)
    if plain is not None:
        return plain
    return Line(no, "text", text)


def _cut_marker(stripped: str) -> tuple[str, str | None]:
    """Split a trailing ellipsis ("26...", "26 [...]", "26 ... (truncated)") off a line."""
    m = _ELLIPSIS.search(stripped)
    if m is None or _CUT_TAIL.fullmatch(stripped, m.start()) is None:
        return stripped, None
    return stripped[: m.start()].rstrip(" \t[("), m.group(0)


def _plain_line(no: int, text: str, stripped: str) -> Line | None:
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
    line = Line(no, "plain", text, cut=cut)
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


def _msg_head(no: int, text: str, arrow: str, rest: str) -> Line:
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
    line = Line(no, "msg_head", text, direction=direction, hint=hint)
    return line


def _offset_line(no: int, text: str, offset: int, rest: str) -> Line | None:
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
    line = Line(no, "offset", text, offset=offset)
    _take_groups(no, groups, line)
    return line


def _take_groups(no: int, groups: list[str], line: Line, shortest: int = 1) -> None:
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


def _cft_line(no: int, text: str, rest: str, known_ctx: set[str]) -> Line | None:
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
            return Line(
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
    line = Line(no, "cft_data", text)
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


def _unscramble_ctx(no: int, groups: list[str], known: set[str], line: Line) -> list[str]:
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
            heads = [j for j, g in enumerate(rest) if RECORD_GROUP.match(g)]
            if heads and heads[0] != 0:
                j = heads[0]
                rest = [rest[j], *rest[:j], *rest[j + 1 :]]
                line.notes.append(
                    f"line {no}: record header group {rest[0]} moved back to the front"
                )
            return rest
    return groups


def _drop_strays(no: int, groups: list[str], line: Line) -> list[str]:
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
