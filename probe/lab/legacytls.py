"""The server side of SSL 3.0, TLS 1.0 and TLS 1.1 with RSA key exchange, in pure Python.

Theory of operation
-------------------
The lab imitates partners (IBM i in SSL 3.0, z/OS in TLS 1.1 with 3DES) that the bundled
OpenSSL can no longer play, so this module speaks their protocol itself, with `cryptography`
for the primitives only (RSA PKCS#1 v1.5 here; the hashes and ciphers in :mod:`.legacycrypto`).

Two layers below the socket, each usable alone:

* :mod:`.legacycrypto`: the suites, the key schedule (master secret, key block, Finished, record
  MACs) and :class:`~.legacycrypto.RecordCipher`, one direction of the record protection.
* :class:`LegacySession`, the sans-IO server handshake: :meth:`~LegacySession.start` gives the
  first flight (ServerHello, Certificate, ServerHelloDone); :meth:`~LegacySession.receive_data`
  takes the client's bytes (ClientKeyExchange, ChangeCipherSpec, Finished, then application
  data and alerts) and returns events; :meth:`~LegacySession.data_to_send` gives the answer.
  Every protocol fault ends the session with a fatal alert (encrypted once our
  ChangeCipherSpec has gone out) and ``closed`` set; nothing peer-driven raises.

:func:`serve_legacy` is the only code that touches a socket: it reads the ClientHello (a TLS
one, or the SSLv2-compatible one of RFC 5246 Appendix E.2), negotiates like the real partner
(its own version, the first of its suites the client offers; alert 70 below its version,
alert 40 without a common suite), runs the session under a handshake deadline and then holds
the connection until the client closes or stays idle for ``HOLD`` seconds.

The RSA key exchange follows RFC 5246 §7.4.7.1 against Bleichenbacher's attack: any decryption
or format failure of the premaster secret silently becomes a random premaster, so the client
learns nothing before its Finished fails to verify (bad_record_mac, since its keys differ).
"""

from __future__ import annotations

import hmac
import os
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum, IntEnum

import trio
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from ..wire.buffer import Reader, u8, u16, u24
from ..wire.errors import DecodeError
from ..wire.extensions import Extension, renegotiation_info
from ..wire.handshake import Defragmenter, HandshakeMessage, HandshakeType
from ..wire.hello import ClientHello, parse_client_hello
from ..wire.messages import (
    build_certificate,
    build_server_hello,
    build_server_hello_done,
    parse_sslv2_record,
)
from ..wire.record import ContentType, Record, build_alert, build_records, locate_record
from .legacycrypto import (
    SSL3,
    SUITES,
    TLS10,
    BadRecordMac,
    RecordCipher,
    derive_ciphers,
    finished_verify_data,
    master_secret,
)
from .tlsserver import read_client_hello

READ = 16 * 1024
MAX_PLAINTEXT = 2**14  # RFC 5246 §6.2.1; more after decryption is record_overflow
MAX_HELLO = 64 * 1024
MAX_HANDSHAKE_MESSAGE = 16 * 1024  # ClientKeyExchange and Finished are a few hundred bytes
HANDSHAKE_DEADLINE = 30.0
HOLD = 30.0  # idle time allowed once the handshake is done
LIFETIME = 600.0  # a client that keeps talking is still let go eventually


class AlertDescription(IntEnum):
    """Names as in the IANA TLS Alerts registry."""

    close_notify = 0
    unexpected_message = 10
    bad_record_mac = 20
    record_overflow = 22
    handshake_failure = 40
    illegal_parameter = 47
    decode_error = 50
    decrypt_error = 51
    protocol_version = 70
    no_renegotiation = 100


# SSL 3.0 has only the alerts of RFC 6101 §5.4.2; newer ones map to their nearest relative.
_SSL3_ALERT = {
    AlertDescription.decode_error: AlertDescription.illegal_parameter,
    AlertDescription.decrypt_error: AlertDescription.handshake_failure,
    AlertDescription.record_overflow: AlertDescription.illegal_parameter,
    AlertDescription.protocol_version: AlertDescription.handshake_failure,
    AlertDescription.no_renegotiation: AlertDescription.handshake_failure,
}


