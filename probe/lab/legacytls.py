"""The server side of SSL 3.0, TLS 1.0 and TLS 1.1 with RSA key exchange, in pure Python.

Theory of operation
-------------------
The lab imitates partners (IBM i in SSL 3.0, z/OS in TLS 1.1 with 3DES) that the bundled
OpenSSL can no longer play, so this module speaks their protocol itself, with `cryptography`
for the primitives only (RSA PKCS#1 v1.5, MD5/SHA-1, HMAC, RC4, 3DES and AES in CBC).

Three layers, each usable alone:

* The key schedule: pure functions of bytes. SSL 3.0 derives its master secret and key block
  from nested MD5(SHA-1("A" | "BB" | "CCC" ...)) (RFC 6101 §6.1, §6.2.2) and MACs records with
  the pad1/pad2 construction (§5.2.3.1); TLS 1.0/1.1 use the PRF P_MD5 xor P_SHA1 (RFC 2246
  §5) and HMAC (§6.2.3.1).
* :class:`RecordCipher`, one direction of the record protection: MAC-then-encrypt with RC4 or a
  CBC cipher. The CBC IV chains from the previous record in SSL 3.0 and TLS 1.0 (RFC 2246
  §6.2.3.2) and is explicit per record in TLS 1.1 (RFC 4346 §6.2.3.2).
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

import hashlib
import hmac
import importlib
import os
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum, IntEnum

import trio
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.ciphers import Cipher, CipherAlgorithm, modes
from cryptography.hazmat.primitives.ciphers.algorithms import AES

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
from .tlsserver import read_client_hello

SSL3, TLS10, TLS11 = 0x0300, 0x0301, 0x0302
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


# --- suites ---------------------------------------------------------------------------------------


def _legacy_algorithm(name: str) -> type[CipherAlgorithm]:
    # cryptography 43 moved RC4 and 3DES to `decrepit`; older releases have them in primitives.
    for module in (
        "cryptography.hazmat.decrepit.ciphers.algorithms",
        "cryptography.hazmat.primitives.ciphers.algorithms",
    ):
        try:
            found = getattr(importlib.import_module(module), name, None)
        except ImportError:
            continue
        if found is not None:
            algorithm: type[CipherAlgorithm] = found
            return algorithm
    raise ImportError(f"cryptography provides no {name}")


@dataclass(frozen=True, slots=True, kw_only=True)
class LegacySuite:
    code: int
    name: str  # IANA name
    algorithm: Callable[[bytes], CipherAlgorithm]
    key_len: int
    block: int  # 0: stream cipher
    mac: str  # hashlib name

    @property
    def mac_len(self) -> int:
        return hashlib.new(self.mac).digest_size


SUITES: dict[int, LegacySuite] = {
    s.code: s
    for s in (
        LegacySuite(code=0x0004, name="TLS_RSA_WITH_RC4_128_MD5",
                    algorithm=_legacy_algorithm("ARC4"), key_len=16, block=0, mac="md5"),
        LegacySuite(code=0x0005, name="TLS_RSA_WITH_RC4_128_SHA",
                    algorithm=_legacy_algorithm("ARC4"), key_len=16, block=0, mac="sha1"),
        LegacySuite(code=0x000A, name="TLS_RSA_WITH_3DES_EDE_CBC_SHA",
                    algorithm=_legacy_algorithm("TripleDES"), key_len=24, block=8, mac="sha1"),
        LegacySuite(code=0x002F, name="TLS_RSA_WITH_AES_128_CBC_SHA",
                    algorithm=AES, key_len=16, block=16, mac="sha1"),
    )
}  # fmt: skip


# --- key schedule ---------------------------------------------------------------------------------

# RFC 6101 §5.2.3.1: pad_1 / pad_2 are 48 bytes for MD5 and 40 for SHA-1.
_SSL3_PAD_LEN = {"md5": 48, "sha1": 40}
_SSL3_SENDER = {True: b"CLNT", False: b"SRVR"}  # RFC 6101 §5.6.9
_TLS_FINISHED = {True: b"client finished", False: b"server finished"}  # RFC 2246 §7.4.9


def _p_hash(name: str, secret: bytes, seed: bytes, n: int) -> bytes:
    """P_hash of RFC 2246 §5: HMAC(secret, A(i) + seed) with A(0) = seed."""
    out = b""
    a = seed
    while len(out) < n:
        a = hmac.digest(secret, a, name)
        out += hmac.digest(secret, a + seed, name)
    return out[:n]


def tls10_prf(secret: bytes, label: bytes, seed: bytes, n: int) -> bytes:
    """PRF = P_MD5(S1, label + seed) XOR P_SHA-1(S2, label + seed) (RFC 2246 §5)."""
    half = (len(secret) + 1) // 2  # S1 and S2 share a byte when the length is odd
    md5 = _p_hash("md5", secret[:half], label + seed, n)
    sha = _p_hash("sha1", secret[len(secret) - half :], label + seed, n)
    return bytes(x ^ y for x, y in zip(md5, sha, strict=True))


def ssl3_expand(secret: bytes, seed: bytes, n: int) -> bytes:
    """MD5(secret + SHA1("A" + secret + seed)) + MD5(... "BB" ...) + ... (RFC 6101 §6.1)."""
    out = b""
    i = 0
    while len(out) < n:
        salt = bytes([ord("A") + i]) * (i + 1)
        inner = hashlib.sha1(salt + secret + seed).digest()
        out += hashlib.md5(secret + inner).digest()
        i += 1
    return out[:n]


def master_secret(
    version: int, premaster: bytes, client_random: bytes, server_random: bytes
) -> bytes:
    if version == SSL3:
        return ssl3_expand(premaster, client_random + server_random, 48)
    return tls10_prf(premaster, b"master secret", client_random + server_random, 48)


def key_block(
    version: int, master: bytes, client_random: bytes, server_random: bytes, n: int
) -> bytes:
    """Note the server random comes first here (RFC 6101 §6.2.2, RFC 2246 §6.3)."""
    if version == SSL3:
        return ssl3_expand(master, server_random + client_random, n)
    return tls10_prf(master, b"key expansion", server_random + client_random, n)


def finished_verify_data(version: int, master: bytes, transcript: bytes, *, client: bool) -> bytes:
    """The Finished body: 36 bytes in SSL 3.0 (RFC 6101 §5.6.9), 12 in TLS (RFC 2246 §7.4.9)."""
    if version == SSL3:
        out = b""
        for name in ("md5", "sha1"):
            pad = _SSL3_PAD_LEN[name]
            inner = hashlib.new(name, transcript + _SSL3_SENDER[client] + master + b"\x36" * pad)
            out += hashlib.new(name, master + b"\x5c" * pad + inner.digest()).digest()
        return out
    digest = hashlib.md5(transcript).digest() + hashlib.sha1(transcript).digest()
    return tls10_prf(master, _TLS_FINISHED[client], digest, 12)


def record_mac(
    version: int, mac: str, secret: bytes, seq: int, ctype: int, record_version: int, data: bytes
) -> bytes:
    """SSL 3.0's pad1/pad2 MAC (RFC 6101 §5.2.3.1) or TLS's HMAC (RFC 2246 §6.2.3.1)."""
    head = seq.to_bytes(8, "big") + u8(ctype)
    if version == SSL3:
        pad = _SSL3_PAD_LEN[mac]
        inner = hashlib.new(mac, secret + b"\x36" * pad + head + u16(len(data)) + data).digest()
        return hashlib.new(mac, secret + b"\x5c" * pad + inner).digest()
    return hmac.digest(secret, head + u16(record_version) + u16(len(data)) + data, mac)


# --- record protection ----------------------------------------------------------------------------


class BadRecordMac(Exception):
    """A record failed to decrypt, unpad or authenticate: all three look alike on the wire."""


class RecordCipher:
    """One direction of the record layer after ChangeCipherSpec: MAC, pad, encrypt."""

    def __init__(
        self, *, version: int, suite: LegacySuite, mac_secret: bytes, key: bytes, iv: bytes
    ) -> None:
        self.version = version
        self.suite = suite
        self.mac_secret = mac_secret
        self.key = key
        self.iv = iv  # CBC chaining state for SSL 3.0 / TLS 1.0; unused in TLS 1.1
        self.seq = 0  # RFC 2246 §6.1: starts at 0 for each new cipher state
        # RC4 is one keystream for the whole connection, so one context per direction.
        self._stream = Cipher(suite.algorithm(key), None) if suite.block == 0 else None
        self._enc = self._stream.encryptor() if self._stream else None
        self._dec = self._stream.decryptor() if self._stream else None

    def _mac(self, ctype: int, record_version: int, data: bytes) -> bytes:
        return record_mac(
            self.version, self.suite.mac, self.mac_secret, self.seq, ctype, record_version, data
        )

    def seal(self, ctype: int, data: bytes) -> bytes:
        """The protected fragment for one record of ``data`` (at most 2^14 bytes)."""
        body = data + self._mac(ctype, self.version, data)
        self.seq += 1
        if self._enc is not None:
            return self._enc.update(body)
        block = self.suite.block
        pad = block - 1 - len(body) % block
        body += bytes([pad]) * (pad + 1)  # RFC 2246 §6.2.3.2: every padding byte is the length
        if self.version >= TLS11:
            iv = os.urandom(block)  # RFC 4346 §6.2.3.2: a fresh explicit IV per record
            return iv + self._cbc(iv, encrypt=True, data=body)
        out = self._cbc(self.iv, encrypt=True, data=body)
        self.iv = out[-block:]  # RFC 2246 §6.2.3.2: the last ciphertext block chains on
        return out

    def open(self, ctype: int, record_version: int, fragment: bytes) -> bytes:
        """The plaintext of one protected fragment, or :class:`BadRecordMac`."""
        mac_len = self.suite.mac_len
        if self._dec is not None:
            body = self._dec.update(fragment)
            if len(body) < mac_len:
                raise BadRecordMac("record shorter than its MAC")
            data, tag = body[:-mac_len], body[-mac_len:]
        else:
            data, tag = self._open_cbc(fragment)
        expected = self._mac(ctype, record_version, data)
        self.seq += 1
        if not hmac.compare_digest(tag, expected):
            raise BadRecordMac("MAC mismatch")
        return data

    def _open_cbc(self, fragment: bytes) -> tuple[bytes, bytes]:
        block, mac_len = self.suite.block, self.suite.mac_len
        if self.version >= TLS11:
            iv, fragment = fragment[:block], fragment[block:]
        else:
            iv = self.iv
        if not fragment or len(fragment) % block or len(fragment) < mac_len + 1:
            raise BadRecordMac(f"ciphertext of {len(fragment)} bytes")
        if self.version < TLS11:
            self.iv = fragment[-block:]
        body = self._cbc(iv, encrypt=False, data=fragment)
        pad = body[-1]
        ok = pad + 1 + mac_len <= len(body)
        if self.version == SSL3:
            ok = ok and pad < block  # RFC 6101 §5.2.3.2: padding shorter than a block
        else:
            ok = ok and body[-pad - 1 :] == bytes([pad]) * (pad + 1)
        if not ok:
            # RFC 5246 §6.2.3.2: carry on as if unpadded so bad padding costs a MAC as well.
            pad = -1
        data_end = len(body) - pad - 1 - mac_len
        data, tag = body[:data_end], body[data_end : data_end + mac_len]
        if not ok:
            self._mac(0, 0, data)
            raise BadRecordMac("bad CBC padding")
        return data, tag

    def _cbc(self, iv: bytes, *, encrypt: bool, data: bytes) -> bytes:
        cipher = Cipher(self.suite.algorithm(self.key), modes.CBC(iv))
        ctx = cipher.encryptor() if encrypt else cipher.decryptor()
        return ctx.update(data) + ctx.finalize()


def derive_ciphers(
    version: int, suite: LegacySuite, master: bytes, client_random: bytes, server_random: bytes
) -> tuple[RecordCipher, RecordCipher]:
    """(client write, server write) cut from the key block (RFC 2246 §6.3)."""
    iv_len = suite.block if version < TLS11 else 0  # RFC 4346 §6.3: TLS 1.1 derives no IV
    sizes = (suite.mac_len, suite.mac_len, suite.key_len, suite.key_len, iv_len, iv_len)
    block = key_block(version, master, client_random, server_random, sum(sizes))
    parts: list[bytes] = []
    for n in sizes:
        parts.append(block[:n])
        block = block[n:]
    cmac, smac, ckey, skey, civ, siv = parts
    return (
        RecordCipher(version=version, suite=suite, mac_secret=cmac, key=ckey, iv=civ),
        RecordCipher(version=version, suite=suite, mac_secret=smac, key=skey, iv=siv),
    )


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
