"""Hex dumps as operators paste them, turned into byte chunks for :mod:`probe.decode`.

Theory of operation
-------------------
Vendor traces wrap the TLS bytes in very different dress, and the dumps in the seeds have been
through OCR as well. The reader does not try to understand TLS; it finds the bytes, keeps the
boundaries the dump itself draws (one logged read or write, one message dump) and says what it
had to guess. Each input line is classified first (:mod:`probe.hexlines`: the dump styles, the
repairs made within one line, damaged groups), then the lines are grouped into chunks here:

``cft``
    A Transfer CFT header line (``ndata () _ 47 RECEIVED ...``) starts a chunk and gives it the
    byte count the log announced and the direction; data lines of the same context id continue
    it, across up to two lines of other text while the bytes so far end inside a TLS record.
``offset``
    An offset of zero starts a new dump; a jump forward is a gap (the bytes in it are missing
    and said so).
``msg``
    An ``openssl s_client -msg`` or ``--trace`` header starts a chunk of the hex lines after it,
    with the direction and the kind of bytes the header gives.
``plain``
    Adjacent lines of bare hex make one chunk. When the input also holds CFT or offset lines,
    bare hex lines are annotation (the seeds explain ``16030100 2A02: 02 => Server_hello``
    between dump lines) and are ignored, with a note.

One repair is made on a whole chunk (Transfer CFT only, where the seeds show OCR damage, and
reported in the notes): when the first line of a chunk starts with a record header whose
handshake header does not fit the record length, the one order of that line's groups that
makes both agree is used.

Damage that cannot be repaired is never guessed at. Where a line holds a damaged hex group, the
chunk ends before it with a :class:`~probe.hexlines.Damage` (how many bytes, which group on
which line), and the bytes after it on the dump go to a new chunk marked ``after_damage``,
shown as they are but not parsed, since their context is lost; its offset counts the damaged
group at its full width. A plain hex line cut with a trailing ellipsis ends its chunk there,
said in a note.

The inputs ``decode`` takes that are not hex dumps (``tlsprobe probe --trace --json`` output,
PEM certificates) are read in :mod:`probe.decode`. Everything here is pure: text in,
:class:`Dump` out. No hex at all (or no text at all) is the one error
(:class:`~probe.wire.errors.DecodeError`).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field

from .hexlines import RECORD_GROUP, Damage, Line, classify_lines
from .wire.errors import DecodeError
from .wire.handshake import HandshakeType

MAX_NOTES = 200  # a pathological input must not produce megabytes of notes

_HANDSHAKE_TYPES = frozenset(int(t) for t in HandshakeType)


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

    def add(self, line: Line) -> None:
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
    if not RECORD_GROUP.match(groups[0]) or any(len(g) != 8 for g in groups):
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
    """Every chunk of hex bytes in ``text`` (see :mod:`probe.hexlines` for the formats).

    Raises :class:`DecodeError` only when no hex bytes are found at all.
    """
    if not text.strip():
        raise DecodeError("the input is empty: no hex bytes to decode")
    raw_lines = text.splitlines()
    lines = classify_lines(raw_lines)
    structured = any(ln.kind in ("cft_data", "offset") for ln in lines)
    notes: list[str] = []
    chunks: list[Chunk] = []
    ignored_plain = 0

    cur: _Open | None = None
    pending: Line | None = None  # the last header line (CFT, openssl, ladder) not yet used
    label: str | None = None
    junk = 0  # non-data lines since the last data line

    def close() -> None:
        nonlocal cur
        if cur is not None and (cur.buf or cur.damage):
            chunks.append(cur.close())
        cur = None

    def take(ln: Line) -> None:
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