def alert_for(version: int, description: int) -> int:
    if version == SSL3:
        return int(_SSL3_ALERT.get(AlertDescription(description), description))
    return description


# --- the handshake, sans IO -----------------------------------------------------------------------


class State(Enum):
    CLIENT_KEY_EXCHANGE = "client_key_exchange"
    CHANGE_CIPHER_SPEC = "change_cipher_spec"
    FINISHED = "finished"
    OPEN = "open"
    CLOSED = "closed"


@dataclass(frozen=True, slots=True, kw_only=True)
class HandshakeDone:
    version: int
    suite: int


@dataclass(frozen=True, slots=True, kw_only=True)
class ApplicationData:
    data: bytes


@dataclass(frozen=True, slots=True, kw_only=True)
class Closed:
    reason: str  # "close_notify", "alert_received", "alert_sent", "eof"
    alert: int | None = None


Event = HandshakeDone | ApplicationData | Closed


class _Abort(Exception):
    def __init__(self, alert: AlertDescription, why: str) -> None:
        super().__init__(why)
        self.alert = alert


@dataclass(frozen=True, slots=True, kw_only=True)
class Partner:
    """What a legacy partner serves: its one version, its suites in its order, its identity."""

    version: int
    suites: tuple[int, ...]
    chain: tuple[bytes, ...]  # DER, leaf first
    key: rsa.RSAPrivateKey


def negotiate(hello: ClientHello, partner: Partner) -> int | AlertDescription:
    """The suite the partner picks, or the alert it refuses the hello with.

    RFC 5246 Appendix E.1: a server answers with the lower of the client's and its own
    version; a legacy partner has only one, so a client below it gets protocol_version.
    """
    if hello.legacy_version < partner.version:
        return AlertDescription.protocol_version
    if 0 not in hello.compression:  # RFC 5246 §7.4.1.2: null compression must be offered
        return AlertDescription.handshake_failure
    suite = next((s for s in partner.suites if s in hello.suites and s in SUITES), None)
    if suite is None:
        return AlertDescription.handshake_failure
    return suite


