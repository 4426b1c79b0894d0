"""Menu phrases → a finite-state grammar for pocketsphinx.

We build the FSG directly from transitions instead of compiling JSGF: on the same
audio and phrases, pocketsphinx 5.1.1's JSGF-compiled grammar (null transitions
between alternatives) failed to reach its final state on many utterances ("Final
result does not match the grammar") and recognised 47 % where the equivalent flat FSG
recognised 63 % (docs/speech.md). The grammar is one chain of words per phrase
from the start state to the final state, all phrases equally likely; pocketsphinx adds
optional silence/filler loops itself (``-fsgusefiller``).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

_DIGIT_WORDS = {
    "0": "zero", "1": "one", "2": "two", "3": "three", "4": "four",
    "5": "five", "6": "six", "7": "seven", "8": "eight", "9": "nine",
}
_WORD = re.compile(r"[a-z0-9']+")


def normalize(phrase: str) -> tuple[str, ...]:
    """Lower-case dictionary words of a phrase; a bare digit becomes its word."""
    words = _WORD.findall(phrase.lower())
    return tuple(_DIGIT_WORDS.get(w, w) for w in words)


@dataclass(frozen=True, slots=True)
class MenuGrammar:
    """The phrases one question expects, keyed by their normalised word sequence."""

    name: str
    by_words: dict[tuple[str, ...], str]  # word sequence → phrase as the flow wrote it

    @classmethod
    def build(cls, phrases: Iterable[str], known: set[str] | None = None) -> MenuGrammar:
        """``known`` (dictionary words), when given, drops phrases with unknown words."""
        by_words: dict[tuple[str, ...], str] = {}
        for phrase in phrases:
            words = normalize(phrase)
            if not words or (known is not None and any(w not in known for w in words)):
                continue
            by_words.setdefault(words, phrase)
        key = "\n".join(" ".join(w) for w in sorted(by_words))
        name = "menu_" + hashlib.sha1(key.encode()).hexdigest()[:16]
        return cls(name=name, by_words=by_words)

    def transitions(self) -> list[tuple[int, int, float, str]]:
        """(from, to, probability, word) for ``Decoder.create_fsg``; start 0, final 1."""
        trans: list[tuple[int, int, float, str]] = []
        n = len(self.by_words)
        next_state = 2
        for words in sorted(self.by_words):
            prev = 0
            for i, word in enumerate(words):
                last = i == len(words) - 1
                to = 1 if last else next_state
                if not last:
                    next_state += 1
                trans.append((prev, to, 1.0 / n if i == 0 else 1.0, word))
                prev = to
        return trans

    def phrase_for(self, words: Sequence[str]) -> str | None:
        return self.by_words.get(tuple(words))

    def may_continue(self, words: Sequence[str]) -> bool:
        """True if a caller who said ``words`` and paused may still be mid-phrase
        ("technical ... support"), so deciding now could cut them off: ``words`` begin a
        longer phrase, or nothing was recognised yet (pocketsphinx returns no path at all
        when the audio ends inside a phrase) and some phrase has several words."""
        w = tuple(words)
        return any(len(p) > max(1, len(w)) and p[: len(w)] == w for p in self.by_words)
