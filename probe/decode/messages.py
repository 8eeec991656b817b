"""Handshake message describers: fields read as far as the bytes go.

Each describer walks a message body with :class:`Walk`, whose reads raise :class:`Short` when
the bytes run out; :func:`describe` turns that into "truncated, N bytes missing, it stops in
<field>" for a cut message and into "malformed" for a whole one, and runs the strict codec
(``probe.wire``) on whole messages as a second opinion. ``probe --trace`` uses
:func:`describe_handshake` so that both commands show a message the same way.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass, field

from ..wire import extensions as ext
from ..wire import registry
from ..wire.errors import DecodeError
from ..wire.extensions import ExtensionType
from ..wire.handshake import HandshakeType
from ..wire.messages import HRR_RANDOM
from .certs import certificate_lines, certificate_ref, name_text
from .model import (
    CertRef,
    ExtensionRef,
    SuiteRef,
    alert_ref,
    alert_title,
    handshake_title,
    random_time,
    suite_ref,
    suite_text,
    version_name,
    version_text,
)

_CERT_TYPES = {
    1: "rsa_sign",
    2: "dss_sign",
    3: "rsa_fixed_dh",
    4: "dss_fixed_dh",
    5: "rsa_ephemeral_dh",
    6: "dss_ephemeral_dh",
    20: "fortezza_dms",
    64: "ecdsa_sign",
    65: "rsa_fixed_ecdh",
    66: "ecdsa_fixed_ecdh",
}
_COMPRESSION = {0: "null", 1: "DEFLATE", 64: "LZS"}


# --- tolerant reading -------------------------------------------------------------------------


class Short(Exception):
    def __init__(self, what: str, need: int, have: int) -> None:
        super().__init__(what)
        self.what = what
        self.need = need
        self.have = have


class Walk:
    __slots__ = ("buf", "pos")

    def __init__(self, buf: bytes) -> None:
        self.buf = buf
        self.pos = 0

    @property
    def remaining(self) -> int:
        return len(self.buf) - self.pos

    def take(self, n: int, what: str) -> bytes:
        if self.remaining < n:
            raise Short(what, n, self.remaining)
        out = self.buf[self.pos : self.pos + n]
        self.pos += n
        return out

    def uint(self, width: int, what: str) -> int:
        return int.from_bytes(self.take(width, what), "big")

    def vector(self, width: int, what: str) -> bytes:
        return self.take(self.uint(width, f"{what} length"), what)

    def partial(self, width: int, what: str) -> tuple[int, bytes]:
        """A vector's declared length and the bytes of it that are present."""
        n = self.uint(width, f"{what} length")
        got = self.buf[self.pos : self.pos + n]
        self.pos += len(got)
        return n, got


@dataclass(slots=True)
class Ctx:
    """What earlier messages in the dump tell about later ones."""

    version: int | None = None  # negotiated (ServerHello)
    suite: int | None = None
    tls13: bool = False


@dataclass(slots=True)
class Msg:
    """A message description being built (frozen into an :class:`Item` at the end)."""

    name: str
    declared: int = 0  # the body length the header declares
    version: str | None = None
    selected_version: str | None = None
    supported_versions: tuple[str, ...] = ()
    random: str | None = None
    session_id: str | None = None
    cipher_suites: tuple[SuiteRef, ...] = ()
    cipher_suite: SuiteRef | None = None
    compression: tuple[int, ...] = ()
    extensions: tuple[ExtensionRef, ...] | None = None
    certificates: tuple[CertRef, ...] = ()
    certificate_types: tuple[str, ...] = ()
    signature_algorithms: tuple[str, ...] = ()
    ca_names: tuple[str, ...] = ()
    ca_names_bytes: int | None = None
    details: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


# --- extensions -------------------------------------------------------------------------------


