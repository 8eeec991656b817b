"""A sans-IO tap that reads both directions of a TLS conversation as it passes.

Theory of operation
-------------------
The full-handshake engine lets OpenSSL do the cryptography, but OpenSSL hides the wire: which
alert came back, and answering which message. Every byte that goes to or comes from the socket
is also fed here, per direction. The tap splits records, reassembles handshake messages across
records, and records one :class:`WireEvent` per message, alert or opaque record.

What stays readable (RFC 5246 §7.1, RFC 8446 §5): everything a side sends before its own
ChangeCipherSpec (TLS <= 1.2), and everything before the ServerHello is processed in TLS 1.3,
where all later records are ``application_data`` wrappers. Once a direction is encrypted its
records are logged as opaque. Alerts sent under encryption are not readable here; the engine's
info callback reports those.

Bounds: at most ``max_events`` events are kept and at most ``max_bytes`` bytes are parsed per
direction; a peer that streams endless records cannot grow memory here. The first record that
cannot be TLS stops parsing of that direction and is reported as ``decode_error`` with the first
bytes, which is how plaintext on a TLS port is recognised from the wire.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .errors import DecodeError
from .handshake import Defragmenter, HandshakeMessage, HandshakeType
from .messages import ServerHello, parse_server_hello
from .record import Alert, ContentType, locate_record, parse_alert


@dataclass(frozen=True, slots=True, kw_only=True)
class WireEvent:
    direction: str  # "client" or "server": who sent it
    kind: str  # "handshake" | "alert" | "ccs" | "encrypted" | "application" | "heartbeat"
    record_version: int
    raw: bytes  # the handshake message (header included) or the record fragment
    record_len: int = 0
    handshake: HandshakeMessage | None = None
    alert: Alert | None = None
    index: int = 0  # position in the conversation
    record_no: int = 0  # which record of its direction carried it, from 1


@dataclass(slots=True)
class _Direction:
    name: str
    # The unparsed tail (an incomplete record) between two feeds; usually empty, because reads
    # tend to end on record boundaries, and then records are cut straight from the new data.
    buf: bytearray = field(default_factory=bytearray)
    defrag: Defragmenter = field(default_factory=Defragmenter)
    encrypted: bool = False
    parsed_bytes: int = 0
    total_bytes: int = 0
    decode_error: str | None = None
    records: int = 0  # well-formed records seen
    first_bytes: bytes = b""
    eof: bool = False


def _event(
    d: _Direction,
    kind: str,
    version: int,
    record_len: int,
    raw: bytes,
    index: int,
    *,
    handshake: HandshakeMessage | None = None,
    alert: Alert | None = None,
) -> WireEvent:
    return WireEvent(
        direction=d.name,
        kind=kind,
        record_version=version,
        raw=raw,
        record_len=record_len,
        handshake=handshake,
        alert=alert,
        index=index,
        record_no=d.records,
    )


class Transcript:
    """Both directions of one connection, as wire events (see the module docstring)."""

    def __init__(
        self, max_events: int = 512, max_bytes: int = 1024 * 1024, *, keep_decrypted: bool = False
    ) -> None:
        self.events: list[WireEvent] = []
        self.dropped_events = 0
        self._max_events = max_events
        self._max_bytes = max_bytes
        self._dirs = {"client": _Direction("client"), "server": _Direction("server")}
        self.tls13 = False
        self.server_hello_seen = False
        self.server_hello: ServerHello | None = None  # the first non-HRR ServerHello, parsed
        # What the wire cannot show: the messages inside encrypted records as the TLS library
        # decrypted them, (direction, record_no, content type, bytes), filled by the engine when
        # asked (``keep_decrypted``, for --trace) and shown beside their record.
        self.keep_decrypted = keep_decrypted
        self.decrypted: list[tuple[str, int, int, bytes]] = []

    # -- feeding -------------------------------------------------------------------------------

    def feed(self, direction: str, data: bytes) -> list[WireEvent]:
        d = self._dirs[direction]
        if not d.first_bytes:
            d.first_bytes = bytes(data[:64])
        d.total_bytes += len(data)
        if d.decode_error is not None or d.parsed_bytes >= self._max_bytes:
            return []
        room = self._max_bytes - d.parsed_bytes
        if len(data) > room:
            data = data[:room]
        d.parsed_bytes += len(data)
        # Records are located by position in one buffer (no copy of the rest per record); the
        # incomplete tail is kept in ``d.buf``, which is all that is held between feeds.
        buf: bytes | bytearray
        if d.buf:
            d.buf += data
            buf = d.buf
        else:
            buf = data
        # Events are kept once the whole feed is parsed, so all of one feed share an index.
        index = len(self.events) + self.dropped_events
        new: list[WireEvent] = []
        pos = 0
        try:
            while (end := locate_record(buf, pos)) is not None:
                d.records += 1
                version = (buf[pos + 1] << 8) | buf[pos + 2]
                new += self._on_record(d, buf[pos], version, buf, pos + 5, end, index)
                pos = end
                if d.decode_error is not None:
                    break
        except DecodeError as exc:
            d.decode_error = str(exc)
        if d.decode_error is not None:
            d.buf = bytearray()
        elif buf is d.buf:
            del d.buf[:pos]
        elif pos < len(buf):
            d.buf = bytearray(memoryview(buf)[pos:])
        for ev in new:
            self._keep(ev)
        return new

    def feed_eof(self, direction: str) -> None:
        self._dirs[direction].eof = True

    def _keep(self, ev: WireEvent) -> None:
        if len(self.events) < self._max_events:
            self.events.append(ev)
        else:
            self.dropped_events += 1

    def _on_record(
        self,
        d: _Direction,
        ctype: int,
        version: int,
        buf: bytes | bytearray,
        start: int,
        end: int,
        index: int,
    ) -> list[WireEvent]:
        """The events of the record whose fragment is ``buf[start:end]``."""
        size = end - start
        if ctype == ContentType.APPLICATION_DATA:
            # Always protected: TLS 1.3 wraps everything after the ServerHello in
            # application_data records, and TLS <= 1.2 application data follows Finished.
            raw = bytes(buf[start : min(end, start + 64)])
            return [_event(d, "encrypted", version, size, raw, index)]
        fragment = bytes(buf[start:end])
        if ctype == ContentType.CHANGE_CIPHER_SPEC:
            if not self.tls13:  # in TLS 1.3 it is a middlebox-compatibility no-op (§D.4)
                d.encrypted = True
            return [_event(d, "ccs", version, size, fragment, index)]
        if d.encrypted:
            return [_event(d, "encrypted", version, size, fragment[:64], index)]
        if ctype == ContentType.ALERT:
            alert = parse_alert(fragment)
            return [_event(d, "alert", version, size, fragment, index, alert=alert)]
        if ctype == ContentType.HEARTBEAT:
            return [_event(d, "heartbeat", version, size, fragment[:64], index)]
        out = []
        for msg in d.defrag.feed(fragment):
            out.append(_event(d, "handshake", version, size, msg.to_bytes(), index, handshake=msg))
            if d.name == "server" and msg.msg_type == HandshakeType.SERVER_HELLO:
                self._on_server_hello(msg)
        if d.defrag.pending >= 4:  # a header waits: surface it now if it lies about its length
            try:
                d.defrag.feed(b"")
            except DecodeError as exc:
                d.decode_error = str(exc)
        return out

    def _on_server_hello(self, msg: HandshakeMessage) -> None:
        sh = parse_server_hello(msg.body)
        if sh.is_hello_retry_request:
            # A HelloRetryRequest already fixes TLS 1.3 (RFC 8446 §4.1.4): the compatibility
            # ChangeCipherSpec that may follow it must not mark either direction encrypted, or
            # the real ServerHello after the second ClientHello would be lost as "encrypted".
            if sh.selected_version >= 0x0304:
                self.tls13 = True
            return
        if self.server_hello is not None:
            return
        self.server_hello = sh
        self.server_hello_seen = True
        if sh.selected_version >= 0x0304:
            self.tls13 = True
            # From here on both directions speak only in encrypted wrappers (RFC 8446 §5.2).
            self._dirs["server"].encrypted = True

    # -- queries -------------------------------------------------------------------------------

    def decode_error(self, direction: str) -> str | None:
        return self._dirs[direction].decode_error

    def not_tls(self, direction: str) -> bool:
        """The very first record header from ``direction`` was not TLS (a banner, HTTP...)."""
        d = self._dirs[direction]
        return d.decode_error is not None and d.records == 0

    def first_bytes(self, direction: str) -> bytes:
        return self._dirs[direction].first_bytes

    def bytes_seen(self, direction: str) -> int:
        return self._dirs[direction].total_bytes

    def pending_handshake_bytes(self, direction: str) -> int:
        d = self._dirs[direction]
        return d.defrag.pending + len(d.buf)

    def handshakes(self, direction: str, msg_type: int | None = None) -> list[HandshakeMessage]:
        return [
            ev.handshake
            for ev in self.events
            if ev.direction == direction
            and ev.handshake is not None
            and (msg_type is None or ev.handshake.msg_type == msg_type)
        ]

    def first_handshake(self, direction: str, msg_type: int) -> HandshakeMessage | None:
        found = self.handshakes(direction, msg_type)
        return found[0] if found else None

    def alerts(self, direction: str) -> list[WireEvent]:
        return [ev for ev in self.events if ev.direction == direction and ev.kind == "alert"]

    def before(self, ev: WireEvent, direction: str) -> list[WireEvent]:
        """Events from ``direction`` that came before ``ev`` (what an alert was answering)."""
        return [e for e in self.events if e.index < ev.index and e.direction == direction]
