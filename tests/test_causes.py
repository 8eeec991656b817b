"""The diagnosis knowledge base: the real file loads and keeps its promises; bad data fails."""

from __future__ import annotations

from pathlib import Path

import pytest

from probe.causes import (
    PRODUCTS,
    Cause,
    CauseDataError,
    VendorCode,
    causes_for_alert,
    causes_for_outcome,
    find_code,
    load_causes,
    load_codes,
    normalize_code,
)

# The SPEC's closed outcome set (SPEC.md "Outcomes"), written out here on purpose: the test
# checks the data against the contract, not against whatever the code currently exports.
SPEC_OUTCOMES = frozenset(
    (
        "connected",
        "refused",
        "unreachable",
        "dns_failure",
        "starttls_refused",
        "not_tls",
        "version_mismatch",
        "cipher_mismatch",
        "client_cert_required",
        "client_cert_rejected",
        "server_cert_untrusted",
        "server_cert_expired",
        "server_cert_not_yet_valid",
        "hostname_mismatch",
        "peer_error",
        "peer_closed",
        "timeout",
        "post_handshake_close",
        "protocol_error",
    )
)

# Lab scenario names (SPEC.md "The lab: scenarios to replay").
SPEC_SCENARIOS = frozenset(
    (
        "good",
        "expired",
        "not-yet-valid",
        "self-signed",
        "unknown-ca",
        "missing-intermediate",
        "wrong-host",
        "weak-key",
        "client-cert-required",
        "client-cert-optional",
        "client-cert-empty-ca-list",
        "client-cert-huge-ca-list",
        "no-shared-cipher",
        "insufficient-security",
        "tls10-only",
        "tls13-only",
        "sslv3-only",
        "legacy-3des",
        "internal-error",
        "reset-after-hello",
        "plaintext",
        "silent",
        "post-handshake-close",
        "mq-certlabl",
        "ftp-auth-tls",
        "ftp-auth-tls-refused",
    )
)

# The ids the classifier (probe/diagnose.py) emits; they must all exist.
REQUIRED_IDS = (
    "port_closed",
    "host_unreachable",
    "name_not_resolved",
    "starttls_refused",
    "starttls_not_offered",
    "peer_not_tls",
    "partner_version_too_old",
    "partner_version_too_new",
    "version_mismatch",
    "no_shared_cipher",
    "insufficient_security",
    "client_cert_missing",
    "client_cert_no_matching_ca",
    "client_cert_unknown_ca",
    "client_cert_expired",
    "client_cert_bad",
    "client_cert_unsupported",
    "client_cert_revoked",
    "client_cert_unknown",
    "client_cert_access_denied",
    "server_cert_self_signed",
    "server_cert_unknown_ca",
    "server_cert_missing_intermediate",
    "server_cert_expired",
    "server_cert_not_yet_valid",
    "server_cert_weak_key",
    "server_cert_invalid",
    "hostname_mismatch",
    "mq_channel_sni_required",
    "unrecognized_name",
    "peer_internal_error",
    "peer_alert_other",
    "peer_closed_during_handshake",
    "handshake_timeout",
    "post_handshake_rejected",
    "protocol_violation",
    "ca_list_too_large",
    "ca_list_empty",
)

# Codes that reference/vendor-codes.md tags [U] or lists under "Gaps / unverified". An entry that
# cites only the reference for one of these must say confidence "U"; a seed that states the fact
# may confirm it (then the seed is cited).
UNCONFIRMED: dict[str, set[str]] = {
    "IBM MQ": {
        "AMQ9635",
        "AMQ9638",
        "AMQ9639",
        "AMQ9643",
        "AMQ9645",
        "AMQ9665",
        "AMQ9666",
        "AMQ9288",
        "MQRC 2400",
        "MQRC 2401",
    },
    "z/OS System SSL": {
        "RC 429",
        "RC 431",
        "RC 433",
        "RC 434",
        "RC 436",
        "RC 437",
        "RC 438",
        "RC 439",
        *(f"RC {n}" for n in range(441, 449)),
        "RC 5006",
        "CMS 0335304B",
    },
    "IBM i": set(),
    # CR = alert number is proven only for CR=40 by the reference (the seed also shows 0, 48, 71).
    "Transfer CFT": {f"CR={n}" for n in range(1, 256) if n != 40} | {"260 TLSDOWN", "260 TLSPARSE"},
}

SEED_FILES = {
    "seeds/000_c2a6c46fe15744e5.txt",
    "seeds/001_4824f4d8a841a988.txt",
    "seeds/002_7677db054d8aae06.txt",
    "seeds/003_424b474121752ea3.txt",
    "seeds/004_37d69f5aa10b6c3d.txt",
}


