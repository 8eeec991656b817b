"""Test and lab PKI: CAs, leaf certificates and the files TLS stacks read.

Theory of operation
-------------------
Two layers.

* **Issuing** (`KeySpec`, `CertSpec`, `issue`): pure in-memory X.509 built with
  `cryptography`. A `Credential` is a certificate, its private key and the intermediates a
  peer should send with it. Any `Credential` whose certificate is a CA can issue; passing
  ``issuer=None`` makes a self-signed certificate.
* **Writing** (`write_*`): the formats OpenSSL, GnuTLS, vsftpd, Java-style keystores and the
  probe's own ``--cert`` option read. Private keys (and PKCS#12 files, which hold one) are
  created with ``os.open(..., 0o600)`` so that no other user can read them at any moment,
  then renamed into place so that a reader never sees half a file.

`build_test_pki` puts the two together: one complete set of good and broken identities
per directory, described by the `_IDENTITIES` table. It is idempotent: keys are generated
once per directory and reused; certificates are re-issued (cheap) only when the set on
disk is incomplete, inconsistent or about to stop showing the property it exists for
(a "good" certificate near its notAfter, a "not yet valid" one near its notBefore).

Nothing here is meant to protect production secrets: the passwords are fixed and
published, because the lab hands them to clients.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import enum
import ipaddress
import json
import os
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar, Final, TypeAlias

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

PrivateKey: TypeAlias = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey

# Published on purpose: the lab prints them so that clients can open the files.
KEY_PASSWORD: Final = "tlsprobe-lab-key"
PKCS12_PASSWORD: Final = "tlsprobe-lab-p12"

_ORGANIZATION: Final = "tlsprobe lab"
_LAYOUT_VERSION: Final = 1
_MANIFEST: Final = "manifest.json"
_LOCK: Final = ".lock"


class PKIError(Exception):
    """A file in a PKI directory cannot be used (wrong type, unreadable, inconsistent)."""


# --------------------------------------------------------------------------- keys


class KeyType(enum.StrEnum):
    RSA = "rsa"
    EC_P256 = "ec-p256"


@dataclass(frozen=True, slots=True, kw_only=True)
class KeySpec:
    """What key to generate. ``bits`` applies to RSA only (1024 is allowed: the weak-key case)."""

    type: KeyType = KeyType.RSA
    bits: int = 2048

    def generate(self) -> PrivateKey:
        if self.type is KeyType.RSA:
            return rsa.generate_private_key(public_exponent=65537, key_size=self.bits)
        return ec.generate_private_key(ec.SECP256R1())

    def matches(self, key: PrivateKey) -> bool:
        if self.type is KeyType.RSA:
            return isinstance(key, rsa.RSAPrivateKey) and key.key_size == self.bits
        return isinstance(key, ec.EllipticCurvePrivateKey) and isinstance(key.curve, ec.SECP256R1)


# --------------------------------------------------------------------------- certificates


class Purpose(enum.StrEnum):
    """Extended key usage, named as in RFC 5280 section 4.2.1.12."""

    SERVER_AUTH = "serverAuth"
    CLIENT_AUTH = "clientAuth"


_PURPOSE_OID: Final = {
    Purpose.SERVER_AUTH: ExtendedKeyUsageOID.SERVER_AUTH,
    Purpose.CLIENT_AUTH: ExtendedKeyUsageOID.CLIENT_AUTH,
}


class KeyUse(enum.StrEnum):
    """keyUsage bits (RFC 5280 section 4.2.1.3); values are `x509.KeyUsage` argument names."""

    DIGITAL_SIGNATURE = "digital_signature"
    CONTENT_COMMITMENT = "content_commitment"
    KEY_ENCIPHERMENT = "key_encipherment"
    DATA_ENCIPHERMENT = "data_encipherment"
    KEY_AGREEMENT = "key_agreement"
    KEY_CERT_SIGN = "key_cert_sign"
    CRL_SIGN = "crl_sign"
    ENCIPHER_ONLY = "encipher_only"
    DECIPHER_ONLY = "decipher_only"


@dataclass(frozen=True, slots=True, kw_only=True)
class CertSpec:
    """The contents of one certificate. Defaults describe a TLS server leaf valid from an hour
    ago for a year.

    ``key_usage=None`` picks the usual bits: keyCertSign and cRLSign for a CA,
    digitalSignature (plus keyEncipherment for RSA, which TLS 1.2 RSA key exchange needs)
    for a leaf. An empty ``purposes`` omits the extendedKeyUsage extension.
    """

    common_name: str
    dns_names: tuple[str, ...] = ()
    ip_addresses: tuple[str, ...] = ()
    not_before: dt.datetime | None = None
    not_after: dt.datetime | None = None
    is_ca: bool = False
    path_length: int | None = None
    purposes: tuple[Purpose, ...] = (Purpose.SERVER_AUTH,)
    key_usage: frozenset[KeyUse] | None = None
    organization: str = _ORGANIZATION


@dataclass(frozen=True, slots=True, kw_only=True)
class Credential:
    """A certificate, its key, and the intermediates to send after it (leaf first order)."""

    cert: x509.Certificate
    key: PrivateKey
    chain: tuple[x509.Certificate, ...] = ()

    @property
    def full_chain(self) -> tuple[x509.Certificate, ...]:
        return (self.cert, *self.chain)


def ca_spec(common_name: str, *, path_length: int | None = None, years: int = 10) -> CertSpec:
    """A CA certificate spec valid from an hour ago for ``years`` years."""
    now = _now()
    return CertSpec(
        common_name=common_name,
        is_ca=True,
        path_length=path_length,
        purposes=(),
        not_before=now - dt.timedelta(hours=1),
        not_after=now + dt.timedelta(days=365 * years),
    )


def issue(spec: CertSpec, *, key: PrivateKey, issuer: Credential | None) -> Credential:
    """Issue a certificate for ``key``; ``issuer=None`` makes it self-signed.

    The returned credential's chain is the issuer's certificate plus the issuer's own chain,
    unless the issuer is self-signed (a root is the relying party's business, not sent).
    """
    now = _now()
    not_before = spec.not_before or now - dt.timedelta(hours=1)
    not_after = spec.not_after or now + dt.timedelta(days=365)
    if not_after <= not_before:
        raise ValueError("not_after must be later than not_before")

    subject = _name(spec.common_name, spec.organization)
    public_key = key.public_key()
    if issuer is None:
        issuer_name, signing_key, issuer_public = subject, key, public_key
    else:
        if not _is_ca(issuer.cert):
            raise ValueError(f"issuer {issuer.cert.subject.rfc4514_string()} is not a CA")
        issuer_name = issuer.cert.subject
        signing_key, issuer_public = issuer.key, issuer.key.public_key()

    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer_name)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(
            x509.BasicConstraints(ca=spec.is_ca, path_length=spec.path_length), critical=True
        )
        .add_extension(_key_usage(spec, key), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
        # Strict verifiers (Python 3.13's VERIFY_X509_STRICT) require the AKI.
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_public), critical=False
        )
    )
    if spec.purposes:
        builder = builder.add_extension(
            x509.ExtendedKeyUsage([_PURPOSE_OID[p] for p in spec.purposes]), critical=False
        )
    san: list[x509.GeneralName] = [x509.DNSName(n) for n in spec.dns_names]
    san += [x509.IPAddress(ipaddress.ip_address(a)) for a in spec.ip_addresses]
    if san:
        builder = builder.add_extension(x509.SubjectAlternativeName(san), critical=False)

    cert = builder.sign(signing_key, hashes.SHA256())
    if issuer is None:
        chain: tuple[x509.Certificate, ...] = ()
    elif _is_self_signed(issuer.cert):
        chain = issuer.chain
    else:
        chain = (issuer.cert, *issuer.chain)
    return Credential(cert=cert, key=key, chain=chain)


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(microsecond=0)


def _name(common_name: str, organization: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, organization),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )


def _key_usage(spec: CertSpec, key: PrivateKey) -> x509.KeyUsage:
    uses = spec.key_usage
    if uses is None:
        if spec.is_ca:
            uses = frozenset({KeyUse.DIGITAL_SIGNATURE, KeyUse.KEY_CERT_SIGN, KeyUse.CRL_SIGN})
        elif isinstance(key, rsa.RSAPrivateKey):
            uses = frozenset({KeyUse.DIGITAL_SIGNATURE, KeyUse.KEY_ENCIPHERMENT})
        else:
            uses = frozenset({KeyUse.DIGITAL_SIGNATURE})
    return x509.KeyUsage(**{u.value: u in uses for u in KeyUse})


def _is_ca(cert: x509.Certificate) -> bool:
    try:
        return cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    except x509.ExtensionNotFound:
        return False


def _is_self_signed(cert: x509.Certificate) -> bool:
    if cert.issuer != cert.subject:
        return False
    try:
        cert.verify_directly_issued_by(cert)
    except (ValueError, TypeError, InvalidSignature):
        return False
    return True


# --------------------------------------------------------------------------- writing


def write_private_key(path: Path, key: PrivateKey, *, password: str | None = None) -> None:
    """PKCS#8 PEM, encrypted when ``password`` is given; mode 0600 from the first byte."""
    encryption: serialization.KeySerializationEncryption = (
        serialization.BestAvailableEncryption(password.encode())
        if password is not None
        else serialization.NoEncryption()
    )
    data = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption
    )
    _write_atomic(path, data, mode=0o600)


