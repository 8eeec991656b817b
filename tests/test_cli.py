"""The command line as a user runs it: a real `tlsprobe` process, exit codes, one-line errors.

Bad input must give exit 2 and one clear line on stderr, never a traceback, and nothing may
echo a password.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import jsonschema
import pytest
from peers import Peer, free_port
from probing import probe_schema

from probe.pki import TestPKI


def tlsprobe(
    *args: str | Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    import os

    full_env = dict(os.environ)
    full_env.pop("TLSPROBE_CERT_PASSWORD", None)
    full_env.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "probe", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=60,
        env=full_env,
    )


def assert_usage_error(proc: subprocess.CompletedProcess[str], *words: str) -> None:
    assert proc.returncode == 2, (proc.returncode, proc.stdout, proc.stderr)
    assert "Traceback" not in proc.stderr + proc.stdout
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, proc.stderr
    for w in words:
        assert w in lines[0], lines[0]


def bad_input_cases(pki: TestPKI, tmp: Path) -> list[tuple[str, list[str | Path], list[str]]]:
    empty = tmp / "empty.pem"
    empty.write_text("")
    huge = tmp / "huge.pem"
    huge.write_bytes(b"-----BEGIN CERTIFICATE-----\n" + b"A" * (5 * 1024 * 1024))
    odd_name = Path(os.fsdecode(bytes(tmp) + b"/id-\xff\xfe.pem"))
    odd_name.write_bytes(b"\x00\x01 not a certificate")
    junk = tmp / "junk.bin"
    junk.write_bytes(b"\x01\x02not a certificate at all" * 10)
    return [
        ("missing cert", ["--cert", tmp / "nope.pem"], ["no such file"]),
        ("huge cert", ["--cert", huge], ["too large"]),
        ("non-UTF-8 file name", ["--cert", odd_name], ["PKCS#12"]),
        (
            "missing non-UTF-8 name",
            ["--cert", Path(os.fsdecode(b"/nonexistent-\xff.pem"))],
            ["no such file"],
        ),
        ("cert is a directory", ["--cert", tmp], ["directory"]),
        ("empty cert", ["--cert", empty], ["empty"]),
        ("junk cert", ["--cert", junk], ["PKCS#12"]),
        ("pem cert without key", ["--cert", pki.client.cert], ["--key"]),
        (
            "p12 wrong password",
            ["--cert", pki.client.pkcs12, "--cert-password", "wrong"],
            ["wrong password"],
        ),
        ("p12 no password", ["--cert", pki.client.pkcs12], ["PKCS#12"]),
        (
            "p12 without key",
            ["--cert", pki.client.pkcs12_no_key, "--cert-password", pki.pkcs12_password],
            ["no private key"],
        ),
        (
            "encrypted key no password",
            ["--cert", pki.client.cert, "--key", pki.client.encrypted_key],
            ["encrypted"],
        ),
        (
            "encrypted key wrong password",
            [
                "--cert",
                pki.client.cert,
                "--key",
                pki.client.encrypted_key,
                "--cert-password",
                "nope",
            ],
            ["wrong password"],
        ),
        (
            "key of another cert",
            ["--cert", pki.client.cert, "--key", pki.good.key],
            ["does not match"],
        ),
        (
            "DER cert given as key",
            ["--cert", pki.client.cert, "--key", pki.client.cert_der],
            ["no readable private key"],
        ),
        ("CA file is a key", ["--ca", pki.client.key], ["CA file"]),
        ("CA file missing", ["--ca", tmp / "ca-nope.pem"], ["no such file"]),
        (
            "unknown cipher",
            ["--ciphers", "ECDHE-RSA-AES128-GCM-SHA265"],
            ["unknown cipher suite", "did you mean"],
        ),
        ("unknown GSKit code", ["--ciphers", "gsk:ZZ"], ["gsk:ZZ", "did you mean"]),
        ("bad version", ["--tls", "1.4"], ["--tls"]),
        ("ssl3 in the engine", ["--tls", "ssl3"], ["SSLv3", "cannot speak"]),
        ("min above max", ["--tls-min", "1.3", "--tls-max", "1.2"], ["above"]),
        ("starttls unknown", ["--starttls", "gopher"], ["choose one of"]),
        ("mq channel too long", ["--mq-channel", "X" * 21], ["MQ channel"]),
        ("key without cert", ["--key", pki.client.key], ["--key needs --cert"]),
        ("bad timeout", ["--timeout", "0"], ["--timeout"]),
        ("NaN timeout", ["--timeout", "nan"], ["--timeout nan", "finite"]),
        ("infinite grace", ["--grace", "inf"], ["--grace inf", "finite"]),
        ("negative grace", ["--grace", "-1"], ["--grace"]),
    ]


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["scan", "127.0.0.1:1", "--timeout", "nan"], ["--timeout nan"]),
        (["scan", "127.0.0.1:1", "--pause", "inf"], ["--pause inf"]),
        (["matrix", "127.0.0.1:1", "--timeout", "nan"], ["--timeout nan"]),
        (["overlap", "mq:ANY", "127.0.0.1:1", "--timeout", "nan"], ["--timeout nan"]),
        (["lab", "--port-base", "-5"], ["--port-base -5", "port number"]),
        (["lab", "--pki-dir", "/etc/hostname", "good"], ["not a directory"]),
        (["explain", "--jsn", "AMQ9631"], ["no such option '--jsn'"]),
        (["matrix", "127.0.0.1:1", "--mq-channel", "TO.QMGR1", "--sni", "x"], ["drop --sni"]),
    ],
)
def test_bad_numbers_and_options_of_other_commands(args: list[str], words: list[str]) -> None:
    """NaN and infinite durations used to fail inside trio (exit 3, "this is a bug")."""
    assert_usage_error(tlsprobe(*args), *words)


def test_bad_input_gives_exit_2_and_one_line(pki: TestPKI, tmp_path: Path) -> None:
    failures = []
    for name, args, words in bad_input_cases(pki, tmp_path):
        proc = tlsprobe("probe", "127.0.0.1:1", *args)
        try:
            assert_usage_error(proc, *words)
        except AssertionError as exc:
            failures.append(f"{name}: {exc}")
    assert not failures, "\n".join(failures)


@pytest.mark.parametrize(
    "target",
    [
        "host:99999", "[::1", "host:abc", "",
        # Typos that used to become DNS queries or a guessed port:
        "not a target", "https://127.0.0.1:9600/", "user@host:22", "a..b:1",
        "::1:9600",  # [::1]:9600 or ::1:9600 on port 443? brackets decide
    ],
)
def test_bad_targets(target: str) -> None:
    assert_usage_error(tlsprobe("probe", target), "target")


def test_password_never_echoed(pki: TestPKI) -> None:
    secret = "Sup3r-S3cret-Passw0rd"
    proc = tlsprobe("probe", "127.0.0.1:1", "--cert", pki.client.pkcs12, "--cert-password", secret)
    assert secret not in proc.stdout + proc.stderr
    proc = tlsprobe(
        "probe", "127.0.0.1:1", "--cert", pki.client.pkcs12, env={"TLSPROBE_CERT_PASSWORD": secret}
    )
    assert secret not in proc.stdout + proc.stderr


@pytest.mark.parametrize("openssl_peer", ["client-cert-required-tls13"], indirect=True)
def test_json_output_validates_and_exit_codes(openssl_peer: Peer, pki: TestPKI) -> None:
    target = f"127.0.0.1:{openssl_peer.port}"
    ok = tlsprobe(
        "probe", target, "--ca", pki.ca, "--cert", pki.client.pkcs12, "--json",
        env={"TLSPROBE_CERT_PASSWORD": pki.pkcs12_password},
    )  # fmt: skip
    assert ok.returncode == 0, ok.stderr
    doc = json.loads(ok.stdout)
    jsonschema.validate(doc, probe_schema())
    assert doc["outcome"] == "connected" and doc["client_auth"]["sent"] is True
    assert pki.pkcs12_password not in ok.stdout
    assert "PRIVATE KEY" not in ok.stdout

    refused = tlsprobe("probe", target, "--ca", pki.ca, "--json")
    assert refused.returncode == 1
    doc = json.loads(refused.stdout)
    jsonschema.validate(doc, probe_schema())
    assert doc["outcome"] == "client_cert_required"
    assert doc["diagnosis"][0]["cause"] == "client_cert_missing"


@pytest.mark.parametrize("openssl_peer", ["tls12-only"], indirect=True)
def test_human_output_and_trace(openssl_peer: Peer, pki: TestPKI) -> None:
    proc = tlsprobe("probe", f"127.0.0.1:{openssl_peer.port}", "--ca", pki.ca, "--trace")
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert "connected" in out and "TLSv1.2" in out
    assert "──> ClientHello" in out and "<── ServerHello" in out
    assert "<── CertificateRequest" not in out
    assert "days left" in out


def test_refused_human_output_explains() -> None:
    proc = tlsprobe("probe", f"127.0.0.1:{free_port()}")
    assert proc.returncode == 1
    assert "refused" in proc.stdout and "Diagnosis" in proc.stdout
    assert proc.stderr == ""


def test_help_lists_every_probe_option() -> None:
    proc = tlsprobe("probe", "--help")
    assert proc.returncode == 0
    for opt in (
        "--starttls", "--sni", "--tls", "--tls-min", "--tls-max", "--ciphers", "--mq-channel",
        "--cert", "--key", "--cert-password", "--ca", "--no-verify", "--timeout", "--trace",
        "--json",
    ):  # fmt: skip
        assert opt in proc.stdout, opt


@pytest.mark.parametrize("command", ["probe", "scan"])
def test_ctrl_c_is_interrupted_not_a_bug(command: str) -> None:
    """SIGINT lands inside a nursery and arrives wrapped in an exception group: it is still
    an interruption (exit 130, one line), not an internal error."""
    here = Path(__file__).parent
    peer = subprocess.Popen(
        [sys.executable, str(here / "bytepeers.py"), "silent"], stdout=subprocess.PIPE, text=True
    )
    try:
        assert peer.stdout is not None
        port = int(peer.stdout.readline())
        proc = subprocess.Popen(
            [sys.executable, "-m", "probe", command, f"127.0.0.1:{port}", "--timeout", "30"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        time.sleep(1.5)  # connected and waiting for the silent peer
        proc.send_signal(signal.SIGINT)
        _out, err = proc.communicate(timeout=30)
    finally:
        peer.terminate()
        peer.wait(timeout=10)
    assert proc.returncode == 130, err
    assert err.strip() == "tlsprobe: interrupted", err
