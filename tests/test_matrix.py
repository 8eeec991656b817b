"""`tlsprobe matrix` against the lab: the expected grid for each scenario, cells a cipher list
cannot fill (n/a), and cells that agree with `tlsprobe probe` run with the same options."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from labproc import running_lab


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[dict[str, int], Path]]:
    pki = tmp_path_factory.mktemp("matrix-lab")
    names = ("client-cert-required", "tls10-only", "no-shared-cipher", "sslv3-only")
    with running_lab(pki, *names) as running:
        yield running.ports, pki


def cli(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "probe", *map(str, args)],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip


def matrix_cells(*args: str | Path) -> tuple[int, dict[tuple[str, str, str], Any], str]:
    proc = cli("matrix", *args, "--json")
    doc = json.loads(proc.stdout)
    cells = {(c["version"], c["ciphers"], c["identity"]): c for c in doc["cells"]}
    return proc.returncode, cells, proc.stderr


def matrix(*args: str | Path) -> tuple[int, dict[tuple[str, str, str], str], str]:
    rc, cells, err = matrix_cells(*args)
    return rc, {k: c["outcome"] for k, c in cells.items()}, err


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


def test_cipher_list_for_one_version_is_not_applicable_at_the_others(
    lab: tuple[dict[str, int], Path],
) -> None:
    # CAMELLIA128-SHA is a TLS 1.2 suite: nothing of it can be offered in TLS 1.3, so that cell
    # is shown (not tried) and the TLS 1.2 cell is still probed.
    ports, pki = lab
    rc, cells, err = matrix_cells(
        f"127.0.0.1:{ports['no-shared-cipher']}", "--ca", pki / "ca.crt",
        "--tls", "1.2", "--tls", "1.3", "--ciphers", "CAMELLIA128-SHA",
    )  # fmt: skip
    assert rc == 0, err
    tried = cells[("TLSv1.2", "CAMELLIA128-SHA", "no certificate")]
    assert tried["outcome"] == "connected" and tried["result"]["outcome"] == "connected"
    assert tried["note"] is None
    skipped = cells[("TLSv1.3", "CAMELLIA128-SHA", "no certificate")]
    assert skipped["outcome"] == "not_applicable" and skipped["result"] is None
    assert "TLSv1.3" in skipped["note"]
    text = cli("matrix", f"127.0.0.1:{ports['no-shared-cipher']}", "--ca", pki / "ca.crt",
               "--tls", "1.2", "--tls", "1.3", "--ciphers", "CAMELLIA128-SHA")  # fmt: skip
    row13 = next(line for line in text.stdout.splitlines() if "TLSv1.3" in line)
    assert row13.split()[-1] == "n/a", text.stdout


def test_no_cell_to_try_is_bad_input() -> None:
    # Rejected before any connection: port 1 is never dialled.
    proc = cli("matrix", "127.0.0.1:1", "--tls", "1.3", "--ciphers", "AES128-SHA")
    assert proc.returncode == 2, proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1 and "AES128-SHA" in proc.stderr
    assert proc.stdout == ""


@pytest.mark.parametrize(
    ("scenario", "versions"), [("sslv3-only", ("1.2", "1.3")), ("tls10-only", ("1.1", "1.3"))]
)
def test_cells_agree_with_probe(
    lab: tuple[dict[str, int], Path], scenario: str, versions: tuple[str, ...]
) -> None:
    # Each cell asks the partner's versions after a version refusal, as `probe` does, so the
    # outcome and the first cause match (sslv3-only: "partner speaks only SSLv3").
    ports, pki = lab
    target = f"127.0.0.1:{ports[scenario]}"
    flags = [f for v in versions for f in ("--tls", v)]
    rc, cells, err = matrix_cells(target, "--ca", pki / "ca.crt", *flags)
    assert rc == 1, err
    for v in versions:
        proc = cli("probe", target, "--ca", pki / "ca.crt", "--tls", v, "--json")
        want = json.loads(proc.stdout)
        got = cells[(f"TLSv{v}", "default", "no certificate")]
        assert (got["outcome"], got["result"]["diagnosis"][0]["cause"]) == (
            want["outcome"], want["diagnosis"][0]["cause"],
        ), v  # fmt: skip
        assert got["outcome"] == "version_mismatch"
        assert got["result"]["partner_versions"] == want["partner_versions"]