def write_certs_pem(path: Path, certs: Sequence[x509.Certificate]) -> None:
    """One or more certificates, concatenated PEM, in the order given (leaf first for chains)."""
    if not certs:
        raise ValueError("no certificates to write")
    data = b"".join(c.public_bytes(serialization.Encoding.PEM) for c in certs)
    _write_atomic(path, data, mode=0o644)


def write_cert_der(path: Path, cert: x509.Certificate) -> None:
    _write_atomic(path, cert.public_bytes(serialization.Encoding.DER), mode=0o644)


def write_pkcs12(
    path: Path,
    *,
    cert: x509.Certificate,
    key: PrivateKey | None,
    chain: Sequence[x509.Certificate] = (),
    password: str,
    friendly_name: str | None = None,
    legacy: bool = False,
) -> None:
    """PKCS#12 with PBES2/AES-256 and a SHA-256 MAC, or with ``legacy`` the 3DES/SHA-1 form
    that older keystores (Java before 8u301, some vendor GUIs) still insist on.
    ``key=None`` writes certificates only (what a trust store import or a "forgot the key"
    mistake looks like). Mode 0600 either way."""
    algorithm, mac = (
        (pkcs12.PBES.PBESv1SHA1And3KeyTripleDESCBC, hashes.SHA1())
        if legacy
        else (pkcs12.PBES.PBESv2SHA256AndAES256CBC, hashes.SHA256())
    )
    encryption = (
        serialization.PrivateFormat.PKCS12.encryption_builder()
        .kdf_rounds(20_000)
        .key_cert_algorithm(algorithm)
        .hmac_hash(mac)
        .build(password.encode())
    )
    data = pkcs12.serialize_key_and_certificates(
        friendly_name.encode() if friendly_name else None,
        key,
        cert,
        list(chain) or None,
        encryption,
    )
    _write_atomic(path, data, mode=0o600)


