"""Partner profiles: what a partner offers as a TLS client and accepts as a TLS server.

A profile is a TOML file (``profiles/partners/NAME.toml`` ships with tlsprobe; users add their
own under ``$XDG_CONFIG_HOME/tlsprobe/partners`` or pass a path). It is read strictly: an unknown
key or a value of the wrong kind is an error naming the file and the key (exit 2). Shape::

    description = "..."                 # one line
    source      = "..."                 # where the facts come from (URLs, reference sections)
    product     = "Transfer CFT"        # optional: IBM MQ | z/OS System SSL | IBM i |
                                        # Transfer CFT (whose log messages overlap names)
    confidence  = "C"                   # optional: C | K | U, as in reference/vendor-codes.md
    notes       = ["..."]               # optional: assumptions, gaps

    [client]                            # what it sends in its ClientHello
    versions = ["TLSv1.2", "TLSv1.3"]
    suites   = ["TLS_AES_128_GCM_SHA256", "ECDHE-RSA-AES128-GCM-SHA256", "gsk:0A", "cft:47",
                "mq:ANY_TLS12"]         # any --ciphers spelling, in preference order
    groups = ["x25519", "secp256r1"]    # optional (absent: not constrained)
    signature_algorithms = ["rsa_pss_rsae_sha256", "0x0401"]   # optional
    certificate = true                  # optional: it has a client certificate to send

    [server]                            # what its listener accepts
    versions, suites, groups, signature_algorithms as above
    server_preference = true            # optional (default false: the client's order wins)
    client_certificate = "required"     # optional: none (default) | optional | required
    certificate = ["RSA"]               # optional: key types of its certificate(s): RSA ECDSA DSA

    [mq]                                # optional: an IBM MQ channel end
    sslciph = "ANY_TLS12_OR_HIGHER"     # the channel's SSLCIPH
    sslcauth = "REQUIRED"               # optional: REQUIRED (MQ's default) | OPTIONAL

A profile needs [client] or [server] or [mq]. A missing side is taken from the other one (a
server configuration also says what that stack would offer as a client) and marked as derived.
For an MQ channel the sides follow from SSLCIPH and the queue manager defaults in
``profiles/vendor/mq.toml`` (see :mod:`probe.overlap` for the semantics): as initiator the channel
offers only what SSLCIPH allows; as responder the queue manager accepts every enabled suite at
every enabled version, in its own preference order, and checks SSLCIPH after the handshake.
``mq:VALUE`` builds such a profile without a file.
"""

from __future__ import annotations

import functools
import json
import os
import re
from dataclasses import dataclass, replace
from pathlib import Path

from . import ciphernames, ciphers
from .causes import PRODUCTS
from .cipherlist import parse_cipher_selection
from .ciphers import MQAlias, MQCipherSpec
from .errors import InputError
from .paths import profiles_dir
from .tomldata import DataError, Fields, read_toml
from .wire import registry
from .wire.registry import Suite

CLIENT_CERT_POLICIES = ("none", "optional", "required")
CERT_KEYS = ("RSA", "ECDSA", "DSA")
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*\Z")


@dataclass(frozen=True, slots=True, kw_only=True)
class Side:
    """One role of a partner: the versions and suites (in preference order) it uses."""

    versions: tuple[int, ...]  # ascending
    suites: tuple[Suite, ...]  # preference order
    groups: tuple[int, ...] | None = None  # None: not stated
    signature_algorithms: tuple[int, ...] | None = None
    server_preference: bool = False  # server role: its own order decides
    client_certificate: str = "none"  # server role: none | optional | required
    has_certificate: bool = False  # client role: can send a certificate when asked
    certificate_keys: tuple[str, ...] | None = None  # server role: RSA / ECDSA / DSA
    derived: str | None = None  # why this side was derived rather than written
    # Endpoints (from a scan) accept different suites at different versions; profiles list one
    # order for all versions and each suite is usable where the registry says it is.
    by_version: tuple[tuple[int, tuple[Suite, ...]], ...] | None = None

    def suites_at(self, version: int) -> tuple[Suite, ...]:
        """The suites of this side that can be negotiated at ``version``, in its order."""
        if self.by_version is not None:
            return dict(self.by_version).get(version, ())
        return tuple(s for s in self.suites if ciphers.usable_at(s, version))


