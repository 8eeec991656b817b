"""What the probe offers, and the pyOpenSSL context that offers it.

Defaults mimic a current client (SPEC "Defaults that mimic a current client"): TLS 1.2 and 1.3,
the bundled OpenSSL's default suites and security level, verification on. Options widen or
narrow the offer. Legacy protocol versions (TLS 1.0/1.1) need OpenSSL security level 0, because
their handshake signatures use MD5/SHA-1; we lower it only when the user asks for them.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from OpenSSL import SSL, crypto

from .engine import prepare_context
from .errors import InputError
from .identity import ClientIdentity, load_certificates
from .wire import registry
from .wire.registry import Suite

ENGINE_VERSIONS = {
    0x0301: SSL.TLS1_VERSION,
    0x0302: SSL.TLS1_1_VERSION,
    0x0303: SSL.TLS1_2_VERSION,
    0x0304: SSL.TLS1_3_VERSION,
}
DEFAULT_MIN = 0x0303
DEFAULT_MAX = 0x0304


@dataclass(frozen=True, slots=True, kw_only=True)
class Offer:
    min_version: int
    max_version: int
    suites: tuple[Suite, ...] | None  # None: the OpenSSL defaults

    @property
    def versions(self) -> tuple[int, ...]:
        return tuple(
            v for v in sorted(ENGINE_VERSIONS) if self.min_version <= v <= self.max_version
        )


def resolve_versions(
    exact: int | None, tls_min: int | None, tls_max: int | None
) -> tuple[int, int]:
    if exact is not None:
        if tls_min is not None or tls_max is not None:
            raise InputError("--tls cannot be combined with --tls-min/--tls-max")
        lo = hi = exact
    else:
        lo = tls_min if tls_min is not None else min(DEFAULT_MIN, tls_max or DEFAULT_MIN)
        hi = tls_max if tls_max is not None else max(DEFAULT_MAX, lo)
    if lo > hi:
        raise InputError(
            f"--tls-min {registry.version_name(lo)} is above --tls-max {registry.version_name(hi)}"
        )
    for v in (lo, hi):
        if v not in ENGINE_VERSIONS:
            raise InputError(
                f"{registry.version_name(v)}: the full-handshake engine (this OpenSSL build)"
                " cannot speak it; `tlsprobe scan` shows what a server accepts in SSLv2/SSLv3"
                " (raw hellos)"
            )
    return lo, hi


def make_offer(
    exact: int | None, tls_min: int | None, tls_max: int | None, suites: tuple[Suite, ...] | None
) -> Offer:
    lo, hi = resolve_versions(exact, tls_min, tls_max)
    if suites is not None:
        has13 = any(s.tls13 for s in suites)
        has12 = any(not s.tls13 and not s.scsv for s in suites)
        # A list of only TLS 1.3 suites means "TLS 1.3"; only older suites means "not 1.3".
        if has13 and not has12:
            lo = max(lo, 0x0304)
        if has12 and not has13:
            hi = min(hi, 0x0303)
        if lo > hi:
            raise InputError(
                "--ciphers: the suites given cannot be used with the protocol versions allowed"
            )
        missing = [s for s in suites if not s.openssl and not s.scsv]
        if missing:
            raise InputError(
                f"--ciphers: {missing[0].iana} has no OpenSSL implementation, so a full handshake"
                " cannot offer it; `tlsprobe scan` tests such suites with raw hellos"
            )
    return Offer(min_version=lo, max_version=hi, suites=suites)


# Creating a context and loading its trust store costs more CPU than the Python side of a whole
# handshake; probes with the same settings (scans, matrices, plans, benchmarks) share one.
# Contexts are only read once built: per-connection state (callbacks, SNI) lives on Connection.
_CACHE: dict[tuple[object, ...], tuple[SSL.Context, ClientIdentity | None]] = {}
_CACHE_MAX = 64


def trust_anchors(ca_file: Path) -> tuple[x509.Certificate, ...]:
    """The certificates of a CA file, read once per version of the file: the context builder
    and the diagnosis (which root is missing?) both need them, probe after probe."""
    return _anchors_of(_ca_stamp(ca_file), ca_file)


@functools.lru_cache(maxsize=16)
def _anchors_of(stamp: tuple[object, ...], ca_file: Path) -> tuple[x509.Certificate, ...]:
    return tuple(load_certificates(ca_file, "CA file"))


def _ca_stamp(ca_file: Path | None) -> tuple[object, ...]:
    if ca_file is None:
        return ()
    try:
        st = ca_file.stat()
    except OSError:
        return (str(ca_file),)
    return (str(ca_file), st.st_mtime_ns, st.st_size)


@functools.cache
def openssl_offers(code: int) -> bool:
    """Can the bundled OpenSSL offer suite ``code`` at all (security level 0)? Legacy suites
    (3DES, RC4, EXPORT, ...) are compiled out of recent builds; raw hellos still see them."""
    suite = registry.suite(code)
    if suite is None or not suite.openssl:
        return False
    ctx = SSL.Context(SSL.TLS_CLIENT_METHOD)
    try:
        if suite.tls13:
            ctx.set_tls13_ciphersuites(suite.openssl.encode())
        else:
            ctx.set_cipher_list(f"{suite.openssl}:@SECLEVEL=0".encode())
    except SSL.Error:
        return False
    return True


def build_context(
    offer: Offer, *, identity: ClientIdentity | None, ca_file: Path | None
) -> SSL.Context:
    """The client context for ``offer`` (shared between probes with equal settings), ready for
    :class:`probe.engine.ClientEngine`: VERIFY_PEER with the engine's callbacks installed."""
    key = (offer, id(identity), _ca_stamp(ca_file))
    hit = _CACHE.get(key)
    if hit is not None and hit[1] is identity:
        return hit[0]
    ctx = _new_context(offer, identity=identity, ca_file=ca_file)
    if len(_CACHE) >= _CACHE_MAX:
        _CACHE.clear()
    _CACHE[key] = (ctx, identity)  # keeping identity alive keeps its id() unique
    return ctx


