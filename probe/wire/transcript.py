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
from .record import Alert, ContentType, Record, parse_alert, parse_record


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


@dataclass(slots=True)
class _Direction:
    name: str
    buf: bytes = b""
    defrag: Defragmenter = field(default_factory=Defragmenter)
    encrypted: bool = False
    parsed_bytes: int = 0
    total_bytes: int = 0
    decode_error: str | None = None
    records: int = 0  # well-formed records seen
    first_bytes: bytes = b""
    eof: bool = False


class Transcript:
    """Both directions of one connection, as wire events (see the module docstring)."""

    def __init__(self, max_events: int = 512, max_bytes: int = 1024 * 1024) -> None:
        self.events: list[WireEvent] = []
        self.dropped_events = 0
        self._max_events = max_events
        self._max_bytes = max_bytes
        self._dirs = {"client": _Direction("client"), "server": _Direction("server")}
        self.tls13 = False
        self.server_hello_seen = False
        self.server_hello: ServerHello | None = None  # the first non-HRR ServerHello, parsed

    # -- feeding -------------------------------------------------------------------------------

    def feed(self, direction: str, data: bytes) -> list[WireEvent]:
        d = self._dirs[direction]
        if not d.first_bytes:
            d.first_bytes = bytes(data[:64])
        d.total_bytes += len(data)
        if d.decode_error is not None or d.parsed_bytes >= self._max_bytes:
            return []
        room = self._max_bytes - d.parsed_bytes
        d.buf += data[:room]
        d.parsed_bytes += min(len(data), room)
        new: list[WireEvent] = []
        try:
            while True:
                got = parse_record(d.buf)
                if got is None:
                    break
                rec, d.buf = got
                d.records += 1
                new.extend(self._on_record(d, rec))
                if d.decode_error is not None:
                    d.buf = b""
                    break
        except DecodeError as exc:
            d.decode_error = str(exc)
            d.buf = b""
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

    def _event(self, d: _Direction, rec: Record, kind: str, **kw: object) -> WireEvent:
        return WireEvent(
            direction=d.name,
            kind=kind,
            record_version=rec.version,
            record_len=len(rec.fragment),
            index=len(self.events) + self.dropped_events,
            **kw,  # type: ignore[arg-type]
        )

    def _on_record(self, d: _Direction, rec: Record) -> list[WireEvent]:
        ctype = rec.content_type
        if ctype == ContentType.APPLICATION_DATA:
            # Always protected: TLS 1.3 wraps everything after the ServerHello in
            # application_data records, and TLS <= 1.2 application data follows Finished.
            return [self._event(d, rec, "encrypted", raw=rec.fragment[:64])]
        if ctype == ContentType.CHANGE_CIPHER_SPEC:
            if not self.tls13:  # in TLS 1.3 it is a middlebox-compatibility no-op (§D.4)
                d.encrypted = True
            return [self._event(d, rec, "ccs", raw=rec.fragment)]
        if d.encrypted:
            return [self._event(d, rec, "encrypted", raw=rec.fragment[:64])]
        if ctype == ContentType.ALERT:
            return [self._event(d, rec, "alert", raw=rec.fragment, alert=parse_alert(rec.fragment))]
        if ctype == ContentType.HEARTBEAT:
            return [self._event(d, rec, "heartbeat", raw=rec.fragment[:64])]
        out = []
        for msg in d.defrag.feed(rec.fragment):
            out.append(self._event(d, rec, "handshake", raw=msg.to_bytes(), handshake=msg))
            if d.name == "server" and msg.msg_type == HandshakeType.SERVER_HELLO:
                self._on_server_hello(msg)
        try:
            d.defrag.feed(b"")  # surfaces a bad header that followed whole messages
        except DecodeError as exc:
            d.decode_error = str(exc)
        return out

    def _on_server_hello(self, msg: HandshakeMessage) -> None:
        sh = parse_server_hello(msg.body)
        if sh.is_hello_retry_request or self.server_hello is not None:
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
