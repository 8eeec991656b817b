"""The cipher-suite reference: every IANA suite with its OpenSSL name, IBM MQ CipherSpec names,
GSKit (z/OS System SSL, IBM i) codes and Transfer CFT CIPHLIST numbers.

Theory of operation
-------------------
The IANA registry (`wire.registry`) is the spine: one row per codepoint. Vendor names hang off
it from data in ``profiles/vendor/*.toml`` (read once, validated strictly; code holds no
vendor table):

* **IBM MQ** (``mq.toml``): a CipherSpec name is bound to a protocol version. The same
  codepoint has different names on different versions (0x000A is TRIPLE_DES_SHA_US on SSL 3.0
  and TLS_RSA_WITH_3DES_EDE_CBC_SHA on TLS 1.0), so names are keyed by (code, version). The
  alias CipherSpecs (ANY, ANY_TLS12, ...) name a version range, not a suite; they expand to the
  suites a queue manager enables in that range, in its handshake order.
* **GSKit** (``gskit.toml``): 2-character codes are the low byte of 0x00XX suites, 4-character
  codes are the IANA codepoint. Codes a source lists are "confirmed"; the rest follow the rule
  and are labelled "inferred".
* **Transfer CFT** (``cft.toml``): CIPHLIST numbers are decimal IANA codepoints, with the same
  confirmed / inferred split.
* **Non-IANA codepoints** (``nonstandard.toml``): a few MQ CipherSpecs negotiate suites IANA
  never assigned (0x0062, 0x0064, 0xFEFE, 0xFEFF); they get rows of their own.

Confidence follows reference/vendor-codes.md: C confirmed, K knowledge (consistent but the row
was not shown), U unconfirmed; a value derived from a rule is "inferred".

This module is the table and its lookups by codepoint and by MQ name; it knows no spelling
rules. Turning a token of any accepted spelling into suites (``--ciphers``, partner profiles,
``overlap``) and the looser search of ``tlsprobe ciphers`` are :mod:`probe.ciphernames`.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any

from .paths import profiles_dir
from .tomldata import SSL_TLS_VERSIONS, DataError, Fields, hex_code, read_toml
from .wire import registry
from .wire.registry import Suite

CONFIDENCE = ("C", "K", "U")
INFERRED = "inferred"
CONFIDENCE_WORDS = {
    "C": "confirmed",
    "K": "standard knowledge, not confirmed by a source",
    "U": "unconfirmed",
    INFERRED: "inferred from the vendor's numbering rule, not listed by a source",
}


# ---------------------------------------------------------------------------------------------
# Records
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class MQCipherSpec:
    """One IBM MQ CipherSpec: an SSLCIPH name bound to one suite at one protocol version."""

    name: str
    code: int
    protocol: int
    deprecated: bool
    platforms: str
    confidence: str
    note: str
    source: str

    @property
    def protocol_name(self) -> str:
        return registry.version_name(self.protocol) or hex(self.protocol)


@dataclass(frozen=True, slots=True, kw_only=True)
class MQAlias:
    """An alias CipherSpec (ANY, ANY_TLS12, ...): a range of protocol versions."""

    name: str
    meaning: str
    kind: str  # "minimum" | "fixed"
    min_version: int | None
    max_version: int | None
    since: str
    confidence: str
    source: str

    def versions(self, enabled: Iterable[int]) -> tuple[int, ...]:
        """The enabled versions this alias admits."""
        lo = self.min_version or 0
        hi = self.max_version or 0xFFFF
        return tuple(sorted(v for v in enabled if lo <= v <= hi))


@dataclass(frozen=True, slots=True, kw_only=True)
class VendorCode:
    """A vendor's spelling of a codepoint (GSKit code, CFT number) and how sure it is."""

    value: str
    confidence: str  # C | K | U | inferred
    note: str = ""

    @property
    def inferred(self) -> bool:
        return self.confidence == INFERRED


@dataclass(frozen=True, slots=True, kw_only=True)
class CipherRow:
    """One row of the reference: a codepoint and every name it goes by."""

    suite: Suite
    iana_assigned: bool
    openssl_legacy: str | None  # names of suites today's OpenSSL no longer has
    versions: tuple[int, ...]
    mq: tuple[MQCipherSpec, ...]
    gsk_short: VendorCode | None
    gsk_long: VendorCode | None
    cft: VendorCode | None
    note: str = ""

    @property
    def code(self) -> int:
        return self.suite.code

    def names(self) -> tuple[str, ...]:
        """Every spelling that finds this row (for search and suggestions)."""
        out = [self.suite.iana]
        if self.suite.openssl:
            out.append(self.suite.openssl)
        if self.openssl_legacy:
            out.append(self.openssl_legacy)
        out += [f"mq:{m.name}" for m in self.mq]
        return tuple(out)


