"""The full-handshake engine: a pyOpenSSL client ``Connection(ctx, None)`` on memory BIOs.

Theory of operation
-------------------
OpenSSL never touches the socket. :class:`ClientEngine` is sans-IO in the h11 sense: the caller
(``probe.net``) moves bytes between the socket and the engine:

* ``step()`` advances the handshake; it returns ``DONE``, ``WANT_READ`` or ``FAILED``;
* ``take_outgoing()`` drains what OpenSSL wants to send (always flushed before reading, as
  trio's SSLStream does, or a peer waiting for our flight and we waiting for its reply deadlock);
* ``receive(data)`` / ``receive_eof()`` hand over what the socket produced.

Every byte in both directions is also fed to a :class:`probe.wire.transcript.Transcript`, so the
classifier reads ServerHello, CertificateRequest and plaintext alerts from the wire itself.
What the wire cannot show (alerts under encryption, the alert OpenSSL itself sent) comes from
the info callback, which OpenSSL calls for every alert read or written.

Verification runs inside OpenSSL's verify callback so that, as with a real client, a bad server
certificate aborts the handshake with the alert OpenSSL would send. The callback records every
error and depth; with ``verify=False`` it records and accepts.
"""

from __future__ import annotations

import contextlib
import enum
import ipaddress
import weakref
from dataclasses import dataclass, field

from cryptography import x509
from OpenSSL import SSL, crypto

from .wire.transcript import Transcript

# OpenSSL's SSL_CB_* bits (ssl.h): stable ABI values; pyOpenSSL exposes only some of them.
_CB_READ = 0x04
_CB_WRITE = 0x08
_CB_LOOP = 0x01
_CB_ALERT = 0x4000

READ_CHUNK = 16 * 1024

# DER -> cryptography certificate. The DER is the whole certificate, so a hit is the same
# certificate by definition (never stale); handing back one object per certificate lets the
# caches keyed on certificates (probe.verify) answer by identity instead of comparing.
_CERTS: dict[bytes, x509.Certificate] = {}
_CERTS_MAX = 256


def to_cryptography(cert: crypto.X509) -> x509.Certificate:
    der = crypto.dump_certificate(crypto.FILETYPE_ASN1, cert)
    found = _CERTS.get(der)
    if found is None:
        found = x509.load_der_x509_certificate(der)
        if len(_CERTS) >= _CERTS_MAX:
            _CERTS.clear()
        _CERTS[der] = found
    return found


class Step(enum.Enum):
    DONE = "done"
    WANT_READ = "want_read"
    FAILED = "failed"


@dataclass(frozen=True, slots=True, kw_only=True)
class SeenAlert:
    origin: str  # "peer" (read) or "local" (written)
    level: int
    code: int
    after_handshake: bool


@dataclass(frozen=True, slots=True, kw_only=True)
class VerifyFailure:
    depth: int
    code: int
    subject: str
    cert: x509.Certificate


@dataclass(slots=True)
class EngineState:
    alerts: list[SeenAlert] = field(default_factory=list)
    # OpenSSL's handshake states in order ("SSLv3/TLS read server certificate request", ...):
    # in TLS 1.3 the CertificateRequest is encrypted, and this is how we learn it came.
    states: list[str] = field(default_factory=list)
    verify_failures: list[VerifyFailure] = field(default_factory=list)
    # What the verify callback saw, by depth, as OpenSSL objects: converting to cryptography
    # costs a DER round trip, so it happens only when a result needs it.
    verify_chain: dict[int, crypto.X509] = field(default_factory=dict)
    hostname_error: str | None = None
    handshake_done: bool = False
    peer_eof: bool = False
    error: str | None = None  # OpenSSL's own words for a failure
    error_reasons: tuple[str, ...] = ()
    # TLS 1.3: the CertificateRequest body as OpenSSL decrypted it (context, extensions), from
    # the message callback; the wire shows only ciphertext. None when none came.
    tls13_certificate_request: bytes | None = None