def load_private_key(
    path: Path, *, password: str | None = None, skip_rsa_check: bool = False
) -> PrivateKey:
    """Load a PEM private key. ``skip_rsa_check`` skips OpenSSL's RSA consistency check
    (about 30 ms per key); only for files this module wrote itself."""
    try:
        key = serialization.load_pem_private_key(
            path.read_bytes(),
            password.encode() if password is not None else None,
            unsafe_skip_rsa_key_validation=skip_rsa_check,
        )
    except (OSError, ValueError, TypeError) as exc:
        raise PKIError(f"{path}: cannot load private key: {exc}") from exc
    if not isinstance(key, rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey):
        raise PKIError(f"{path}: unsupported key type {type(key).__name__}")
    return key


def load_certs_pem(path: Path) -> list[x509.Certificate]:
    try:
        certs = x509.load_pem_x509_certificates(path.read_bytes())
    except (OSError, ValueError) as exc:
        raise PKIError(f"{path}: cannot load certificates: {exc}") from exc
    return certs


def _write_atomic(path: Path, data: bytes, *, mode: int) -> None:
    # O_EXCL on a fresh temporary name: the file is born with `mode` (minus umask), so a
    # private key is never readable by others, and the rename means readers see the old
    # file or the whole new one.
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with contextlib.suppress(FileNotFoundError):
        tmp.unlink()
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        raise


