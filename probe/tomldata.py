"""Strict reading of the data files in profiles/: every complaint names the file and the key.

Shared by the cipher reference (probe.ciphers) and the partner profiles (probe.profiles): data
the product depends on is validated, never trusted.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import InputError
from .wire import registry

# The versions data files may name (SSLv2 has no place in a cipher reference or a profile).
SSL_TLS_VERSIONS = (0x0300, 0x0301, 0x0302, 0x0303, 0x0304)


class DataError(InputError):
    """A data file is malformed: the message names the file and the key."""

    def __init__(self, path: Path | str, key: str, problem: str) -> None:
        super().__init__(f"{path}: {key}: {problem}")
        self.path = str(path)
        self.key = key
        self.problem = problem


def read_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as fh:
            return tomllib.load(fh)
    except FileNotFoundError:
        raise DataError(path, "(file)", "no such file") from None
    except IsADirectoryError:
        raise DataError(path, "(file)", "is a directory, not a TOML file") from None
    except OSError as exc:
        raise DataError(path, "(file)", f"cannot read: {exc.strerror or exc}") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise DataError(path, "(file)", f"not valid TOML: {exc}") from None


@dataclass(frozen=True, slots=True)
class Fields:
    """One TOML table under validation: every accessor names file and key when it complains."""

    path: Path | str
    key: str
    table: Mapping[str, Any]

    @classmethod
    def of(cls, path: Path | str, key: str, value: object) -> Fields:
        if not isinstance(value, dict):
            raise DataError(path, key, f"expected a table, got {_tname(value)}")
        return cls(path, key, value)

    def at(self, name: str) -> str:
        return f"{self.key}.{name}" if self.key else name

    def check(self, allowed: Iterable[str], required: Iterable[str] = ()) -> None:
        allowed = set(allowed)
        unknown = sorted(set(self.table) - allowed)
        if unknown:
            raise DataError(
                self.path,
                self.at(unknown[0]),
                f"unknown key (allowed: {', '.join(sorted(allowed))})",
            )
        missing = sorted(set(required) - set(self.table))
        if missing:
            raise DataError(self.path, self.at(missing[0]), "required key missing")

    def has(self, name: str) -> bool:
        return name in self.table

    def text(self, name: str, default: str | None = None) -> str:
        if name not in self.table:
            if default is None:
                raise DataError(self.path, self.at(name), "required key missing")
            return default
        value = self.table[name]
        if not isinstance(value, str):
            raise DataError(self.path, self.at(name), f"expected a string, got {_tname(value)}")
        if value != value.strip() or not value:
            raise DataError(self.path, self.at(name), "empty, or leading/trailing blanks")
        return value

    def choice(self, name: str, choices: Iterable[str], default: str | None = None) -> str:
        value = self.text(name, default)
        options = tuple(choices)
        if value not in options:
            raise DataError(
                self.path, self.at(name), f"{value!r} is not one of: {', '.join(options)}"
            )
        return value

    def flag(self, name: str, default: bool | None = None) -> bool:
        if name not in self.table:
            if default is None:
                raise DataError(self.path, self.at(name), "required key missing")
            return default
        value = self.table[name]
        if not isinstance(value, bool):
            raise DataError(self.path, self.at(name), f"expected true or false, got {value!r}")
        return value

    def integer(self, name: str) -> int:
        value = self.table.get(name)
        if not isinstance(value, int) or isinstance(value, bool):
            raise DataError(self.path, self.at(name), f"expected an integer, got {value!r}")
        return value

    def texts(self, name: str, *, allow_empty: bool = False) -> tuple[str, ...]:
        value = self.table.get(name)
        if not isinstance(value, list):
            raise DataError(
                self.path, self.at(name), f"expected a list of strings, got {_tname(value)}"
            )
        out: list[str] = []
        for i, item in enumerate(value):
            if not isinstance(item, str) or not item.strip():
                raise DataError(self.path, f"{self.at(name)}[{i}]", "expected a non-empty string")
            out.append(item.strip())
        if not out and not allow_empty:
            raise DataError(self.path, self.at(name), "must not be empty")
        return tuple(out)

    def tables(self, name: str) -> tuple[Fields, ...]:
        value = self.table.get(name, [])
        if not isinstance(value, list):
            raise DataError(self.path, self.at(name), "expected [[...]] entries")
        return tuple(Fields.of(self.path, f"{self.at(name)}[{i}]", v) for i, v in enumerate(value))

    def version(self, name: str) -> int:
        text = self.text(name)
        v = registry.find_version(text)
        if v is None or v not in SSL_TLS_VERSIONS:
            raise DataError(
                self.path, self.at(name), f"{text!r} is not a protocol version (SSLv3 .. TLSv1.3)"
            )
        return v

    def versions(self, name: str) -> tuple[int, ...]:
        out: list[int] = []
        for i, text in enumerate(self.texts(name)):
            v = registry.find_version(text)
            if v is None or v not in SSL_TLS_VERSIONS:
                raise DataError(
                    self.path,
                    f"{self.at(name)}[{i}]",
                    f"{text!r} is not a protocol version (SSLv3, TLSv1.0 .. TLSv1.3)",
                )
            if v in out:
                raise DataError(self.path, f"{self.at(name)}[{i}]", f"{text!r} listed twice")
            out.append(v)
        return tuple(sorted(out))


def _tname(value: object) -> str:
    return type(value).__name__


def hex_code(fields: Fields, name: str) -> int:
    """A ``0xHHHH`` cipher-suite code."""
    text = fields.text(name)
    if not re.fullmatch(r"0x[0-9A-Fa-f]{4}", text):
        raise DataError(fields.path, fields.at(name), f"{text!r}: write codes as 0xHHHH")
    return int(text, 16)
