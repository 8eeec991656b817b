"""`tlsprobe scan` against sslyze, sslscan, nmap ssl-enum-ciphers and testssl.sh, one server.

Every tool scans the same `openssl s_server` on 127.0.0.1, one after the other, in one run:

* ``everything``: an RSA certificate, every suite OpenSSL has at SECLEVEL 0
  (``ALL:COMPLEMENTOFALL``, the five TLS 1.3 suites), TLS 1.0 to 1.3, client order;
* ``intermediate``: Mozilla's "intermediate" list (ECDHE and DHE with AES-GCM and ChaCha20),
  TLS 1.2 and 1.3, ``-serverpref``: a realistic partner.

The ground truth is found first, without any of the tools: one `openssl s_client` handshake
per suite and version (as tests/test_scan.py does). Each tool is then timed straight against
the server (the median of ``--repeat`` runs; a tool over 20 s runs once) and run once more
through a small counting TCP proxy in this script, so "connections" is what the server accepted
from that tool. ``--rtt MS`` sends every run through the proxy, which then holds each chunk for
half that long in each direction, to show what a WAN partner costs. Wall time is the tool's
whole command, interpreter start-up included (tlsprobe's own scan time is in its notes).

Each tool's accepted suites per version are read from its machine output (tlsprobe --json,
sslyze --json_out, sslscan --xml, nmap -oX, testssl.sh --jsonfile) and compared with the ground
truth. A tool that is not installed gets a row that says so. Goal (issue 4): tlsprobe at most
0.1x sslyze's wall time, with exact results. --markdown prints the BENCHMARKS.md section.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import trio

from probe import __version__
from probe.pki import TestPKI, build_test_pki
from probe.wire import registry

HOST = "127.0.0.1"
VERSIONS = ("SSLv2", "SSLv3", "TLSv1.0", "TLSv1.1", "TLSv1.2", "TLSv1.3")
TLS13_ALL = ("TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256:"
             "TLS_AES_128_CCM_SHA256:TLS_AES_128_CCM_8_SHA256")  # fmt: skip
INTERMEDIATE = (
    "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384:"
    "ECDHE-RSA-AES256-GCM-SHA384:ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305:"
    "DHE-RSA-AES128-GCM-SHA256:DHE-RSA-AES256-GCM-SHA384:DHE-RSA-CHACHA20-POLY1305"
)
CONFIGS: dict[str, tuple[str, list[str]]] = {
    "everything": (
        "RSA 2048, `ALL:COMPLEMENTOFALL:@SECLEVEL=0` + all five TLS 1.3 suites, TLS 1.0-1.3, "
        "client order",
        ["-cipher", "ALL:COMPLEMENTOFALL:@SECLEVEL=0", "-ciphersuites", TLS13_ALL,
         "-min_protocol", "TLSv1", "-max_protocol", "TLSv1.3"],
    ),
    "intermediate": (
        "RSA 2048, Mozilla intermediate (9 TLS 1.2 suites, ECDHE/DHE AEAD) + TLS 1.3 defaults, "
        "TLS 1.2-1.3, -serverpref",
        ["-cipher", INTERMEDIATE, "-min_protocol", "TLSv1.2", "-max_protocol", "TLSv1.3",
         "-serverpref"],
    ),
}  # fmt: skip

Found = dict[str, set[int]]


# --------------------------------------------------------------------------- the server


@contextlib.contextmanager
def s_server(pki: TestPKI, args: list[str], workdir: Path) -> Iterator[int]:
    """``openssl s_server`` on a kernel-chosen port; its ACCEPT line says which."""
    log = workdir / "s_server.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            ["openssl", "s_server", "-accept", f"{HOST}:0", "-cert", str(pki.good.cert),
             "-key", str(pki.good.key), "-cert_chain", str(pki.intermediate), *args],
            stdin=subprocess.PIPE, stdout=out, stderr=subprocess.STDOUT,
        )  # fmt: skip
    try:
        deadline = time.monotonic() + 10
        while (m := re.search(rb"^ACCEPT 127\.0\.0\.1:(\d+)$", log.read_bytes(), re.M)) is None:
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"s_server did not start:\n{log.read_text(errors='replace')}")
            time.sleep(0.01)
        yield int(m.group(1))
    finally:
        proc.terminate()
        proc.wait(5)


@dataclass
class CountingProxy:
    """Accepts on 127.0.0.1, counts, and relays each connection to the server."""

    upstream: int
    delay: float = 0.0  # seconds each chunk waits, each direction
    connections: int = 0
    port: int = 0

    async def serve(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        listeners = await trio.open_tcp_listeners(0, host=HOST, backlog=1024)
        self.port = listeners[0].socket.getsockname()[1]
        task_status.started()
        await trio.serve_listeners(self._relay, listeners)

    async def _relay(self, client: trio.SocketStream) -> None:
        self.connections += 1
        try:
            server = await trio.open_tcp_stream(HOST, self.upstream)
        except OSError:
            await client.aclose()
            return
        async with client, server, trio.open_nursery() as nursery:
            nursery.start_soon(self._pump, client, server, nursery.cancel_scope)
            nursery.start_soon(self._pump, server, client, nursery.cancel_scope)

    async def _pump(
        self, src: trio.SocketStream, dst: trio.SocketStream, both: trio.CancelScope
    ) -> None:
        """Copy until EOF, then pass the FIN on (the other direction may still be talking).
        A reset or a failed send ends both directions: s_server serves one connection at a
        time, so a server socket left open after the client reset would stall every tool."""
        try:
            while data := await src.receive_some(65536):
                if self.delay:
                    await trio.sleep(self.delay)
                await dst.send_all(data)
            await dst.send_eof()
        except (trio.BrokenResourceError, trio.ClosedResourceError, OSError):
            both.cancel()


# --------------------------------------------------------------------------- ground truth

_CIPHERS_V = re.compile(r"0x([0-9A-F]{2}),0x([0-9A-F]{2}) - (\S+)\s+(\S+)\s")
_FLAGS = {"TLSv1.0": "-tls1", "TLSv1.1": "-tls1_1", "TLSv1.2": "-tls1_2", "TLSv1.3": "-tls1_3"}


async def ground_truth(port: int) -> tuple[Found, int]:
    """One s_client handshake per suite and version (suites ``openssl ciphers -s`` says the
    client can offer at that version; the rest cannot complete a handshake), and how many."""
    jobs: list[tuple[str, str, int, bool]] = []
    for version, flag in _FLAGS.items():
        out = subprocess.run(
            ["openssl", "ciphers", "-s", flag, "-V", "-ciphersuites", TLS13_ALL,
             "ALL:COMPLEMENTOFALL:@SECLEVEL=0"],
            capture_output=True, text=True, check=True,
        ).stdout  # fmt: skip
        for m in _CIPHERS_V.finditer(out):
            jobs.append((version, m[3], int(m[1] + m[2], 16), m[4] == "TLSv1.3"))
    truth: Found = {v: set() for v in VERSIONS}
    limiter = trio.CapacityLimiter(8)

    async def one(version: str, name: str, code: int, tls13: bool) -> None:
        pick = ["-ciphersuites", name] if tls13 else ["-cipher", f"{name}:@SECLEVEL=0"]
        async with limiter:
            proc = await trio.run_process(
                ["openssl", "s_client", "-connect", f"{HOST}:{port}", _FLAGS[version], *pick,
                 "-brief"],
                stdin=b"", capture_stdout=True, capture_stderr=True, check=False,
            )  # fmt: skip
        text = (proc.stdout + proc.stderr).decode("utf-8", "replace")
        if re.search(rf"^Ciphersuite: {re.escape(name)}\r?$", text, re.M):
            truth[version].add(code)

    async with trio.open_nursery() as nursery:
        for job in jobs:
            nursery.start_soon(one, *job)
    return truth, len(jobs)


# --------------------------------------------------------------------------- tools


@dataclass
class Outcome:
    tool: str
    version: str = ""
    wall: float | None = None
    connections: int | None = None
    found: Found | None = None
    order: dict[str, list[int]] = field(default_factory=dict)
    server_order: dict[str, bool | None] = field(default_factory=dict)
    note: str = ""


def code_of(name: str) -> int | None:
    s = registry.find_suite(name)
    return s.code if s else None


def _named(found: dict[str, list[str]]) -> tuple[Found, list[str]]:
    out: Found = {v: set() for v in VERSIONS}
    unknown = []
    for version, names in found.items():
        for name in names:
            code = code_of(name)
            if code is None:
                unknown.append(name)
            else:
                out[version].add(code)
    return out, unknown


def parse_tlsprobe(text: str, _path: Path) -> Outcome:
    doc = json.loads(text)
    out = Outcome(tool="tlsprobe scan", found={v: set() for v in VERSIONS})
    assert out.found is not None
    for p in doc["protocols"]:
        codes = [int(c["code"], 16) for c in p["ciphers"]]
        out.found[p["version"]] = set(codes)
        out.order[p["version"]] = codes
        out.server_order[p["version"]] = p["server_order"]
    out.note = f"scan {doc['timings_ms']['total'] / 1000:.2f} s without start-up"
    return out


_SSLYZE_KEYS = {"SSLv2": "ssl_2_0", "SSLv3": "ssl_3_0", "TLSv1.0": "tls_1_0",
                "TLSv1.1": "tls_1_1", "TLSv1.2": "tls_1_2", "TLSv1.3": "tls_1_3"}  # fmt: skip


def parse_sslyze(_text: str, path: Path) -> Outcome:
    doc = json.loads(path.read_text())
    result = doc["server_scan_results"][0]["scan_result"]
    names: dict[str, list[str]] = {}
    for version, key in _SSLYZE_KEYS.items():
        attempt = result[f"{key}_cipher_suites"]
        accepted = (attempt.get("result") or {}).get("accepted_cipher_suites", [])
        names[version] = [a["cipher_suite"]["name"] for a in accepted]
    found, unknown = _named(names)
    return Outcome(tool="sslyze", found=found, note=_unknown(unknown))


def parse_sslscan(_text: str, path: Path) -> Outcome:
    root = ET.parse(path).getroot()
    found: Found = {v: set() for v in VERSIONS}
    for c in root.iter("cipher"):
        if c.get("status") in ("accepted", "preferred") and c.get("sslversion") in found:
            found[c.get("sslversion", "")].add(int(c.get("id", "0"), 16))
    return Outcome(tool="sslscan", found=found)


def parse_nmap(_text: str, path: Path) -> Outcome:
    root = ET.parse(path).getroot()
    names: dict[str, list[str]] = {}
    server_order: dict[str, bool | None] = {}
    for script in root.iter("script"):
        if script.get("id") != "ssl-enum-ciphers":
            continue
        for table in script.findall("table"):
            version = table.get("key", "")
            ciphers = table.find("table[@key='ciphers']")
            if ciphers is None:
                continue
            # TLS 1.3 suites are spelled TLS_AKE_WITH_AES_128_GCM_SHA256.
            names[version] = [
                (e.text or "").replace("TLS_AKE_WITH_", "TLS_")
                for e in ciphers.iter("elem")
                if e.get("key") == "name"
            ]
            pref = table.find("elem[@key='cipher preference']")
            if pref is not None and pref.text in ("server", "client"):
                server_order[version] = pref.text == "server"
    found, unknown = _named(names)
    out = Outcome(tool="nmap ssl-enum-ciphers", found=found, note=_unknown(unknown))
    out.server_order = server_order
    return out


_TESTSSL_PROTO = {"ssl2": "SSLv2", "ssl3": "SSLv3", "tls1": "TLSv1.0", "tls1_1": "TLSv1.1",
                  "tls1_2": "TLSv1.2", "tls1_3": "TLSv1.3"}  # fmt: skip


def parse_testssl(_text: str, path: Path) -> Outcome:
    found: Found = {v: set() for v in VERSIONS}
    for entry in json.loads(path.read_text()):
        m = re.fullmatch(r"cipher-(ssl2|ssl3|tls1(?:_\d)?)_x([0-9a-f]+)", entry.get("id", ""))
        if m and "not offered" not in entry.get("finding", ""):
            found[_TESTSSL_PROTO[m[1]]].add(int(m[2], 16))
    return Outcome(tool="testssl.sh", found=found)


def _unknown(names: list[str]) -> str:
    return f"names not in our registry: {', '.join(sorted(set(names)))}" if names else ""


@dataclass(frozen=True)
class Tool:
    name: str
    exe: str | None  # None: not installed
    argv: Callable[[int, Path], list[str]]  # (port, output file) -> command
    parse: Callable[[str, Path], Outcome]
    version: Callable[[], str]
    missing: str = ""


def _first_line(argv: list[str], pattern: str = r"\S.*") -> str:
    try:
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return "?"
    text = re.sub(r"\x1b\[[0-9;]*m", "", proc.stdout + proc.stderr)
    m = re.search(pattern, text)
    return m.group(m.lastindex or 0).strip() if m else "?"


def tools(sslyze_python: str | None) -> list[Tool]:
    tlsprobe = [sys.executable, "-m", "probe"]
    sslscan = shutil.which("sslscan")
    nmap = shutil.which("nmap")
    testssl = shutil.which("testssl") or shutil.which("testssl.sh")
    try:
        sslyze_ok = bool(sslyze_python) and subprocess.run(
            [str(sslyze_python), "-c", "import sslyze"], capture_output=True
        ).returncode == 0  # fmt: skip
    except OSError:
        sslyze_ok = False
    return [
        Tool("tlsprobe scan", sys.executable,
             lambda port, _out: [*tlsprobe, "scan", f"{HOST}:{port}", "--json"],
             parse_tlsprobe, lambda: __version__),
        Tool("sslyze", sslyze_python if sslyze_ok else None,
             lambda port, out: [str(sslyze_python), "-m", "sslyze", "--sslv2", "--sslv3",
                                "--tlsv1", "--tlsv1_1", "--tlsv1_2", "--tlsv1_3",
                                "--elliptic_curves", f"--json_out={out}", f"{HOST}:{port}"],
             parse_sslyze,
             lambda: _first_line([str(sslyze_python), "-c",
                                  "import importlib.metadata as m; print(m.version('sslyze'))"]),
             missing="not installed (scripts/bootstrap puts it in .venv-sslyze)"),
        Tool("sslscan", sslscan,
             lambda port, out: [str(sslscan), "--no-colour", f"--xml={out}", f"{HOST}:{port}"],
             parse_sslscan,
             lambda: _first_line([str(sslscan), "--version"], r"(\d+\.\d+\.\d+)"),
             missing="not installed (apt-get install sslscan)"),
        Tool("nmap ssl-enum-ciphers", nmap,
             lambda port, out: [str(nmap), "-Pn", "-n", "-p", str(port), "--script",
                                "ssl-enum-ciphers", "-oX", str(out), HOST],
             parse_nmap,
             lambda: _first_line([str(nmap), "--version"], r"Nmap version (\S+)"),
             missing="not installed (apt-get install nmap)"),
        Tool("testssl.sh", testssl,
             lambda port, out: [str(testssl), "--quiet", "--warnings", "off", "--color", "0",
                                "-E", "--jsonfile", str(out), f"{HOST}:{port}"],
             parse_testssl,
             lambda: _first_line([str(testssl), "--version"], r"testssl\S*\s+(\d[\d.]*\S*)"),
             missing="not installed (apt-get install testssl.sh)"),
    ]  # fmt: skip


@dataclass
class Run:
    wall: float
    outcome: Outcome


async def run_once(tool: Tool, port: int, workdir: Path, timeout: float) -> Run:
    """One run of ``tool`` against ``port``: its wall time and what it found."""
    assert tool.exe is not None
    out_file = workdir / f"{tool.name.split()[0]}.out"
    out_file.unlink(missing_ok=True)
    started = time.perf_counter()
    with trio.move_on_after(timeout) as scope:
        proc = await trio.run_process(
            tool.argv(port, out_file), stdin=subprocess.DEVNULL, capture_stdout=True,
            capture_stderr=True, check=False, cwd=workdir,
        )  # fmt: skip
    wall = time.perf_counter() - started
    if scope.cancelled_caught:
        return Run(wall, Outcome(tool=tool.name, note=f"did not finish in {timeout:.0f} s"))
    try:
        return Run(wall, tool.parse(proc.stdout.decode("utf-8", "replace"), out_file))
    except (OSError, ValueError, KeyError, IndexError, TypeError, ET.ParseError) as exc:
        err = proc.stderr.decode("utf-8", "replace").strip().splitlines()
        note = (f"exit {proc.returncode}, no usable output ({type(exc).__name__}: {exc}"
                f"{'; ' + err[-1] if err else ''})")  # fmt: skip
        return Run(wall, Outcome(tool=tool.name, note=note))


async def run_tool(
    tool: Tool, port: int, proxy: CountingProxy, workdir: Path, ns: argparse.Namespace
) -> Outcome:
    """Timed runs straight to the server (a Python relay in the path would slow the fast tools
    most), the median kept; then one run through the counting proxy for the connections.
    With --rtt every run goes through the proxy, which then adds the latency."""
    if tool.exe is None:
        return Outcome(tool=tool.name, note=tool.missing)
    target = proxy.port if ns.rtt else port
    runs = [await run_once(tool, target, workdir, ns.timeout)]
    # Tools that take long are timed once: their spread is small next to their time.
    while len(runs) < ns.repeat and runs[0].wall < 20 and runs[0].outcome.found is not None:
        runs.append(await run_once(tool, target, workdir, ns.timeout))
    runs.sort(key=lambda r: r.wall)
    median = runs[len(runs) // 2]
    result = median.outcome
    result.wall = median.wall
    if len(runs) > 1:
        spread = f"median of {len(runs)}: {', '.join(f'{r.wall:.2f}' for r in runs)} s"
        result.note = f"{result.note}; {spread}" if result.note else spread
    if result.found is None:
        return result
    proxy.connections = 0
    counted = await run_once(tool, proxy.port, workdir, ns.timeout)
    result.connections = proxy.connections
    if counted.outcome.found != result.found:
        result.note += "; the counted run found other suites"
    result.version = tool.version()
    return result


# --------------------------------------------------------------------------- report


def names(codes: set[int]) -> str:
    out = []
    for code in sorted(codes):
        s = registry.suite(code)
        out.append((s.openssl or s.iana) if s else f"0x{code:04X}")
    return ", ".join(out)


def verdict(found: Found | None, truth: Found) -> str:
    if found is None:
        return "-"
    diffs = []
    for v in VERSIONS:
        got, want = found.get(v, set()), truth.get(v, set())
        if got != want:
            parts = []
            if want - got:
                parts.append(f"misses {names(want - got)}")
            if got - want:
                parts.append(f"extra {names(got - want)}")
            diffs.append(f"{v} {'; '.join(parts)}")
    return "exact" if not diffs else "NO: " + " / ".join(diffs)


def order_check(o: Outcome, truth_order: dict[str, list[int]]) -> str:
    """For tlsprobe on a -serverpref server: is the reported order the configured one?"""
    bad = [v for v, want in truth_order.items() if want and o.order.get(v) != want]
    return "order exact" if not bad else f"order differs in {', '.join(bad)}"


async def bench_config(config: str, pki: TestPKI, ns: argparse.Namespace) -> list[str]:
    label, args = CONFIGS[config]
    with (
        tempfile.TemporaryDirectory(prefix="bench-scan-") as tmp,
        s_server(pki, args, Path(tmp)) as port,
    ):
        workdir = Path(tmp)
        t0 = time.perf_counter()
        truth, handshakes = await ground_truth(port)
        truth_time = time.perf_counter() - t0
        configured = _configured_order(args)
        proxy = CountingProxy(upstream=port, delay=ns.rtt / 2000)
        outcomes = []
        async with trio.open_nursery() as nursery:
            await nursery.start(proxy.serve)
            for tool in tools(ns.sslyze_python):
                if ns.tools and tool.name.split()[0] not in ns.tools:
                    continue
                print(f"bench-scan: {config}: {tool.name} ...", file=sys.stderr, flush=True)
                outcomes.append(await run_tool(tool, port, proxy, workdir, ns))
            nursery.cancel_scope.cancel()
    total = sum(len(s) for s in truth.values())
    per_version = ", ".join(f"{v} {len(truth[v])}" for v in VERSIONS if truth[v])
    sslyze = next((o for o in outcomes if o.tool == "sslyze" and o.wall and o.found), None)
    rows = [
        f"Server `{config}`: {label}. Ground truth: {total} suites ({per_version}), "
        f"found by {handshakes} `openssl s_client` "
        f"handshakes in {truth_time:.1f} s.",
        "",
        "| tool | version | wall time | vs sslyze | connections | suites found"
        " | matches ground truth | notes |",
        "|---|---|---|---|---|---|---|---|",
    ]  # fmt: skip
    for o in outcomes:
        wall = f"{o.wall:.2f} s" if o.wall is not None else "-"
        ratio = f"{o.wall / sslyze.wall:.2f}x" if sslyze and sslyze.wall and o.wall else "-"
        conns = str(o.connections) if o.connections is not None else "-"
        count = str(sum(len(s) for s in o.found.values())) if o.found else "-"
        note = o.note
        if o.tool == "tlsprobe scan" and o.found is not None:
            wanted = {v: [c for c in configured if c in truth[v]] for v in VERSIONS}
            if "-serverpref" in args:
                check = order_check(o, {v: w for v, w in wanted.items() if len(w) > 1})
                note = f"{note}; {check}" if note else check
        rows.append(f"| {o.tool} | {o.version or '-'} | {wall} | {ratio} | {conns} | {count} "
                    f"| {verdict(o.found, truth)} | {note} |")  # fmt: skip
    tlsprobe = next((o for o in outcomes if o.tool == "tlsprobe scan"), None)
    if tlsprobe and sslyze and tlsprobe.wall and sslyze.wall:
        share = tlsprobe.wall / sslyze.wall
        exact = verdict(tlsprobe.found, truth) == "exact"
        met = "met" if share <= 0.1 and exact else "not met"
        rows += ["", f"Goal (tlsprobe <= 0.1x sslyze wall time, exact): **{met}** "
                     f"({share:.2f}x, {'exact' if exact else 'not exact'})."]  # fmt: skip
    return rows


def _configured_order(args: list[str]) -> list[int]:
    """The server's own order: `openssl ciphers` prints a list in the order s_server uses it."""
    cipher = args[args.index("-cipher") + 1]
    suites = args[args.index("-ciphersuites") + 1] if "-ciphersuites" in args else None
    argv = ["openssl", "ciphers", "-V", *(["-ciphersuites", suites] if suites else []), cipher]
    text = subprocess.run(argv, capture_output=True, text=True, check=True).stdout
    return [int(m[1] + m[2], 16) for m in _CIPHERS_V.finditer(text)]


