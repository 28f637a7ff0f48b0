"""The registry's pure parts: references (``NAME@VERSION``, ``NAME@champion``), content versions, and the champion
line that ``rollback`` walks back along. No database, no Redis: plain values in, plain values out."""

from __future__ import annotations

import getpass
import hashlib
import re
import socket
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from sentimon.inference.bundle import sha256_file
from sentimon.inference.options import InferenceError

ALIASES = ("champion", "candidate")
VERSION_CHARS = 12  # 48 bits of sha256: a collision among one model's versions is not a practical concern
_NAME = r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}"
_REF = re.compile(rf"^(?P<name>{_NAME})@(?P<target>[A-Za-z0-9._-]+)$")
_VERSION = re.compile(rf"^[0-9a-f]{{{VERSION_CHARS}}}$")


class RegistryError(InferenceError):
    """A registry reference, alias or database problem; the message names the thing and the fix."""


@dataclass(frozen=True)
class Ref:
    """``name@version`` or ``name@alias`` (exactly one of ``version`` / ``alias`` is set)."""

    name: str
    version: str | None = None
    alias: str | None = None

    def __str__(self) -> str:
        return f"{self.name}@{self.version or self.alias}"


def is_ref(text: str) -> bool:
    """Whether ``text`` has the shape of a registry reference (paths and plain names do not)."""
    return _REF.match(text) is not None


def parse_ref(text: str) -> Ref:
    """``NAME@VERSION`` / ``NAME@champion`` / ``NAME@candidate`` -> Ref; RegistryError saying the accepted forms."""
    match = _REF.match(text.strip())
    if match is None:
        raise RegistryError(
            f"{text!r} is not a registry reference; use NAME@VERSION (as `sentimon models register` prints it), "
            f"NAME@champion or NAME@candidate"
        )
    name, target = match["name"], match["target"]
    if target in ALIASES:
        return Ref(name, alias=target)
    if _VERSION.match(target) is None:
        raise RegistryError(
            f"{text!r}: {target!r} is neither an alias ({', '.join(ALIASES)}) nor a version "
            f"({VERSION_CHARS} hex digits); see `sentimon models list`"
        )
    return Ref(name, version=target)


def check_name(name: str) -> str:
    if re.fullmatch(_NAME, name) is None:
        raise RegistryError(
            f"model name {name!r} is not usable in a reference: use letters, digits, '.', '_' and '-' "
            "(starting with a letter or digit), at most 100 characters"
        )
    return name


def bundle_files(bundle_dir: Path) -> list[Path]:
    """The files that make a bundle's content, relative paths in a stable order (hidden files left out:
    editors' and OS droppings are not part of a model)."""
    found = []
    for path in Path(bundle_dir).rglob("*"):
        rel = path.relative_to(bundle_dir)
        if path.is_file() and not any(part.startswith(".") for part in rel.parts):
            found.append(rel)
    return sorted(found, key=lambda p: p.as_posix())


def content_version(bundle_dir: Path) -> str:
    """The version of a bundle: a short sha256 over every file's relative path and sha256, so identical content
    always gets the same version and any changed byte a new one."""
    digest = hashlib.sha256()
    for rel in bundle_files(bundle_dir):
        digest.update(f"{rel.as_posix()}\0{sha256_file(Path(bundle_dir) / rel)}\n".encode())
    return digest.hexdigest()[:VERSION_CHARS]


@dataclass(frozen=True)
class AliasEvent:
    """One change of an alias, in the order the history recorded it."""

    action: str  # promote | rollback | clear
    version: str | None


def champion_line(events: Iterable[AliasEvent]) -> list[str]:
    """The champions still to go back to, oldest first, the current one last: a promotion adds its version
    (unless it already is the champion), a rollback removes the current one. So rollback after rollback walks
    further back instead of flipping between two versions."""
    line: list[str] = []
    for event in events:
        if event.action == "promote" and event.version and (not line or line[-1] != event.version):
            line.append(event.version)
        elif event.action == "rollback" and line:
            line.pop()
    return line


def rollback_target(name: str, events: Iterable[AliasEvent]) -> tuple[str, str]:
    """(current champion, the one before it) of model ``name``; RegistryError when there is nothing to go back to."""
    line = champion_line(events)
    if not line:
        raise RegistryError(
            f"{name} has no champion to roll back; promote a version first: `sentimon models promote {name}@VERSION`"
        )
    if len(line) == 1:
        raise RegistryError(
            f"{name}@{line[0]} is the first champion of {name}: there is no previous champion to roll back to "
            f"(see `sentimon models history {name}`)"
        )
    return line[-1], line[-2]


def who() -> str:
    """user@host of whoever runs the command, for the history."""
    try:
        user = getpass.getuser()
    except (KeyError, OSError):  # no login name in a bare container
        user = "unknown"
    return f"{user}@{socket.gethostname()}"