@dataclass(frozen=True, slots=True)
class QueueManager:
    versions: tuple[int, ...]
    order: tuple[MQCipherSpec, ...]
    note: str
    source: str


@dataclass(frozen=True, slots=True)
class Reference:
    rows: tuple[CipherRow, ...]
    by_code: Mapping[int, CipherRow]
    mq_specs: Mapping[str, MQCipherSpec]  # by upper-case name
    mq_aliases: Mapping[str, MQAlias]  # by upper-case name
    queue_manager: QueueManager
    gsk_rule: tuple[str, str, str]  # short, long, source
    cft_rule: tuple[str, str]  # text, source
    cft_order: tuple[int, ...]  # the documented CIPHLIST values, CFT's preference order


# ---------------------------------------------------------------------------------------------
# Loading
# ---------------------------------------------------------------------------------------------


def vendor_dir() -> Path:
    return profiles_dir() / "vendor"


def _load_mq(path: Path) -> tuple[dict[str, MQCipherSpec], dict[str, MQAlias], dict[str, Any]]:
    top = Fields.of(path, "", read_toml(path))
    top.check({"queue_manager", "alias", "cipherspec"}, {"queue_manager", "alias", "cipherspec"})
    specs: dict[str, MQCipherSpec] = {}
    for f in top.tables("cipherspec"):
        f.check(
            {"name", "code", "protocol", "deprecated", "platforms", "confidence", "note", "source"},
            {"name", "code", "protocol", "deprecated", "platforms", "confidence", "source"},
        )
        spec = MQCipherSpec(
            name=f.text("name"),
            code=hex_code(f, "code"),
            protocol=f.version("protocol"),
            deprecated=f.flag("deprecated"),
            platforms=f.text("platforms"),
            confidence=f.choice("confidence", CONFIDENCE),
            note=f.text("note", ""),
            source=f.text("source"),
        )
        if spec.name.upper() in specs:
            raise DataError(path, f.at("name"), f"{spec.name!r} listed twice")
        specs[spec.name.upper()] = spec
    aliases: dict[str, MQAlias] = {}
    for f in top.tables("alias"):
        f.check(
            {
                "name",
                "meaning",
                "kind",
                "min_version",
                "max_version",
                "since",
                "confidence",
                "source",
            },
            {"name", "meaning", "kind", "since", "confidence", "source"},
        )
        alias = MQAlias(
            name=f.text("name"),
            meaning=f.text("meaning"),
            kind=f.choice("kind", ("minimum", "fixed")),
            min_version=f.version("min_version") if f.has("min_version") else None,
            max_version=f.version("max_version") if f.has("max_version") else None,
            since=f.text("since"),
            confidence=f.choice("confidence", CONFIDENCE),
            source=f.text("source"),
        )
        if alias.name.upper() in aliases or alias.name.upper() in specs:
            raise DataError(path, f.at("name"), f"{alias.name!r} listed twice")
        aliases[alias.name.upper()] = alias
    qm = Fields.of(path, "queue_manager", top.table["queue_manager"])
    qm.check(
        {"versions", "order", "confidence", "note", "source"},
        {"versions", "order", "confidence", "source"},
    )
    order: list[MQCipherSpec] = []
    for i, name in enumerate(qm.texts("order")):
        spec_or_none = specs.get(name.upper())
        if spec_or_none is None:
            raise DataError(path, f"queue_manager.order[{i}]", f"{name!r} is no [[cipherspec]]")
        order.append(spec_or_none)
    qm_data = {
        "versions": qm.versions("versions"),
        "order": tuple(order),
        "note": qm.text("note", ""),
        "source": qm.text("source"),
        "confidence": qm.choice("confidence", CONFIDENCE),
    }
    return specs, aliases, qm_data


def _load_gskit(path: Path) -> tuple[dict[int, VendorCode], tuple[str, str, str]]:
    top = Fields.of(path, "", read_toml(path))
    top.check({"rule", "code"}, {"rule", "code"})
    rule = Fields.of(path, "rule", top.table["rule"])
    rule.check({"short", "long", "confidence", "source"}, {"short", "long", "confidence", "source"})
    rule.choice("confidence", CONFIDENCE)
    codes: dict[int, VendorCode] = {}
    for f in top.tables("code"):
        f.check({"code", "confidence", "note", "source"}, {"code", "confidence", "source"})
        text = f.text("code").upper()
        if not re.fullmatch(r"[0-9A-F]{2}|[0-9A-F]{4}", text):
            raise DataError(path, f.at("code"), f"{text!r}: 2 or 4 hex digits")
        code = int(text, 16)
        if code in codes:
            raise DataError(path, f.at("code"), f"{text!r} listed twice")
        f.text("source")
        codes[code] = VendorCode(
            value=text, confidence=f.choice("confidence", CONFIDENCE), note=f.text("note", "")
        )
    return codes, (rule.text("short"), rule.text("long"), rule.text("source"))


