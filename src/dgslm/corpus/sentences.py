"""A tiny conversational grammar: random everyday sentences on a handful of topics.

A template's ``{slot}`` is filled from the topic's vocabulary first, then from the shared
vocabulary, recursively (slot values may contain slots). Everything ships in this module:
no downloads.
"""

from __future__ import annotations

import re

import numpy as np

BACKCHANNELS: tuple[str, ...] = ("mhm", "yeah", "right", "uh-huh", "okay", "oh really", "I see", "sure")

SHARED: dict[str, tuple[str, ...]] = {
    "opener": ("", "", "", "well, ", "so, ", "um, ", "you know, ", "actually, ", "oh, ", "yeah, ", "I mean, "),
    "person": (
        "my sister",
        "my brother",
        "my neighbor",
        "a friend of mine",
        "my mom",
        "my dad",
        "my cousin",
        "my boss",
        "one of my coworkers",
        "my roommate",
        "my wife",
        "my husband",
    ),
    "when_past": (
        "last week",
        "yesterday",
        "a couple of days ago",
        "last summer",
        "over the weekend",
        "a few years ago",
        "the other day",
        "this morning",
    ),
    "when_future": ("next week", "tomorrow", "this weekend", "next summer", "in a few days", "later this year"),
    "feeling": (
        "pretty good",
        "kind of strange",
        "really nice",
        "a bit expensive",
        "too crowded",
        "so much fun",
        "exhausting",
        "not bad at all",
        "a little boring",
        "amazing",
    ),
    "hedge": ("I think", "I guess", "I suppose", "honestly", "to be fair", "I'd say"),
    "reaction": (
        "that's really interesting",
        "that sounds great",
        "oh no, that's too bad",
        "I didn't know that",
        "that makes sense",
        "wow, that's a lot",
        "no way",
    ),
}

TEMPLATES: tuple[str, ...] = (
    "{opener}{person} {did} {when_past}.",
    "{opener}I {did} {when_past} and it was {feeling}.",
    "{opener}{hedge} {thing} is {feeling}.",
    "{opener}have you ever {done}?",
    "{opener}do you {like} {thing}?",
    "{opener}we're planning to {do} {when_future}.",
    "{opener}{person} keeps telling me that {thing} is {feeling}.",
    "{opener}I really {like} {thing}, {hedge}.",
    "{opener}{reaction}.",
    "{opener}{reaction}, {hedge} {thing} is {feeling}.",
    "{opener}what do you think about {thing}?",
    "{opener}the last time I {did}, it was {feeling}.",
    "{opener}I was going to {do} {when_future}, but I'm not sure yet.",
    "{opener}{hedge} it depends on {thing}.",
    "{opener}oh, I know what you mean, {person} {did} {when_past} too.",
)

TOPICS: dict[str, dict[str, tuple[str, ...]]] = {
    "weather": {
        "thing": ("the weather", "all this rain", "the heat", "the snow", "the forecast", "winter around here"),
        "did": ("got caught in the rain", "shoveled the driveway", "went to the beach", "sat outside in the sun"),
        "done": ("seen a tornado", "been snowed in", "lived somewhere really hot"),
        "do": ("go hiking if it's sunny", "stay inside", "go to the lake"),
        "like": ("like", "hate", "mind", "enjoy"),
    },
    "food": {
        "thing": (
            "Italian food",
            "the new restaurant downtown",
            "spicy food",
            "cooking at home",
            "breakfast",
            "fast food",
            "that bakery on Main Street",
        ),
        "did": ("tried a new recipe", "cooked dinner for everyone", "ordered pizza", "went out for sushi"),
        "done": ("made your own bread", "tried Ethiopian food", "cooked a turkey"),
        "do": ("try that Thai place", "have a barbecue", "bake a cake"),
        "like": ("like", "love", "enjoy", "ever make"),
    },
    "travel": {
        "thing": ("flying", "road trips", "the airport", "camping", "traveling with kids", "the train"),
        "did": ("drove up to the mountains", "flew to Chicago", "went camping", "visited the coast"),
        "done": ("been to Europe", "taken a long road trip", "missed a flight"),
        "do": ("visit my parents", "take a road trip", "fly down to Florida"),
        "like": ("like", "enjoy", "prefer", "mind"),
    },
    "work": {
        "thing": ("my job", "working from home", "the commute", "the new manager", "overtime", "meetings"),
        "did": ("finished a big project", "worked late", "started a new job", "had an interview"),
        "done": ("worked night shifts", "changed careers", "had a really bad boss"),
        "do": ("ask for a raise", "take some time off", "look for another job"),
        "like": ("like", "enjoy", "mind", "put up with"),
    },
    "family": {
        "thing": ("having kids", "family dinners", "the holidays", "living close to family", "my grandparents"),
        "did": ("had everyone over for dinner", "went to a wedding", "visited my grandmother", "had a baby"),
        "done": ("planned a big family reunion", "lived with your parents", "babysat your nephews"),
        "do": ("see my parents", "have a family reunion", "take the kids to the zoo"),
        "like": ("like", "enjoy", "miss"),
    },
    "sports": {
        "thing": ("football", "baseball season", "the playoffs", "going to the gym", "running", "basketball"),
        "did": ("watched the game", "ran a marathon", "joined a soccer team", "went to a baseball game"),
        "done": ("played on a team", "run a marathon", "been to a live game"),
        "do": ("start running again", "watch the finals", "join a gym"),
        "like": ("like", "watch", "follow", "play"),
    },
    "entertainment": {
        "thing": ("that new movie", "reality shows", "the news", "reading", "video games", "live music"),
        "did": ("saw a movie", "went to a concert", "read a great book", "binge watched a whole series"),
        "done": ("seen that show", "been to a music festival", "read the book first"),
        "do": ("see a movie", "go to a concert", "start a new series"),
        "like": ("like", "watch", "enjoy", "listen to"),
    },
    "pets": {
        "thing": ("dogs", "cats", "having a pet", "the vet", "walking the dog", "adopting a puppy"),
        "did": ("adopted a cat", "took the dog to the vet", "found a stray kitten", "bought a fish tank"),
        "done": ("had a dog", "trained a puppy", "owned a bird"),
        "do": ("get a dog", "adopt another cat", "take the dog to the park"),
        "like": ("like", "love", "prefer"),
    },
}

_SLOT = re.compile(r"\{(\w+)\}")


def _fill(template: str, vocabulary: dict[str, tuple[str, ...]], rng: np.random.Generator) -> str:
    def pick(match: re.Match) -> str:
        options = vocabulary[match.group(1)]
        return _fill(options[rng.integers(len(options))], vocabulary, rng)

    return _SLOT.sub(pick, template)


def sentence(rng: np.random.Generator, topic: str) -> str:
    """A random sentence about ``topic`` (a key of ``TOPICS``), first letter capitalised."""
    vocabulary = {**SHARED, **TOPICS[topic]}
    text = _fill(TEMPLATES[rng.integers(len(TEMPLATES))], vocabulary, rng)
    return text[0].upper() + text[1:]


def backchannel(rng: np.random.Generator) -> str:
    """A short listener response (``mhm``, ``yeah``, ...)."""
    return BACKCHANNELS[rng.integers(len(BACKCHANNELS))]
