"""Certificates in a dump: whole ones through cryptography, cut ones by a bounded DER walk.

A vendor trace often prints the first lines of a Certificate message only. The TBSCertificate
fields that are complete among the bytes present (serial, signature algorithm, issuer,
validity, subject, key) still answer most questions, so :func:`certificate_ref` reads them
with a walk that never leaves the bytes present nor the TBSCertificate's own length, and says
how many bytes are missing (RFC 5280 §4.1).
"""

from __future__ import annotations

import hashlib

from cryptography import x509

from ..wire.errors import DecodeError
from ..wire.messages import decode_dn
from .model import CertRef, short_hex

_SIG_OIDS = {
    "1.2.840.113549.1.1.4": "md5WithRSAEncryption",
    "1.2.840.113549.1.1.5": "sha1WithRSAEncryption",
    "1.2.840.113549.1.1.11": "sha256WithRSAEncryption",
    "1.2.840.113549.1.1.12": "sha384WithRSAEncryption",
    "1.2.840.113549.1.1.13": "sha512WithRSAEncryption",
    "1.2.840.113549.1.1.10": "RSASSA-PSS",
    "1.2.840.10045.4.3.2": "ecdsa-with-SHA256",
    "1.2.840.10045.4.3.3": "ecdsa-with-SHA384",
    "1.2.840.10045.4.3.4": "ecdsa-with-SHA512",
    "1.2.840.10040.4.3": "dsa-with-SHA1",
    "1.3.101.112": "Ed25519",
}
_KEY_OIDS = {
    "1.2.840.113549.1.1.1": "RSA",
    "1.2.840.10045.2.1": "EC",
    "1.2.840.10040.4.1": "DSA",
    "1.3.101.112": "Ed25519",
    "1.3.101.113": "Ed448",
}


# --- certificates -----------------------------------------------------------------------------


def der_header(buf: bytes, pos: int) -> tuple[int, int, int] | None:
    """(tag, header length, content length) of the DER element at ``pos``, if its header is
    present and in the low-tag, definite form."""
    if len(buf) - pos < 2:
        return None
    tag, first = buf[pos], buf[pos + 1]
    if tag & 0x1F == 0x1F:
        return None
    if first < 0x80:
        return tag, 2, first
    n = first & 0x7F
    if n == 0 or n > 4 or len(buf) - pos < 2 + n:
        return None
    return tag, 2 + n, int.from_bytes(buf[pos + 2 : pos + 2 + n], "big")


def _oid_text(content: bytes) -> str:
    arcs: list[int] = []
    value = 0
    for b in content[:64]:
        value = (value << 7) | (b & 0x7F)
        if not b & 0x80:
            arcs.append(value)
            value = 0
    if not arcs:
        return "?"
    first = arcs[0]
    head = [0, first] if first < 40 else [1, first - 40] if first < 80 else [2, first - 80]
    return ".".join(str(a) for a in head + arcs[1:])


def _time_text(tag: int, content: bytes) -> str:
    text = content.decode("ascii", "replace")
    try:
        if tag == 0x17 and len(text) == 13:  # UTCTime YYMMDDHHMMSSZ
            year = int(text[:2])
            year += 2000 if year < 50 else 1900
            return f"{year}-{text[2:4]}-{text[4:6]}T{text[6:8]}:{text[8:10]}:{text[10:12]}Z"
        if tag == 0x18 and len(text) == 15:  # GeneralizedTime YYYYMMDDHHMMSSZ
            return f"{text[:4]}-{text[4:6]}-{text[6:8]}T{text[8:10]}:{text[10:12]}:{text[12:14]}Z"
    except ValueError:
        pass
    return text


def name_text(whole: bytes, complete: bool) -> str:
    """A DER Name as RFC 4514; a cut one shows its complete RDNs and ends with "…"."""
    if complete:
        try:
            return decode_dn(whole)
        except DecodeError as exc:
            return f"(undecodable name: {exc}; {short_hex(whole)})"
    hdr = der_header(whole, 0)
    if hdr is None:
        return "…"
    pos = hdr[1]
    rdns = b""
    while (h := der_header(whole, pos)) is not None and pos + h[1] + h[2] <= len(whole):
        rdns += whole[pos : pos + h[1] + h[2]]
        pos += h[1] + h[2]
    if not rdns:
        return "…"
    try:
        return decode_dn(bytes([0x30]) + _der_len(len(rdns)) + rdns) + " …"
    except DecodeError:
        return "…"


def _der_len(n: int) -> bytes:
    if n < 0x80:
        return bytes([n])
    raw = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes([0x80 | len(raw)]) + raw


