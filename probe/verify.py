"""Server-certificate facts: what OpenSSL's verify errors mean, host names, chain shape.

OpenSSL does the path building and date checks (so the probe fails exactly where a real OpenSSL
client fails); service-identity does RFC 6125 host-name and IP matching. This module names the
results and tells the three kinds of "untrusted" apart, which OpenSSL reports with overlapping
codes: a self-signed leaf, a chain that ends in a root we do not trust, and a server that did
not send its intermediate.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import functools
import ipaddress
from collections.abc import Callable, Sequence

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import dsa, ec, ed448, ed25519, rsa

from .result import CertInfo

# X509_V_ERR_* (openssl/x509_vfy.h). Values are ABI, stable across 1.1 - 4.0.
X509_ERRORS: dict[int, tuple[str, str]] = {
    2: ("UNABLE_TO_GET_ISSUER_CERT", "the issuer certificate could not be found"),
    4: ("UNABLE_TO_DECRYPT_CERT_SIGNATURE", "certificate signature could not be decrypted"),
    6: ("UNABLE_TO_DECODE_ISSUER_PUBLIC_KEY", "issuer public key could not be decoded"),
    7: ("CERT_SIGNATURE_FAILURE", "certificate signature failure"),
    9: ("CERT_NOT_YET_VALID", "certificate is not yet valid"),
    10: ("CERT_HAS_EXPIRED", "certificate has expired"),
    13: ("ERROR_IN_CERT_NOT_BEFORE_FIELD", "format error in notBefore"),
    14: ("ERROR_IN_CERT_NOT_AFTER_FIELD", "format error in notAfter"),
    18: ("DEPTH_ZERO_SELF_SIGNED_CERT", "self-signed certificate"),
    19: ("SELF_SIGNED_CERT_IN_CHAIN", "self-signed certificate in the chain"),
    20: ("UNABLE_TO_GET_ISSUER_CERT_LOCALLY", "unable to get local issuer certificate"),
    21: ("UNABLE_TO_VERIFY_LEAF_SIGNATURE", "unable to verify the first certificate"),
    22: ("CERT_CHAIN_TOO_LONG", "certificate chain too long"),
    23: ("CERT_REVOKED", "certificate revoked"),
    24: ("INVALID_CA", "invalid CA certificate"),
    25: ("PATH_LENGTH_EXCEEDED", "path length constraint exceeded"),
    26: ("INVALID_PURPOSE", "unsupported certificate purpose"),
    27: ("CERT_UNTRUSTED", "certificate not trusted"),
    28: ("CERT_REJECTED", "certificate rejected"),
    62: ("HOSTNAME_MISMATCH", "host name mismatch"),
    64: ("IP_ADDRESS_MISMATCH", "IP address mismatch"),
    66: ("EE_KEY_TOO_SMALL", "server certificate key too weak for the security level"),
    67: ("CA_KEY_TOO_SMALL", "CA certificate key too weak"),
    68: ("CA_MD_TOO_WEAK", "CA signature digest algorithm too weak"),
    79: ("INVALID_CA", "invalid CA certificate"),
    85: ("EC_KEY_EXPLICIT_PARAMS", "EC key has explicit parameters"),
}
EXPIRED = {10}
NOT_YET_VALID = {9}
WEAK = {66, 67, 68}
UNTRUSTED = {2, 18, 19, 20, 21, 24, 27, 28, 79}


def error_name(code: int) -> tuple[str, str]:
    return X509_ERRORS.get(code, (f"X509_V_ERR_{code}", f"verify error {code}"))


def hostname_checker(name: str) -> Callable[[x509.Certificate], str | None]:
    """A callable that returns why ``cert`` does not name ``name`` (or None if it does)."""
    return lambda cert: _check_name(cert, name)


# Results depend only on the certificate and the name, and repeated probes of one listener
# (matrix, plans, scans) see the same certificate: remember the last few hundred answers.
@functools.lru_cache(maxsize=512)
def _check_name(cert: x509.Certificate, name: str) -> str | None:
    from service_identity import CertificateError, VerificationError
    from service_identity.cryptography import (
        verify_certificate_hostname,
        verify_certificate_ip_address,
    )

    try:
        try:
            ip = ipaddress.ip_address(name)
        except ValueError:
            verify_certificate_hostname(cert, name)
        else:
            verify_certificate_ip_address(cert, str(ip))
    except CertificateError:
        # RFC 6125 §6.4.4: clients match subjectAltName, not the CN, once SANs exist;
        # certificates without SAN are refused by current clients.
        return (
            "the certificate has no subjectAltName (CN-only certificates are not"
            f" matched); {name} not named"
        )
    except VerificationError:
        names = ", ".join(sans(cert)) or "none"
        return f"{name} is not among the names the certificate holds ({names})"
    return None


def sans(cert: x509.Certificate) -> tuple[str, ...]:
    try:
        ext = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName)
    except x509.ExtensionNotFound:
        return ()
    out: list[str] = [f"DNS:{n}" for n in ext.value.get_values_for_type(x509.DNSName)]
    out += [f"IP:{ip}" for ip in ext.value.get_values_for_type(x509.IPAddress)]
    return tuple(out)


def key_description(cert: x509.Certificate) -> str:
    key = cert.public_key()
    if isinstance(key, rsa.RSAPublicKey):
        return f"RSA {key.key_size}"
    if isinstance(key, ec.EllipticCurvePublicKey):
        return f"EC {key.curve.name}"
    if isinstance(key, dsa.DSAPublicKey):
        return f"DSA {key.key_size}"
    if isinstance(key, ed25519.Ed25519PublicKey):
        return "Ed25519"
    if isinstance(key, ed448.Ed448PublicKey):
        return "Ed448"
    return type(key).__name__


def is_ca(cert: x509.Certificate) -> bool:
    try:
        return bool(cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca)
    except x509.ExtensionNotFound:
        return False


def subject(cert: x509.Certificate) -> str:
    return _summary(cert).static.subject


def cert_info(cert: x509.Certificate, now: dt.datetime | None = None) -> CertInfo:
    now = now or dt.datetime.now(dt.UTC)
    entry = _summary(cert)
    days = (cert.not_valid_after_utc - now).days
    # CertInfo is frozen, so one copy with this days_left serves every probe that computes it.
    if entry.info is None or entry.info.days_left != days:
        entry.info = dataclasses.replace(entry.static, days_left=days)
    return entry.info


class _Summary:
    __slots__ = ("cert", "info", "static")

    def __init__(self, cert: x509.Certificate, static: CertInfo) -> None:
        self.cert = cert
        self.static = static
        self.info: CertInfo | None = None  # static with the last days_left asked for


# Summaries by certificate identity: an entry holds its certificate, so that id() cannot be
# reused by another object while the entry lives, and an identity match is the same
# certificate. Equal certificates that are distinct objects go through _static_info (by value).
# probe.engine hands out one object per certificate, so repeated probes hit here.
_BY_ID: dict[int, _Summary] = {}
_BY_ID_MAX = 512


def _summary(cert: x509.Certificate) -> _Summary:
    entry = _BY_ID.get(id(cert))
    if entry is None or entry.cert is not cert:
        if len(_BY_ID) >= _BY_ID_MAX:
            _BY_ID.clear()
        entry = _BY_ID[id(cert)] = _Summary(cert, _static_info(cert))
    return entry


@functools.lru_cache(maxsize=512)
def _static_info(cert: x509.Certificate) -> CertInfo:
    """Everything but days_left; names and SANs cost more to format than a handshake's
    Python side, and the same certificates come back probe after probe."""
    after = cert.not_valid_after_utc
    try:
        sig = cert.signature_algorithm_oid._name
    except AttributeError:
        sig = cert.signature_algorithm_oid.dotted_string
    return CertInfo(
        subject=cert.subject.rfc4514_string(),
        issuer=cert.issuer.rfc4514_string(),
        not_before=cert.not_valid_before_utc.isoformat(),
        not_after=after.isoformat(),
        days_left=0,
        key=key_description(cert),
        signature=str(sig),
        san=sans(cert),
        sha256=cert.fingerprint(hashes.SHA256()).hex(),
        serial=f"{cert.serial_number:x}",
        is_ca=is_ca(cert),
        self_issued=cert.issuer == cert.subject,
    )


def untrusted_kind(
    codes: Sequence[int], sent: Sequence[x509.Certificate], anchors: Sequence[x509.Certificate]
) -> str:
    """Which untrusted case this is: "self_signed", "missing_intermediate" or "unknown_ca".

    OpenSSL says 18 for a self-signed leaf and 19 when the server sent a root we do not trust.
    Code 20 (issuer not found) covers both a missing intermediate and an unknown root: if the
    topmost certificate the server sent is an end-entity certificate, the server most likely
    left out its intermediate; if it is a CA certificate, the chain leads to a CA we do not hold.
    """
    if 18 in codes or (len(sent) == 1 and sent[0].issuer == sent[0].subject):
        return "self_signed"
    if 19 in codes or not sent:
        return "unknown_ca"
    top = sent[-1]
    anchor_names = {a.subject for a in anchors}
    if not is_ca(top) and top.issuer not in anchor_names:
        return "missing_intermediate"
    return "unknown_ca"


# OpenSSL stops at the first error it is refused past, so a chain that is both untrusted and
# expired reports only the first; a user who fixes the trust store then meets the next. These
# are the problems the certificates themselves show, found without OpenSSL, for the diagnosis.
MIN_RSA_BITS = 2048  # OpenSSL's security level 2 (its default), as for EE_KEY_TOO_SMALL
MIN_EC_BITS = 224


def further_problems(
    chain: list[x509.Certificate], codes: tuple[int, ...], now: dt.datetime | None = None
) -> list[tuple[str, str]]:
    """(cause id, detail) for date and key-size problems of the chain sent that the verify
    codes do not already name."""
    now = now or dt.datetime.now(dt.UTC)
    out: list[tuple[str, str]] = []
    for cert in chain:
        who = subject(cert)
        if cert.not_valid_after_utc < now and not EXPIRED & set(codes):
            out.append(("server_cert_expired",
                        f"also: {who} expired on {cert.not_valid_after_utc.date()}"))  # fmt: skip
        if cert.not_valid_before_utc > now and not NOT_YET_VALID & set(codes):
            start = cert.not_valid_before_utc.date()
            out.append(("server_cert_not_yet_valid", f"also: {who} is valid only from {start}"))
        key = cert.public_key()
        small = (isinstance(key, rsa.RSAPublicKey) and key.key_size < MIN_RSA_BITS) or (
            isinstance(key, ec.EllipticCurvePublicKey) and key.curve.key_size < MIN_EC_BITS
        )
        if small and not WEAK & set(codes):
            out.append(("server_cert_weak_key", f"also: {who} has a {key_description(cert)} key"))
    return out
