"""Regression plans: TOML files of checks with targets, probe options and expectations.

A malformed plan never runs: every unknown key, wrong type or bad value is a
:class:`PlanError` naming the file, the line and the key (tomllib gives no positions, so the
line is found by looking for the key inside the check's table in the text).

A check has a ``kind``: ``probe`` (the default: one handshake, expectations on its outcome),
``scan`` (every version and accepted suite, expectations on what is offered) or ``overlap``
(a partner ``profile`` against the target, expectation on the verdict). Each kind has its own
option and expectation keys (``KINDS``); a key of another kind is an unknown key.

Targets are ``HOST[:PORT]`` or ``lab:SCENARIO`` (a scenario of `tlsprobe lab`, at the lab's
port base plus its catalog index, trusted through the lab's ``ca.crt``). Paths are relative to
the plan file; ``~`` and ``$VARS`` are expanded. Passwords never sit in a plan: give
``cert_password_env`` (a variable name) or ``cert_password_file``.
"""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import InputError
from .result import OUTCOMES

# Probe options a plan may set, in [defaults] or per check, with their types.
OPTION_TYPES: dict[str, type | tuple[type, ...]] = {
    "starttls": str,
    "sni": str,
    "tls": str,
    "tls_min": str,
    "tls_max": str,
    "ciphers": str,
    "mq_channel": str,
    "cert": str,
    "key": str,
    "cert_password_env": str,
    "cert_password_file": str,
    "ca": str,
    "no_verify": bool,
    "timeout": (int, float),
    "grace": (int, float),
    "lab_port_base": int,
    "lab_pki_dir": str,
}
EXPECT_TYPES: dict[str, type | tuple[type, ...]] = {
    "outcome": str,
    "version": str,
    "cipher": str,
    "days_left_min": int,
    "client_cert_requested": bool,
    "cause": str,
}
# Scan expectations: version names (registry.find_version) and suite names in any form
# (cipherlist.parse_cipher_list), checked when the plan loads.
SCAN_EXPECT_TYPES: dict[str, type | tuple[type, ...]] = {
    "versions_offered": list,
    "versions_not_offered": list,
    "no_weak_suites": bool,
    "suites_include": list,
    "suites_exclude": list,
}
OVERLAP_EXPECT_TYPES: dict[str, type | tuple[type, ...]] = {"verdict": str}
VERDICTS = ("connects", "fails", "likely_fails")  # overlap.VERDICTS, without importing it here
_LAB_OPTIONS = ("lab_port_base", "lab_pki_dir")


@dataclass(frozen=True, slots=True, kw_only=True)
class Kind:
    """What a check of one kind accepts: its own keys, options, expectations, default expect."""

    keys: frozenset[str]
    options: frozenset[str]
    expect: dict[str, type | tuple[type, ...]]
    default_expect: dict[str, Any]


_COMMON = {"name", "target", "kind", "expect"}
KINDS: dict[str, Kind] = {
    "probe": Kind(keys=frozenset({*_COMMON, *OPTION_TYPES}), options=frozenset(OPTION_TYPES),
                  expect=EXPECT_TYPES, default_expect={"outcome": "connected"}),
    "scan": Kind(keys=frozenset({*_COMMON, "starttls", "sni", "timeout", *_LAB_OPTIONS}),
                 options=frozenset({"starttls", "sni", "timeout", *_LAB_OPTIONS}),
                 expect=SCAN_EXPECT_TYPES, default_expect={}),
    "overlap": Kind(keys=frozenset({*_COMMON, "profile", "timeout", *_LAB_OPTIONS}),
                    options=frozenset({"timeout", *_LAB_OPTIONS}),
                    expect=OVERLAP_EXPECT_TYPES, default_expect={"verdict": "connects"}),
}  # fmt: skip
CHECK_KEYS = frozenset().union(*(k.keys for k in KINDS.values()), {"profile"})
PATH_OPTIONS = ("cert", "key", "ca", "cert_password_file", "lab_pki_dir")