def _new_context(
    offer: Offer, *, identity: ClientIdentity | None, ca_file: Path | None
) -> SSL.Context:
    ctx = SSL.Context(SSL.TLS_CLIENT_METHOD)
    ctx.set_min_proto_version(ENGINE_VERSIONS[offer.min_version])
    ctx.set_max_proto_version(ENGINE_VERSIONS[offer.max_version])
    legacy = offer.min_version < 0x0303
    if offer.suites is not None:
        old = [s.openssl for s in offer.suites if not s.tls13 and s.openssl]
        new = [s.openssl for s in offer.suites if s.tls13 and s.openssl]
        weak = any(registry.is_weak(s) for s in offer.suites)
        seclevel = ":@SECLEVEL=0" if (legacy or weak) else ""
        try:
            if old:
                ctx.set_cipher_list((":".join(old) + seclevel).encode())
            ctx.set_tls13_ciphersuites(":".join(new).encode())
        except SSL.Error:
            raise InputError(
                "--ciphers: the local OpenSSL refuses this list (suites compiled out?);"
                " `tlsprobe scan` can still test them"
            ) from None
    elif legacy:
        ctx.set_cipher_list(b"DEFAULT:@SECLEVEL=0")
    if ca_file is not None:
        store = ctx.get_cert_store()
        assert store is not None  # a fresh client context always has a store
        for cert in trust_anchors(ca_file):
            store.add_cert(crypto.X509.from_cryptography(cert))
    else:
        ctx.set_default_verify_paths()
    if identity is not None:
        ctx.use_certificate(identity.cert)
        for extra in identity.chain:
            ctx.add_extra_chain_cert(extra)
        ctx.use_privatekey(identity.key)  # type: ignore[arg-type]
    prepare_context(ctx)  # last: a context takes no changes once a connection has used it
    return ctx
