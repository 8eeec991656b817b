"""TLS record layer (RFC 5246 §6.2, RFC 8446 §5.1) and alerts (RFC 8446 §6).

``parse_record`` is the only way bytes from a peer become records. It returns ``None`` while a
record is incomplete and raises :class:`DecodeError` as soon as the header cannot belong to TLS,
so a caller reading from a socket can stop after five bytes of garbage instead of waiting for a
length that a plaintext banner happened to spell.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum

from .buffer import u16
from .errors import DecodeError


class ContentType(IntEnum):
    CHANGE_CIPHER_SPEC = 20
    ALERT = 21
    HANDSHAKE = 22
    APPLICATION_DATA = 23
    HEARTBEAT = 24


# RFC 8446 §5.1: plaintext fragments are at most 2^14 bytes; §5.2 allows 2^14 + 256 for
# ciphertext and TLS 1.2 allowed 2^14 + 2048. Anything longer is a lie or an attack, and we
# refuse it from the header alone so a hostile peer cannot make us buffer 64 KiB per record.
MAX_FRAGMENT = 2**14 + 2048
HEADER_LEN = 5


@dataclass(frozen=True, slots=True, kw_only=True)
class Record:
    content_type: int
    version: int
    fragment: bytes

    def to_bytes(self) -> bytes:
        return (
            bytes([self.content_type]) + u16(self.version) + u16(len(self.fragment)) + self.fragment
        )


def check_header(head: bytes | bytearray) -> int:
    """Validate a record header (at least 5 bytes) and return the fragment length."""
    ctype, major, length = head[0], head[1], int.from_bytes(head[3:5], "big")
    if ctype not in ContentType._value2member_map_:
        raise DecodeError(f"record: content type {ctype} is not TLS")
    # SSL 3.0 to TLS 1.3 all carry major version 3 in the record header; an SSLv2 record or a
    # banner ("220 ", "HTTP", "SSH-") fails here.
    if major != 3:
        raise DecodeError(f"record: version {major}.{head[2]} is not TLS")
    if length > MAX_FRAGMENT:
        raise DecodeError(f"record: length {length} exceeds {MAX_FRAGMENT}")
    return length


def locate_record(buf: bytes | bytearray, pos: int = 0) -> int | None:
    """Where the record starting at ``buf[pos]`` ends, without copying: its fragment is
    ``buf[pos + 5 : end]``. ``None`` while the record is incomplete; :class:`DecodeError` for a
    header (even a partial one) that cannot be TLS, exactly as :func:`parse_record` decides.
    """
    avail = len(buf) - pos
    if avail <= 0:
        return None
    if avail < HEADER_LEN:
        if buf[pos] not in ContentType._value2member_map_ or (avail >= 2 and buf[pos + 1] != 3):
            raise DecodeError(f"record: {bytes(buf[pos:]).hex()} is not a TLS record header")
        return None
    length = check_header(buf[pos : pos + HEADER_LEN])
    end = pos + HEADER_LEN + length
    if len(buf) < end:
        return None
    return end


def parse_record(buf: bytes) -> tuple[Record, bytes] | None:
    """One record from the front of ``buf``: ``(record, rest)``, or ``None`` if incomplete.

    A partial header is checked as far as it goes, so garbage is rejected early.
    """
    end = locate_record(buf)
    if end is None:
        return None
    rec = Record(
        content_type=buf[0], version=int.from_bytes(buf[1:3], "big"), fragment=bytes(buf[5:end])
    )
    return rec, bytes(buf[end:])


def parse_records(buf: bytes) -> tuple[list[Record], bytes]:
    """All complete records at the front of ``buf`` and the incomplete remainder."""
    out: list[Record] = []
    while True:
        got = parse_record(buf)
        if got is None:
            return out, buf
        rec, buf = got
        out.append(rec)


def build_records(
    content_type: int, version: int, payload: bytes, max_fragment: int = 2**14
) -> bytes:
    """``payload`` split into as many records as needed (an empty payload gives one record)."""
    if not payload:
        return Record(content_type=content_type, version=version, fragment=b"").to_bytes()
    return b"".join(
        Record(
            content_type=content_type, version=version, fragment=payload[i : i + max_fragment]
        ).to_bytes()
        for i in range(0, len(payload), max_fragment)
    )


# --- Alerts -----------------------------------------------------------------------------------


class AlertLevel(IntEnum):
    WARNING = 1
    FATAL = 2


@dataclass(frozen=True, slots=True, kw_only=True)
class Alert:
    level: int
    description: int

    def to_bytes(self) -> bytes:
        return bytes([self.level, self.description])


def parse_alert(fragment: bytes) -> Alert:
    """An alert fragment. RFC 8446 §5.1 forbids fragmenting alerts, so exactly two bytes."""
    if len(fragment) != 2:
        raise DecodeError(f"alert: {len(fragment)} bytes, expected 2")
    return Alert(level=fragment[0], description=fragment[1])


def build_alert(description: int, level: int = AlertLevel.FATAL, version: int = 0x0303) -> bytes:
    return Record(
        content_type=ContentType.ALERT,
        version=version,
        fragment=Alert(level=level, description=description).to_bytes(),
    ).to_bytes()