@dataclass(frozen=True, slots=True, kw_only=True)
class MQChannel:
    """An IBM MQ channel end: its SSLCIPH and what that value means."""

    sslciph: str
    spec: MQCipherSpec | None
    alias: MQAlias | None
    sslcauth: str  # REQUIRED | OPTIONAL

    def admits(self, version: int, code: int) -> bool:
        """The post-handshake check a channel applies to the negotiated result."""
        if self.spec is not None:
            return self.spec.code == code and self.spec.protocol == version
        assert self.alias is not None
        lo = self.alias.min_version or 0
        hi = self.alias.max_version or 0xFFFF
        return lo <= version <= hi


@dataclass(frozen=True, slots=True, kw_only=True)
class Profile:
    name: str
    description: str
    source: str
    path: str | None
    client: Side
    server: Side
    mq: MQChannel | None = None
    product: str | None = None  # the vendor whose messages matter (diagnosis.toml products)
    confidence: str | None = None
    notes: tuple[str, ...] = ()


# ---------------------------------------------------------------------------------------------
# Where profiles live
# ---------------------------------------------------------------------------------------------


def shipped_dir() -> Path:
    return profiles_dir() / "partners"


def user_dir() -> Path:
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "tlsprobe" / "partners"


def profile_names() -> tuple[str, ...]:
    names = {p.stem for d in (user_dir(), shipped_dir()) if d.is_dir() for p in d.glob("*.toml")}
    return tuple(sorted(names))


def find_profile_file(name: str) -> Path:
    """``NAME`` in the user's directory first, then the shipped one; or a path."""
    text = name.strip()
    if not text:
        raise InputError("profile: give a profile name or a path to a TOML file")
    candidate = Path(text).expanduser()
    if text.endswith(".toml") or "/" in text or os.sep in text:
        if not candidate.is_file():
            raise InputError(f"profile {text}: no such file")
        return candidate
    for d in (user_dir(), shipped_dir()):
        path = d / f"{text}.toml"
        if path.is_file():
            return path
    import difflib

    close = difflib.get_close_matches(text, profile_names(), n=3, cutoff=0.4)
    hint = f"; did you mean {', '.join('profile:' + c for c in close)}?" if close else ""
    raise InputError(
        f"profile:{text}: no such partner profile{hint} (known: {', '.join(profile_names())};"
        f" add your own in {user_dir()} or give a path)"
    )


def load_profile(name: str) -> Profile:
    """A profile by name or path (``mq:VALUE`` builds an MQ channel profile)."""
    text = name.strip()
    if text.lower().startswith("mq:"):
        return mq_profile(text[3:])
    return _load_file(find_profile_file(text).resolve())


@functools.cache
def _load_file(path: Path) -> Profile:
    data = read_toml(path)
    return parse_profile(data, path=path, name=path.stem)


# ---------------------------------------------------------------------------------------------
# Parsing
# ---------------------------------------------------------------------------------------------

_TOP = {"description", "source", "product", "confidence", "notes", "client", "server", "mq"}
_SIDE_COMMON = {"versions", "suites", "groups", "signature_algorithms"}
_CLIENT = _SIDE_COMMON | {"certificate"}
_SERVER = _SIDE_COMMON | {"server_preference", "client_certificate", "certificate"}