def _load_cft(path: Path) -> tuple[dict[int, VendorCode], tuple[int, ...], tuple[str, str]]:
    top = Fields.of(path, "", read_toml(path))
    top.check({"rule", "ciphlist"}, {"rule", "ciphlist"})
    rule = Fields.of(path, "rule", top.table["rule"])
    rule.check({"text", "confidence", "source"}, {"text", "confidence", "source"})
    rule.choice("confidence", CONFIDENCE)
    numbers: dict[int, VendorCode] = {}
    for f in top.tables("ciphlist"):
        f.check({"number", "confidence", "note", "source"}, {"number", "confidence", "source"})
        n = f.integer("number")
        if not 0 <= n <= 0xFFFF:
            raise DataError(path, f.at("number"), f"{n}: a codepoint is 0..65535")
        if n in numbers:
            raise DataError(path, f.at("number"), f"{n} listed twice")
        f.text("source")
        numbers[n] = VendorCode(
            value=str(n), confidence=f.choice("confidence", CONFIDENCE), note=f.text("note", "")
        )
    return numbers, tuple(numbers), (rule.text("text"), rule.text("source"))


def _load_nonstandard(path: Path) -> list[tuple[Suite, str | None, str]]:
    top = Fields.of(path, "", read_toml(path))
    top.check({"suite"}, {"suite"})
    out: list[tuple[Suite, str | None, str]] = []
    keys = {
        "code",
        "name",
        "openssl_legacy",
        "kx",
        "auth",
        "cipher",
        "mac",
        "bits",
        "min_version",
        "export",
        "note",
        "source",
    }
    for f in top.tables("suite"):
        f.check(keys, keys - {"openssl_legacy", "note"})
        code = hex_code(f, "code")
        if registry.suite(code) is not None:
            raise DataError(path, f.at("code"), f"0x{code:04X} is an IANA suite; drop this row")
        f.text("source")
        suite = Suite(
            code=code,
            iana=f.text("name"),
            openssl=None,
            kx=f.text("kx"),
            auth=f.text("auth"),
            cipher=f.text("cipher"),
            mac=f.text("mac"),
            bits=f.integer("bits"),
            min_version=f.version("min_version"),
            export=f.flag("export"),
            tls13=False,
            scsv=False,
        )
        legacy = f.text("openssl_legacy") if f.has("openssl_legacy") else None
        out.append((suite, legacy, f.text("note", "")))
    return out


def suite_versions(s: Suite) -> tuple[int, ...]:
    """The SSL 3.0 .. TLS 1.3 versions at which a suite can be negotiated."""
    if s.scsv:
        return ()
    if s.tls13:
        return (0x0304,)
    return tuple(v for v in SSL_TLS_VERSIONS if v < 0x0304 and v >= s.min_version)


def usable_at(s: Suite, version: int) -> bool:
    return version in suite_versions(s)


@functools.cache
def reference() -> Reference:
    """The whole reference, built once per process."""
    d = vendor_dir()
    specs, aliases, qm = _load_mq(d / "mq.toml")
    gsk_listed, gsk_rule = _load_gskit(d / "gskit.toml")
    cft_listed, cft_order, cft_rule = _load_cft(d / "cft.toml")
    extra = _load_nonstandard(d / "nonstandard.toml")

    by_code_mq: dict[int, list[MQCipherSpec]] = {}
    for spec in specs.values():
        by_code_mq.setdefault(spec.code, []).append(spec)

    suites: list[tuple[Suite, bool, str | None, str]] = [
        (s, True, None, "") for s in registry.all_suites()
    ]
    suites += [(s, False, legacy, note) for s, legacy, note in extra]
    known = {s.code for s, *_ in suites}
    for spec in specs.values():
        if spec.code not in known:
            raise DataError(
                d / "mq.toml", f"cipherspec {spec.name}", f"0x{spec.code:04X} is no known suite"
            )
    rows: list[CipherRow] = []
    for s, assigned, legacy, note in sorted(suites, key=lambda t: t[0].code):
        mq = tuple(sorted(by_code_mq.get(s.code, ()), key=lambda m: m.protocol))
        rows.append(
            CipherRow(
                suite=s,
                iana_assigned=assigned,
                openssl_legacy=legacy,
                versions=suite_versions(s),
                mq=mq,
                gsk_short=None if s.scsv else _gsk_short(s.code, gsk_listed),
                gsk_long=None if s.scsv else _gsk_long(s.code, gsk_listed),
                cft=None if s.scsv else _cft(s.code, cft_listed),
                note=note,
            )
        )
    return Reference(
        rows=tuple(rows),
        by_code=MappingProxyType({r.code: r for r in rows}),
        mq_specs=MappingProxyType(specs),
        mq_aliases=MappingProxyType(aliases),
        queue_manager=QueueManager(
            versions=qm["versions"], order=qm["order"], note=qm["note"], source=qm["source"]
        ),
        gsk_rule=gsk_rule,
        cft_rule=cft_rule,
        cft_order=cft_order,
    )


