"""No private key or password in any output, log, JSON or database row; keys written 0600.

Runs the real commands with a client identity whose password is a unique marker, against the
lab, and greps everything they produce: stdout, stderr, JSON, JUnit, the history database.
"""

from __future__ import annotations

import base64
import os
import sqlite3
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat
from labproc import Lab, running_lab

from probe.pki import TestPKI, load_private_key

MARKER = "S3cret-Marker-7f2c9d"  # the password under test; must never be echoed


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    with running_lab(tmp_path_factory.mktemp("sec-lab"), "client-cert-required", "good") as lab:
        yield lab


def run(*args: str | Path, env: dict[str, str] | None = None) -> str:
    full = dict(os.environ)
    full.update(env or {})
    proc = subprocess.run(
        [sys.executable, "-m", "probe", *map(str, args)],
        capture_output=True, text=True, timeout=120, env=full,
    )  # fmt: skip
    return proc.stdout + proc.stderr


def secrets_of(key_path: Path, password: str | None = None) -> list[str]:
    """Strings that would betray the key: PEM armour, and its private numbers (RSA d, p, q or
    the EC private value) as hex and as base64 runs of the DER. Not the modulus: it is public
    and rightly in every certificate a trace shows."""
    key = load_private_key(key_path, password=password)
    der = key.private_bytes(Encoding.DER, PrivateFormat.PKCS8, NoEncryption())
    if isinstance(key, rsa.RSAPrivateKey):
        nums = key.private_numbers()
        secret = [nums.d, nums.p, nums.q]
    else:
        assert isinstance(key, ec.EllipticCurvePrivateKey)
        secret = [key.private_numbers().private_value]
    out = ["PRIVATE KEY"]
    b64 = base64.b64encode(der).decode()
    for n in secret:
        raw = n.to_bytes((n.bit_length() + 7) // 8, "big")
        out.append(raw.hex()[16:76])
        # The same bytes inside the base64 of the DER: start at a 3-byte boundary so the
        # characters are the ones any base64 of this key would contain.
        at = (der.index(raw) + 2) // 3 * 3 + 3
        out.append(b64[at // 3 * 4 : at // 3 * 4 + 32])
    return out


def test_nothing_secret_leaks(lab: Lab, tmp_path: Path, pki: TestPKI) -> None:
    # A PKCS#12 and an encrypted key protected by the marker password.
    from probe.pki import load_certs_pem, write_pkcs12, write_private_key

    key = load_private_key(lab.pki / "client.key")
    p12 = tmp_path / "id.p12"
    chain = load_certs_pem(lab.pki / "client.chain.crt")
    write_pkcs12(p12, cert=chain[0], key=key, chain=chain[1:], password=MARKER)
    enc = tmp_path / "id.enc.key"
    write_private_key(enc, key, password=MARKER)
    db = tmp_path / "h.sqlite"
    junit = tmp_path / "j.xml"
    plan = tmp_path / "plan.toml"
    plan.write_text(f'''
[[check]]
name = "mtls"
target = "127.0.0.1:{lab.ports["client-cert-required"]}"
ca = "{lab.ca}"
cert = "{p12}"
cert_password_env = "ID_PASSWORD"
''')
    outputs = [
        run("probe", f"127.0.0.1:{lab.ports['client-cert-required']}", "--ca", lab.ca,
            "--cert", p12, "--cert-password", MARKER, "--json", "--trace"),
        run("probe", f"127.0.0.1:{lab.ports['client-cert-required']}", "--ca", lab.ca,
            "--cert", lab.pki / "client.crt", "--key", enc, "--trace",
            env={"TLSPROBE_CERT_PASSWORD": MARKER}),
        run("probe", "127.0.0.1:1", "--cert", p12, "--cert-password", "wrong-" + MARKER),
        run("matrix", f"127.0.0.1:{lab.ports['client-cert-required']}", "--ca", lab.ca,
            "--tls", "1.3", "--cert", p12, "--cert-password", MARKER, "--json"),
        run("run", plan, "--db", db, "--junit", junit, "--json", env={"ID_PASSWORD": MARKER}),
        run("lab", "--list", "--pki-dir", lab.pki, "--json"),
    ]  # fmt: skip
    assert '"outcome": "connected"' in outputs[0], outputs[0][-2000:]
    artefacts = [*outputs, junit.read_text()]
    conn = sqlite3.connect(db)
    for (row,) in conn.execute("SELECT result FROM checks"):
        artefacts.append(row)
    conn.close()
    artefacts.append(db.read_bytes().decode("latin-1"))
    needles = [MARKER, *secrets_of(lab.pki / "client.key")]
    for text in artefacts:
        for needle in needles:
            assert needle not in text, f"{needle[:20]!r} leaked"


def test_private_keys_are_0600(pki: TestPKI, tmp_path: Path) -> None:
    from probe.pki import build_test_pki

    fresh = build_test_pki(tmp_path / "pki")
    keys = list(fresh.directory.glob("*.key")) + list(fresh.directory.glob("*.p12"))
    assert keys
    for path in keys:
        mode = stat.S_IMODE(path.stat().st_mode)
        assert mode & 0o077 == 0, f"{path.name} is {oct(mode)}"