def _ext_detail(ext_type: int, data: bytes, server: bool) -> str | None:
    """A one-line reading of a known extension (None for an empty or unknown one)."""
    try:
        if ext_type == ExtensionType.server_name:
            if server and not data:
                return "acknowledged"
            return ext.decode_server_name(data)
        if ext_type == ExtensionType.supported_versions:
            if server:
                return version_name(ext.decode_supported_versions_server(data))
            return ", ".join(version_name(v) for v in ext.decode_supported_versions_client(data))
        if ext_type == ExtensionType.supported_groups:
            return ", ".join(
                registry.group_name(g) or f"0x{g:04X}"
                for g in ext.decode_u16_list(data, "supported_groups")
            )
        if ext_type in (
            ExtensionType.signature_algorithms,
            ExtensionType.signature_algorithms_cert,
        ):
            return ", ".join(
                registry.sigscheme_name(s) or f"0x{s:04X}"
                for s in ext.decode_u16_list(data, "signature_algorithms")
            )
        if ext_type == ExtensionType.ec_point_formats:
            return ", ".join(str(f) for f in ext.decode_ec_point_formats(data))
        if ext_type == ExtensionType.key_share:
            if server and len(data) == 2:
                g = ext.decode_key_share_hrr(data)
                return f"retry with {registry.group_name(g) or hex(g)}"
            if server:
                e = ext.decode_key_share_server(data)
                return (
                    f"{registry.group_name(e.group) or hex(e.group)} ({len(e.key_exchange)} bytes)"
                )
            return ", ".join(
                f"{registry.group_name(e.group) or hex(e.group)} ({len(e.key_exchange)} bytes)"
                for e in ext.decode_key_share_client(data)
            )
        if ext_type == ExtensionType.renegotiation_info:
            got = ext.decode_renegotiation_info(data)
            return (
                "initial handshake (empty renegotiated_connection)"
                if not got
                else f"renegotiation, {len(got)} bytes of verify_data"
            )
        if ext_type == ExtensionType.application_layer_protocol_negotiation:
            return ", ".join(p.decode("ascii", "replace") for p in ext.decode_alpn(data))
        if ext_type == ExtensionType.certificate_authorities:
            names, size = ext.decode_certificate_authorities(data)
            return f"{len(names)} CA name(s), {size} bytes"
    except DecodeError as exc:
        return f"undecodable: {exc}"
    if data and ext_type == ExtensionType.padding:
        return f"{len(data)} bytes"
    return None


def _extensions(w: Walk, m: Msg, server: bool) -> None:
    if w.remaining == 0:
        m.extensions = None
        m.details.append("extensions: none (no extension block, SSL 3.0 style)")
        return
    declared, raw = w.partial(2, "extensions")
    refs: list[ExtensionRef] = []
    r = Walk(raw)
    while r.remaining:
        if r.remaining < 4:
            m.problems.append(f"extensions: {r.remaining} byte(s) left, not a whole header")
            break
        t = r.uint(2, "type")
        n = r.uint(2, "length")
        data = r.buf[r.pos : r.pos + n]
        r.pos += len(data)
        name = registry.extension_name(t) or registry.describe_unknown("extension", t)
        detail = _ext_detail(t, data, server) if len(data) == n else None
        refs.append(ExtensionRef(type=t, name=name, length=n, present=len(data), detail=detail))
    m.extensions = tuple(refs)
    m.details.append(
        f"extensions ({len(refs)}, {declared} bytes):" if refs else "extensions: empty block"
    )
    for e in refs:
        cut = f" [{e.present} of {e.length} bytes present]" if e.present < e.length else ""
        body = f": {e.detail}" if e.detail else (f" ({e.length} bytes)" if e.length else "")
        m.details.append(f"  {e.name} (0x{e.type:04X}){body}{cut}")
    if len(raw) < declared:
        raise Short("extensions", declared, len(raw))
    versions = next((e for e in refs if e.type == ExtensionType.supported_versions), None)
    if versions is not None and versions.detail and not versions.detail.startswith("undecodable"):
        m.supported_versions = tuple(versions.detail.split(", "))


# --- message describers -----------------------------------------------------------------------