def _partial_certificate(der: bytes) -> dict[str, object]:
    """The TBSCertificate fields that are complete among the bytes present (RFC 5280 §4.1)."""
    out: dict[str, object] = {}
    top = der_header(der, 0)
    if top is None or top[0] != 0x30:
        return out
    tbs = der_header(der, top[1])
    if tbs is None or tbs[0] != 0x30:
        return out
    pos = top[1] + tbs[1]
    end = pos + tbs[2]
    if end > top[1] + top[2]:
        out["problem"] = "the TBSCertificate is longer than the certificate (damaged bytes?)"
    view = der[:end]
    names = ("issuer", "subject")
    expect = ["version", "serial", "signature", "issuer", "validity", "subject", "key"]
    while expect and (h := der_header(view, pos)) is not None:
        tag, hl, cl = h
        whole = view[pos : pos + hl + cl]
        complete = len(whole) == hl + cl
        content = whole[hl:]
        want = expect.pop(0)
        if want == "version" and tag != 0xA0:
            want = expect.pop(0)
        if want == "version":
            pass
        elif want == "serial":
            if tag != 0x02:
                out["problem"] = f"unexpected tag 0x{tag:02X} where the serial number belongs"
                break
            if complete:
                out["serial"] = content.hex() or "0"
        elif want == "signature":
            if complete and tag == 0x30 and (o := der_header(content, 0)) and o[0] == 0x06:
                oid = _oid_text(content[o[1] : o[1] + o[2]])
                out["signature"] = _SIG_OIDS.get(oid, oid)
        elif want in names:
            if tag != 0x30:
                out["problem"] = f"unexpected tag 0x{tag:02X} where the {want} belongs"
                break
            out[want] = name_text(whole, complete)
        elif want == "validity" and tag == 0x30:
            inner = 0
            times: list[str] = []
            while (t := der_header(content, inner)) is not None and inner + t[1] + t[2] <= len(
                content
            ):
                times.append(_time_text(t[0], content[inner + t[1] : inner + t[1] + t[2]]))
                inner += t[1] + t[2]
            if times:
                out["not_before"] = times[0]
            if len(times) > 1:
                out["not_after"] = times[1]
        elif want == "key" and tag == 0x30 and complete:
            out["key"] = _spki_text(content)
        if not complete:
            break
        pos += hl + cl
    if expect and pos >= end and len(der) >= end and "problem" not in out:
        out["problem"] = (
            f"the TBSCertificate ends after {tbs[2]} bytes, before its {expect[0]} (damaged bytes?)"
        )
    return out


def _spki_text(content: bytes) -> str:
    alg = der_header(content, 0)
    if alg is None:
        return "?"
    oid_h = der_header(content, alg[1])
    name = "?"
    if oid_h is not None and oid_h[0] == 0x06:
        oid = _oid_text(content[alg[1] + oid_h[1] : alg[1] + oid_h[1] + oid_h[2]])
        name = _KEY_OIDS.get(oid, oid)
    if name == "RSA":
        bits_at = alg[1] + alg[2]
        bs = der_header(content, bits_at)
        if bs is not None and bs[0] == 0x03:
            inner = content[bits_at + bs[1] + 1 :]
            seq = der_header(inner, 0)
            if seq is not None:
                mod = der_header(inner, seq[1])
                if mod is not None and mod[0] == 0x02:
                    modulus = inner[seq[1] + mod[1] : seq[1] + mod[1] + mod[2]].lstrip(b"\0")
                    return f"RSA {len(modulus) * 8 if modulus else 0}"
    return name


def certificate_ref(der: bytes, declared: int, index: int) -> CertRef:
    """A certificate from its DER bytes (all, or the first ``len(der)`` of ``declared``)."""
    present = len(der)
    missing = max(0, declared - present)
    if missing == 0:
        from ..verify import key_description, sans

        try:
            cert = x509.load_der_x509_certificate(der)
            try:
                sig = cert.signature_algorithm_oid._name
            except AttributeError:
                sig = cert.signature_algorithm_oid.dotted_string
            return CertRef(
                index=index,
                length=declared,
                present=present,
                missing=0,
                subject=cert.subject.rfc4514_string(),
                issuer=cert.issuer.rfc4514_string(),
                not_before=cert.not_valid_before_utc.strftime("%Y-%m-%dT%H:%M:%SZ"),
                not_after=cert.not_valid_after_utc.strftime("%Y-%m-%dT%H:%M:%SZ"),
                serial=f"{cert.serial_number:x}",
                key=key_description(cert),
                signature=str(sig),
                san=sans(cert),
                sha256=hashlib.sha256(der).hexdigest(),
            )
        except Exception as exc:  # cryptography raises ValueError and friends on bad DER
            fields = _partial_certificate(der)
            return _cert_from_fields(index, declared, present, 0, fields, f"not parseable: {exc}")
    fields = _partial_certificate(der)
    problem = f"truncated: {declared} bytes declared, {present} present ({missing} missing)"
    return _cert_from_fields(index, declared, present, missing, fields, problem)


def _cert_from_fields(
    index: int, declared: int, present: int, missing: int, f: dict[str, object], problem: str
) -> CertRef:
    def s(key: str) -> str | None:
        v = f.get(key)
        return v if isinstance(v, str) else None

    extra = s("problem")
    return CertRef(
        index=index,
        length=declared,
        present=present,
        missing=missing,
        subject=s("subject"),
        issuer=s("issuer"),
        not_before=s("not_before"),
        not_after=s("not_after"),
        serial=s("serial"),
        key=s("key"),
        signature=s("signature"),
        problem=problem + (f"; {extra}" if extra else ""),
    )


def certificate_lines(c: CertRef) -> list[str]:
    head = f"certificate {c.index + 1}: {c.length} bytes"
    if c.missing:
        head += f", {c.present} present ({c.missing} missing)"
    lines = [head]
    for label, value in (
        ("subject", c.subject),
        ("issuer", c.issuer),
        (
            "valid",
            f"{c.not_before or '?'} .. {c.not_after or '?'}"
            if c.not_before or c.not_after
            else None,
        ),
        ("key", c.key),
        ("signature", c.signature),
        ("serial", c.serial),
        ("names", ", ".join(c.san) if c.san else None),
        ("sha256", c.sha256),
    ):
        if value:
            lines.append(f"  {label} {value}")
    if c.problem:
        lines.append(f"  ! {c.problem}")
    return lines
