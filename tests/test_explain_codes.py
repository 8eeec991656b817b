"""`tlsprobe explain` against the reference and the seeds themselves: every code they list is
known, in its own words, with the reference's confidence tag ([U] shows as unconfirmed), found by
its symbolic names too, and explained first when asked about.

The reference (../shared/reference/vendor-codes.md) and the seeds are read whole, as they are
(verbatim copies in tests/data/shared/, checked against the originals when those sit beside the
repository), not from a list kept here, so a code added to them without data in
profiles/codes.toml, or a tag that changes, fails the suite.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import pytest

from probe.causes import CodeBook, load_causes, load_codes
from probe.explain import Explanation, explain
from probe.render import render_explain

# Verbatim copies of ../shared/reference and ../shared/seeds: CI runs from a clean clone where
# nothing sits beside the repository. test_copies_match_the_shared_originals keeps them equal
# to the originals whenever those are present (a developer's tree).
SHARED = Path(__file__).parent / "data" / "shared"
ORIGINALS = Path(__file__).resolve().parents[2] / "shared"
REFERENCE = SHARED / "reference" / "vendor-codes.md"
SEEDS = SHARED / "seeds"

# Listed by the reference but deliberately not explained, with the reason.
LEFT_OUT = {"AMQ9288": "the reference found no source for it (listed as a gap)"}


def test_copies_match_the_shared_originals() -> None:
    copies = sorted(p.relative_to(SHARED) for p in SHARED.rglob("*") if p.is_file())
    assert Path("reference/vendor-codes.md") in copies and len(copies) >= 6, copies
    if ORIGINALS.is_dir():  # a developer's tree: the copies must not drift from the sources
        for rel in copies:
            assert (SHARED / rel).read_bytes() == (ORIGINALS / rel).read_bytes(), rel


@dataclass(frozen=True, slots=True)
class Listed:
    """A code as the reference lists it, in explain's spelling."""

    product: str
    code: str
    tag: str | None  # the reference's confidence tag for the row (C, K, U); None if it gives none
    names: tuple[str, ...] = ()


@cache
def book() -> CodeBook:
    return load_codes()


@cache
def reference_text() -> str:
    assert REFERENCE.is_file(), f"the reference copy is missing: {REFERENCE}"
    return REFERENCE.read_text(encoding="utf-8")


def sections() -> dict[str, str]:
    """The reference's "## ..." sections by their number ("2", "3", ...; "Gaps" for the gaps)."""
    parts = re.split(r"^## ", reference_text(), flags=re.M)[1:]
    out: dict[str, str] = {}
    for part in parts:
        head = part.split("\n", 1)[0]
        m = re.match(r"(\d+)\.", head)
        out[m.group(1) if m else head.split()[0].strip("/")] = part
    return out


def _tag(text: str, default: str | None) -> str | None:
    m = re.search(r"\[(C|K|U)\b", text)  # "[U+C title]": the meaning is unconfirmed
    return m.group(1) if m else default


def _table(section: str, first: str, at_least: int) -> tuple[str, list[list[str]]]:
    """A section's text and the cells of its table rows whose first cell matches ``first``;
    fewer rows than expected means the reference changed shape and the walk needs updating."""
    body = sections()[section]
    rows = [
        [c.strip() for c in line.strip().strip("|").split("|")]
        for line in body.splitlines()
        if re.match(rf"\| {first} \|", line)
    ]
    assert len(rows) >= at_least, f"the table in section {section} of the reference changed shape"
    return body, rows


def _numbers(cell: str) -> list[int]:
    """A table's first cell: "441–448" is each code between, "418/419" and "5005+ (incl. 5006)"
    the codes named."""
    if m := re.fullmatch(r"(\d+)–(\d+)", cell):
        return list(range(int(m.group(1)), int(m.group(2)) + 1))
    return [int(n) for n in re.findall(r"\d+", cell)]