def _hello_head(w: Walk, m: Msg) -> int:
    version = w.uint(2, "version")
    m.version = version_name(version)
    m.details.append(f"version {version_text(version)}")
    random = w.take(32, "random")
    m.random = random.hex()
    line = f"random {random.hex()}"
    if random == HRR_RANDOM:
        line += " (HelloRetryRequest)"
    elif version <= 0x0302 and (when := random_time(random)):
        line += f" (gmt_unix_time {when})"
    m.details.append(line)
    sid = w.vector(1, "session_id")
    m.session_id = sid.hex()
    m.details.append(f"session_id ({len(sid)} bytes) {sid.hex()}" if sid else "session_id (empty)")
    if len(sid) > 32:
        m.problems.append(f"session_id of {len(sid)} bytes (at most 32)")
    return version


def _client_hello(w: Walk, m: Msg, ctx: Ctx) -> None:
    _hello_head(w, m)
    declared, raw = w.partial(2, "cipher_suites")
    suites = tuple(
        suite_ref(int.from_bytes(raw[i : i + 2], "big")) for i in range(0, len(raw) - 1, 2)
    )
    m.cipher_suites = suites
    head = f"cipher_suites ({declared // 2} offered"
    head += f", {len(suites)} present):" if len(raw) < declared else "):"
    m.details.append(head)
    m.details.extend(f"  {suite_text(s)}" for s in suites)
    if declared % 2:
        m.problems.append(f"cipher_suites length {declared} is odd")
    if len(raw) < declared:
        raise Short("cipher_suites", declared, len(raw))
    comp = w.vector(1, "compression_methods")
    m.compression = tuple(comp)
    m.details.append("compression " + ", ".join(f"{_COMPRESSION.get(c, '?')}({c})" for c in comp))
    _extensions(w, m, server=False)
    offered = m.supported_versions
    if offered:
        m.details.insert(1, "offers " + ", ".join(offered))


def _server_hello(w: Walk, m: Msg, ctx: Ctx) -> None:
    version = _hello_head(w, m)
    if m.random == HRR_RANDOM.hex():
        m.name = "HelloRetryRequest"
    code = w.uint(2, "cipher_suite")
    ref = suite_ref(code)
    m.cipher_suite = ref
    m.details.append(f"cipher_suite {suite_text(ref)}")
    comp = w.uint(1, "compression_method")
    m.compression = (comp,)
    m.details.append(f"compression {_COMPRESSION.get(comp, '?')}({comp})")
    selected = version
    try:
        _extensions(w, m, server=True)
    finally:
        sv = m.supported_versions
        if isinstance(sv, tuple) and sv:
            found = registry.find_version(str(sv[0]))
            selected = found if found is not None else version
        m.selected_version = version_name(selected)
        if selected != version:
            m.details.insert(0, f"selected version {version_text(selected)} (supported_versions)")
        if m.name == "ServerHello":
            ctx.version = selected
            ctx.suite = code
            ctx.tls13 = selected >= 0x0304


def _certificate(w: Walk, m: Msg, ctx: Ctx) -> None:
    tls13 = ctx.tls13
    total = len(w.buf)
    # Without a ServerHello the shape decides: TLS <= 1.2 starts with the u24 list length,
    # TLS 1.3 with a request context.
    if ctx.version is None and total >= 4 and int.from_bytes(w.buf[0:3], "big") != total - 3:
        n = w.buf[0]
        if total >= 4 + n and int.from_bytes(w.buf[1 + n : 4 + n], "big") == total - 4 - n:
            tls13 = True
    if tls13:
        context = w.vector(1, "certificate_request_context")
        m.details.append(f"certificate_request_context ({len(context)} bytes)")
    declared, raw = w.partial(3, "certificate_list")
    certs: list[CertRef] = []
    r = Walk(raw)
    while r.remaining:
        if r.remaining < 3:
            m.problems.append(f"certificate_list: {r.remaining} byte(s) left, not a length")
            break
        n = r.uint(3, "certificate length")
        der = r.buf[r.pos : r.pos + n]
        r.pos += len(der)
        certs.append(certificate_ref(der, n, len(certs)))
        if tls13 and r.remaining >= 2:  # per-certificate extensions (RFC 8446 §4.4.2)
            r.pos = min(len(r.buf), r.pos + 2 + int.from_bytes(r.buf[r.pos : r.pos + 2], "big"))
    m.certificates = tuple(certs)
    more = " (list continues beyond the bytes present)" if len(raw) < declared else ""
    m.details.append(f"certificate_list {declared} bytes, {len(certs)} certificate(s){more}")
    for c in certs:
        m.details.extend(certificate_lines(c))
    if len(raw) < declared:
        raise Short("certificate_list", declared, len(raw))


