"""Synthetic negation contrasts: labelled training sentences that teach a student what "not" does.

Counterfactual augmentation (Kaushik et al., 2020) in its simplest form: the same short opinion sentence with and
without a negation, so the only thing that separates the labels is the negation. The corpora hold too few such
pairs (a scan of the default training split found ~150 sentences whose one sentiment word could be negated, most
with other sentiment left in them), and a model that never saw them reads "not horrible" as "horrible".

Labels: a plain opinion keeps its polarity; a negated negative ("The hotel was not dreadful.") is neutral; a
negated positive ("The movie was not brilliant.") is negative, as such sentences mostly are in review and tweet
data.

The word lists below share no adjective, verb or product with the behavioural suite's negation tests
(``inference/behaviour/suite.yaml``; a unit test checks it), so the suite measures whether the model learnt negation
or the words it was shown.
"""

from __future__ import annotations

import random

from sentimon.inference.labels import LABEL_INDEX

SUBJECTS = [
    "the movie", "the hotel", "the food", "the service", "this game", "the flight", "the book", "the show",
    "the coffee", "the new album", "the concert", "the staff", "the room", "the battery life", "the headset",
    "this restaurant", "the trailer", "the ending", "the sequel", "customer support", "the delivery", "the pizza",
    "the website", "the match", "the interview", "the course", "the tour", "the soundtrack", "the menu",
    "the checkout", "the new policy", "the earnings call", "the team", "the weekend", "the podcast",
    "the episode", "the TV", "the lobby", "the artwork", "the speech", "the weather", "the market open",
]  # fmt: skip
NEGATIVE_ADJECTIVES = [
    "poor", "lousy", "dreadful", "mediocre", "annoying", "boring", "ugly", "useless", "pathetic", "stupid",
    "nasty", "gross", "painful", "frustrating", "disgusting", "weak", "unpleasant", "depressing", "ridiculous",
    "lame", "miserable", "dull", "sad", "horrendous", "atrocious", "crappy", "disastrous",
]  # fmt: skip
POSITIVE_ADJECTIVES = [
    "nice", "wonderful", "fantastic", "awesome", "brilliant", "perfect", "lovely", "fun", "beautiful", "cool",
    "superb", "outstanding", "enjoyable", "delightful", "fabulous", "terrific", "pleasant", "charming",
    "incredible", "exciting", "spectacular", "magnificent", "marvelous", "helpful",
]  # fmt: skip
# verb -> its past tense
NEGATIVE_VERBS = {"despise": "despised", "detest": "detested", "loathe": "loathed", "resent": "resented"}
POSITIVE_VERBS = {"adore": "adored", "appreciate": "appreciated", "recommend": "recommended",
                  "admire": "admired", "value": "valued"}  # fmt: skip

_PLAIN_ADJ = ["{S} was {A}.", "{S} is {A}.", "{S} is really {A}.", "Honestly, {s} was {A}.",
              "I thought {s} was {A}.", "{S} was so {A} today.", "Wow, {s} is {A}.", "{A}, just {A}."]  # fmt: skip
_NEGATED_ADJ = [
    "{S} was not {A}.", "{S} wasn't {A}.", "{S} is not {A} at all.", "Honestly, {s} was not {A}.",
    "I thought {s} was not {A}.", "{S} is never {A}.", "{S} wasn't very {A}.", "{S} isn't {A}.",
    "{S} was not {A}, to be fair.", "No, {s} is not {A}.", "Not {A}.", "{S} is not {A} anymore.",
]  # fmt: skip
_PLAIN_VERB = ["I {V} {s}.", "I really {V} {s}.", "We {V} {s}.", "I {D} {s}."]
_NEGATED_VERB = ["I don't {V} {s}.", "I do not {V} {s}.", "I don't really {V} {s}.", "We don't {V} {s}.",
                 "I never {D} {s}.", "I did not {V} {s} at all."]  # fmt: skip

GROUP_PREFIX = "synthetic:negation:"


def negation_contrasts(count: int, seed: int) -> list[tuple[str, str]]:
    """``count`` distinct (text, label name) pairs, half plain and half negated, polarities balanced."""
    rng = random.Random(seed)
    out: dict[str, str] = {}
    # Every combination is far more than any sensible count; the attempt cap only guards a count above it.
    for _ in range(count * 20):
        if len(out) >= count:
            break
        negated, positive, verb = rng.random() < 0.5, rng.random() < 0.5, rng.random() < 0.25
        subject = rng.choice(SUBJECTS)
        if verb:
            word, past = rng.choice(list((POSITIVE_VERBS if positive else NEGATIVE_VERBS).items()))
            frame = rng.choice(_NEGATED_VERB if negated else _PLAIN_VERB)
            text = frame.format(V=word, D=past, s=subject)
        else:
            word = rng.choice(POSITIVE_ADJECTIVES if positive else NEGATIVE_ADJECTIVES)
            frame = rng.choice(_NEGATED_ADJ if negated else _PLAIN_ADJ)
            text = frame.format(A=word, S=subject[0].upper() + subject[1:], s=subject)
        text = text[0].upper() + text[1:]
        if negated:
            label = "negative" if positive else "neutral"
        else:
            label = "positive" if positive else "negative"
        out.setdefault(text, label)
    return list(out.items())


def negation_examples(count: int, seed: int) -> list[tuple[str, int, str]]:
    """(text, label index, group) rows for the training split; each text is its own group."""
    return [(text, LABEL_INDEX[label], GROUP_PREFIX + text) for text, label in negation_contrasts(count, seed)]