def mq_listed() -> list[Listed]:
    body, rows = _table("2", r"(?:AMQ|CSQX)[^|]*", 20)
    out: list[Listed] = []
    for row in rows:
        tag = None if "not found" in row[1] else _tag(row[1], None)  # a gap has no meaning
        for code in re.findall(r"AMQ\d{4}|CSQX\d{3}E", row[0]):
            out.append(Listed("IBM MQ", code, tag))
    # "Reason codes [C unless marked]: 2371 MQRC_CHANNEL_SSL_ERROR (...); 2397 (0x95D) ... [K]"
    reasons = re.findall(r"\b(2\d{3})(?: \(0x[0-9A-F]+\))? (MQRC_[A-Z_]+)(?: \[([CKU])\])?", body)
    assert len(reasons) >= 9, "the reference's reason-code list changed shape"
    qualifiers = tuple(re.findall(r"MQRQ_[A-Z_]+", body))
    for number, name, tag in reasons:
        names = (name, *qualifiers) if number == "2371" else (name,)
        out.append(Listed("IBM MQ", f"MQRC {number}", tag or "C", names))
    pcf = re.search(r"(AMQ\d{4})[^()]*?\(PCF (MQRCCF_[A-Z_]+)\)", reference_text())
    assert pcf is not None
    out.append(Listed("IBM MQ", pcf.group(1), None, (pcf.group(2),)))
    # Every other MQ message the reference names (§1a, §7, the constants list).
    for code in re.findall(r"\bAMQ\d{4}\b|\bCSQX\d{3}E\b", reference_text()):
        out.append(Listed("IBM MQ", code, None))
    return out


def zos_listed() -> list[Listed]:
    body, rows = _table("3", r"\d+(?:–\d+|\+[^|]*)?", 50)
    out: list[Listed] = []
    for row in rows:
        # 441–448 share the row's tag; "5005+ (incl. 5006)" is a range described as a whole.
        tag = None if "+" in row[0] else _tag(row[1], None)
        names = tuple(re.findall(r"GSK_ERR_[A-Z_]+", row[1]))
        for n in _numbers(row[0]):
            out.append(Listed("z/OS System SSL", f"RC {n}", tag, names))
    for n in re.findall(r"\b(\d{4})–\d{4} internal", body):  # 6001–6999 internal
        out.append(Listed("z/OS System SSL", f"RC {n}", None))
    for code in re.findall(r"\bEZD\d{4}I\b", body):
        out.append(Listed("z/OS System SSL", code, None))
    gap = set(re.findall(r"CMS code ([0-9A-F]{8}) could not be verified", body))
    for code in re.findall(r"\b(0335[0-9A-F]{4}|014CE[0-9A-F]{3})\b", body):
        out.append(Listed("z/OS System SSL", f"CMS {code}", "U" if code in gap else None))
    return out


def ibm_i_listed() -> list[Listed]:
    body, rows = _table("4", r"[\d/–]+", 40)
    out: list[Listed] = []
    for row in rows:  # the table is "[C unless marked]" and marks nothing
        full = re.findall(r"\bGSK_[A-Z0-9_]+", row[1])
        for i, n in enumerate(_numbers(row[0])):
            name = (full[0],) if i == 0 and full else ()
            out.append(Listed("IBM i", f"RC {n}", "C", name))
        for msg in re.findall(r"\bCP[CD]BC[0-9A-F]{2}\b|\bCPE\d{4}\b", row[1] + row[2]):
            out.append(Listed("IBM i", msg, "C"))
    legacy = body[body.index("Legacy SSL_ API") : body.index("Telnet-specific")]
    pairs = re.findall(r"(-\d+) ([A-Z][A-Z_]+)", legacy)
    assert len(pairs) >= 30, "the reference's SSL_ API list changed shape"
    for number, name in pairs:
        full = name if name.startswith("SSL_ERROR_") else f"SSL_ERROR_{name}"
        out.append(Listed("IBM i", f"RC {number}", "C", (full,)))
    for code in re.findall(r"\bTCP\d{4}\b|\bCPDBC[0-9A-F]{2}\b", body):
        out.append(Listed("IBM i", code, None))
    return out


