"""The diagnosis knowledge base: likely causes, fixes and vendor codes, loaded from TOML.

The knowledge lives in ``profiles/diagnosis.toml`` (data, not code); this module reads it once,
checks it strictly and hands out frozen :class:`Cause` records. The product depends on this data
(every probe result carries a diagnosis, ``explain`` looks codes up in it), so a malformed file is
a bug that must fail loudly with the file and the exact key, never half-load.

File shape::

    [cause.<id>]                    # id: lower_snake_case, stable (the classifier emits it)
    outcome  = "cipher_mismatch"    # a SPEC outcome, or "" for informational causes
    summary  = "..."                # one line
    fix      = "..."
    scenario = "no-shared-cipher"   # optional: lab scenario that reproduces it
    side     = "both"               # local | remote | both: where the fix usually belongs
    alerts   = [40]                 # optional: TLS alert numbers that point at this cause
    terms    = ["cipher mismatch"]  # optional: operators' words for it ("explain" finds them)
    [[cause.<id>.vendor]]
    product    = "IBM MQ"           # IBM MQ | z/OS System SSL | IBM i | Transfer CFT
    codes      = ["AMQ9631"]        # may be empty when the entry states a fact, not a code
    where      = "server"           # server | client | either: which end logs it
    text       = "..."
    confidence = "C"                # C confirmed | K knowledge | U unconfirmed
    source     = "reference/vendor-codes.md §2"   # or seeds/..., SPEC.md, RFC n §x; "; "-joined
    protocols  = ["ftp"]            # optional: shown only for probes that used these --starttls

Codes follow one spelling per product (checked here), so that ``explain`` can find them:
MQ ``AMQ9631`` / ``CSQX631E`` / ``MQRC 2393``; z/OS ``RC 428`` / ``CMS 0335304B`` / message ids;
IBM i ``RC 402`` / ``RC -16`` / ``CPDBC81`` / ``TCP2550``; Transfer CFT ``CR=48`` / ``CFTY13E`` /
``260 PKI 040`` / ``TLS_ERR_...``. :func:`find_code` normalises what a user types to that form.

``profiles/codes.toml`` (:func:`load_codes`) is the companion catalogue: each code's own meaning,
symbolic names and confidence, pointing at the cause it belongs to (its shape is described with
the loader below).
"""

from __future__ import annotations

import functools
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any

from .result import OUTCOMES
from .upgrade import DIALOGS

PRODUCTS = ("IBM MQ", "z/OS System SSL", "IBM i", "Transfer CFT")
WHERE = ("server", "client", "either")
SIDES = ("local", "remote", "both")
CONFIDENCE_LABELS = {
    "C": "confirmed",
    "K": "knowledge, not confirmed by a source",
    "U": "unconfirmed",
}

_ID_RE = re.compile(r"[a-z][a-z0-9_]*\Z")
_SCENARIO_RE = re.compile(r"[a-z0-9]+(-[a-z0-9]+)*\Z")
_SOURCE_RE = re.compile(
    r"(reference/vendor-codes\.md( §\d+[a-z]?)?"
    r"|seeds/\d{3}_[0-9a-f]{16}\.txt"
    r"|SPEC\.md"
    r"|RFC \d+( §[0-9.]+)?)\Z"
)
# One spelling per product; a code outside these shapes is a typo or a new kind of code that
# should be added here deliberately.
_CODE_RE: dict[str, re.Pattern[str]] = {
    "IBM MQ": re.compile(r"(AMQ\d{4}|CSQX\d{3}E|MQRC \d{4})\Z"),
    "z/OS System SSL": re.compile(
        r"(RC \d{1,4}|CMS [0-9A-F]{8}|FTP \d{3}|(EZ[A-Z]|EDC)\d{4}I|ICH\d{3}I)\Z"
    ),
    # CPCBC80 is the one CPC message (GSKit 0, success) among the CPDBC failure messages.
    "IBM i": re.compile(r"(RC -?\d{1,4}|CP[CD]BC[0-9A-F]{2}|CPE\d{4}|TCP\d{4})\Z"),
    "Transfer CFT": re.compile(
        r"(CR=-?\d{1,3}|CFT[A-Z]\d{2}[A-Z]|\d{3} [A-Z]+( \d{3})?|TLS_ERR_[A-Z_]+)\Z"
    ),
}
_SUMMARY_MAX = 200