def _certificate_request(w: Walk, m: Msg, ctx: Ctx) -> None:
    """The layout depends on the version (RFC 8446 §4.3.2, RFC 5246 §7.4.4, RFC 4346
    §7.4.4); without a ServerHello in the dump, the TLS 1.2 layout is tried, then 1.0's."""
    declared = m.declared
    truncated = isinstance(declared, int) and len(w.buf) < declared
    if ctx.tls13:
        layouts = [0x0304]
    elif ctx.version is not None:
        layouts = [ctx.version]
    else:
        layouts = [0x0303, 0x0301]
    attempts: list[tuple[Msg, Walk, Short | None]] = []
    for version in layouts:
        trial = Msg(name=m.name)
        tw = Walk(w.buf)
        short: Short | None = None
        try:
            _cert_request_layout(tw, trial, version)
        except Short as exc:
            short = exc
        attempts.append((trial, tw, short))
        fits = short is None and tw.remaining == 0
        cut_late = truncated and short is not None and short.what == "certificate_authorities"
        if fits or cut_late:
            break
    else:
        ok = [a for a in attempts if a[2] is None]
        attempts.append(ok[0] if ok else attempts[0])
    trial, tw, short = attempts[-1]
    _merge(m, trial)
    w.pos = tw.pos
    if short is not None:
        raise short


def _merge(m: Msg, other: Msg) -> None:
    for f in dataclasses.fields(Msg):
        if f.name not in ("name", "declared", "details", "problems"):
            setattr(m, f.name, getattr(other, f.name))
    m.details.extend(other.details)
    m.problems.extend(other.problems)


def _cert_request_layout(w: Walk, m: Msg, version: int) -> None:
    if version >= 0x0304:
        context = w.vector(1, "certificate_request_context")
        m.details.append(f"certificate_request_context ({len(context)} bytes)")
        _extensions(w, m, server=True)
        exts = m.extensions or ()
        for e in exts:
            if e.type == ExtensionType.signature_algorithms and e.detail:
                m.signature_algorithms = tuple(e.detail.split(", "))
        return
    types = w.vector(1, "certificate_types")
    m.certificate_types = tuple(_CERT_TYPES.get(t, str(t)) for t in types)
    m.details.append(
        "certificate_types " + ", ".join(f"{_CERT_TYPES.get(t, '?')}({t})" for t in types)
    )
    m.details.append(f"layout of {version_name(version)}")
    if version >= 0x0303:
        algs = w.vector(2, "supported_signature_algorithms")
        if len(algs) % 2:
            raise Short("supported_signature_algorithms", len(algs) + 1, len(algs))
        names = tuple(
            registry.sigscheme_name(int.from_bytes(algs[i : i + 2], "big"))
            or f"0x{int.from_bytes(algs[i : i + 2], 'big'):04X}"
            for i in range(0, len(algs), 2)
        )
        m.signature_algorithms = names
        m.details.append("signature_algorithms " + ", ".join(names))
    declared, raw = w.partial(2, "certificate_authorities")
    m.ca_names_bytes = declared
    names_out: list[str] = []
    r = Walk(raw)
    while r.remaining:
        if r.remaining < 2:
            break
        n = r.uint(2, "distinguished name length")
        dn = r.buf[r.pos : r.pos + n]
        r.pos += len(dn)
        names_out.append(name_text(dn, complete=len(dn) == n))
    m.ca_names = tuple(names_out)
    if declared == 0:
        m.details.append(
            "certificate_authorities: EMPTY (the client may send any certificate; TLS 1.0 "
            "forbids an empty list and Transfer CFT cannot answer it)"
        )
    else:
        cut = f", {len(raw)} present" if len(raw) < declared else ""
        m.details.append(
            f"certificate_authorities ({len(names_out)} name(s), {declared} bytes{cut}):"
        )
        m.details.extend(f"  {n}" for n in names_out)
        if declared > 32750:
            m.details.append(
                "  the CA list exceeds 32,750 bytes: Transfer CFT clients fail with "
                "TLS_ERR_FRAGMENT_CONSISTANCY (RRUSIZE)"
            )
    if len(raw) < declared:
        raise Short("certificate_authorities", declared, len(raw))


