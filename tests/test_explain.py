"""`tlsprobe explain`: every code the seeds name is explained, in every spelling operators copy
from their logs, with the other end's codes, the lab scenario that reproduces it, and
unconfirmed entries labelled; unknown codes say so and exit 1.
"""

from __future__ import annotations

import json
import subprocess
import sys
from functools import cache
from typing import Any

import jsonschema
import pytest
from probing import schema

from probe.causes import find_code, load_causes
from probe.codelookup import recognize
from probe.explain import Explanation, explain
from probe.lab.catalog import scenario_names
from probe.render import render_explain
from probe.result import to_jsonable


@cache
def validator() -> jsonschema.Draft202012Validator:
    return jsonschema.Draft202012Validator(schema("explain"))


def as_json(e: Explanation) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(json.dumps(to_jsonable(e)))
    validator().validate(doc)
    return doc


def tlsprobe(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "probe", *args], capture_output=True, text=True, timeout=60
    )


def related_codes(e: Explanation, relation: str | None = None) -> set[str]:
    return {c for r in e.related if relation in (None, r.relation) for c in r.codes}


# Every code the seeds name, with the seed that names it, the spelling the knowledge base
# uses, and the lab scenarios that must be named (those of the causes that list the code).
SEED_CODES: list[tuple[str, str, str]] = [
    # seed 003, z/OS Communications Server AT-TLS (EZD1287I ... RC: n)
    ("003", "RC 202", "z/OS System SSL"),
    ("003", "RC 406", "z/OS System SSL"),
    ("003", "RC 5006", "z/OS System SSL"),
    ("003", "RC 6", "z/OS System SSL"),
    ("003", "RC 438", "z/OS System SSL"),
    ("003", "RC 428", "z/OS System SSL"),
    ("003", "RC 401", "z/OS System SSL"),
    ("003", "0335304B", "z/OS System SSL"),
    ("003", "EZD1287I", "z/OS System SSL"),
    ("003", "EDC8121I", "z/OS System SSL"),
    ("003", "ICH408I", "z/OS System SSL"),
    # seed 004, Axway Transfer CFT (CFTY13E ... CR=n)
    ("004", "CR=40", "Transfer CFT"),
    ("004", "CR=48", "Transfer CFT"),
    ("004", "CR=71", "Transfer CFT"),
    ("004", "CR=0", "Transfer CFT"),
    ("004", "CR=1", "Transfer CFT"),
    ("004", "260 PKI 040", "Transfer CFT"),
    ("004", "260 TLSPARSE", "Transfer CFT"),
    ("004", "TLS_ERR_FRAGMENT_CONSISTANCY", "Transfer CFT"),
    # seed 000, IBM i Telnet server
    ("000", "TCP2550", "IBM i"),
    ("000", "CPDBC", "IBM i"),
    # seed 001, IBM i SSL guide: "the -93 that might be seen in a server job log"
    ("001", "-93", "IBM i"),
]

# Seed 002's table of the usual IBM MQ handshake failures (no codes: the operators' words),
# and the cause each row is.
MQ_TABLE = [
    ("Cipher mismatch", "no_shared_cipher"),
    ("Expired cert", "server_cert_expired"),
    ("Missing CA", "server_cert_unknown_ca"),
    ("SSLCAUTH REQUIRED", "client_cert_missing"),
    ("TLS version drift", "partner_version_too_old"),
]


@pytest.mark.parametrize(("seed", "code", "product"), SEED_CODES)
def test_every_seed_code_is_explained(seed: str, code: str, product: str) -> None:
    e = explain(code)
    doc = as_json(e)
    assert e.found and e.meaning, (seed, code)
    assert product in e.products
    text = render_explain(e)
    assert e.title is not None and e.title.splitlines()[0] in text
    # Each code that a lab scenario reproduces names it, with the commands to try it.
    wanted = {
        c.scenario
        for c, _ in find_code(e.code or code)
        if c.scenario is not None and c.id in {x.id for x in e.causes}
    }
    assert wanted <= {s.name for s in e.scenarios}, (code, wanted)
    for s in e.scenarios:
        assert s.name in scenario_names()
        assert s.commands[0].startswith(f"tlsprobe lab {s.name}")
        assert s.commands[1].startswith("tlsprobe probe 127.0.0.1:") and "--ca " in s.commands[1]
        assert s.commands[0] in text and s.commands[1] in text
    assert doc["schema_version"] == 1


@pytest.mark.parametrize(
    ("code", "scenarios"),
    [
        ("RC 428", {"internal-error"}),
        ("RC 438", {"internal-error"}),
        ("RC 6", {"internal-error"}),
        ("RC 406", {"reset-after-hello"}),
        ("RC 202", {"reset-after-hello"}),
        ("RC 5006", {"reset-after-hello"}),
        ("RC 401", {"expired", "not-yet-valid"}),
        ("0335304B", {"wrong-host"}),
        ("CR=40", {"no-shared-cipher", "client-cert-required"}),
        ("CR=48", {"unknown-ca", "missing-intermediate", "self-signed"}),
        ("CR=71", {"insufficient-security"}),
        ("CR=0", {"insufficient-security"}),
        ("AMQ9631", {"no-shared-cipher", "tls10-only"}),
        ("AMQ9642", {"client-cert-required"}),
        ("AMQ9673", {"mq-certlabl"}),
        ("alert 116", {"client-cert-required"}),
        ("alert 80", {"internal-error"}),
    ],
)
def test_codes_name_the_scenario_that_reproduces_them(code: str, scenarios: set[str]) -> None:
    assert scenarios <= {s.name for s in explain(code).scenarios}


