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

import math
import os
import re
import tomllib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
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
# Numbers a plan may set: (lowest, highest, whether the lowest itself is allowed). A timeout of
# 0 makes every probe "unreachable", NaN or a negative one crashes trio, and a grace of 1e300
# listens after the handshake for ever; 0 is a valid grace (no listening). Ports are 1..65535.
LIMITS: dict[str, tuple[float, float, bool]] = {
    "timeout": (0, 3600, False),
    "grace": (0, 60, True),
    "lab_port_base": (1, 65535, True),
}
VERSION_HELP = "ssl2 ssl3 1.0 1.1 1.2 1.3"
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
class Origin:
    """Where a check sits in its plan file, to name the line of a key that is wrong. Lines are
    looked up only when an error needs one (a plan of thousands of checks loads without)."""

    path: Path
    text: str = field(repr=False)
    index: int  # among the [[check]] tables
    label: str  # the check's name, or #N
    own: frozenset[str]  # keys the check sets; its other options come from [defaults]

    def check_line(self, key: str) -> str:
        return f"{self.path}:{_line_of(self.text, key, self.index)}: check {self.label!r}"

    def defaults_line(self, key: str) -> str:
        return f"{self.path}:{_line_of(self.text, key, section='[defaults]')}: [defaults]"


@dataclass(frozen=True, slots=True, kw_only=True)
class Check:
    name: str
    target: str
    options: dict[str, Any]
    expect: dict[str, Any]
    kind: str = "probe"  # probe | scan | overlap
    profile: str | None = None  # overlap: the partner profile (profile:NAME, path, mq:VALUE)
    # So that errors found while building the check (a missing CA file, an unset variable)
    # name the plan line, as load_plan's do.
    origin: Origin | None = None

    def at(self, key: str) -> str:
        """``FILE:LINE: check 'NAME'`` (or ``FILE:LINE: [defaults]``) where ``key`` is set; the
        target's line for what the plan leaves implicit (the lab's CA file)."""
        o = self.origin
        if o is None:
            return f"check {self.name!r}"
        if key in o.own or key not in self.options:
            return o.check_line(key if key in o.own else "target")
        return o.defaults_line(key)


@contextmanager
def located(check: Check, key: str) -> Iterator[None]:
    """Turn an InputError raised while building ``check`` into a PlanError at ``key``'s line."""
    try:
        yield
    except PlanError:
        raise
    except InputError as exc:
        raise PlanError(f"{check.at(key)}: {exc}") from None


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


def _need_version(key: str, value: str, where: Callable[[str], str]) -> None:
    from .wire import registry

    if registry.find_version(value) is None:
        raise PlanError(f"{where(key)}: {key}: unknown version {value!r}; give {VERSION_HELP}")


def _need_ciphers(key: str, value: str, where: Callable[[str], str]) -> None:
    from .cipherlist import parse_cipher_selection

    try:
        parse_cipher_selection(value, option=key)
    except InputError as exc:
        raise PlanError(f"{where(key)}: {exc}") from None


def _check_expect(kind: str, expect: dict[str, Any], where: Callable[[str], str]) -> None:
    """Values, beyond types: outcomes, causes, verdicts, version and suite names that exist.
    A cause, version or cipher no probe can report would fail every run like a regression."""
    from .causes import load_causes

    if kind == "probe" and "outcome" in expect and expect["outcome"] not in OUTCOMES:
        raise PlanError(f"{where('outcome')}: unknown outcome {expect['outcome']!r}")
    if "cause" in expect and expect["cause"] not in load_causes():
        raise PlanError(
            f"{where('cause')}: cause: unknown cause {expect['cause']!r}"
            " (see the cause ids in profiles/diagnosis.toml)"
        )
    if "version" in expect:
        _need_version("version", expect["version"], where)
    if "cipher" in expect:
        _need_ciphers("cipher", expect["cipher"], where)
    if kind == "overlap" and expect.get("verdict", "connects") not in VERDICTS:
        raise PlanError(f"{where('verdict')}: verdict must be one of {', '.join(VERDICTS)}")
    for key in ("versions_offered", "versions_not_offered", "suites_include", "suites_exclude"):
        values = expect.get(key, [])
        if not all(isinstance(v, str) for v in values):
            raise PlanError(f"{where(key)}: {key} must be a list of strings")
        for v in values:
            if key.startswith("versions"):
                _need_version(key, v, where)
            else:
                _need_ciphers(key, v, where)


def _check_options(options: dict[str, Any], where: Callable[[str], str]) -> None:
    """Option values that need no file, variable or network: numbers in range, version,
    STARTTLS and cipher names that exist."""
    from .starttls import CHOICES

    for key, (lo, hi, lo_ok) in LIMITS.items():
        value = options.get(key)
        if value is None:
            continue
        if not math.isfinite(value) or value < lo or (value == lo and not lo_ok) or value > hi:
            low = f"at least {lo}" if lo_ok else f"above {lo}"
            raise PlanError(f"{where(key)}: {key} must be {low} and at most {hi}, not {value}")
    for key in ("tls", "tls_min", "tls_max"):
        if key in options:
            _need_version(key, options[key], where)
    if "starttls" in options and options["starttls"] not in CHOICES:
        raise PlanError(
            f"{where('starttls')}: starttls {options['starttls']!r}: choose one of"
            f" {', '.join(CHOICES)}"
        )
    if "ciphers" in options:
        _need_ciphers("ciphers", options["ciphers"], where)


def _check_target(target: str, where: Callable[[str], str]) -> None:
    """HOST[:PORT] with a port in range, or lab:SCENARIO of the lab's catalog."""
    from .lab.catalog import scenario_names
    from .target import parse_target

    if target.startswith("lab:"):
        scenario = target.split(":", 1)[1]
        if scenario not in scenario_names():
            raise PlanError(
                f"{where('target')}: unknown lab scenario {scenario!r} (`tlsprobe lab --list`)"
            )
        return
    try:
        parse_target(target)
    except InputError as exc:
        raise PlanError(f"{where('target')}: {exc}") from None


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

    at_defaults = Origin(path=path, text=text, index=0, label="", own=frozenset()).defaults_line
    _check_types(defaults, OPTION_TYPES, at_defaults)
    _check_options(defaults, at_defaults)
    raw_checks = data.get("check", [])
    if not isinstance(raw_checks, list) or not raw_checks:
        raise PlanError(f"{path}: no [[check]] tables; a plan needs at least one check")
    base = path.resolve().parent
    checks: list[Check] = []
    names: set[str] = set()
    for i, raw_check in enumerate(raw_checks):
        label = raw_check.get("name")
        origin = Origin(path=path, text=text, index=i, own=frozenset(raw_check),
                        label=label if isinstance(label, str) else f"#{i + 1}")  # fmt: skip
        where = origin.check_line

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
        _check_target(raw_check["target"], where)
        options = {k: v for k, v in raw_check.items() if k in OPTION_TYPES}
        _check_types(options, OPTION_TYPES, where)
        _check_options(options, where)
        raw_expect = raw_check.get("expect", {})
        if not isinstance(raw_expect, dict):
            raise PlanError(f"{where('expect')}: expect must be a table")
        _check_types(raw_expect, kind.expect, where)
        # The kind's default (outcome = "connected", verdict = "connects") holds unless the
        # table says otherwise: expecting only a version must not accept an untrusted server.
        expect = {**kind.default_expect, **raw_expect}
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
                origin=origin,
            )
        )
    name = meta.get("name") if isinstance(meta.get("name"), str) else path.stem
    return Plan(path=path.resolve(), name=str(name), checks=tuple(checks), defaults=defaults)
