"""Reading the YAML files users write (rule files, watchlists, recipes, suites): one loader, errors as
``file:line:column: problem`` so an editor can jump to the spot."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml


class YamlFileError(ValueError):
    """A YAML file that cannot be read or parsed; the message starts with ``file:line:column``."""


def load_yaml(path: Path | str, what: str = "file") -> Any:
    """Parse one YAML file; raise YamlFileError naming the file, line and column (``what`` names the kind of
    file in the message, e.g. "rule file")."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise YamlFileError(f"{what} {path} does not exist") from None
    except UnicodeDecodeError as exc:
        raise YamlFileError(f"{path}: {what} is not UTF-8 text (byte {exc.start})") from None
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise YamlFileError(describe(exc, path, what)) from None


def describe(exc: yaml.YAMLError, path: Path | str, what: str = "file") -> str:
    """``file:line:column: <what> is not valid YAML: <problem>`` (1-based, as editors count)."""
    mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
    where = f"{path}:{mark.line + 1}:{mark.column + 1}" if mark is not None else str(path)
    problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
    context = getattr(exc, "context", None)
    detail = f"{problem} ({context})" if context else problem
    return f"{where}: {what} is not valid YAML: {detail}"