_CAUSE_KEYS = {"outcome", "summary", "fix", "scenario", "side", "alerts", "vendor", "terms"}
_CAUSE_REQUIRED = {"outcome", "summary", "fix", "side"}
_VENDOR_REQUIRED = {"product", "codes", "where", "text", "confidence", "source"}
_VENDOR_KEYS = _VENDOR_REQUIRED | {"protocols"}


class CauseDataError(Exception):
    """The diagnosis data is malformed; the message names the file and the key."""

    def __init__(self, path: Path, key: str, problem: str) -> None:
        super().__init__(f"{path}: {key}: {problem}")
        self.path = path
        self.key = key
        self.problem = problem


@dataclass(frozen=True, slots=True, kw_only=True)
class VendorCode:
    """What one vendor product logs for a cause."""

    product: str
    codes: tuple[str, ...]
    where: str
    text: str
    confidence: str
    source: str
    # The --starttls protocols the entry is about (z/OS FTP's 234 means nothing to an SMTP
    # probe); empty: any probe.
    protocols: tuple[str, ...] = ()

    def applies_to(self, protocol: str | None) -> bool:
        return not self.protocols or protocol in self.protocols

    @property
    def confirmed(self) -> bool:
        return self.confidence == "C"

    @property
    def confidence_label(self) -> str:
        """How sure the entry is, in words for a reader ("confirmed", "unconfirmed", ...)."""
        return CONFIDENCE_LABELS[self.confidence]


@dataclass(frozen=True, slots=True, kw_only=True)
class Cause:
    """One likely cause of a probe outcome, with its fix and vendor codes."""

    id: str
    outcome: str  # a SPEC outcome, or "" when informational only
    summary: str
    fix: str
    scenario: str | None
    side: str
    vendor: tuple[VendorCode, ...]
    alerts: tuple[int, ...] = ()
    terms: tuple[str, ...] = ()  # phrases operators use for it ("expired cert", "missing CA")


@functools.cache  # asked once per probe result; the answer never changes in a process
def _default_path() -> Path:
    from .paths import profiles_dir

    return profiles_dir() / "diagnosis.toml"


def load_causes(path: Path | None = None) -> Mapping[str, Cause]:
    """All causes by id, in file order; read and validated once per file (cached)."""
    return _load(Path(path) if path is not None else _default_path())