class ClientEngine:
    """One client TLS connection on memory BIOs (see the module docstring)."""

    def __init__(
        self,
        ctx: SSL.Context,
        *,
        server_name: str | None,
        transcript: Transcript,
        verify: bool,
        hostname_check: object | None = None,
        verify_host: str | None = None,
    ) -> None:
        self.state = EngineState()
        self.transcript = transcript
        self._records = {"client": 0, "server": 0}  # records seen by OpenSSL, per direction
        if transcript.keep_decrypted:
            _TRACING[0] = True
        self._peer_chain: list[x509.Certificate] | None = None
        self._verify = verify
        # Called with the leaf certificate; returns an error text or None. Kept abstract so the
        # engine does not decide host-name rules (probe.verify does, with service-identity).
        self._hostname_check = hostname_check
        self.conn = SSL.Connection(ctx, None)
        self.conn.set_connect_state()
        # OpenSSL's own host check when the name is a DNS name: a mismatch then fails inside
        # the chain check with X509_V_ERR_HOSTNAME_MISMATCH and OpenSSL sends bad_certificate
        # (42), as a real client does; our callback vetoing the leaf would send internal_error.
        self._openssl_checks_host = bool(verify_host) and _set_openssl_host(
            self.conn, str(verify_host)
        )
        if server_name:
            self.conn.set_tlsext_host_name(server_name.encode("idna"))
        if ctx in _PREPARED:
            # The context's callbacks find this engine here (a weak reference: no cycle).
            self.conn.set_app_data(weakref.ref(self))
        else:
            self.conn.set_info_callback(self._on_info)
            self.conn.set_verify(SSL.VERIFY_PEER, self._on_verify)

    # -- callbacks (run inside OpenSSL calls) ----------------------------------------------------

    def _on_info(self, conn: SSL.Connection, where: int, ret: int) -> None:
        # States matter only in TLS 1.3, where the CertificateRequest and our Certificate are
        # encrypted; in TLS <= 1.2 the wire shows both. The transcript has read the ServerHello
        # before OpenSSL processes it, so it already knows the version here.
        if where & _CB_LOOP and self.transcript.tls13:
            state = conn.get_state_string().decode("ascii", "replace")
            states = self.state.states
            if not states or states[-1] != state:
                states.append(state)
        if where & _CB_ALERT:
            origin = "peer" if where & _CB_READ else "local"
            self.state.alerts.append(
                SeenAlert(
                    origin=origin,
                    level=(ret >> 8) & 0xFF,
                    code=ret & 0xFF,
                    after_handshake=self.state.handshake_done,
                )
            )

    def _on_verify(
        self, conn: SSL.Connection, cert: crypto.X509, errnum: int, depth: int, ok: int
    ) -> bool:
        self.state.verify_chain[depth] = cert
        if not ok:
            crypto_cert = to_cryptography(cert)
            if (
                depth == 0
                and errnum not in _NAME_MISMATCH
                and self._hostname_check is not None
                and self.state.hostname_error is None
            ):
                # The chain failed first, so nobody would check the name (OpenSSL stops at
                # the first error we refuse): check it here, for the report only, so the
                # result never says "matches" about a name it did not look at.
                problem = self._hostname_check(crypto_cert)  # type: ignore[operator]
                if problem:
                    self.state.hostname_error = str(problem)
            self.state.verify_failures.append(
                VerifyFailure(
                    depth=depth,
                    code=errnum,
                    subject=crypto_cert.subject.rfc4514_string(),
                    cert=crypto_cert,
                )
            )
            if errnum in _NAME_MISMATCH and self._hostname_check is not None:
                # OpenSSL said no; service-identity says why, in words for the diagnosis.
                why = self._hostname_check(crypto_cert)  # type: ignore[operator]
                self.state.hostname_error = str(why or "the certificate does not name the host")
        elif depth == 0 and self._hostname_check is not None and not self._openssl_checks_host:
            problem = self._hostname_check(to_cryptography(cert))  # type: ignore[operator]
            if problem:
                self.state.hostname_error = str(problem)
                ok = 0
        return True if not self._verify else bool(ok)

    def note_message(self, sent: bool, content_type: int, data: bytes) -> None:
        """For --trace: count records per direction (as the transcript does) and keep each
        handshake message or alert with the number of the record it came in or went out in."""
        direction = "client" if sent else "server"
        if content_type == _RECORD_HEADER:
            self._records[direction] += 1
            return
        t = self.transcript
        if len(t.decrypted) < _MAX_DECRYPTED:
            t.decrypted.append((direction, self._records[direction], content_type, data[:65536]))

    # -- sans-IO surface -----------------------------------------------------------------------

    def step(self) -> Step:
        try:
            self.conn.do_handshake()
        except SSL.WantReadError:
            return Step.WANT_READ
        except SSL.Error as exc:
            self._record_error(exc)
            return Step.FAILED
        self.state.handshake_done = True
        return Step.DONE

    def take_outgoing(self) -> bytes:
        chunks = []
        while True:
            try:
                chunk = self.conn.bio_read(READ_CHUNK)
            except SSL.WantReadError:
                break
            if not chunk:
                break
            chunks.append(chunk)
            if len(chunk) < READ_CHUNK:
                break  # a memory BIO hands out all it holds, up to the size asked: now empty
        data = b"".join(chunks)
        if data:
            self.transcript.feed("client", data)
        return data

    def receive(self, data: bytes) -> None:
        self.transcript.feed("server", data)
        self.conn.bio_write(data)

    def receive_eof(self) -> None:
        self.state.peer_eof = True
        self.transcript.feed_eof("server")
        self.conn.bio_shutdown()

    def read_application(self, limit: int = READ_CHUNK) -> tuple[str, bytes]:
        """After the handshake: ("data", bytes) | ("want_read", b"") | ("closed", b"") |
        ("failed", b"") -- "closed" means close_notify; "failed" sets ``state.error``."""
        try:
            return "data", self.conn.recv(limit)
        except SSL.WantReadError:
            return "want_read", b""
        except SSL.ZeroReturnError:
            return "closed", b""
        except SSL.Error as exc:
            self._record_error(exc)
            return "failed", b""

    def close_notify(self) -> bytes:
        # Best effort: the peer may be gone; nothing is left to classify on our way out.
        with contextlib.suppress(SSL.Error):
            self.conn.shutdown()
        return self.take_outgoing()

    def _record_error(self, exc: SSL.Error) -> None:
        if isinstance(exc, SSL.SysCallError):
            # pyOpenSSL reports an EOF inside the handshake as SysCallError(-1, "Unexpected EOF").
            self.state.error = "unexpected EOF from the peer"
            self.state.error_reasons = ("unexpected eof",)
            return
        reasons: list[str] = []
        for item in exc.args[0] if exc.args and isinstance(exc.args[0], list) else []:
            if isinstance(item, tuple) and len(item) == 3:
                reasons.append(str(item[2]))
        self.state.error_reasons = tuple(reasons)
        self.state.error = "; ".join(reasons) or str(exc)

    def saw_state(self, fragment: str) -> bool:
        return any(fragment in s for s in self.state.states)

    # -- facts after the handshake -------------------------------------------------------------

    def peer_chain(self) -> list[x509.Certificate]:
        """The certificates the server sent, leaf first (empty if none arrived)."""
        if self._peer_chain is None:
            self._peer_chain = [to_cryptography(c) for c in self.conn.get_peer_cert_chain() or ()]
        return self._peer_chain

    def verified_chain(self) -> list[x509.Certificate]:
        """The path OpenSSL built, leaf first. The verify callback saw each of its certificates
        by depth, so a clean verification needs no second walk through get_verified_chain."""
        seen = self.state.verify_chain
        if seen and not self.state.verify_failures and sorted(seen) == list(range(len(seen))):
            return [to_cryptography(seen[d]) for d in range(len(seen))]
        return [to_cryptography(c) for c in self.conn.get_verified_chain() or ()]