def cft_listed() -> list[Listed]:
    body = sections()["5"]
    out = [Listed("Transfer CFT", f"CR={n}", None) for n in re.findall(r"CR=(-?\d+)", body)]
    inferred = re.search(r"other values \(([^)]*)\)", body)
    assert inferred is not None, "the reference's CR paragraph changed shape"
    out += [Listed("Transfer CFT", f"CR={n}", None) for n in re.findall(r"\d+", inferred.group(1))]
    for code in re.findall(r"\bCFT[A-Z]\d{2}[A-Z]\b|\bTLS_ERR_[A-Z_]+", body):
        out.append(Listed("Transfer CFT", code, None))
    for code in re.findall(r"260 (?:PKI \d{3}|TLSDOWN|TLSPARSE)", body):
        out.append(Listed("Transfer CFT", code, None))
    return out


def alerts_listed() -> list[tuple[int, str, str]]:
    body = sections()["6"]
    out = []
    for line in body.splitlines():
        for m in re.finditer(r"\| (\d+) \| ([a-z][a-z0-9_]*)([^|]*)", line):
            out.append((int(m.group(1)), m.group(2), _tag(m.group(3), "C") or "C"))
    assert len(out) >= 35, "the reference's alert table changed shape"
    return out


def all_listed() -> list[Listed]:
    items = mq_listed() + zos_listed() + ibm_i_listed() + cft_listed()
    merged: dict[tuple[str, str], Listed] = {}
    for item in items:  # a tagged row wins over a bare mention; names add up
        key = (item.product, item.code)
        old = merged.get(key)
        if old is None:
            merged[key] = item
        else:
            merged[key] = Listed(
                item.product,
                item.code,
                old.tag or item.tag,
                tuple(dict.fromkeys(old.names + item.names)),
            )
    return list(merged.values())


LISTED = all_listed()


def _line_of(text: str, rendered: str) -> str:
    lines = [ln for ln in rendered.splitlines() if text in ln]
    assert lines, (text, rendered)
    return lines[0]


@pytest.mark.parametrize("item", LISTED, ids=lambda i: f"{i.product}:{i.code}")
def test_every_code_the_reference_lists_is_explained(item: Listed) -> None:
    e = explain(item.code)
    if item.code in LEFT_OUT:
        assert not e.found, LEFT_OUT[item.code]
        return
    assert e.found and e.code == item.code, item
    assert item.product in e.products
    # Its own definition leads, in the product's words.
    own = [d for d in book().lookup(item.code) if d.entry.product == item.product]
    assert own, f"no definition of {item.code} for {item.product} in profiles/codes.toml"
    assert e.meanings[0].code == item.code
    exact = [d.entry for d in own if d.last is None]
    if item.tag is not None:
        assert exact and exact[0].confidence == item.tag, (item, exact)
    rendered = render_explain(e)
    if item.tag == "U":
        # Unconfirmed rows are labelled wherever they show; the headline too, unless a seed
        # confirms the fact (then that cited entry leads and the reference's row follows it).
        assert "[unconfirmed]" in _line_of(exact[0].text, rendered)
        seed_confirmed = any(
            m.confidence == "C" and "seeds/" in m.source and m.product == item.product
            for m in e.meanings
        )
        assert e.unconfirmed or seed_confirmed, item
    for name in item.names:
        named = explain(name)
        assert named.found and named.code == item.code, (name, named.code)
        assert named.meanings[0].product == item.product, name


def test_the_walk_covers_every_section() -> None:
    products = {i.product for i in LISTED}
    assert products == {"IBM MQ", "z/OS System SSL", "IBM i", "Transfer CFT"}
    assert len(LISTED) >= 230
    tags = {i.tag for i in LISTED}
    assert {"C", "K", "U"} <= tags


@pytest.mark.parametrize(("number", "name", "tag"), alerts_listed())
def test_every_alert_follows_the_reference_tag(number: int, name: str, tag: str) -> None:
    e = explain(f"alert {number}")
    assert e.found and e.kind == "alert" and name in (e.title or "")
    (meaning,) = e.meanings
    assert meaning.confidence == tag, (number, tag)
    assert e.unconfirmed == (tag != "C")
    assert book().alerts[number].name == name
    assert explain(name.upper()).code == f"alert {number}"