@pytest.fixture(scope="module")
def causes() -> dict[str, Cause]:
    return dict(load_causes())


def _entries(causes: dict[str, Cause]) -> list[tuple[str, VendorCode]]:
    return [(cid, v) for cid, c in causes.items() for v in c.vendor]


def test_real_file_loads_and_is_cached(causes: dict[str, Cause]) -> None:
    assert len(causes) >= len(REQUIRED_IDS)
    assert load_causes() is load_causes()
    for cid, cause in causes.items():
        assert cause.id == cid


def test_every_required_cause_exists(causes: dict[str, Cause]) -> None:
    missing = [cid for cid in REQUIRED_IDS if cid not in causes]
    assert not missing


def test_outcomes_are_spec_outcomes(causes: dict[str, Cause]) -> None:
    for cid, cause in causes.items():
        assert cause.outcome in SPEC_OUTCOMES | {""}, cid


def test_every_failure_outcome_has_a_cause(causes: dict[str, Cause]) -> None:
    explained = {c.outcome for c in causes.values()}
    assert SPEC_OUTCOMES - {"connected"} <= explained


def test_scenarios_are_lab_scenarios(causes: dict[str, Cause]) -> None:
    for cid, cause in causes.items():
        if cause.scenario is not None:
            assert cause.scenario in SPEC_SCENARIOS, cid


def test_unconfirmed_codes_are_labelled(causes: dict[str, Cause]) -> None:
    for cid, v in _entries(causes):
        risky = set(v.codes) & UNCONFIRMED[v.product]
        cites_seed = any(part.startswith("seeds/") for part in v.source.split("; "))
        if risky and not cites_seed:
            assert v.confidence == "U", (cid, v.product, sorted(risky))


def test_hostname_cms_code_is_unconfirmed(causes: dict[str, Cause]) -> None:
    # The reference lists 0335304B among its gaps; keep it labelled even though a seed quotes it.
    (entry,) = [v for v in causes["hostname_mismatch"].vendor if "CMS 0335304B" in v.codes]
    assert entry.confidence == "U"
    assert not entry.confirmed
    assert entry.confidence_label == "unconfirmed"


def test_cited_seeds_exist(causes: dict[str, Cause]) -> None:
    for cid, v in _entries(causes):
        for part in v.source.split("; "):
            if part.startswith("seeds/"):
                assert part in SEED_FILES, (cid, part)


def test_vendor_entries_are_well_formed(causes: dict[str, Cause]) -> None:
    for cid, v in _entries(causes):
        assert v.product in PRODUCTS
        assert v.confirmed == (v.confidence == "C")
        assert v.codes or v.text, cid


def test_key_facts_from_the_sources(causes: dict[str, Cause]) -> None:
    def codes(cid: str, product: str) -> set[str]:
        return {code for v in causes[cid].vendor if v.product == product for code in v.codes}

    assert {"AMQ9631", "AMQ9641", "AMQ9616"} <= codes("no_shared_cipher", "IBM MQ")
    assert "RC 402" in codes("no_shared_cipher", "z/OS System SSL")
    assert {"RC 402", "CPDBC81"} <= codes("no_shared_cipher", "IBM i")
    assert "CR=40" in codes("no_shared_cipher", "Transfer CFT")
    assert "CR=71" in codes("insufficient_security", "Transfer CFT")
    assert {"AMQ9642", "AMQ9637"} <= codes("client_cert_missing", "IBM MQ")
    assert {"RC 403", "RC 5001"} <= codes("client_cert_missing", "z/OS System SSL")
    assert "CR=48" in codes("client_cert_unknown_ca", "Transfer CFT")
    assert "AMQ9633" in codes("server_cert_unknown_ca", "IBM MQ")
    assert {"RC -16", "RC -23", "RC 6000"} <= codes("server_cert_unknown_ca", "IBM i")
    assert "RC 401" in codes("server_cert_expired", "z/OS System SSL")
    assert {"RC 428", "RC 438"} <= codes("peer_internal_error", "z/OS System SSL")
    assert {"RC 202", "RC 406"} <= codes("peer_closed_during_handshake", "z/OS System SSL")
    assert {"AMQ9673", "CSQX673E"} <= codes("mq_channel_sni_required", "IBM MQ")
    assert "TCP2550" in codes("port_closed", "IBM i")
    assert {"RC 410", "RC 5003"} <= codes("peer_not_tls", "z/OS System SSL")
    assert "TLS_ERR_FRAGMENT_CONSISTANCY" in codes("ca_list_too_large", "Transfer CFT")
    assert "AMQ9636" in codes("post_handshake_rejected", "IBM MQ")
    assert "AMQ9660" in codes("key_repository_error", "IBM MQ")
    assert causes["key_repository_error"].outcome == ""


