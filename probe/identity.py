"""Loading what the user hands us: client identities (PEM, DER, PKCS#12) and trust anchors.

Everything is checked before a connection is made, so a wrong password, a DER file given where
PEM was expected or a key that belongs to another certificate is one clear line (exit 2) and not
a handshake failure blamed on the partner. Messages name the file, never the password.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import dsa, ec, ed448, ed25519, rsa
from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes
from cryptography.hazmat.primitives.serialization import pkcs12

from .errors import InputError

_SIGNING_KEYS = (
    rsa.RSAPrivateKey,
    ec.EllipticCurvePrivateKey,
    ed25519.Ed25519PrivateKey,
    ed448.Ed448PrivateKey,
    dsa.DSAPrivateKey,
)

# Certificates and keys are small; a "certificate" of megabytes is a wrong file, and reading it
# whole would only waste memory before failing.
MAX_INPUT_BYTES = 4 * 1024 * 1024


@dataclass(frozen=True, slots=True, kw_only=True)
class ClientIdentity:
    cert: x509.Certificate
    chain: tuple[x509.Certificate, ...]
    key: PrivateKeyTypes
    source: str

    @property
    def expired(self) -> bool:
        return self.cert.not_valid_after_utc < dt.datetime.now(dt.UTC)

    @property
    def subject(self) -> str:
        return self.cert.subject.rfc4514_string()


def validity_warning(identity: ClientIdentity, *, now: dt.datetime | None = None) -> str | None:
    """One line for stderr, before connecting, when the client certificate is outside its
    validity period; None when it is within it.

    Only a warning: sending an expired certificate on purpose is a legitimate test of how a
    partner reacts (alert 45 certificate_expired from OpenSSL, GnuTLS and System SSL alike),
    so the probe still runs; the user should just not be surprised by the rejection.
    """
    now = now or dt.datetime.now(dt.UTC)
    cert = identity.cert
    where = f"client certificate {identity.subject} ({identity.source})"
    if cert.not_valid_after_utc < now:
        ago = _days(now - cert.not_valid_after_utc)
        return (
            f"warning: the {where} expired on {cert.not_valid_after_utc:%Y-%m-%d} ({ago} ago);"
            " probing anyway, expect the server to reject it (alert 45 certificate_expired)"
        )
    if cert.not_valid_before_utc > now:
        ahead = _days(cert.not_valid_before_utc - now)
        return (
            f"warning: the {where} is not valid before"
            f" {cert.not_valid_before_utc:%Y-%m-%d} (in {ahead}); probing anyway, expect the"
            " server to reject it"
        )
    return None


def _days(delta: dt.timedelta) -> str:
    if delta < dt.timedelta(days=1):
        hours = max(1, int(delta.total_seconds() // 3600))
        return f"{hours} hour{'s' if hours != 1 else ''}"
    return f"{delta.days} day{'s' if delta.days != 1 else ''}"


def read_input_file(path: Path, what: str) -> bytes:
    try:
        if path.is_dir():
            raise InputError(f"{what} {path}: is a directory, give a file")
        size = path.stat().st_size
        if size > MAX_INPUT_BYTES:
            raise InputError(f"{what} {path}: {size} bytes is too large for a {what}")
        data = path.read_bytes()
    except FileNotFoundError:
        raise InputError(f"{what} {path}: no such file") from None
    except PermissionError:
        raise InputError(f"{what} {path}: permission denied") from None
    except OSError as exc:
        raise InputError(f"{what} {path}: cannot read ({exc.strerror})") from None
    if not data.strip():
        raise InputError(f"{what} {path}: file is empty")
    return data


def _is_pem(data: bytes) -> bool:
    return b"-----BEGIN " in data


def _looks_like_pkcs12(path: Path, data: bytes) -> bool:
    return path.suffix.lower() in {".p12", ".pfx"} or (not _is_pem(data) and not _is_der_cert(data))


def _is_der_cert(data: bytes) -> bool:
    try:
        x509.load_der_x509_certificate(data)
    except ValueError:
        return False
    return True


def load_certificates(path: Path, what: str = "certificate file") -> list[x509.Certificate]:
    """All certificates in a PEM bundle or one DER certificate."""
    data = read_input_file(path, what)
    if _is_pem(data):
        try:
            certs = x509.load_pem_x509_certificates(data)
        except ValueError:
            raise InputError(
                f"{what} {path}: PEM text holds no readable CERTIFICATE block"
                " (is it a key or a request?)"
            ) from None
        return certs
    try:
        return [x509.load_der_x509_certificate(data)]
    except ValueError:
        raise InputError(
            f"{what} {path}: neither PEM nor DER X.509 (for PKCS#12 use a .p12 or .pfx file)"
        ) from None


def _load_key(path: Path, data: bytes, password: bytes | None) -> PrivateKeyTypes:
    loader = (
        serialization.load_pem_private_key if _is_pem(data) else serialization.load_der_private_key
    )
    try:
        return loader(data, password=password)
    except TypeError:
        # cryptography raises TypeError both for "encrypted but no password" and
        # "password given but key not encrypted"; only the first is worth stopping for.
        if password is None:
            raise InputError(
                f"key {path}: the private key is encrypted; give --cert-password"
                " (or TLSPROBE_CERT_PASSWORD)"
            ) from None
        return loader(data, password=None)
    except ValueError:
        if password is not None:
            raise InputError(
                f"key {path}: cannot decrypt the private key: wrong password or not a key"
            ) from None
        raise InputError(
            f"key {path}: no readable private key (PEM or DER PKCS#8/PKCS#1)"
        ) from None
    except Exception as exc:  # unsupported algorithm and the like: still the user's file
        raise InputError(f"key {path}: unsupported private key ({type(exc).__name__})") from None


def _public_bytes(key: object) -> bytes:
    pub = key.public_key()  # type: ignore[attr-defined]
    return bytes(
        pub.public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )


def _key_matches(cert: x509.Certificate, key: PrivateKeyTypes) -> bool:
    if not isinstance(key, _SIGNING_KEYS):
        return False  # DH and X25519/X448 keys cannot sign a TLS handshake
    return _public_bytes(key) == cert.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def _pem_key_in(data: bytes) -> bool:
    return b"PRIVATE KEY-----" in data


def load_identity(
    cert_path: Path, key_path: Path | None = None, password: str | None = None
) -> ClientIdentity:
    """A client certificate, its chain and its private key, checked against each other."""
    pw = password.encode() if password is not None else None
    data = read_input_file(cert_path, "certificate")
    if _is_pem(data) or _is_der_cert(data):
        certs = load_certificates(cert_path, "certificate")
        if key_path is not None:
            key = _load_key(key_path, read_input_file(key_path, "key"), pw)
        elif _is_pem(data) and _pem_key_in(data):
            key = _load_key(cert_path, data, pw)
        else:
            raise InputError(
                f"certificate {cert_path}: holds no private key; give --key FILE"
                " (or use a PKCS#12 file with its key)"
            )
        leaf = _pick_leaf(certs, key)
        if leaf is None:
            raise InputError(
                f"key {key_path or cert_path}: the private key does not match the certificate"
                f" {certs[0].subject.rfc4514_string()}"
            )
        chain = tuple(c for c in certs if c is not leaf)
        return ClientIdentity(cert=leaf, chain=chain, key=key, source=str(cert_path))
    if _looks_like_pkcs12(cert_path, data):
        return _load_pkcs12(cert_path, data, pw)
    raise InputError(f"certificate {cert_path}: not PEM, DER or PKCS#12")


def _pick_leaf(certs: list[x509.Certificate], key: PrivateKeyTypes) -> x509.Certificate | None:
    for cert in certs:
        if _key_matches(cert, key):
            return cert
    return None


def _load_pkcs12(path: Path, data: bytes, pw: bytes | None) -> ClientIdentity:
    try:
        p12 = pkcs12.load_pkcs12(data, pw)
    except ValueError:
        hint = "wrong password" if pw is not None else "encrypted; give --cert-password"
        raise InputError(
            f"certificate {path}: cannot open as PKCS#12 ({hint}, or not a PKCS#12 file)"
        ) from None
    if p12.key is None:
        # Without a key, cryptography files every certificate under additional_certs.
        raise InputError(
            f"certificate {path}: the PKCS#12 file holds no private key; export it with its key"
        )
    if p12.cert is None:
        raise InputError(f"certificate {path}: the PKCS#12 file holds no certificate")
    key = p12.key
    if not isinstance(key, _SIGNING_KEYS):
        raise InputError(f"certificate {path}: unsupported key type in PKCS#12")
    if not _key_matches(p12.cert.certificate, key):
        raise InputError(f"certificate {path}: the PKCS#12 key does not match its certificate")
    chain = tuple(c.certificate for c in p12.additional_certs)
    return ClientIdentity(cert=p12.cert.certificate, chain=chain, key=key, source=str(path))