async def main_async(ns: argparse.Namespace) -> list[str]:
    with tempfile.TemporaryDirectory(prefix="bench-scan-pki-") as tmp:
        pki = build_test_pki(Path(tmp))
        sections = []
        for config in ns.config or ["everything"]:
            sections.append((config, await bench_config(config, pki, ns)))
    out = []
    for config, rows in sections:
        if len(sections) > 1:
            out += [f"### `{config}`", ""]
        out += [*rows, ""]
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    ap.add_argument(
        "--config",
        action="append",
        choices=sorted(CONFIGS),
        help="server configuration (repeatable; default: everything)",
    )
    ap.add_argument(
        "--tools",
        nargs="+",
        metavar="NAME",
        help="only these: tlsprobe sslyze sslscan nmap testssl.sh",
    )
    ap.add_argument(
        "--sslyze-python",
        default=os.environ.get("TLSPROBE_SSLYZE_PYTHON"),
        help="a Python with sslyze (default: $TLSPROBE_SSLYZE_PYTHON)",
    )
    ap.add_argument(
        "--rtt",
        type=float,
        default=0.0,
        help="simulated round-trip time in ms added by the proxy (default 0)",
    )
    ap.add_argument(
        "--repeat",
        type=int,
        default=3,
        help="timed runs per tool, median kept (tools over 20 s: one)",
    )
    ap.add_argument("--timeout", type=float, default=900.0, help="seconds allowed per tool")
    ap.add_argument("--markdown", action="store_true", help="print a BENCHMARKS.md section")
    ns = ap.parse_args()
    if ns.sslyze_python:  # the tools run in a scratch directory
        ns.sslyze_python = str(Path(ns.sslyze_python).absolute())
    rows = trio.run(main_async, ns)
    cpus = os.cpu_count()
    load = os.getloadavg()[0]
    notes = [
        f"- One run, {time.strftime('%Y-%m-%d')}, {platform.machine()} with {cpus} CPUs "
        f"(load average {load:.1f} at the end), {platform.python_version()}, "
        f"{_first_line(['openssl', 'version'])}.",
        (
            f"- Every run goes through the script's TCP proxy, which adds {ns.rtt:.0f} ms RTT"
            if ns.rtt
            else "- Wall time: runs straight to the server, median kept"
        )
        + "; it includes interpreter start-up. Connections: one more run through the "
        "script's counting TCP proxy.",
        "- sslyze runs its cipher-suite commands for every version plus --elliptic_curves; "
        "testssl.sh runs -E (each cipher, per protocol); nmap runs ssl-enum-ciphers only.",
    ]
    if ns.markdown:
        print("\n".join(["## scan: tlsprobe vs sslyze, sslscan, nmap, testssl.sh "
                         "(scripts/bench-scan)", "", *rows, *notes]))  # fmt: skip
    else:
        print("\n".join([*rows, *notes]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