@pytest.mark.parametrize(
    ("query", "code"),
    [
        ("AMQ9631", "AMQ9631"),
        ("amq9631", "AMQ9631"),
        ("CSQX631E", "CSQX631E"),
        ("RC 428", "RC 428"),
        ("RC: 401", "RC 401"),
        ("rc=401", "RC 401"),
        ("GSK 406", "RC 406"),
        ("CR=48", "CR=48"),
        ("CR = 71", "CR=71"),
        ("alert 116", "alert 116"),
        ("handshake_failure", "alert 40"),
        ("[HANDSHAKE_FAILURE]", "alert 40"),
        ("CPDBC81", "CPDBC81"),
        ("TCP2550", "TCP2550"),
        ("0335304B", "CMS 0335304B"),
        ("CMS 0335304B", "CMS 0335304B"),
        ("-93", "RC -93"),
        ("EZD1287I TTLS Error RC: 438", "RC 438"),
        ("EZD1287I TTLS Error RC: 438 Initial Handshake 479", "RC 438"),
        ("AT MVS3 (SERVER): EZD1287I TTLS Error RC: 202 Environment Master Init", "RC 202"),
        ("CFTY13E CTX=200006 SSL Handshake local error [HANDSHAKE_FAILURE] CR=40", "CR=40"),
        ("CTX = 100003 SSL Handshake local error [INSUFFICIENT_SECURITY] CR = 71", "CR=71"),
        ("CFTT75E connect reject <IDTU=A00000BL 260 PKI 040>", "260 PKI 040"),
        ("134CC19E", "RC 414"),
        ("MQRC 2393", "MQRC 2393"),
    ],
)
def test_the_forms_operators_copy_from_logs(query: str, code: str) -> None:
    e = explain(query)
    assert e.found and e.code == code, (query, e.code)
    as_json(e)


def test_a_log_line_keeps_its_message_id_as_context() -> None:
    e = explain("EZD1287I TTLS Error RC: 438")
    (ctx,) = e.context
    assert ctx.code == "EZD1287I" and ctx.meaning and "RC" in ctx.meaning
    assert [t.code for t in recognize("EZD1287I TTLS Error RC: 438")] == ["RC 438", "EZD1287I"]


def test_the_other_end_of_the_link() -> None:
    # z/OS: 428 at the server shows as 438 at the client, and back.
    rc428 = explain("RC 428")
    assert "RC 438" in related_codes(rc428, "other end")
    assert rc428.look_at is not None and "this end" in rc428.look_at  # the server has it
    rc438 = explain("RC 438")
    assert {"RC 428", "RC 6"} <= related_codes(rc438, "other end")
    assert rc438.look_at is not None and "other end" in rc438.look_at  # not the client
    # A reset by the server (RC 202 / 5006 there) is an I/O error (RC 406) at the client.
    assert "RC 406" in related_codes(explain("RC 202"), "other end")
    assert {"RC 202", "RC 5006"} <= related_codes(explain("RC 406"), "other end")
    # MQ: AMQ9631 at the responder pairs with AMQ9641 at the initiator.
    assert "AMQ9641" in related_codes(explain("AMQ9631"))
    assert "CSQX641E" in related_codes(explain("CSQX631E"))
    # CFT: insufficient security is CR=71 at the client, close_notify CR=0 at the server.
    assert "CR=0" in related_codes(explain("CR=71"), "other end")
    assert "CR=71" in related_codes(explain("CR=0"), "other end")


def test_unconfirmed_entries_are_labelled() -> None:
    e = explain("0335304B")  # the CMS status text is not confirmed by a source
    assert e.unconfirmed and e.meanings[0].confidence == "U"
    assert "[unconfirmed]" in render_explain(e)
    e = explain("AMQ9665")
    assert e.unconfirmed and "[unconfirmed]" in render_explain(e)
    confirmed = explain("RC 428")
    assert not confirmed.unconfirmed and confirmed.meanings[0].confidence == "C"
    # Standard-knowledge rows are labelled too.
    assert "[standard knowledge, not confirmed by a source]" in render_explain(explain("RC 412"))


def test_alerts_and_their_vendor_codes() -> None:
    e = explain("alert 48")
    assert e.kind == "alert" and "unknown_ca" in (e.title or "")
    assert "CR=48" in related_codes(e, "same number")
    assert {"server_cert_unknown_ca", "client_cert_unknown_ca"} <= {c.id for c in e.causes}
    assert not explain("alert 250").found