def _kx(ctx: Ctx) -> str | None:
    if ctx.suite is None:
        return None
    s = registry.suite(ctx.suite)
    return s.kx.upper() if s else None


def _server_key_exchange(w: Walk, m: Msg, ctx: Ctx) -> None:
    kx = _kx(ctx)
    if kx is None and w.remaining and w.buf[0] == 3:
        kx = "ECDHE"
    if kx is not None and kx.startswith("ECDH"):
        curve_type = w.uint(1, "curve_type")
        if curve_type != 3:
            m.details.append(f"ECDHE curve_type {curve_type} (explicit curve, not named)")
            w.pos = len(w.buf)
            return
        group = w.uint(2, "named_curve")
        point = w.vector(1, "public point")
        m.details.append(
            f"ECDHE group {registry.group_name(group) or hex(group)}, public key {len(point)} bytes"
        )
    elif kx is not None and kx.startswith("DH"):
        p = w.vector(2, "dh_p")
        w.vector(2, "dh_g")
        ys = w.vector(2, "dh_Ys")
        bits = len(p.lstrip(b"\0")) * 8
        m.details.append(f"DHE prime {bits} bits, public value {len(ys)} bytes")
        if bits and bits < 2048:
            m.details.append(f"  a {bits}-bit DH group is weak (Logjam); current clients refuse it")
    else:
        m.details.append(f"{len(w.buf)} bytes (key exchange of the chosen suite unknown)")
        w.pos = len(w.buf)
        return
    if w.remaining:
        m.details.append(f"signature {w.remaining} bytes")
        w.pos = len(w.buf)


def _client_key_exchange(w: Walk, m: Msg, ctx: Ctx) -> None:
    kx = _kx(ctx)
    total = len(w.buf)
    two = int.from_bytes(w.buf[:2], "big") if total >= 2 else -1
    one = w.buf[0] if total >= 1 else -1
    declared = m.declared
    size = declared if isinstance(declared, int) else total
    if kx == "RSA" or (kx is None and two == size - 2):
        if two == size - 2:
            n = w.uint(2, "length")
            m.details.append(
                f"RSA-encrypted premaster secret, {n} bytes (a {n * 8}-bit server RSA key)"
            )
        else:
            m.details.append(f"RSA-encrypted premaster secret, {size} bytes (SSL 3.0 form)")
        w.pos = total
        if two == size - 2 and total < size:
            raise Short("encrypted premaster secret", size - 2, total - 2)
        return
    if (kx is not None and kx.startswith("ECDH")) or (kx is None and one == size - 1):
        n = w.uint(1, "length")
        m.details.append(f"ECDHE public point, {n} bytes")
        w.take(n, "public point")
        return
    if kx is not None and kx.startswith("DH"):
        n = w.uint(2, "length")
        m.details.append(f"DHE public value, {n} bytes")
        w.take(n, "public value")
        return
    m.details.append(f"{total} bytes")
    w.pos = total


def _certificate_verify(w: Walk, m: Msg, ctx: Ctx) -> None:
    total = len(w.buf)
    declared = m.declared
    size = declared if isinstance(declared, int) else total
    if total >= 4 and int.from_bytes(w.buf[2:4], "big") == size - 4:
        scheme = w.uint(2, "signature scheme")
        n = w.uint(2, "length")
        m.details.append(f"signature {registry.sigscheme_name(scheme) or hex(scheme)}, {n} bytes")
    elif total >= 2 and int.from_bytes(w.buf[0:2], "big") == size - 2:
        n = w.uint(2, "length")
        m.details.append(f"signature {n} bytes (TLS 1.0/1.1 form: MD5+SHA-1 or SHA-1)")
    else:
        m.details.append(f"{size} bytes")
    w.pos = total


def _finished(w: Walk, m: Msg, ctx: Ctx) -> None:
    m.details.append(f"verify_data ({len(w.buf)} bytes) {w.buf.hex()}")
    w.pos = len(w.buf)


