"""Handshake message framing across records (RFC 8446 §4, RFC 5246 §7.4).

A handshake message may span many records and one record may hold many messages; the
:class:`Defragmenter` turns a sequence of handshake-record fragments into whole messages. It
refuses a message longer than ``max_message`` from its 4-byte header, before buffering it, so a
peer that announces 16 MB gets a DecodeError at once.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum

from .buffer import u24
from .errors import DecodeError


class HandshakeType(IntEnum):
    HELLO_REQUEST = 0
    CLIENT_HELLO = 1
    SERVER_HELLO = 2
    HELLO_VERIFY_REQUEST = 3
    NEW_SESSION_TICKET = 4
    END_OF_EARLY_DATA = 5
    HELLO_RETRY_REQUEST = 6  # never on the wire in TLS 1.3 (it is a ServerHello), kept for names
    ENCRYPTED_EXTENSIONS = 8
    CERTIFICATE = 11
    SERVER_KEY_EXCHANGE = 12
    CERTIFICATE_REQUEST = 13
    SERVER_HELLO_DONE = 14
    CERTIFICATE_VERIFY = 15
    CLIENT_KEY_EXCHANGE = 16
    FINISHED = 20
    CERTIFICATE_URL = 21
    CERTIFICATE_STATUS = 22
    SUPPLEMENTAL_DATA = 23
    KEY_UPDATE = 24
    MESSAGE_HASH = 254


def handshake_name(msg_type: int) -> str:
    try:
        return HandshakeType(msg_type).name.lower()
    except ValueError:
        return f"handshake_type_{msg_type}"


# Large enough for a Certificate with a long chain or a CertificateRequest with the 32,750+ bytes
# of CA names some partners send; small enough that a hostile length cannot exhaust memory.
DEFAULT_MAX_MESSAGE = 256 * 1024


@dataclass(frozen=True, slots=True, kw_only=True)
class HandshakeMessage:
    msg_type: int
    body: bytes

    @property
    def name(self) -> str:
        return handshake_name(self.msg_type)

    def to_bytes(self) -> bytes:
        return bytes([self.msg_type]) + u24(len(self.body)) + self.body


def _message_end(buf: bytes | bytearray, pos: int, max_message: int) -> int | None:
    """End of the handshake message starting at ``buf[pos]``; ``None`` if incomplete."""
    if len(buf) - pos < 4:
        return None
    length = int.from_bytes(buf[pos + 1 : pos + 4], "big")
    if length > max_message:
        raise DecodeError(
            f"handshake: {handshake_name(buf[pos])} claims {length} bytes (limit {max_message})"
        )
    end = pos + 4 + length
    return end if len(buf) >= end else None


def parse_handshake(
    buf: bytes, max_message: int = DEFAULT_MAX_MESSAGE
) -> tuple[HandshakeMessage, bytes] | None:
    """One handshake message from the front of ``buf``, or ``None`` if incomplete."""
    end = _message_end(buf, 0, max_message)
    if end is None:
        return None
    return HandshakeMessage(msg_type=buf[0], body=bytes(buf[4:end])), bytes(buf[end:])


class Defragmenter:
    """Reassembles handshake messages from record fragments (sans-IO)."""

    __slots__ = ("_buf", "_max")

    def __init__(self, max_message: int = DEFAULT_MAX_MESSAGE) -> None:
        self._buf = b""
        self._max = max_message

    @property
    def pending(self) -> int:
        """Bytes of an unfinished message (a dump that ends mid-message reports these)."""
        return len(self._buf)

    def expected(self) -> int | None:
        """Total length of the unfinished message, if its header has arrived."""
        if len(self._buf) < 4:
            return None
        return 4 + int.from_bytes(self._buf[1:4], "big")

    def feed(self, fragment: bytes) -> list[HandshakeMessage]:
        # Messages are cut from one buffer by position; only an unfinished tail is kept (copied
        # once), so a record holding several messages costs no re-copy per message.
        buf = self._buf + fragment if self._buf else bytes(fragment)
        out: list[HandshakeMessage] = []
        pos = 0
        try:
            while (end := _message_end(buf, pos, self._max)) is not None:
                out.append(HandshakeMessage(msg_type=buf[pos], body=buf[pos + 4 : end]))
                pos = end
        except DecodeError:
            # Hand out what was whole; the bad header stays and the next feed raises, so a
            # ServerHello before a lying Certificate header is not lost.
            self._buf = buf[pos:]
            if out:
                return out
            raise
        self._buf = buf[pos:] if pos < len(buf) else b""
        return out