def test_lookups(causes: dict[str, Cause]) -> None:
    assert normalize_code(" rc428 ") == "RC 428"
    assert normalize_code("cr = 48") == "CR=48"
    assert normalize_code("amq9631") == "AMQ9631"
    assert normalize_code("RC -16") == "RC -16"
    assert {c.id for c, _ in find_code("RC 428")} >= {"peer_internal_error"}
    assert {c.id for c, _ in find_code("CR=48")} >= {
        "server_cert_unknown_ca",
        "client_cert_unknown_ca",
    }
    assert {c.id for c, _ in find_code("AMQ9631")} >= {"no_shared_cipher"}
    assert {c.id for c, _ in find_code("CPDBC81")} == {"no_shared_cipher"}
    assert {c.id for c, _ in find_code("TCP2550")} == {"port_closed"}
    assert {v.product for _, v in find_code("428")} >= {"z/OS System SSL", "IBM i"}
    assert find_code("AMQ0000") == ()
    assert {c.id for c in causes_for_alert(116)} == {"client_cert_missing"}
    assert "peer_internal_error" in {c.id for c in causes_for_alert(80)}
    assert {c.id for c in causes_for_outcome("cipher_mismatch")} >= {
        "no_shared_cipher",
        "insufficient_security",
    }


# ----------------------------------------------------------------------------------------------
# Malformed data
# ----------------------------------------------------------------------------------------------

GOOD = """
[cause.sample]
outcome = "cipher_mismatch"
summary = "One line."
fix = "Do this."
side = "both"
[[cause.sample.vendor]]
product = "IBM MQ"
codes = ["AMQ9631"]
where = "server"
text = "Text."
confidence = "C"
source = "reference/vendor-codes.md §2"
"""