class LegacySession:
    """The server side of one legacy RSA handshake and the connection after it (sans IO)."""

    def __init__(
        self,
        *,
        partner: Partner,
        suite: int,
        hello: ClientHello,
        hello_message: bytes,  # as hashed: the handshake message, or the SSLv2 CLIENT-HELLO
        random: Callable[[int], bytes] = os.urandom,
    ) -> None:
        self.partner = partner
        self.version = partner.version
        self.suite = SUITES[suite]
        self.hello = hello
        self.server_random = random(32)
        self._random = random
        self._transcript = bytearray(hello_message)
        self._defrag = Defragmenter(max_message=MAX_HANDSHAKE_MESSAGE)
        self._buf = bytearray()
        self._out = bytearray()
        self._read: RecordCipher | None = None
        self._write: RecordCipher | None = None
        self._pending_write: RecordCipher | None = None
        self._master = b""
        self.state = State.CLIENT_KEY_EXCHANGE

    @property
    def closed(self) -> bool:
        return self.state is State.CLOSED

    # -- output

    def data_to_send(self) -> bytes:
        out = bytes(self._out)
        self._out.clear()
        return out

    def _emit(self, ctype: int, data: bytes) -> None:
        if self._write is None:
            self._out += build_records(ctype, self.version, data)
            return
        for i in range(0, max(len(data), 1), MAX_PLAINTEXT):
            sealed = self._write.seal(ctype, data[i : i + MAX_PLAINTEXT])
            self._out += Record(
                content_type=ctype, version=self.version, fragment=sealed
            ).to_bytes()

    def _alert(self, description: int, *, fatal: bool = True) -> None:
        level = 2 if fatal else 1
        self._emit(ContentType.ALERT, bytes([level, alert_for(self.version, description)]))

    def start(self) -> None:
        """Queue ServerHello, Certificate and ServerHelloDone (RFC 5246 §7.3)."""
        exts: tuple[Extension, ...] | None = None
        # RFC 5746 §3.6: an empty renegotiation_info when the client signalled (extension or
        # SCSV), as in the z/OS trace; SSL 3.0 partners of the IBM i era send no extensions.
        if self.version >= TLS10 and self.hello.offers_secure_renegotiation:
            exts = (renegotiation_info(),)
        flight = (
            build_server_hello(
                version=self.version,
                random=self.server_random,
                session_id=self._random(32),
                cipher_suite=self.suite.code,
                extensions=exts,
            )
            + build_certificate(self.partner.chain)
            + build_server_hello_done()
        )
        self._transcript += flight
        self._emit(ContentType.HANDSHAKE, flight)

    # -- input

    def receive_data(self, data: bytes) -> list[Event]:
        """Feed bytes from the client (``b""`` for end of stream); returns what happened."""
        if self.closed:
            return []
        if not data:
            self.state = State.CLOSED
            return [Closed(reason="eof")]
        self._buf += data
        events: list[Event] = []
        try:
            while not self.closed:
                end = locate_record(self._buf)
                if end is None:
                    break
                ctype = self._buf[0]
                rversion = int.from_bytes(self._buf[1:3], "big")
                fragment = bytes(self._buf[5:end])
                del self._buf[:end]
                self._record(ctype, rversion, fragment, events)
        except DecodeError as exc:
            self._fail(_Abort(AlertDescription.decode_error, str(exc)), events)
        except _Abort as exc:
            self._fail(exc, events)
        return events

    def _fail(self, exc: _Abort, events: list[Event]) -> None:
        self._alert(exc.alert)
        self.state = State.CLOSED
        events.append(Closed(reason="alert_sent", alert=int(exc.alert)))

    def _record(self, ctype: int, rversion: int, fragment: bytes, events: list[Event]) -> None:
        if self._read is not None:
            try:
                fragment = self._read.open(ctype, rversion, fragment)
            except BadRecordMac as exc:
                raise _Abort(AlertDescription.bad_record_mac, str(exc)) from None
        if len(fragment) > MAX_PLAINTEXT:
            raise _Abort(AlertDescription.record_overflow, f"{len(fragment)} bytes of plaintext")
        handler = _RECORD_HANDLERS.get(ctype)
        if handler is None:  # heartbeat and anything unknown
            raise _Abort(AlertDescription.unexpected_message, f"content type {ctype}")
        handler(self, fragment, events)

    def _on_alert(self, fragment: bytes, events: list[Event]) -> None:
        if len(fragment) != 2:
            raise _Abort(AlertDescription.decode_error, f"alert of {len(fragment)} bytes")
        level, description = fragment
        if description == AlertDescription.close_notify:
            self._alert(AlertDescription.close_notify, fatal=False)  # RFC 2246 §7.2.1
            self.state = State.CLOSED
            events.append(Closed(reason="close_notify", alert=0))
        elif level != 1:
            self.state = State.CLOSED
            events.append(Closed(reason="alert_received", alert=description))
        # A warning (no_certificate, no_renegotiation...) changes nothing here.

    def _on_change_cipher_spec(self, fragment: bytes, events: list[Event]) -> None:
        if self.state is not State.CHANGE_CIPHER_SPEC or self._defrag.pending:
            raise _Abort(AlertDescription.unexpected_message, "ChangeCipherSpec out of order")
        if fragment != b"\x01":
            raise _Abort(AlertDescription.decode_error, "ChangeCipherSpec body is not 1")
        self._read, self._pending_write = derive_ciphers(
            self.version, self.suite, self._master, self.hello.random, self.server_random
        )
        self.state = State.FINISHED

    def _on_handshake(self, fragment: bytes, events: list[Event]) -> None:
        for msg in self._defrag.feed(fragment):
            expected = _EXPECTED.get(self.state)
            if self.state is State.OPEN and msg.msg_type == HandshakeType.CLIENT_HELLO:
                # A renegotiation attempt: TLS declines politely (RFC 2246 §7.2.2); SSL 3.0
                # has no such alert, so the partner would end the connection.
                if self.version == SSL3:
                    raise _Abort(AlertDescription.handshake_failure, "renegotiation")
                self._alert(AlertDescription.no_renegotiation, fatal=False)
                continue
            if expected is None or msg.msg_type != expected:
                raise _Abort(
                    AlertDescription.unexpected_message, f"{msg.name} in {self.state.value}"
                )
            if msg.msg_type == HandshakeType.CLIENT_KEY_EXCHANGE:
                self._on_client_key_exchange(msg)
            else:
                self._on_finished(msg, events)

    def _on_application_data(self, fragment: bytes, events: list[Event]) -> None:
        if self.state is not State.OPEN:
            raise _Abort(AlertDescription.unexpected_message, "application data before Finished")
        if fragment:  # SSL 3.0 / TLS 1.0 clients send empty records against BEAST
            events.append(ApplicationData(data=fragment))

    # -- key exchange and Finished

    def _on_client_key_exchange(self, msg: HandshakeMessage) -> None:
        # SSL 3.0 sends the bare RSA block (RFC 6101 §5.6.7.1); TLS prefixes its length, as a
        # public-key-encrypted vector (RFC 2246 §7.4.7.1).
        if self.version == SSL3:
            encrypted = msg.body
        else:
            r = Reader(msg.body, "client_key_exchange")
            encrypted = r.vector(2)
            r.expect_end()
        self._transcript += msg.to_bytes()
        premaster = self._premaster(encrypted)
        self._master = master_secret(self.version, premaster, self.hello.random, self.server_random)
        self.state = State.CHANGE_CIPHER_SPEC

    def _premaster(self, encrypted: bytes) -> bytes:
        """RFC 5246 §7.4.7.1: decrypt, and on any failure go on with a random secret.

        The version bytes are always the client's offered version, so a rollback that rewrote
        the ClientHello shows up at Finished too. OpenSSL 3.2+ does "implicit rejection" and
        returns random bytes instead of raising; the length check covers that as well.
        """
        fallback = self._random(46)
        try:
            plain = self.partner.key.decrypt(encrypted, padding.PKCS1v15())
        except ValueError:
            plain = b""
        body = plain[2:] if len(plain) == 48 else fallback
        return u16(self.hello.legacy_version) + body

    def _on_finished(self, msg: HandshakeMessage, events: list[Event]) -> None:
        expected = finished_verify_data(
            self.version, self._master, bytes(self._transcript), client=True
        )
        if not hmac.compare_digest(msg.body, expected):
            raise _Abort(AlertDescription.decrypt_error, "client Finished does not verify")
        self._transcript += msg.to_bytes()
        ours = finished_verify_data(
            self.version, self._master, bytes(self._transcript), client=False
        )
        self._emit(ContentType.CHANGE_CIPHER_SPEC, b"\x01")
        self._write = self._pending_write
        self._emit(ContentType.HANDSHAKE, u8(HandshakeType.FINISHED) + u24(len(ours)) + ours)
        self.state = State.OPEN
        events.append(HandshakeDone(version=self.version, suite=self.suite.code))