@pytest.mark.parametrize(("words", "cause"), MQ_TABLE)
def test_the_mq_failure_table(words: str, cause: str) -> None:
    e = explain(words)
    assert e.found and e.kind == "term"
    assert cause in {c.id for c in e.causes}
    assert any(r.product == "IBM MQ" for r in e.related) or cause == "partner_version_too_old"


def test_families_and_bare_numbers() -> None:
    cpdbc = explain("CPDBC nn")
    assert cpdbc.kind == "family" and "QTVTELNET" in (cpdbc.meaning or "")
    assert {"CPDBC81", "CPDBC98", "CPDBCB3"} <= related_codes(cpdbc, "in this family")
    n48 = explain("48")
    assert n48.code == "CR=48" and any(a.startswith("alert 48") for a in n48.also)
    assert explain("428").code == "RC 428"


def test_unknown_codes_say_so_with_the_closest_known() -> None:
    e = explain("AMQ9632")
    assert not e.found and e.suggestions
    assert {"AMQ9631", "AMQ9633"} <= set(e.suggestions)
    near = explain("RC 430").suggestions  # System SSL lists 429 and 431, not 430
    assert {"RC 429", "RC 431"} <= set(near)
    assert "no known code" in render_explain(e)
    as_json(e)


def test_every_code_in_the_knowledge_base_explains() -> None:
    codes = {code for c in load_causes().values() for v in c.vendor for code in v.codes}
    for code in sorted(codes):
        e = explain(code)
        assert e.found, code
        render_explain(e)


# --- the real CLI -----------------------------------------------------------------------------


def test_cli_explain_json_and_exit_codes() -> None:
    ok = tlsprobe("explain", "RC 428", "--json")
    assert ok.returncode == 0, ok.stderr
    doc = json.loads(ok.stdout)
    validator().validate(doc)
    assert doc["found"] is True and doc["code"] == "RC 428"
    # Unquoted words and a negative number are one query, not options.
    words = tlsprobe("explain", "EZD1287I", "TTLS", "Error", "RC:", "438")
    assert words.returncode == 0 and "RC 438" in words.stdout and "RC 428" in words.stdout
    neg = tlsprobe("explain", "-93")
    assert neg.returncode == 0 and "RC -93" in neg.stdout
    unknown = tlsprobe("explain", "AMQ9999", "--json")
    assert unknown.returncode == 1
    doc = json.loads(unknown.stdout)
    validator().validate(doc)
    assert doc["found"] is False and doc["suggestions"]
    human = tlsprobe("explain", "AMQ9999")
    assert human.returncode == 1 and "Closest known" in human.stdout


def test_cli_explain_human_output() -> None:
    proc = tlsprobe("explain", "CR = 71")
    assert proc.returncode == 0
    out = proc.stdout
    assert "INSUFFICIENT_SECURITY" in out and "CR=0" in out
    assert "tlsprobe lab insufficient-security" in out and "tlsprobe probe 127.0.0.1:" in out


def test_cli_explain_usage() -> None:
    empty = tlsprobe("explain", " ")
    assert empty.returncode == 2 and "Traceback" not in empty.stderr
    assert len([ln for ln in empty.stderr.splitlines() if ln.strip()]) == 1
    missing = tlsprobe("explain")
    assert missing.returncode == 2 and "Traceback" not in missing.stderr
    helptext = tlsprobe("explain", "--help")
    assert helptext.returncode == 0
    assert "1 it is not (the closest known codes are listed)" in " ".join(helptext.stdout.split())


@pytest.mark.parametrize(
    ("query", "tag"),
    [
        ("alert 121", "[standard knowledge, not confirmed by a source]"),  # [K] in the reference
        ("AMQ9635", "[unconfirmed]"),  # [U]
    ],
)
def test_meaning_line_carries_the_tag_of_its_own_entry(query: str, tag: str) -> None:
    proc = tlsprobe("explain", query)
    meaning = next(line for line in proc.stdout.splitlines() if line.strip().startswith("meaning"))
    assert meaning.endswith(tag), meaning


def test_confirmed_meaning_has_no_tag() -> None:
    proc = tlsprobe("explain", "AMQ9631")
    meaning = next(line for line in proc.stdout.splitlines() if line.strip().startswith("meaning"))
    assert "[" not in meaning, meaning


def test_reproduce_commands_probe_the_scenarios_own_port() -> None:
    """explain suggests `lab NAME --port-base B` then a probe: the probe must go to the port
    that lab gives NAME (base + its catalog index), which `lab --list` also prints."""
    listing = json.loads(tlsprobe("lab", "--list", "--json").stdout)
    ports = {row["name"]: row["port"] for row in listing["scenarios"]}
    for query in ("alert 70", "alert 116", "AMQ9673"):
        doc = json.loads(tlsprobe("explain", query, "--json").stdout)
        assert doc["scenarios"], query
        for sc in doc["scenarios"]:
            lab_cmd, probe_cmd = sc["commands"]
            assert lab_cmd.endswith(f"--port-base {listing['scenarios'][0]['port']}"), lab_cmd
            assert f"127.0.0.1:{ports[sc['name']]} " in probe_cmd, (sc["name"], probe_cmd)