def test_alert_121_is_standard_knowledge_not_confirmed() -> None:
    e = explain("alert 121")
    assert e.meanings[0].confidence == "K"
    assert e.meanings[0].confidence_label == "knowledge, not confirmed by a source"
    assert e.unconfirmed and "[unconfirmed]" in render_explain(e)
    confirmed = explain("alert 48")
    assert confirmed.meanings[0].confidence == "C" and not confirmed.unconfirmed


# --- the seeds ------------------------------------------------------------------------------

SEED_PATTERNS: dict[str, tuple[str, ...]] = {
    # seed: (regexes whose group 1, or match, is the code in explain's spelling or a name)
    "000": (r"\b(TCP\d{4})\b",),
    "001": (r"\b(SSL_ERROR_[A-Z_]+)\b",),
    "003": (
        r"\b(EZ[A-Z]\d{4}I|EDC\d{4}I|ICH\d{3}I)\b",
        r"\bRC:? ?([1-9]\d*)\b",  # RC: 0 lines are the trace's successful calls
        r"\b(0335[0-9A-F]{4})\b",
    ),
    "004": (
        r"\b(CFT[A-Z]\d{2}[A-Z])\b",
        r"\bCR ?= ?(-? ?\d+)\b",
        r"\b(TLS_ERR_[A-Z_]+)\b",
        r"\b(260 (?:PKI \d{3}|TLSDOWN|TLSPARSE))\b",
    ),
}


def seed_codes() -> list[tuple[str, str]]:
    out: set[tuple[str, str]] = set()
    for seed, patterns in SEED_PATTERNS.items():
        (path,) = SEEDS.glob(f"{seed}_*.txt")
        text = path.read_text(encoding="utf-8", errors="replace")
        for pattern in patterns:
            for m in re.finditer(pattern, text):
                value = m.group(1)
                if pattern.startswith(r"\bRC"):
                    value = f"RC {value}"
                elif pattern.startswith(r"\bCR"):
                    value = f"CR={value.replace(' ', '')}"
                out.add((seed, value))
    return sorted(out)


@pytest.mark.parametrize(("seed", "code"), seed_codes())
def test_every_code_the_seeds_name_is_explained(seed: str, code: str) -> None:
    e = explain(code)
    assert e.found, (seed, code)
    assert e.meaning


def test_the_seed_walk_finds_the_known_codes() -> None:
    found = {code for _, code in seed_codes()}
    assert {"TCP2550", "SSL_ERROR_SSL_NOT_AVAILABLE", "RC 438", "EZA2897I", "CR=-1"} <= found
    assert {"CFTY13E", "260 TLSPARSE", "TLS_ERR_FRAGMENT_CONSISTANCY", "0335304B"} <= found


# --- what the reviewer found ----------------------------------------------------------------


# The codes a review found unknown, by the reference's tag.
WERE_UNKNOWN = {
    "C": ("AMQ9771", "AMQ9204", "RC 1", "RC 422", "RC 432", "CPDBCA1", "-1009"),
    "U": ("AMQ9635", "RC 429", "RC 433", "RC 434", "RC 436", "RC 437", "RC 441", "RC 445"),
}


@pytest.mark.parametrize(
    ("code", "confidence"), [(c, tag) for tag, codes in WERE_UNKNOWN.items() for c in codes]
)
def test_codes_that_were_unknown(code: str, confidence: str) -> None:
    e = explain(code)
    assert e.found, code
    assert e.meanings[0].confidence == confidence
    assert e.unconfirmed == (confidence == "U")
    if confidence == "U":
        assert "[unconfirmed]" in render_explain(e).splitlines()[1]
    assert e.causes, code  # each belongs to a cause


def test_java_client_line_explains_its_reason_code() -> None:
    # AMQ9641 says "Java clients show it with reason 2397": that reason is known too.
    assert "2397" in (explain("AMQ9641").meaning or "")
    e = explain("CC=2;RC=2397;AMQ9771")
    assert e.code == "MQRC 2397"
    assert [c.code for c in e.context] == ["AMQ9771"] and e.context[0].meaning


