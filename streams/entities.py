"""Which entities a text is about: cashtags (``$AAPL``) and a watchlist of entity -> aliases.

Matching is case-insensitive on word boundaries (``Apple`` matches "apple's results", not "pineapple"); a
text may mention several entities. The entity name itself is not an alias (tickers like "BA" or "LUV" are
words too): list every alias. Watchlist YAML, either form per entity::

    AAPL: [Apple, iPhone, Tim Cook]
    Boeing:
      aliases: [Boeing, "737 MAX"]
      keywords: [Spirit AeroSystems]
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from pathlib import Path

from sentimon.core.yamlfile import YamlFileError, load_yaml
from sentimon.streams.errors import StreamsError

DEFAULT_WATCHLIST = Path(__file__).with_name("watchlist.yaml")

# "$" then a letter, up to 6 letters, optional class suffix (BRK.B); not "$100", not inside a word ("US$AAPL").
_CASHTAG = re.compile(r"(?<![\w$])\$([A-Za-z]{1,6}(?:\.[A-Za-z]{1,2})?)(?![\w])")


class WatchlistError(StreamsError):
    """The watchlist file is missing or malformed."""


def _alias_pattern(alias: str) -> str:
    words = [re.escape(w) for w in alias.split()]
    return r"\s+".join(words)


class EntityExtractor:
    """Pure text -> entities. Build once; ``extract`` is thread-safe."""

    def __init__(self, watchlist: Mapping[str, Iterable[str]] | None = None, cashtags: bool = True):
        self.cashtags = cashtags
        self._by_alias: dict[str, list[str]] = {}
        for entity, aliases in (watchlist or {}).items():
            for alias in aliases:
                key = " ".join(alias.lower().split())
                if key and entity not in self._by_alias.setdefault(key, []):
                    self._by_alias[key].append(entity)
        self.entities = sorted({e for names in self._by_alias.values() for e in names})
        if self._by_alias:
            # Longest first so "Tim Cook" wins over "Tim"; lookarounds instead of \b so "AT&T" works.
            alternation = "|".join(_alias_pattern(a) for a in sorted(self._by_alias, key=len, reverse=True))
            self._regex: re.Pattern | None = re.compile(rf"(?<!\w)(?:{alternation})(?!\w)", re.IGNORECASE)
        else:
            self._regex = None

    @classmethod
    def from_file(cls, path: Path | str | None = None) -> EntityExtractor:
        return cls(load_watchlist(path or DEFAULT_WATCHLIST))

    def extract(self, text: str) -> list[str]:
        """Entities mentioned in ``text``, in order of first mention, each once."""
        found: dict[str, None] = {}
        hits: list[tuple[int, str]] = []
        if self.cashtags:
            hits += [(m.start(), m.group(1).upper()) for m in _CASHTAG.finditer(text)]
        if self._regex is not None:
            for m in self._regex.finditer(text):
                for entity in self._by_alias.get(" ".join(m.group(0).lower().split()), ()):
                    hits.append((m.start(), entity))
        for _, entity in sorted(hits, key=lambda h: h[0]):
            found.setdefault(entity)
        return list(found)


def load_watchlist(path: Path | str) -> dict[str, list[str]]:
    """Read and validate a watchlist YAML file; raise WatchlistError naming the problem."""
    path = Path(path)
    try:
        data = load_yaml(path, "watchlist")
    except YamlFileError as exc:
        raise WatchlistError(f"{exc} (setting stream.watchlist)") from None
    if data is None:
        return {}
    if isinstance(data, dict) and set(data) == {"entities"}:
        data = data["entities"]
    if not isinstance(data, dict):
        raise WatchlistError(f"watchlist {path}: expected a mapping of entity -> list of aliases")
    out: dict[str, list[str]] = {}
    for entity, spec in data.items():
        if not isinstance(entity, str) or not entity.strip():
            raise WatchlistError(f"watchlist {path}: entity names must be non-empty strings, got {entity!r}")
        if spec is None:
            aliases: list = []
        elif isinstance(spec, list):
            aliases = spec
        elif isinstance(spec, dict) and set(spec) <= {"aliases", "keywords"}:
            aliases = [*(spec.get("aliases") or []), *(spec.get("keywords") or [])]
        else:
            raise WatchlistError(
                f"watchlist {path}: entity {entity!r} must map to a list of aliases or to "
                "{aliases: [...], keywords: [...]}"
            )
        if not all(isinstance(a, str) and a.strip() for a in aliases):
            raise WatchlistError(f"watchlist {path}: aliases of {entity!r} must be non-empty strings")
        out[entity.strip()] = [a.strip() for a in aliases]
    return out