def _gsk_short(code: int, listed: Mapping[int, VendorCode]) -> VendorCode | None:
    if code > 0xFF:
        return None
    # A listed code of a 0x00XX suite confirms both of its spellings (2 and 4 characters).
    hit = listed.get(code)
    if hit is not None:
        return VendorCode(value=f"{code:02X}", confidence=hit.confidence, note=hit.note)
    return VendorCode(value=f"{code:02X}", confidence=INFERRED)


def _gsk_long(code: int, listed: Mapping[int, VendorCode]) -> VendorCode:
    hit = listed.get(code)
    if hit is not None:
        return VendorCode(value=f"{code:04X}", confidence=hit.confidence, note=hit.note)
    return VendorCode(value=f"{code:04X}", confidence=INFERRED)


def _cft(code: int, listed: Mapping[int, VendorCode]) -> VendorCode:
    hit = listed.get(code)
    if hit is not None:
        return hit
    note = (
        "TLS 1.3 CIPHLIST values are not confirmed by any source"
        if 0x1300 <= code <= 0x13FF
        else ""
    )
    return VendorCode(value=str(code), confidence=INFERRED, note=note)


def row(code: int) -> CipherRow | None:
    return reference().by_code.get(code)


def suite_for(code: int) -> Suite | None:
    """The registry suite, or the vendor-named non-IANA one."""
    r = row(code)
    return r.suite if r else None


def mq_names(code: int, version: int | None = None) -> tuple[MQCipherSpec, ...]:
    """MQ CipherSpecs that negotiate ``code`` (at ``version`` when given)."""
    r = row(code)
    if r is None:
        return ()
    return tuple(m for m in r.mq if version is None or m.protocol == version)


# ---------------------------------------------------------------------------------------------
# MQ SSLCIPH values
# ---------------------------------------------------------------------------------------------


def mq_spec(name: str) -> MQCipherSpec | None:
    return reference().mq_specs.get(name.strip().upper())


def mq_alias(name: str) -> MQAlias | None:
    return reference().mq_aliases.get(name.strip().upper())


def mq_alias_suites(alias: MQAlias) -> tuple[Suite, ...]:
    """The suites a queue manager enables in the alias's version range, in handshake order."""
    qm = reference().queue_manager
    allowed = set(alias.versions(qm.versions))
    out: list[Suite] = []
    for spec in qm.order:
        s = suite_for(spec.code)
        if s is not None and spec.protocol in allowed and s not in out:
            out.append(s)
    return tuple(out)


# ---------------------------------------------------------------------------------------------
# JSON shapes
# ---------------------------------------------------------------------------------------------


def mq_json(m: MQCipherSpec) -> dict[str, Any]:
    return {
        "name": m.name,
        "protocol": m.protocol_name,
        "deprecated": m.deprecated,
        "platforms": m.platforms,
        "confidence": m.confidence,
        "note": m.note or None,
    }


def vendor_code_json(c: VendorCode | None) -> dict[str, Any] | None:
    if c is None:
        return None
    return {"value": c.value, "confidence": c.confidence, "note": c.note or None}


def row_json(r: CipherRow) -> dict[str, Any]:
    """A reference row as JSON (the `ciphers` schema; overlap suites use the same keys)."""
    return {
        "code": r.suite.hex,
        "iana": r.suite.iana if r.iana_assigned else None,
        "name": r.suite.iana,
        "openssl": r.suite.openssl or r.openssl_legacy,
        "iana_assigned": r.iana_assigned,
        "versions": [registry.version_name(v) for v in r.versions],
        "weak": registry.is_weak(r.suite),
        "mq": [mq_json(m) for m in r.mq],
        "gskit": {
            "short": vendor_code_json(r.gsk_short),
            "long": vendor_code_json(r.gsk_long),
        },
        "cft": vendor_code_json(r.cft),
        "note": r.note or None,
    }


def alias_json(a: MQAlias) -> dict[str, Any]:
    qm = reference().queue_manager
    return {
        "name": a.name,
        "meaning": a.meaning,
        "kind": a.kind,
        "versions": [registry.version_name(v) for v in a.versions(qm.versions)],
        "min_version": registry.version_name(a.min_version) if a.min_version else None,
        "max_version": registry.version_name(a.max_version) if a.max_version else None,
        "since": a.since,
        "confidence": a.confidence,
        "suites": [s.hex for s in mq_alias_suites(a)],
    }