def _new_session_ticket(w: Walk, m: Msg, ctx: Ctx) -> None:
    life = w.uint(4, "ticket_lifetime_hint")
    m.details.append(f"ticket lifetime {life} s, {w.remaining} bytes follow")
    w.pos = len(w.buf)


def _empty(w: Walk, m: Msg, ctx: Ctx) -> None:
    if w.remaining:
        m.problems.append(f"should be empty, has {w.remaining} bytes")
        w.pos = len(w.buf)
    else:
        m.details.append("(empty body)")


def _opaque(w: Walk, m: Msg, ctx: Ctx) -> None:
    m.details.append(f"{len(w.buf)} bytes")
    w.pos = len(w.buf)


_DESCRIBERS: dict[int, Callable[[Walk, Msg, Ctx], None]] = {
    HandshakeType.CLIENT_HELLO: _client_hello,
    HandshakeType.SERVER_HELLO: _server_hello,
    HandshakeType.CERTIFICATE: _certificate,
    HandshakeType.CERTIFICATE_REQUEST: _certificate_request,
    HandshakeType.SERVER_KEY_EXCHANGE: _server_key_exchange,
    HandshakeType.SERVER_HELLO_DONE: _empty,
    HandshakeType.HELLO_REQUEST: _empty,
    HandshakeType.CLIENT_KEY_EXCHANGE: _client_key_exchange,
    HandshakeType.CERTIFICATE_VERIFY: _certificate_verify,
    HandshakeType.FINISHED: _finished,
    HandshakeType.NEW_SESSION_TICKET: _new_session_ticket,
}


def _strict_check(msg_type: int, body: bytes, ctx: Ctx) -> str | None:
    """The codec's verdict on a complete message (a second opinion, never the display)."""
    from ..wire import hello, messages

    try:
        if msg_type == HandshakeType.CLIENT_HELLO:
            hello.parse_client_hello(body)
        elif msg_type == HandshakeType.SERVER_HELLO:
            messages.parse_server_hello(body)
        elif msg_type == HandshakeType.CERTIFICATE:
            messages.parse_certificate(body, tls13=ctx.tls13)
    except DecodeError as exc:
        return f"the codec rejects it: {exc}"
    return None


def describe(msg_type: int, body: bytes, declared: int, ctx: Ctx) -> Msg:
    m = Msg(name=handshake_title(msg_type))
    m.declared = declared
    w = Walk(body)
    fn = _DESCRIBERS.get(msg_type, _opaque)
    truncated = len(body) < declared
    try:
        fn(w, m, ctx)
        if w.remaining and not truncated:
            m.problems.append(f"{w.remaining} unexpected trailing byte(s)")
    except Short as short:
        if truncated:
            m.problems.append(
                f"message truncated: {declared} bytes declared, {len(body)} present "
                f"({declared - len(body)} missing); it stops in {short.what}"
            )
        else:
            m.problems.append(
                f"malformed: {short.what} needs {short.need} bytes, {short.have} left"
            )
    else:
        if truncated:
            m.problems.append(
                f"message truncated: {declared} bytes declared, {len(body)} present "
                f"({declared - len(body)} missing)"
            )
    verdict = None if truncated or m.problems else _strict_check(msg_type, body, ctx)
    if verdict is not None:
        m.problems.append(verdict)
    return m


def describe_handshake(
    msg_type: int,
    body: bytes,
    *,
    version: int | None = None,
    suite: int | None = None,
    tls13: bool = False,
) -> tuple[str, tuple[str, ...]]:
    """Name and detail lines of one whole handshake message, as ``decode`` shows them.

    Used by ``probe --trace`` so that both commands describe a message the same way.
    """
    m = describe(msg_type, body, len(body), Ctx(version=version, suite=suite, tls13=tls13))
    return m.name, (*m.details, *(f"! {p}" for p in m.problems))


def describe_alert(level: int, code: int) -> tuple[str, tuple[str, ...]]:
    a = alert_ref(level, code)
    return alert_title(a), (a.meaning, f"explain: tlsprobe explain alert {code}")