# Symbolic names, bare MQ reason codes and "reason code N" -> the code they stand for.
FINDS = {
    "GSK_ERROR_NO_CIPHERS": "RC 402",
    "GSK_ERR_UNKNOWN_CA": "RC 435",
    "GSK_KEYFILE_CERT_EXPIRED": "RC 107",
    "SSL_ERROR_SSL_NOT_AVAILABLE": "RC -93",
    "GSK_OS400_ERROR_TIMED_OUT": "RC 6011",
    "MQRCCF_SSL_CIPHER_SPEC_ERROR": "AMQ8242",
    "MQRC_SSL_INITIALIZATION_ERROR": "MQRC 2393",
    "2393": "MQRC 2393",
    "2371": "MQRC 2371",
    "2397": "MQRC 2397",
    "reason code 2399": "MQRC 2399",
}


@pytest.mark.parametrize("query", FINDS)
def test_names_and_mq_numbers_find_their_code(query: str) -> None:
    code = FINDS[query]
    e = explain(query)
    assert e.found and e.code == code
    # The leading meaning is the row whose constant it is (GSK_ERROR_NO_CIPHERS is IBM i's RC
    # 402, though z/OS has one too), and it names the constant.
    names = {n for n, c in book().names.items() if c == code}
    rows = book().lookup(code)
    owner = next((d for d in rows if query in d.names), rows[0])
    assert e.meanings[0].product == owner.entry.product
    assert any(n in e.meanings[0].text for n in names)
    if query in names:
        in_a_line = explain(f"job log: rc={code.split()[-1]} ({query.lower()})")
        assert in_a_line.code == code


def test_every_name_in_the_catalogue_resolves() -> None:
    for name, code in book().names.items():
        assert explain(name).code == code, name


# Codes whose answer used to open with another code, and how their own definition opens.
OPENINGS = {
    "RC 8": "Certificate validation error",
    "RC 5001": "AT-TLS: ClientAuthType is Required or SAFCheck",
    "RC 202": "The key database or key ring cannot be opened",
}


@pytest.mark.parametrize("code", OPENINGS)
def test_the_code_asked_about_is_explained_first(code: str) -> None:
    e = explain(code)
    assert (e.meaning or "").startswith(OPENINGS[code])
    assert e.meanings[0].code == code
    # Entries that mention it beside another code (RC 435 ...; RC 8 ...) come after.
    later = [m.text for m in e.meanings[1:]]
    assert any(not t.startswith(code) for t in later) or not later


def _opens_with(text: str, code: str) -> bool:
    return re.search(rf"(?<![\w-]){re.escape(code)}(?!\w)", text[: len(code) + 16]) is not None


def test_every_known_code_leads_with_its_own_meaning() -> None:
    codes = {code for c in load_causes().values() for v in c.vendor for code in v.codes}
    codes |= {d.code for d in book().defs}
    for code in sorted(codes):
        e = explain(code)
        first = e.meanings[0]
        own = {d.entry.text for d in book().lookup(code)}
        assert first.code == code and (first.text in own or _opens_with(first.text, code)), code


def test_expired_cert_means_the_server_certificate_first() -> None:
    e = explain("expired cert")
    assert [c.id for c in e.causes][:2] == ["server_cert_expired", "client_cert_expired"]
    assert e.meaning == load_causes()["server_cert_expired"].summary
    assert explain("expired client certificate").causes[0].id == "client_cert_expired"


def test_ranges_and_cause_less_messages() -> None:
    internal = explain("RC 6500")
    assert internal.found and "6001-6999" in (internal.meaning or "")
    cms = explain("CMS 03353050")
    assert cms.found and cms.code == "CMS 03353050" and not cms.causes
    # The exact row of a code inside a range leads; the range's words follow.
    hostname: Explanation = explain("0335304B")
    assert hostname.meanings[0].confidence == "U" and hostname.unconfirmed
    ok = explain("EZA2895I")
    assert ok.found and not ok.causes and "succeeded" in (ok.meaning or "")