def parse_profile(data: dict[str, object], *, path: Path | str, name: str) -> Profile:
    top = Fields(path, "", data)
    top.check(_TOP, {"description", "source"})
    if not any(top.has(k) for k in ("client", "server", "mq")):
        raise DataError(path, "client", "a profile needs [client], [server] or [mq]")
    description = top.text("description")
    source = top.text("source")
    confidence = top.choice("confidence", ciphers.CONFIDENCE) if top.has("confidence") else None
    product = top.choice("product", PRODUCTS) if top.has("product") else None
    notes = top.texts("notes", allow_empty=True) if top.has("notes") else ()
    mq: MQChannel | None = None
    if top.has("mq"):
        f = Fields.of(path, "mq", data["mq"])
        f.check({"sslciph", "sslcauth"}, {"sslciph"})
        mq = _mq_channel(
            f.text("sslciph"), f.choice("sslcauth", ("REQUIRED", "OPTIONAL"), "REQUIRED"), path
        )
    client = _side(path, "client", data["client"], server=False) if top.has("client") else None
    server = _side(path, "server", data["server"], server=True) if top.has("server") else None
    if mq is not None:
        client = client or mq_client_side(mq)
        server = server or mq_server_side(mq)
    if client is None:
        assert server is not None
        client = replace(
            server,
            server_preference=False,
            client_certificate="none",
            certificate_keys=None,
            derived="no [client] in the profile: its server lists are used",
        )
    if server is None:
        server = replace(
            client,
            has_certificate=False,
            derived="no [server] in the profile: its client lists are used",
        )
    if not _NAME.match(name):
        name = re.sub(r"[^A-Za-z0-9._-]", "-", name) or "profile"
    if mq is not None and product is None:
        product = "IBM MQ"
    return Profile(
        name=name,
        description=description,
        source=source,
        path=str(path),
        client=client,
        server=server,
        mq=mq,
        product=product,
        confidence=confidence,
        notes=notes,
    )


def _side(path: Path | str, key: str, value: object, *, server: bool) -> Side:
    f = Fields.of(path, key, value)
    f.check(_SERVER if server else _CLIENT, {"versions", "suites"})
    versions = f.versions("versions")
    suites = _suites(f, versions)
    groups = _groups(f) if f.has("groups") else None
    sigalgs = _sigalgs(f) if f.has("signature_algorithms") else None
    if not server:
        return Side(
            versions=versions,
            suites=suites,
            groups=groups,
            signature_algorithms=sigalgs,
            has_certificate=f.flag("certificate", False),
        )
    keys: tuple[str, ...] | None = None
    if f.has("certificate"):
        keys = f.texts("certificate")
        for i, k in enumerate(keys):
            if k not in CERT_KEYS:
                raise DataError(
                    path, f"{key}.certificate[{i}]", f"{k!r} is not one of: {', '.join(CERT_KEYS)}"
                )
    return Side(
        versions=versions,
        suites=suites,
        groups=groups,
        signature_algorithms=sigalgs,
        server_preference=f.flag("server_preference", False),
        client_certificate=f.choice("client_certificate", CLIENT_CERT_POLICIES, "none"),
        certificate_keys=keys,
    )


def _suites(f: Fields, versions: tuple[int, ...]) -> tuple[Suite, ...]:
    out: list[Suite] = []
    for i, item in enumerate(f.texts("suites")):
        if item.lower().startswith("profile:"):
            raise DataError(f.path, f"{f.at('suites')}[{i}]", "a profile cannot include another")
        try:
            got = parse_cipher_selection(item, option="suites")
        except InputError as exc:
            raise DataError(f.path, f"{f.at('suites')}[{i}]", str(exc)) from None
        out += [s for s in got.suites if s not in out]
    usable = [s for s in out if s.scsv or any(v in versions for v in ciphers.suite_versions(s))]
    if not usable:
        raise DataError(f.path, f.at("suites"), "no suite can be used at the versions listed")
    return tuple(out)


def _groups(f: Fields) -> tuple[int, ...]:
    out: list[int] = []
    for i, item in enumerate(f.texts("groups")):
        code = int(item, 16) if re.fullmatch(r"0x[0-9A-Fa-f]{1,4}", item) else None
        code = code if code is not None else registry.find_group(item)
        if code is None:
            raise DataError(
                f.path,
                f"{f.at('groups')}[{i}]",
                f"{item!r} is not a named group (x25519, secp256r1, ffdhe2048, 0x001D)",
            )
        out.append(code)
    return tuple(out)


@functools.cache
def _sigscheme_index() -> dict[str, int]:
    path = profiles_dir() / "registry" / "signature_schemes.json"
    entries = json.loads(path.read_text(encoding="utf-8"))["entries"]
    return {str(e["name"]).lower(): int(e["code"]) for e in entries}


