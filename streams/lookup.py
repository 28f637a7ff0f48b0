"""Finding an entity the way a user types it (pure: names in, names out).

Windows are stored under the entity's canonical name (``AAPL``, ``acme air``); users type ``aapl``, ``$AAPL``
or an alias such as ``Apple``. ``find_entity`` maps what was typed onto a known entity: exact name, then the
same name ignoring case and a leading ``$``, then a watchlist alias; otherwise it returns close matches as
"did you mean" suggestions.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field


@dataclass(frozen=True)
class EntityMatch:
    entity: str | None  # the canonical name, or None when nothing matched
    how: str = ""  # "exact" | "case" | "alias" | ""
    suggestions: list[str] = field(default_factory=list)


def _fold(name: str) -> str:
    return " ".join(name.strip().lstrip("$").casefold().split())


def find_entity(query: str, known: Iterable[str], aliases: Mapping[str, Iterable[str]] | None = None) -> EntityMatch:
    """Map a typed entity onto a known one; ``known`` are the stored entities, ``aliases`` the watchlist
    (entity -> aliases; its entities count as known too)."""
    aliases = aliases or {}
    names = list(dict.fromkeys([*known, *aliases]))
    if query in names:
        return EntityMatch(query, "exact")
    folded = _fold(query)
    by_fold: dict[str, str] = {}
    for name in names:
        by_fold.setdefault(_fold(name), name)
    if folded in by_fold:
        return EntityMatch(by_fold[folded], "case")
    for entity, entity_aliases in aliases.items():
        if any(_fold(a) == folded for a in entity_aliases):
            return EntityMatch(entity, "alias")
    alias_owner = {_fold(a): e for e, entity_aliases in aliases.items() for a in entity_aliases}
    close = difflib.get_close_matches(folded, [*by_fold, *alias_owner], n=5, cutoff=0.6)
    suggestions = list(dict.fromkeys(by_fold.get(c) or alias_owner[c] for c in close))
    return EntityMatch(None, "", suggestions)


def search_entities(
    query: str | None, known: Iterable[str], aliases: Mapping[str, Iterable[str]] | None = None
) -> list[str]:
    """Entities whose name or an alias contains ``query`` (case-insensitive, ``$`` ignored); all when no query."""
    aliases = aliases or {}
    names = sorted(set(known))
    if not query:
        return names
    folded = _fold(query)
    return [n for n in names if folded in _fold(n) or any(folded in _fold(a) for a in aliases.get(n, ()))]