# What each record type does, and which handshake message each state waits for.
_RECORD_HANDLERS: dict[int, Callable[[LegacySession, bytes, list[Event]], None]] = {
    ContentType.ALERT: LegacySession._on_alert,
    ContentType.CHANGE_CIPHER_SPEC: LegacySession._on_change_cipher_spec,
    ContentType.HANDSHAKE: LegacySession._on_handshake,
    ContentType.APPLICATION_DATA: LegacySession._on_application_data,
}
_EXPECTED = {
    State.CLIENT_KEY_EXCHANGE: HandshakeType.CLIENT_KEY_EXCHANGE,
    State.FINISHED: HandshakeType.FINISHED,
}


# --- the opening: a TLS ClientHello or an SSLv2-compatible one ------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class Opening:
    hello: ClientHello
    message: bytes  # the bytes the handshake hash starts with
    rest: bytes  # whatever the client sent after its hello


def parse_v2_compatible_hello(msg: bytes) -> ClientHello:
    """An SSLv2-format CLIENT-HELLO offering SSL 3.0 or later (RFC 5246 Appendix E.2).

    Only the three-byte cipher kinds whose first byte is 0 are SSL 3.0/TLS suites; the
    challenge becomes the ClientHello random, right-aligned and zero-padded to 32 bytes.
    """
    r = Reader(msg, "sslv2 client_hello")
    if r.u8() != 1:
        raise DecodeError("sslv2: first message is not a CLIENT-HELLO")
    version = r.u16()
    specs_len, sid_len, challenge_len = r.u16(), r.u16(), r.u16()
    if specs_len % 3 or sid_len not in (0, 16) or not 16 <= challenge_len <= 32:
        raise DecodeError("sslv2 client_hello: bad lengths")
    specs = r.bytes(specs_len)
    session_id = r.bytes(sid_len)
    challenge = r.bytes(challenge_len)
    r.expect_end()
    kinds = [int.from_bytes(specs[i : i + 3], "big") for i in range(0, specs_len, 3)]
    return ClientHello(
        legacy_version=version,
        random=challenge.rjust(32, b"\x00"),
        session_id=session_id,
        suites=tuple(k for k in kinds if k <= 0xFFFF),
        compression=(0,),
        extensions=(),
        extensions_present=False,
    )