def _sigalgs(f: Fields) -> tuple[int, ...]:
    out: list[int] = []
    for i, item in enumerate(f.texts("signature_algorithms")):
        if re.fullmatch(r"0x[0-9A-Fa-f]{4}", item):
            out.append(int(item, 16))
            continue
        code = _sigscheme_index().get(item.lower())
        if code is None:
            raise DataError(
                f.path,
                f"{f.at('signature_algorithms')}[{i}]",
                f"{item!r} is not a signature scheme (rsa_pss_rsae_sha256, 0x0401)",
            )
        out.append(code)
    return tuple(out)


# ---------------------------------------------------------------------------------------------
# IBM MQ channel profiles
# ---------------------------------------------------------------------------------------------


def _mq_channel(sslciph: str, sslcauth: str, where: Path | str) -> MQChannel:
    spec = ciphers.mq_spec(sslciph)
    alias = ciphers.mq_alias(sslciph)
    if spec is None and alias is None:
        try:
            ciphernames.resolve(f"mq:{sslciph}")
        except ciphernames.UnknownCipher as exc:
            raise DataError(where, "mq.sslciph", str(exc)) from None
        raise DataError(
            where,
            "mq.sslciph",
            f"{sslciph!r}: give a CipherSpec name or alias; hex SSLCIPH values leave the"
            " protocol open (IBM warns of AMQ9631), write the CipherSpec name instead",
        )
    name = spec.name if spec else alias.name if alias else sslciph
    return MQChannel(sslciph=name, spec=spec, alias=alias, sslcauth=sslcauth)


def mq_client_side(ch: MQChannel) -> Side:
    """What an initiating channel offers: exactly its CipherSpec, or its alias's range."""
    if ch.spec is not None:
        s = ciphers.suite_for(ch.spec.code)
        assert s is not None
        return Side(
            versions=(ch.spec.protocol,),
            suites=(s,),
            has_certificate=True,
            derived=f"SSLCIPH({ch.sslciph}): one CipherSpec at {ch.spec.protocol_name}",
        )
    assert ch.alias is not None
    qm = ciphers.reference().queue_manager
    return Side(
        versions=ch.alias.versions(qm.versions),
        suites=ciphers.mq_alias_suites(ch.alias),
        has_certificate=True,
        derived=f"SSLCIPH({ch.sslciph}): every enabled CipherSpec in the alias's range,"
        " queue-manager order",
    )


def mq_server_side(ch: MQChannel) -> Side:
    """What the responding queue manager's listener accepts: every enabled CipherSpec at every
    enabled version, in its order; the channel's own CipherSpec is enabled too (a channel with
    a deprecated one only starts once weak CipherSpecs are re-enabled)."""
    qm = ciphers.reference().queue_manager
    versions = set(qm.versions)
    specs = list(qm.order)
    if ch.spec is not None:
        versions.add(ch.spec.protocol)
        if ch.spec not in specs:
            specs.append(ch.spec)
    suites: list[Suite] = []
    for spec in specs:
        s = ciphers.suite_for(spec.code)
        if s is not None and s not in suites:
            suites.append(s)
    policy = "required" if ch.sslcauth == "REQUIRED" else "optional"
    return Side(
        versions=tuple(sorted(versions)),
        suites=tuple(suites),
        server_preference=True,
        client_certificate=policy,
        derived="queue manager listener: every enabled CipherSpec (MQ 9.2+ defaults),"
        " queue-manager order; SSLCIPH is checked after the handshake",
    )


def mq_profile(sslciph: str, sslcauth: str = "REQUIRED") -> Profile:
    """``mq:VALUE``: an MQ channel end with that SSLCIPH and the queue manager defaults."""
    try:
        ch = _mq_channel(sslciph.strip(), sslcauth, f"mq:{sslciph}")
    except DataError as exc:
        raise InputError(exc.problem) from None
    return Profile(
        name=f"mq:{ch.sslciph}",
        description=f"IBM MQ channel with SSLCIPH({ch.sslciph}) on an MQ 9.2+ queue manager",
        source="reference/vendor-codes.md §1; profiles/vendor/mq.toml",
        path=None,
        client=mq_client_side(ch),
        server=mq_server_side(ch),
        mq=ch,
        product="IBM MQ",
        confidence="C",
    )