# X509_V_ERR_HOSTNAME_MISMATCH, X509_V_ERR_IP_ADDRESS_MISMATCH (x509_vfy.h)
_NAME_MISMATCH = (62, 64)
# X509_CHECK_FLAG_* (x509v3.h). NO_PARTIAL_WILDCARDS: RFC 6125 §6.4.3, "f*.example.com" does
# not match. NEVER_CHECK_SUBJECT: no fallback to the subject CN when there is no DNS SAN
# (RFC 9525 §6.3; service-identity, browsers and Go refuse it too), so OpenSSL's verdict and
# the explanation agree.
_HOST_FLAGS = 0x4 | 0x20


def _set_openssl_host(conn: SSL.Connection, host: str) -> bool:
    """Ask OpenSSL to check ``host`` (a DNS name, or an IP address against the iPAddress
    subjectAltNames) on this connection; False when the bindings lack the call (pyOpenSSL has
    no public API for it), so service-identity checks instead."""
    try:
        from OpenSSL._util import lib
    except ImportError:
        return False
    get0_param = getattr(lib, "SSL_get0_param", None)
    if get0_param is None:
        return False
    try:
        packed = ipaddress.ip_address(host.strip("[]")).packed
    except ValueError:
        packed = None
    if packed is not None:
        # A mismatch is then X509_V_ERR_IP_ADDRESS_MISMATCH and alert 42, as from a real
        # client (s_client -verify_ip), not the internal_error our callback's veto would send.
        set1_ip = getattr(lib, "X509_VERIFY_PARAM_set1_ip", None)
        return set1_ip is not None and bool(set1_ip(get0_param(conn._ssl), packed, len(packed)))
    set1_host = getattr(lib, "X509_VERIFY_PARAM_set1_host", None)
    set_flags = getattr(lib, "X509_VERIFY_PARAM_set_hostflags", None)
    if set1_host is None or set_flags is None:
        return False
    try:
        name = host.encode("idna")
    except UnicodeError:
        return False  # not a DNS name OpenSSL could match; service-identity will say why
    param = get0_param(conn._ssl)
    set_flags(param, _HOST_FLAGS)
    return bool(set1_host(param, name, len(name)))