# --------------------------------------------------------------------------- the test set


@dataclass(frozen=True, slots=True, kw_only=True)
class IdentityFiles:
    """Every file written for one identity.

    ``chain`` is the leaf followed by the intermediates a peer should send (leaf only for
    a self-signed identity); ``pkcs12`` holds key, leaf and intermediates;
    ``pkcs12_no_key`` the same certificates without the key.
    """

    cert: Path
    key: Path
    chain: Path
    encrypted_key: Path
    cert_der: Path
    pkcs12: Path
    pkcs12_no_key: Path

    def all(self) -> tuple[Path, ...]:
        return (
            self.cert,
            self.key,
            self.chain,
            self.encrypted_key,
            self.cert_der,
            self.pkcs12,
            self.pkcs12_no_key,
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class TestPKI:
    """Paths of the complete test set. ``ca`` is the trust anchor; ``other_ca`` is a root
    nobody trusts. Passwords open every ``encrypted_key`` and ``pkcs12`` file."""

    __test__: ClassVar[bool] = False  # not a pytest test class, despite the name

    directory: Path
    ca: Path
    other_ca: Path
    intermediate: Path
    other_intermediate: Path
    good: IdentityFiles
    good_ec: IdentityFiles
    expired: IdentityFiles
    not_yet_valid: IdentityFiles
    self_signed: IdentityFiles
    unknown_ca: IdentityFiles
    wrong_host: IdentityFiles
    weak_key: IdentityFiles
    client: IdentityFiles
    client_untrusted: IdentityFiles
    client_expired: IdentityFiles
    mq_to_qmgr1: IdentityFiles
    mq_svrconn: IdentityFiles
    key_password: str = KEY_PASSWORD
    pkcs12_password: str = PKCS12_PASSWORD


class _When(enum.Enum):
    CURRENT = "current"
    EXPIRED = "expired"
    NOT_YET_VALID = "not-yet-valid"


@dataclass(frozen=True, slots=True, kw_only=True)
class _Plan:
    """One row of the test set: a certificate, who issues it and what must stay true of it."""

    name: str  # file stem and TestPKI field (with "-" for "_")
    common_name: str
    issuer: str | None  # name of another row; None = self-signed
    key: KeySpec = KeySpec()
    dns_names: tuple[str, ...] = ()
    ip_addresses: tuple[str, ...] = ()
    is_ca: bool = False
    purposes: tuple[Purpose, ...] = (Purpose.SERVER_AUTH,)
    when: _When = _When.CURRENT


_LOCAL_DNS: Final = ("localhost",)
_LOCAL_IPS: Final = ("127.0.0.1", "::1")
_RSA1024: Final = KeySpec(type=KeyType.RSA, bits=1024)
_EC: Final = KeySpec(type=KeyType.EC_P256)
_CLIENT: Final = (Purpose.CLIENT_AUTH,)


def _server(
    name: str, issuer: str | None, *, key: KeySpec = KeySpec(), when: _When = _When.CURRENT
) -> _Plan:
    """A server leaf for this host: CN localhost; SAN localhost, 127.0.0.1 and ::1."""
    return _Plan(
        name=name,
        common_name="localhost",
        issuer=issuer,
        key=key,
        dns_names=_LOCAL_DNS,
        ip_addresses=_LOCAL_IPS,
        when=when,
    )


# Issuers come before what they issue. CA rows have no identity files besides cert and key.
_CAS: Final = (
    _Plan(name="ca", common_name="tlsprobe lab root CA", issuer=None, is_ca=True, purposes=()),
    _Plan(name="intermediate", common_name="tlsprobe lab intermediate CA", issuer="ca",
          is_ca=True, purposes=()),
    _Plan(name="other-ca", common_name="untrusted root CA", issuer=None, is_ca=True, purposes=()),
    _Plan(name="other-intermediate", common_name="untrusted intermediate CA", issuer="other-ca",
          is_ca=True, purposes=()),
)  # fmt: skip
_IDENTITIES: Final = (
    _server("good", "intermediate"),
    _server("good-ec", "intermediate", key=_EC),
    _server("expired", "intermediate", when=_When.EXPIRED),
    _server("not-yet-valid", "intermediate", when=_When.NOT_YET_VALID),
    _server("self-signed", None),
    _server("unknown-ca", "other-intermediate"),
    _Plan(name="wrong-host", common_name="other.example", issuer="intermediate",
          dns_names=("other.example",)),
    _server("weak-key", "intermediate", key=_RSA1024),
    _Plan(name="client", common_name="tlsprobe client", issuer="intermediate", purposes=_CLIENT),
    _Plan(name="client-untrusted", common_name="untrusted client", issuer="other-intermediate",
          purposes=_CLIENT),
    _Plan(name="client-expired", common_name="expired client", issuer="intermediate",
          purposes=_CLIENT, when=_When.EXPIRED),
    # IBM MQ per-channel certificates (CERTLABL): chosen by the channel SNI; MQ checks the
    # chain and the DN, not host names, so they name the channel, not this host.
    _Plan(name="mq-to-qmgr1", common_name="QMGR1 channel TO.QMGR1", issuer="intermediate",
          dns_names=("to2e-qmgr1.chl.mq.ibm.com",)),
    _Plan(name="mq-svrconn", common_name="QMGR1 channel SYSTEM.DEF.SVRCONN",
          issuer="intermediate", dns_names=("system2e-def2e-svrconn.chl.mq.ibm.com",)),
)  # fmt: skip

# A set is reused only while every certificate keeps its property for this long.
_REUSE_MARGIN: Final = dt.timedelta(days=7)


def build_test_pki(directory: Path) -> TestPKI:
    """Create (or reuse) the complete test PKI in ``directory`` and return its paths.

    Safe to call from several processes at once on one directory (POSIX file lock).
    """
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    with _locked(directory / _LOCK):
        if not _set_is_usable(directory):
            _issue_all(directory)
    return _paths(directory)


def identity_files(directory: Path, name: str) -> IdentityFiles:
    """The file names used for identity ``name`` (any stem, e.g. a lab-specific leaf)."""
    return IdentityFiles(
        cert=directory / f"{name}.crt",
        key=directory / f"{name}.key",
        chain=directory / f"{name}.chain.crt",
        encrypted_key=directory / f"{name}.enc.key",
        cert_der=directory / f"{name}.der",
        pkcs12=directory / f"{name}.p12",
        pkcs12_no_key=directory / f"{name}.nokey.p12",
    )


def write_identity(files: IdentityFiles, credential: Credential, *, friendly_name: str) -> None:
    """Write every format of `IdentityFiles` for one credential."""
    write_certs_pem(files.cert, [credential.cert])
    write_private_key(files.key, credential.key)
    write_certs_pem(files.chain, credential.full_chain)
    write_private_key(files.encrypted_key, credential.key, password=KEY_PASSWORD)
    write_cert_der(files.cert_der, credential.cert)
    write_pkcs12(
        files.pkcs12,
        cert=credential.cert,
        key=credential.key,
        chain=credential.chain,
        password=PKCS12_PASSWORD,
        friendly_name=friendly_name,
    )
    write_pkcs12(
        files.pkcs12_no_key,
        cert=credential.cert,
        key=None,
        chain=credential.chain,
        password=PKCS12_PASSWORD,
        friendly_name=friendly_name,
    )


def _paths(directory: Path) -> TestPKI:
    def ids(name: str) -> IdentityFiles:
        return identity_files(directory, name)

    return TestPKI(
        directory=directory,
        ca=directory / "ca.crt",
        other_ca=directory / "other-ca.crt",
        intermediate=directory / "intermediate.crt",
        other_intermediate=directory / "other-intermediate.crt",
        good=ids("good"),
        good_ec=ids("good-ec"),
        expired=ids("expired"),
        not_yet_valid=ids("not-yet-valid"),
        self_signed=ids("self-signed"),
        unknown_ca=ids("unknown-ca"),
        wrong_host=ids("wrong-host"),
        weak_key=ids("weak-key"),
        client=ids("client"),
        client_untrusted=ids("client-untrusted"),
        client_expired=ids("client-expired"),
        mq_to_qmgr1=ids("mq-to-qmgr1"),
        mq_svrconn=ids("mq-svrconn"),
    )


def _validity(when: _When, now: dt.datetime) -> tuple[dt.datetime, dt.datetime]:
    day = dt.timedelta(days=1)
    if when is _When.EXPIRED:
        return now - 400 * day, now - 30 * day
    if when is _When.NOT_YET_VALID:
        return now + 3650 * day, now + 4015 * day
    return now - dt.timedelta(hours=1), now + 398 * day


def _issue_all(directory: Path) -> None:
    now = _now()
    issued: dict[str, Credential] = {}
    for plan in (*_CAS, *_IDENTITIES):
        key = _key_for(directory / f"{plan.name}.key", plan.key)
        not_before, not_after = _validity(plan.when, now)
        if plan.is_ca:
            not_after = now + dt.timedelta(days=3650)
        spec = CertSpec(
            common_name=plan.common_name,
            dns_names=plan.dns_names,
            ip_addresses=plan.ip_addresses,
            not_before=not_before,
            not_after=not_after,
            is_ca=plan.is_ca,
            purposes=plan.purposes,
        )
        issuer = issued[plan.issuer] if plan.issuer is not None else None
        credential = issue(spec, key=key, issuer=issuer)
        issued[plan.name] = credential
        if plan.is_ca:
            write_certs_pem(directory / f"{plan.name}.crt", [credential.cert])
        else:
            write_identity(
                identity_files(directory, plan.name), credential, friendly_name=plan.name
            )
    # Written last: its presence says the set above is complete.
    manifest = {"layout": _LAYOUT_VERSION, "issued": now.isoformat()}
    _write_atomic(directory / _MANIFEST, json.dumps(manifest).encode(), mode=0o644)


def _key_for(path: Path, spec: KeySpec) -> PrivateKey:
    """The key stored at ``path`` if it fits ``spec``; otherwise a new one, written there."""
    if path.exists():
        with contextlib.suppress(PKIError):
            key = load_private_key(path)
            if spec.matches(key):
                return key
    key = spec.generate()
    write_private_key(path, key)
    return key


def _set_is_usable(directory: Path) -> bool:
    """True when the files on disk form the set `_issue_all` would write, for long enough."""
    try:
        manifest = json.loads((directory / _MANIFEST).read_text())
    except (OSError, ValueError):
        return False
    if not isinstance(manifest, dict) or manifest.get("layout") != _LAYOUT_VERSION:
        return False
    now = _now()
    certs: dict[str, x509.Certificate] = {}
    try:
        for plan in (*_CAS, *_IDENTITIES):
            cert_path = directory / f"{plan.name}.crt"
            (cert,) = load_certs_pem(cert_path)
            # The key must match the certificate; that comparison covers what the skipped
            # RSA check would catch in a file we wrote.
            key = load_private_key(directory / f"{plan.name}.key", skip_rsa_check=True)
            if not plan.key.matches(key) or key.public_key() != cert.public_key():
                return False
            issuer = certs[plan.issuer] if plan.issuer is not None else cert
            cert.verify_directly_issued_by(issuer)
            if not _keeps_property(cert, plan, now):
                return False
            if not plan.is_ca and not all(
                p.exists() for p in identity_files(directory, plan.name).all()
            ):
                return False
            certs[plan.name] = cert
    except (PKIError, ValueError, TypeError, InvalidSignature):
        return False
    return True


def _keeps_property(cert: x509.Certificate, plan: _Plan, now: dt.datetime) -> bool:
    later = now + _REUSE_MARGIN
    if plan.when is _When.EXPIRED:
        return cert.not_valid_after_utc < now
    if plan.when is _When.NOT_YET_VALID:
        return cert.not_valid_before_utc > later
    return cert.not_valid_before_utc <= now and cert.not_valid_after_utc > later


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    if sys.platform == "win32":  # no flock; concurrent builders on Windows are not supported
        yield
        return
    import fcntl

    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing releases the lock
