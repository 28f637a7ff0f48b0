"""The unknown-token rate of texts under a bundle's tokenizer: the drift monitor's "vocabulary no longer fits" signal.

The scorer's own tokenization is not reused: ``OnnxScorer.score`` returns probabilities only, and carrying token
counts through every wrapper (language gate, cascade) onto each prediction would widen the scoring contract for
one consumer. The monitor tokenizes a bounded sample of each batch instead (setting ``drift.unk_sample``) with
its own copy of the bundle's tokenizer: HF ``tokenizers`` in Rust, about a few microseconds per tweet.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from sentimon.inference.bundle import TOKENIZER_FILE
from sentimon.inference.cascade import CASCADE_FILE, read_cascade
from sentimon.inference.text import spell_emoji_all

MAX_TOKENS = 512  # a long article is judged by its start: the cost stays bounded per text


class UnknownTokens:
    """Counts a tokenizer's unknown token (``[UNK]``) among the tokens of texts, special tokens left out."""

    def __init__(self, tokenizer, unk_id: int):
        self.tokenizer, self.unk_id = tokenizer, unk_id

    @classmethod
    def from_bundle(cls, bundle_dir: Path, models_dir: Path | None = None) -> UnknownTokens | None:
        """The counter of a bundle directory (a cascade: its accurate member's), None when the bundle has no
        tokenizer with an unknown token (a static tier without one, the VADER lexicon)."""
        from tokenizers import Tokenizer

        bundle_dir = Path(bundle_dir)
        if (bundle_dir / CASCADE_FILE).is_file():
            accurate = read_cascade(bundle_dir).accurate
            member = bundle_dir / accurate
            return cls.from_bundle(member if member.is_dir() else (models_dir or bundle_dir.parent) / accurate)
        path = bundle_dir / TOKENIZER_FILE
        if not path.is_file():
            return None
        tokenizer = Tokenizer.from_file(str(path))
        unk = getattr(tokenizer.model, "unk_token", None)
        unk_id = tokenizer.token_to_id(unk) if unk else None
        if unk_id is None:
            return None
        tokenizer.no_padding()
        tokenizer.enable_truncation(MAX_TOKENS)
        return cls(tokenizer, unk_id)

    def count(self, texts: Sequence[str]) -> list[tuple[int, int]]:
        """(unknown tokens, tokens) of each text."""
        if not texts:
            return []
        encodings = self.tokenizer.encode_batch(spell_emoji_all(list(texts)), add_special_tokens=False)
        return [(enc.ids.count(self.unk_id), len(enc.ids)) for enc in encodings]