# -- callbacks installed once per context -------------------------------------------------------

_PREPARED: weakref.WeakSet[SSL.Context] = weakref.WeakSet()


def prepare_context(ctx: SSL.Context) -> None:
    """Install the engine's info and verify callbacks on ``ctx`` before its first connection.

    Set per connection, each callback costs pyOpenSSL a new cffi callback per handshake; on a
    shared context (probe.tlsconfig keeps them) it is built once, and each connection's
    callbacks reach their :class:`ClientEngine` through the connection's app data. Engines on a
    context that was not prepared set their callbacks per connection, as before.
    """
    ctx.set_info_callback(_context_info)
    ctx.set_verify(SSL.VERIFY_PEER, _context_verify)
    _install_message_callback(ctx)
    _PREPARED.add(ctx)


# OpenSSL's message callback (SSL_CTX_set_msg_callback) sees every handshake message after
# decryption; pyOpenSSL has no API for it, so the raw binding is used as for the host check.
# Only a TLS 1.3 CertificateRequest is kept: its signature algorithms (and the exact CA list)
# are otherwise out of reach. The callback is one cffi object for the whole process.
_HANDSHAKE = 22  # ContentType.handshake (RFC 8446 §5.1)
_ALERT = 21
_RECORD_HEADER = 256  # SSL3_RT_HEADER: the callback's call for each record's 5-byte header
_WATCHED = frozenset({_HANDSHAKE, _ALERT, _RECORD_HEADER})
_CERTIFICATE_REQUEST = b"\x0d"  # HandshakeType.certificate_request (RFC 8446 §4), as cffi
# hands out a buffer's items: one-byte bytes
_MSG_CALLBACK: object | None = None
_MAX_DECRYPTED = 64  # messages kept per connection for --trace
# Set once an engine keeps decrypted messages: until then the callback looks up no engine for
# ordinary messages, so probes without --trace pay nothing for the feature.
_TRACING = [False]


def _install_message_callback(ctx: SSL.Context) -> None:
    global _MSG_CALLBACK
    try:
        from OpenSSL._util import ffi, lib
    except ImportError:
        return
    setter = getattr(lib, "SSL_CTX_set_msg_callback", None)
    if setter is None:
        return
    if _MSG_CALLBACK is None:

        def on_message(write_p: int, _version: int, content_type: int, buf: object,
                       length: int, ssl: object, _arg: object) -> None:  # fmt: skip
            # Runs inside OpenSSL: nothing may raise, and the common case returns at once.
            if content_type not in _WATCHED or length < 1:
                return
            try:
                data = ffi.buffer(buf, length)
                request = (
                    content_type == _HANDSHAKE
                    and not write_p
                    and length >= 4
                    and data[0] == _CERTIFICATE_REQUEST
                )
                if not request and not _TRACING[0]:
                    return  # no engine in this process keeps messages: skip the lookup
                conn = SSL.Connection._reverse_mapping.get(ssl)
                engine = _engine_of(conn) if conn is not None else None
                if engine is None:
                    return
                t = engine.transcript
                if request and t.tls13:
                    engine.state.tls13_certificate_request = bytes(data[4:])
                if t.keep_decrypted:
                    engine.note_message(bool(write_p), content_type, bytes(data))
            except Exception:
                return

        _MSG_CALLBACK = ffi.callback(
            "void(int, int, int, void *, size_t, SSL *, void *)", on_message
        )
    setter(ctx._context, _MSG_CALLBACK)


def _engine_of(conn: SSL.Connection) -> ClientEngine | None:
    ref = conn.get_app_data()
    # Only ClientEngine sets app data on a prepared context's connections (a weak reference).
    return ref() if type(ref) is weakref.ref else None


def _context_info(conn: SSL.Connection, where: int, ret: int) -> None:
    engine = _engine_of(conn)
    if engine is not None:
        engine._on_info(conn, where, ret)


def _context_verify(
    conn: SSL.Connection, cert: crypto.X509, errnum: int, depth: int, ok: int
) -> bool:
    engine = _engine_of(conn)
    if engine is None:
        return bool(ok)  # not an engine's connection: OpenSSL's own verdict
    try:
        return engine._on_verify(conn, cert, errnum, depth, ok)
    except Exception:
        # What a per-connection callback does: the exception fails this certificate. (A
        # context's callback errors would be kept on the shared context and re-raised in
        # whichever connection fails next, so none may escape here.)
        return False