def split_opening(raw: bytes) -> Opening | None:
    """The ClientHello at the front of ``raw``; ``None`` while incomplete.

    :class:`DecodeError` when the bytes are neither TLS records starting with a ClientHello
    nor an SSLv2 CLIENT-HELLO.
    """
    if raw and raw[0] & 0x80:
        got = parse_sslv2_record(raw)
        if got is None:
            return None
        msg, rest = got
        hello = parse_v2_compatible_hello(msg)
        # RFC 5246 Appendix E.2 / OpenSSL: the hash covers the message without its header.
        return Opening(hello=hello, message=msg, rest=rest)
    defrag = Defragmenter(max_message=MAX_HELLO)
    pos = 0
    while (end := locate_record(raw, pos)) is not None:
        if raw[pos] != ContentType.HANDSHAKE:
            raise DecodeError("first record is not a handshake")
        msgs = defrag.feed(raw[pos + 5 : end])
        pos = end
        if msgs:
            first = msgs[0]
            if first.msg_type != HandshakeType.CLIENT_HELLO or len(msgs) > 1 or defrag.pending:
                raise DecodeError("the ClientHello does not come alone")
            hello = parse_client_hello(first.body)
            return Opening(hello=hello, message=first.to_bytes(), rest=raw[pos:])
    return None


# --- the driver: the only code here that touches a socket -----------------------------------------


async def _send(stream: trio.SocketStream, data: bytes) -> bool:
    if not data:
        return True
    try:
        await stream.send_all(data)
    except (trio.BrokenResourceError, trio.ClosedResourceError):
        return False
    return True


async def _receive(stream: trio.SocketStream) -> bytes:
    try:
        return await stream.receive_some(READ)
    except (trio.BrokenResourceError, trio.ClosedResourceError):
        return b""


async def _read_opening(stream: trio.SocketStream) -> Opening | None:
    first = await read_client_hello(stream)  # bounded in size; the caller bounds the time
    raw = first.raw
    while len(raw) <= MAX_HELLO:
        try:
            opening = split_opening(raw)
        except DecodeError:
            return None
        if opening is not None:
            return opening
        data = await _receive(stream)
        if not data:
            return None
        raw += data
    return None


async def serve_legacy(stream: trio.SocketStream, partner: Partner) -> None:
    """One connection to a legacy partner, from ClientHello to close (see the module doc)."""
    with trio.move_on_after(HANDSHAKE_DEADLINE) as handshake_scope:
        opening = await _read_opening(stream)
        if opening is None:
            return
        picked = negotiate(opening.hello, partner)
        if isinstance(picked, AlertDescription):
            # As the partners do: protocol_version even from SSL 3.0, which predates it.
            await _send(stream, build_alert(int(picked), version=partner.version))
            return
        session = LegacySession(
            partner=partner, suite=picked, hello=opening.hello, hello_message=opening.message
        )
        session.start()
        if opening.rest:
            session.receive_data(opening.rest)
        while session.state is not State.OPEN and not session.closed:
            if not await _send(stream, session.data_to_send()):
                return
            session.receive_data(await _receive(stream))
    if handshake_scope.cancelled_caught:
        return  # a client that stalls mid-handshake is dropped without a word, as OpenSSL does
    with trio.move_on_after(LIFETIME):
        while not session.closed:
            if not await _send(stream, session.data_to_send()):
                return
            with trio.move_on_after(HOLD) as idle:
                data = await _receive(stream)
            if idle.cancelled_caught:
                return
            session.receive_data(data)
    await _send(stream, session.data_to_send())
