"""`tlsprobe matrix` against the lab: the expected grid for three scenarios."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from labproc import running_lab


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[dict[str, int], Path]]:
    pki = tmp_path_factory.mktemp("matrix-lab")
    names = ("client-cert-required", "tls10-only", "no-shared-cipher")
    with running_lab(pki, *names) as running:
        yield running.ports, pki


def matrix(*args: str | Path) -> tuple[int, dict[tuple[str, str, str], str], str]:
    proc = subprocess.run(
        [sys.executable, "-m", "probe", "matrix", *map(str, args), "--json"],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    doc = json.loads(proc.stdout)
    grid = {(c["version"], c["ciphers"], c["identity"]): c["outcome"] for c in doc["cells"]}
    return proc.returncode, grid, proc.stderr


def test_client_cert_required_grid(lab: tuple[dict[str, int], Path]) -> None:
    ports, pki = lab
    rc, grid, err = matrix(
        f"127.0.0.1:{ports['client-cert-required']}", "--ca", pki / "ca.crt",
        "--tls", "1.2", "--tls", "1.3", "--cert", pki / "client.p12",
        "--cert-password", "tlsprobe-lab-p12",
    )  # fmt: skip
    assert rc == 0, err
    assert grid == {
        ("TLSv1.2", "default", "no certificate"): "client_cert_required",
        ("TLSv1.2", "default", "client.p12"): "connected",
        ("TLSv1.3", "default", "no certificate"): "client_cert_required",
        ("TLSv1.3", "default", "client.p12"): "connected",
    }


def test_tls10_only_grid(lab: tuple[dict[str, int], Path]) -> None:
    ports, pki = lab
    rc, grid, err = matrix(f"127.0.0.1:{ports['tls10-only']}", "--ca", pki / "ca.crt")
    assert rc == 0, err
    assert grid == {
        ("TLSv1.0", "default", "no certificate"): "connected",
        ("TLSv1.1", "default", "no certificate"): "version_mismatch",
        ("TLSv1.2", "default", "no certificate"): "version_mismatch",
        ("TLSv1.3", "default", "no certificate"): "version_mismatch",
    }


def test_no_shared_cipher_grid(lab: tuple[dict[str, int], Path]) -> None:
    ports, pki = lab
    rc, grid, err = matrix(
        f"127.0.0.1:{ports['no-shared-cipher']}", "--ca", pki / "ca.crt", "--tls", "1.2",
        "--ciphers", "ECDHE-RSA-AES128-GCM-SHA256", "--ciphers", "CAMELLIA128-SHA",
    )  # fmt: skip
    assert rc == 0, err
    assert grid == {
        ("TLSv1.2", "ECDHE-RSA-AES128-GCM-SHA256", "no certificate"): "cipher_mismatch",
        ("TLSv1.2", "CAMELLIA128-SHA", "no certificate"): "connected",
    }


def test_matrix_bad_input() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "probe", "matrix", "127.0.0.1:1", "--tls", "2.0"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert proc.returncode == 2 and "--tls" in proc.stderr and "Traceback" not in proc.stderr