class PlanError(InputError):
    """A plan that cannot run (exit 2)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Check:
    name: str
    target: str
    options: dict[str, Any]
    expect: dict[str, Any]
    kind: str = "probe"  # probe | scan | overlap
    profile: str | None = None  # overlap: the partner profile (profile:NAME, path, mq:VALUE)


@dataclass(frozen=True, slots=True, kw_only=True)
class Plan:
    path: Path
    name: str
    checks: tuple[Check, ...]
    defaults: dict[str, Any] = field(default_factory=dict)


def _line_of(text: str, key: str, occurrence: int = 0, section: str = "[[check]]") -> int:
    """Best-effort line of ``key`` in the ``occurrence``-th ``section`` (1-based lines)."""
    lines = text.splitlines()
    start = 0
    if section:
        seen = -1
        for i, line in enumerate(lines):
            if line.strip() == section:
                seen += 1
                if seen == occurrence:
                    start = i
                    break
    pattern = re.compile(rf"^\s*{re.escape(key)}\s*=|[{{,]\s*{re.escape(key)}\s*=")
    for i in range(start, len(lines)):
        if pattern.search(lines[i]):
            return i + 1
    return start + 1


def _check_types(table: dict[str, Any], types: dict[str, Any], where: Callable[[str], str]) -> None:
    for key, value in table.items():
        want = types.get(key)
        if want is None:
            raise PlanError(f"{where(key)}: unknown key {key!r}")
        wants = want if isinstance(want, tuple) else (want,)
        # bool is an int in Python; a plan's `timeout = true` is still a mistake.
        ok = isinstance(value, wants) and not (isinstance(value, bool) and bool not in wants)
        if not ok:
            names = " or ".join(t.__name__ for t in wants)
            raise PlanError(f"{where(key)}: {key} must be {names}, not {type(value).__name__}")


def _check_expect(kind: str, expect: dict[str, Any], where: Callable[[str], str]) -> None:
    """Values, beyond types: outcomes, verdicts, version and suite names that exist."""
    from .cipherlist import parse_cipher_list
    from .wire import registry

    if kind == "probe" and "outcome" in expect and expect["outcome"] not in OUTCOMES:
        raise PlanError(f"{where('outcome')}: unknown outcome {expect['outcome']!r}")
    if kind == "overlap" and expect.get("verdict", "connects") not in VERDICTS:
        raise PlanError(f"{where('verdict')}: verdict must be one of {', '.join(VERDICTS)}")
    for key in ("versions_offered", "versions_not_offered", "suites_include", "suites_exclude"):
        values = expect.get(key, [])
        if not all(isinstance(v, str) for v in values):
            raise PlanError(f"{where(key)}: {key} must be a list of strings")
        for v in values:
            if key.startswith("versions") and registry.find_version(v) is None:
                raise PlanError(f"{where(key)}: {key}: unknown version {v!r}")
            if key.startswith("suites"):
                try:
                    parse_cipher_list(v)
                except InputError as exc:
                    raise PlanError(f"{where(key)}: {key}: {exc}") from None


def _check_profile(value: object, base: Path, where: Callable[[str], str]) -> str:
    """The partner profile of an overlap check, loaded now so a typo stops the plan."""
    from .overlap import parse_party

    if not isinstance(value, str) or not value.strip():
        raise PlanError(f'{where("profile")}: an overlap check needs profile = "NAME"')
    text = value.strip()
    if text.lower().endswith(".toml") and not text.lower().startswith(("profile:", "mq:")):
        text = _expand(text, base)
    try:
        party = parse_party(text)
    except InputError as exc:
        raise PlanError(f"{where('profile')}: profile {value!r}: {exc}") from None
    if party.profile is None:
        raise PlanError(
            f"{where('profile')}: profile {value!r} is an endpoint; give profile:NAME,"
            " a profile TOML path or mq:SSLCIPH (the endpoint is the target)"
        )
    return text


def _expand(value: str, base: Path) -> str:
    expanded = os.path.expanduser(os.path.expandvars(value))
    path = Path(expanded)
    return str(path if path.is_absolute() else (base / path))


def load_plan(path: Path) -> Plan:
    from .identity import read_input_file

    raw = read_input_file(path, "plan")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise PlanError(f"plan {path}: not UTF-8 text") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise PlanError(f"plan {path}: {exc}") from None
    unknown = set(data) - {"plan", "defaults", "check"}
    if unknown:
        key = sorted(unknown)[0]
        raise PlanError(f"{path}:{_line_of(text, key, section='')}: unknown table or key {key!r}")
    meta = data.get("plan", {})
    if not isinstance(meta, dict) or set(meta) - {"name"}:
        raise PlanError(f"{path}: [plan] takes only name")
    defaults = data.get("defaults", {})
    if not isinstance(defaults, dict):
        raise PlanError(f"{path}: defaults must be a table")
    _check_types(
        defaults,
        OPTION_TYPES,
        lambda k: f"{path}:{_line_of(text, k, section='[defaults]')}: [defaults]",
    )
    raw_checks = data.get("check", [])
    if not isinstance(raw_checks, list) or not raw_checks:
        raise PlanError(f"{path}: no [[check]] tables; a plan needs at least one check")
    base = path.resolve().parent
    checks: list[Check] = []
    names: set[str] = set()
    for i, raw_check in enumerate(raw_checks):
        label = raw_check.get("name", f"#{i + 1}")

        def where(key: str, i: int = i, label: object = label) -> str:
            return f"{path}:{_line_of(text, key, i)}: check {label!r}"

        kind_name = raw_check.get("kind", "probe")
        if not isinstance(kind_name, str) or kind_name not in KINDS:
            raise PlanError(f"{where('kind')}: kind must be one of {', '.join(KINDS)}")
        kind = KINDS[kind_name]
        for key in raw_check:
            if key not in kind.keys:
                hint = f" (not for a {kind_name} check)" if key in CHECK_KEYS else ""
                raise PlanError(f"{where(key)}: unknown key {key!r}{hint}")
        for key in ("name", "target"):
            if not isinstance(raw_check.get(key), str) or not raw_check[key].strip():
                raise PlanError(f"{where(key)}: {key} is required and must be a string")
        if raw_check["name"] in names:
            raise PlanError(f"{where('name')}: duplicate check name {raw_check['name']!r}")
        names.add(raw_check["name"])
        options = {k: v for k, v in raw_check.items() if k in OPTION_TYPES}
        _check_types(options, OPTION_TYPES, where)
        expect = raw_check.get("expect", kind.default_expect)
        if not isinstance(expect, dict):
            raise PlanError(f"{where('expect')}: expect must be a table")
        _check_types(expect, kind.expect, where)
        _check_expect(kind_name, expect, where)
        profile = None
        if kind_name == "overlap":
            profile = _check_profile(raw_check.get("profile"), base, where)
        merged = {**defaults, **options}
        if kind_name != "probe":
            # [defaults] serve every kind; a scan or overlap takes only the options it knows.
            merged = {k: v for k, v in merged.items() if k in kind.options}
        if "cert_password" in raw_check or "cert_password" in defaults:
            raise PlanError(f"{where('cert_password')}: use cert_password_env or _file")
        for key in PATH_OPTIONS:
            if key in merged:
                merged[key] = _expand(str(merged[key]), base)
        checks.append(
            Check(
                name=raw_check["name"],
                target=raw_check["target"],
                options=merged,
                expect=dict(expect),
                kind=kind_name,
                profile=profile,
            )
        )
    name = meta.get("name") if isinstance(meta.get("name"), str) else path.stem
    return Plan(path=path.resolve(), name=str(name), checks=tuple(checks), defaults=defaults)