def _write(tmp_path: Path, text: str, name: str = "diagnosis.toml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_minimal_file_loads(tmp_path: Path) -> None:
    causes = load_causes(_write(tmp_path, GOOD))
    (entry,) = causes["sample"].vendor
    assert entry.codes == ("AMQ9631",)
    assert entry.confirmed
    assert causes["sample"].scenario is None
    assert causes["sample"].alerts == ()


@pytest.mark.parametrize(
    ("old", "new", "key"),
    [
        ('side = "both"', 'side = "both"\ncolour = "red"', "cause.sample.colour"),
        ('outcome = "cipher_mismatch"', 'outcome = "cipher_failure"', "cause.sample.outcome"),
        ('fix = "Do this."', "fix = 3", "cause.sample.fix"),
        ('fix = "Do this."\n', "", "cause.sample.fix"),
        ('side = "both"', 'side = "server"', "cause.sample.side"),
        ('side = "both"', 'side = "both"\nscenario = "Not A Scenario"', "cause.sample.scenario"),
        ('side = "both"', 'side = "both"\nalerts = [40, "x"]', "cause.sample.alerts[1]"),
        ('confidence = "C"', 'confidence = "maybe"', "cause.sample.vendor[0].confidence"),
        ('product = "IBM MQ"', 'product = "IBM WebSphere"', "cause.sample.vendor[0].product"),
        ('codes = ["AMQ9631"]', 'codes = "AMQ9631"', "cause.sample.vendor[0].codes"),
        ('codes = ["AMQ9631"]', 'codes = ["RC 428"]', "cause.sample.vendor[0].codes[0]"),
        ('where = "server"', 'where = "middle"', "cause.sample.vendor[0].where"),
        ('text = "Text."', 'text = "Text."\nnote = "x"', "cause.sample.vendor[0].note"),
        (
            'source = "reference/vendor-codes.md §2"',
            'source = "a blog"',
            "cause.sample.vendor[0].source",
        ),
        ('summary = "One line."', 'summary = "Two\\nlines."', "cause.sample.summary"),
        ("[cause.sample]", "[cause.Sample]", "cause.Sample"),
    ],
)
def test_malformed_file_names_the_key(tmp_path: Path, old: str, new: str, key: str) -> None:
    assert old in GOOD
    path = _write(tmp_path, GOOD.replace(old, new, 1))
    with pytest.raises(CauseDataError) as info:
        load_causes(path)
    assert info.value.key == key
    assert info.value.path == path
    assert key in str(info.value) and str(path) in str(info.value)


def test_unknown_top_level_key(tmp_path: Path) -> None:
    with pytest.raises(CauseDataError, match="version"):
        load_causes(_write(tmp_path, "version = 2\n" + GOOD))


def test_not_toml(tmp_path: Path) -> None:
    with pytest.raises(CauseDataError, match="not valid TOML"):
        load_causes(_write(tmp_path, "[cause.sample\n"))


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(CauseDataError, match="cannot read"):
        load_causes(tmp_path / "absent.toml")


# ----------------------------------------------------------------------------------------------
# The code catalogue (profiles/codes.toml)
# ----------------------------------------------------------------------------------------------

# Inline tables cannot span lines in TOML, so the long row is assembled here.
_ROW = (
    '{ code = "RC 435", text = "Unknown CA.", confidence = "C", '
    'cause = "server_cert_unknown_ca", names = ["GSK_ERR_UNKNOWN_CA"] }'
)
CODES_GOOD = f"""
[alerts]
source = "reference/vendor-codes.md §6"
rows = [{{ number = 121, name = "ech_required", confidence = "K" }}]

[[group]]
product = "z/OS System SSL"
source = "reference/vendor-codes.md §3"
codes = [
  {_ROW},
  {{ code = "RC 6001", last = "RC 6999", text = "Internal.", confidence = "C" }},
]
"""


def _write_codes(tmp_path: Path, text: str) -> Path:
    return _write(tmp_path, text, "codes.toml")


def test_minimal_code_catalogue_loads(tmp_path: Path) -> None:
    book = load_codes(_write_codes(tmp_path, CODES_GOOD))
    (row,) = book.lookup("RC 435")
    assert row.names == ("GSK_ERR_UNKNOWN_CA",) and row.entry.where == "either"
    assert row.cause == "server_cert_unknown_ca" and row.entry.source.endswith("§3")
    assert row.entry.codes == ("RC 435",) and row.entry.product == "z/OS System SSL"
    assert book.names["GSK_ERR_UNKNOWN_CA"] == "RC 435"
    assert [d.code for d in book.lookup("RC 6500")] == ["RC 6001"]
    assert book.lookup("RC 7000") == () and book.lookup("CR=40") == ()
    assert book.alerts[121].confidence == "K"


# The key the loader must name -> (text in CODES_GOOD, what it becomes).
CODES_BROKEN = {
    "group[0].codes[0].cause": ('cause = "server_cert_unknown_ca"', 'cause = "no_such_cause"'),
    "group[0].codes[0].code": ('code = "RC 435"', 'code = "AMQ9631"'),
    "group[0].codes[0].confidence": ('confidence = "C", cause', 'confidence = "X", cause'),
    "group[0].codes[0].names[0]": ('names = ["GSK_ERR_UNKNOWN_CA"]', 'names = ["unknown ca"]'),
    "group[0].codes[1].last": ('last = "RC 6999"', 'last = "RC 5000"'),
    "group[0].codes[1].colour": ('text = "Internal."', 'text = "Internal.", colour = "red"'),
    "group[0].codes[1]": ('code = "RC 6001"', 'code = "RC 435", names = ["GSK_X_Y"]'),
    "alerts.rows[0].number": ("number = 121", "number = 300"),
    "group[0].source": ('source = "reference/vendor-codes.md §3"', 'source = "a blog"'),
}


@pytest.mark.parametrize("key", CODES_BROKEN)
def test_malformed_code_catalogue_names_the_key(tmp_path: Path, key: str) -> None:
    old, new = CODES_BROKEN[key]
    assert old in CODES_GOOD
    path = _write_codes(tmp_path, CODES_GOOD.replace(old, new, 1))
    with pytest.raises(CauseDataError) as info:
        load_codes(path)
    assert info.value.key == key and info.value.path == path


def test_a_name_stands_for_one_code(tmp_path: Path) -> None:
    text = CODES_GOOD.replace(
        'last = "RC 6999", text = "Internal."',
        'last = "RC 6999", text = "Internal.", names = ["GSK_ERR_UNKNOWN_CA"]',
    )
    with pytest.raises(CauseDataError, match="already names RC 435"):
        load_codes(_write_codes(tmp_path, text))


def test_real_code_catalogue(causes: dict[str, Cause]) -> None:
    book = load_codes()
    assert load_codes() is book
    for d in book.defs:
        assert d.cause is None or d.cause in causes, d.code
        v = d.entry
        for part in v.source.split("; "):
            assert not part.startswith("seeds/") or part in SEED_FILES, (d.code, part)
        # A code the reference tags [U] keeps that tag in its own definition.
        if d.code in UNCONFIRMED[v.product] and not v.source.startswith("seeds/"):
            assert v.confidence == "U", (v.product, d.code)