@functools.cache
def _load(path: Path) -> Mapping[str, Cause]:
    return MappingProxyType(_parse(path, _read_toml(path)))


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as fh:
            return tomllib.load(fh)
    except OSError as exc:
        raise CauseDataError(path, "(file)", f"cannot read: {exc.strerror or exc}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise CauseDataError(path, "(file)", f"not valid TOML: {exc}") from exc


def _parse(path: Path, data: dict[str, Any]) -> dict[str, Cause]:
    extra = set(data) - {"cause"}
    if extra:
        raise CauseDataError(
            path, sorted(extra)[0], "unknown top-level key (expected only [cause.*])"
        )
    table = data.get("cause")
    if not isinstance(table, dict) or not table:
        raise CauseDataError(path, "cause", "missing or empty: expected [cause.<id>] tables")
    causes: dict[str, Cause] = {}
    for cid, body in table.items():
        key = f"cause.{cid}"
        if not _ID_RE.match(cid):
            raise CauseDataError(path, key, "cause id must be lower_snake_case")
        if not isinstance(body, dict):
            raise CauseDataError(path, key, "expected a table")
        causes[cid] = _parse_cause(path, key, cid, body)
    return causes


def _parse_cause(path: Path, key: str, cid: str, body: dict[str, Any]) -> Cause:
    _check_keys(path, key, body, _CAUSE_KEYS, _CAUSE_REQUIRED)
    outcome = _str(path, f"{key}.outcome", body["outcome"], allow_empty=True)
    if outcome and outcome not in OUTCOMES:
        raise CauseDataError(path, f"{key}.outcome", f'{outcome!r} is not a SPEC outcome (or "")')
    summary = _str(path, f"{key}.summary", body["summary"])
    if "\n" in summary or len(summary) > _SUMMARY_MAX:
        raise CauseDataError(
            path, f"{key}.summary", f"must be one line of at most {_SUMMARY_MAX} characters"
        )
    fix = _str(path, f"{key}.fix", body["fix"])
    scenario: str | None = None
    if "scenario" in body:
        scenario = _str(path, f"{key}.scenario", body["scenario"])
        if not _SCENARIO_RE.match(scenario):
            raise CauseDataError(
                path, f"{key}.scenario", f"{scenario!r} is not a lab scenario name"
            )
    side = _choice(path, f"{key}.side", body["side"], SIDES)
    alerts = _alerts(path, f"{key}.alerts", body.get("alerts", []))
    terms = _terms(path, f"{key}.terms", body.get("terms", []))
    raw_vendor = body.get("vendor", [])
    if not isinstance(raw_vendor, list):
        raise CauseDataError(path, f"{key}.vendor", "expected [[...vendor]] entries")
    vendor = tuple(
        _parse_vendor(path, f"{key}.vendor[{i}]", entry) for i, entry in enumerate(raw_vendor)
    )
    return Cause(
        id=cid,
        outcome=outcome,
        summary=summary,
        fix=fix,
        scenario=scenario,
        side=side,
        vendor=vendor,
        alerts=alerts,
        terms=terms,
    )


def _parse_vendor(path: Path, key: str, entry: object) -> VendorCode:
    if not isinstance(entry, dict):
        raise CauseDataError(path, key, "expected a table")
    _check_keys(path, key, entry, _VENDOR_KEYS, _VENDOR_REQUIRED)
    product = _choice(path, f"{key}.product", entry["product"], PRODUCTS)
    raw_codes = entry["codes"]
    if not isinstance(raw_codes, list):
        raise CauseDataError(
            path, f"{key}.codes", f"expected a list of strings, got {_tname(raw_codes)}"
        )
    codes: list[str] = []
    for j, code in enumerate(raw_codes):
        ckey = f"{key}.codes[{j}]"
        code = _str(path, ckey, code)
        if not _CODE_RE[product].match(code):
            raise CauseDataError(path, ckey, f"{code!r} is not a {product} code spelling")
        if code in codes:
            raise CauseDataError(path, ckey, f"{code!r} listed twice")
        codes.append(code)
    where = _choice(path, f"{key}.where", entry["where"], WHERE)
    text = _str(path, f"{key}.text", entry["text"])
    confidence = _choice(path, f"{key}.confidence", entry["confidence"], tuple(CONFIDENCE_LABELS))
    source = _source(path, f"{key}.source", entry["source"])
    protocols = _terms(path, f"{key}.protocols", entry.get("protocols", []))
    for j, name in enumerate(protocols):
        if name not in DIALOGS:
            raise CauseDataError(
                path, f"{key}.protocols[{j}]", f"{name!r} is not one of: {', '.join(DIALOGS)}"
            )
    return VendorCode(
        product=product,
        codes=tuple(codes),
        where=where,
        text=text,
        confidence=confidence,
        source=source,
        protocols=protocols,
    )


def _source(path: Path, key: str, value: object) -> str:
    source = _str(path, key, value)
    for part in source.split("; "):
        if not _SOURCE_RE.match(part):
            raise CauseDataError(
                path,
                key,
                f"{part!r} is not a source reference "
                "(reference/vendor-codes.md §N, seeds/<file>.txt, SPEC.md, RFC n §x)",
            )
    return source


def _check_keys(
    path: Path, key: str, table: dict[str, Any], allowed: set[str], required: set[str]
) -> None:
    unknown = sorted(set(table) - allowed)
    if unknown:
        raise CauseDataError(
            path, f"{key}.{unknown[0]}", f"unknown key (allowed: {', '.join(sorted(allowed))})"
        )
    missing = sorted(required - set(table))
    if missing:
        raise CauseDataError(path, f"{key}.{missing[0]}", "required key missing")


def _tname(value: object) -> str:
    return type(value).__name__


def _str(path: Path, key: str, value: object, *, allow_empty: bool = False) -> str:
    if not isinstance(value, str):
        raise CauseDataError(path, key, f"expected a string, got {_tname(value)}")
    if value != value.strip():
        raise CauseDataError(path, key, "leading or trailing whitespace")
    if not value and not allow_empty:
        raise CauseDataError(path, key, "must not be empty")
    return value


def _choice(path: Path, key: str, value: object, choices: tuple[str, ...]) -> str:
    text = _str(path, key, value)
    if text not in choices:
        raise CauseDataError(path, key, f"{text!r} is not one of: {', '.join(choices)}")
    return text


def _terms(path: Path, key: str, value: object) -> tuple[str, ...]:
    if not isinstance(value, list):
        raise CauseDataError(path, key, f"expected a list of phrases, got {_tname(value)}")
    return tuple(_str(path, f"{key}[{j}]", item) for j, item in enumerate(value))


def _alerts(path: Path, key: str, value: object) -> tuple[int, ...]:
    if not isinstance(value, list):
        raise CauseDataError(path, key, f"expected a list of alert numbers, got {_tname(value)}")
    out: list[int] = []
    for j, item in enumerate(value):
        # bool is an int subclass in Python; `true` is never an alert number.
        if not isinstance(item, int) or isinstance(item, bool) or not 0 <= item <= 255:
            raise CauseDataError(
                path, f"{key}[{j}]", f"expected an alert number 0-255, got {item!r}"
            )
        out.append(item)
    return tuple(out)


# ---------------------------------------------------------------------------------------------
# Lookups for `explain` and the classifier
# ---------------------------------------------------------------------------------------------

_PREFIXED = re.compile(r"(RC|MQRC|CMS|FTP)\s*(-?[0-9A-F]+)\Z")
_LOOSE_PREFIX = re.compile(r"(RC|GSK|MQRC|CMS|FTP)\s*[:=]\s*|GSK\s+(?=-?\d)")
_CR = re.compile(r"CR\s*=\s*(-?\d+)\Z")


def normalize_code(text: str) -> str:
    """A user's spelling of a vendor code in the data's form: ``rc428`` -> ``RC 428``,
    ``cr = 48`` -> ``CR=48``, ``amq9631`` -> ``AMQ9631``."""
    s = " ".join(text.strip().upper().split())
    # "RC: 401" (EZD1287I), "rc=-93", "GSK 406": the same return codes.
    s = _LOOSE_PREFIX.sub(lambda m: ("RC" if m.group(0).startswith("GSK") else m.group(1)) + " ", s)
    if m := _CR.match(s):
        return f"CR={int(m.group(1))}"
    if m := _PREFIXED.match(s):
        return f"{m.group(1)} {m.group(2)}"
    return s


def _code_keys(code: str) -> tuple[str, ...]:
    """Keys under which a stored code is found: itself, plus its bare number for numeric codes
    (so ``428`` finds ``RC 428`` on z/OS and IBM i, and ``48`` finds ``CR=48``)."""
    if m := _PREFIXED.match(code):
        return (code, m.group(2))
    if m := _CR.match(code):
        return (code, m.group(1))
    return (code,)


def find_code(
    query: str, causes: Mapping[str, Cause] | None = None
) -> tuple[tuple[Cause, VendorCode], ...]:
    """Every (cause, vendor entry) that lists the code ``query``, in file order."""
    data = causes if causes is not None else load_causes()
    wanted = normalize_code(query)
    return tuple(
        (cause, entry)
        for cause in data.values()
        for entry in cause.vendor
        if any(wanted in _code_keys(code) for code in entry.codes)
    )


def causes_for_outcome(
    outcome: str, causes: Mapping[str, Cause] | None = None
) -> tuple[Cause, ...]:
    """The causes that explain ``outcome``, in file order."""
    data = causes if causes is not None else load_causes()
    return tuple(c for c in data.values() if c.outcome == outcome)


def causes_for_alert(alert: int, causes: Mapping[str, Cause] | None = None) -> tuple[Cause, ...]:
    """The causes a TLS alert number points at, in file order."""
    data = causes if causes is not None else load_causes()
    return tuple(c for c in data.values() if alert in c.alerts)


# ---------------------------------------------------------------------------------------------
# The code catalogue: what one code means on its own
# ---------------------------------------------------------------------------------------------
#
# profiles/codes.toml holds one row per product and code that the reference or a seed names:
# the meaning the source gives (restated), the symbolic names a source ties to it, the source's
# confidence tag and the cause it belongs to. The causes above describe failures and mention
# codes in passing ("RC 435: unknown CA; RC 8: validation error"); a row here is the code's own
# definition, so `explain RC 8` can open with RC 8. A row may cover a range ("RC 6001" to
# "RC 6999") where the source only describes the range. The same file carries the TLS alerts
# the reference lists, with its tag per alert.
#
# File shape::
#
#     [alerts]
#     source = "reference/vendor-codes.md §6"
#     rows = [{ number = 121, name = "ech_required", confidence = "K" }, ...]
#     [[group]]
#     product = "z/OS System SSL"
#     source = "reference/vendor-codes.md §3"     # rows may override it
#     codes = [
#       { code = "RC 435", text = "...", confidence = "C", cause = "server_cert_unknown_ca",
#         names = ["GSK_ERR_UNKNOWN_CA"], where = "client", last = "RC 448" },   # last: a range
#     ]

_NAME_RE = re.compile(r"[A-Z][A-Z0-9]*(?:_[A-Z0-9]+)+\Z")  # an underscore keeps plain words out
_ALERT_NAME_RE = re.compile(r"[a-z][a-z0-9_]*\Z")
_NUMBERED = re.compile(r"(RC |CMS )(-?[0-9A-F]+)\Z")
_ROW_KEYS = {"code", "last", "names", "text", "where", "confidence", "cause", "source"}
_ROW_REQUIRED = {"code", "text", "confidence"}
_GROUP_KEYS = {"product", "source", "codes"}
_ALERT_KEYS = {"number", "name", "confidence"}


@dataclass(frozen=True, slots=True, kw_only=True)
class CodeDef:
    """What one code means to one product, as the reference or a seed states it: a vendor entry
    for that one code (the shape the causes use), plus what only a definition has."""

    code: str
    entry: VendorCode  # product, where, text, confidence, source; codes == (code,)
    last: str | None  # the row covers code..last (same prefix) when set
    names: tuple[str, ...]  # symbolic names a source ties to the code
    cause: str | None  # None for a message that records a normal step, not a failure


@dataclass(frozen=True, slots=True, kw_only=True)
class AlertDef:
    """A TLS alert as the reference lists it, with the reference's confidence tag."""

    number: int
    name: str
    confidence: str
    source: str


@dataclass(frozen=True, slots=True, kw_only=True)
class CodeBook:
    defs: tuple[CodeDef, ...]
    alerts: Mapping[int, AlertDef]
    names: Mapping[str, str]  # symbolic name -> code spelling ("GSK_ERR_UNKNOWN_CA" -> "RC 435")
    by_code: Mapping[str, tuple[CodeDef, ...]]  # single codes (ranges are in `ranges`)
    ranges: tuple[CodeDef, ...]

    def lookup(self, code: str) -> tuple[CodeDef, ...]:
        """The rows for ``code``: its own rows first, then the ranges that contain it."""
        exact = self.by_code.get(code, ())
        at = _numbered(code)
        if at is None:
            return exact
        covering = tuple(
            d
            for d in self.ranges
            if d.last is not None
            and (lo := _numbered(d.code)) is not None
            and (hi := _numbered(d.last)) is not None
            and lo[0] == at[0]
            and lo[1] <= at[1] <= hi[1]
        )
        return exact + covering


def _numbered(code: str) -> tuple[str, int] | None:
    """("RC ", 6002) for "RC 6002", ("CMS ", 0x0335304B) for "CMS 0335304B"."""
    m = _NUMBERED.match(code)
    if m is None:
        return None
    try:
        return m.group(1), int(m.group(2), 16 if m.group(1) == "CMS " else 10)
    except ValueError:
        return None


@functools.cache
def _default_codes_path() -> Path:
    from .paths import profiles_dir

    return profiles_dir() / "codes.toml"


def load_codes(path: Path | None = None) -> CodeBook:
    """The code catalogue; rows name causes of the default knowledge base (checked here)."""
    return _load_codes(Path(path) if path is not None else _default_codes_path())


@functools.cache
def _load_codes(path: Path) -> CodeBook:
    return _parse_codes(path, _read_toml(path), load_causes())


def _parse_codes(path: Path, data: dict[str, Any], causes: Mapping[str, Cause]) -> CodeBook:
    extra = sorted(set(data) - {"alerts", "group"})
    if extra:
        raise CauseDataError(path, extra[0], "unknown top-level key (expected [alerts], [[group]])")
    groups = data.get("group")
    if not isinstance(groups, list) or not groups:
        raise CauseDataError(path, "group", "missing or empty: expected [[group]] tables")
    defs: list[CodeDef] = []
    names: dict[str, str] = {}
    seen: set[tuple[str, str]] = set()
    for i, group in enumerate(groups):
        gkey = f"group[{i}]"
        if not isinstance(group, dict):
            raise CauseDataError(path, gkey, "expected a table")
        _check_keys(path, gkey, group, _GROUP_KEYS, _GROUP_KEYS)
        product = _choice(path, f"{gkey}.product", group["product"], PRODUCTS)
        source = _source(path, f"{gkey}.source", group["source"])
        rows = group["codes"]
        if not isinstance(rows, list):
            raise CauseDataError(path, f"{gkey}.codes", "expected a list of code rows")
        for j, row in enumerate(rows):
            d = _parse_row(path, f"{gkey}.codes[{j}]", row, product, source, causes)
            if (product, d.code) in seen:
                raise CauseDataError(path, f"{gkey}.codes[{j}]", f"{d.code!r} listed twice")
            seen.add((product, d.code))
            for name in d.names:
                if names.setdefault(name, d.code) != d.code:
                    raise CauseDataError(
                        path, f"{gkey}.codes[{j}].names", f"{name} already names {names[name]}"
                    )
            defs.append(d)
    by_code: dict[str, tuple[CodeDef, ...]] = {}
    for d in defs:
        if d.last is None:
            by_code[d.code] = (*by_code.get(d.code, ()), d)
    return CodeBook(
        defs=tuple(defs),
        alerts=MappingProxyType(_parse_alerts(path, data.get("alerts"))),
        names=MappingProxyType(names),
        by_code=MappingProxyType(by_code),
        ranges=tuple(d for d in defs if d.last is not None),
    )


def _parse_row(
    path: Path,
    key: str,
    row: object,
    product: str,
    source: str,
    causes: Mapping[str, Cause],
) -> CodeDef:
    if not isinstance(row, dict):
        raise CauseDataError(path, key, "expected an inline table")
    _check_keys(path, key, row, _ROW_KEYS, _ROW_REQUIRED)
    code = _spelling(path, f"{key}.code", row["code"], product)
    last: str | None = None
    if "last" in row:
        last = _spelling(path, f"{key}.last", row["last"], product)
        lo, hi = _numbered(code), _numbered(last)
        if lo is None or hi is None or lo[0] != hi[0] or hi[1] <= lo[1]:
            raise CauseDataError(path, f"{key}.last", f"{last!r} does not end a range from {code}")
    raw_names = row.get("names", [])
    if not isinstance(raw_names, list):
        raise CauseDataError(path, f"{key}.names", "expected a list of symbolic names")
    row_names = tuple(_str(path, f"{key}.names[{n}]", v) for n, v in enumerate(raw_names))
    for n, name in enumerate(row_names):
        if not _NAME_RE.match(name):
            raise CauseDataError(path, f"{key}.names[{n}]", f"{name!r} is not a constant name")
    cause: str | None = None
    if "cause" in row:
        cause = _str(path, f"{key}.cause", row["cause"])
        if cause not in causes:
            raise CauseDataError(path, f"{key}.cause", f"{cause!r} is not a cause id")
    entry = VendorCode(
        product=product,
        codes=(code,),
        where=_choice(path, f"{key}.where", row.get("where", "either"), WHERE),
        text=_str(path, f"{key}.text", row["text"]),
        confidence=_choice(path, f"{key}.confidence", row["confidence"], tuple(CONFIDENCE_LABELS)),
        source=_source(path, f"{key}.source", row["source"]) if "source" in row else source,
    )
    return CodeDef(code=code, entry=entry, last=last, names=row_names, cause=cause)


def _spelling(path: Path, key: str, value: object, product: str) -> str:
    code = _str(path, key, value)
    if not _CODE_RE[product].match(code):
        raise CauseDataError(path, key, f"{code!r} is not a {product} code spelling")
    return code


def _parse_alerts(path: Path, table: object) -> dict[int, AlertDef]:
    if not isinstance(table, dict):
        raise CauseDataError(path, "alerts", "missing: expected an [alerts] table")
    _check_keys(path, "alerts", table, {"source", "rows"}, {"source", "rows"})
    source = _source(path, "alerts.source", table["source"])
    rows = table["rows"]
    if not isinstance(rows, list):
        raise CauseDataError(path, "alerts.rows", "expected a list of alert rows")
    out: dict[int, AlertDef] = {}
    for j, row in enumerate(rows):
        key = f"alerts.rows[{j}]"
        if not isinstance(row, dict):
            raise CauseDataError(path, key, "expected an inline table")
        _check_keys(path, key, row, _ALERT_KEYS, _ALERT_KEYS)
        number = row["number"]
        if not isinstance(number, int) or isinstance(number, bool) or not 0 <= number <= 255:
            raise CauseDataError(path, f"{key}.number", f"expected 0-255, got {number!r}")
        name = _str(path, f"{key}.name", row["name"])
        if not _ALERT_NAME_RE.match(name):
            raise CauseDataError(path, f"{key}.name", f"{name!r} is not an alert name")
        if number in out:
            raise CauseDataError(path, f"{key}.number", f"alert {number} listed twice")
        out[number] = AlertDef(
            number=number,
            name=name,
            confidence=_choice(
                path, f"{key}.confidence", row["confidence"], tuple(CONFIDENCE_LABELS)
            ),
            source=source,
        )
    return out
