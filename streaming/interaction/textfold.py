"""Folding text for moderation: what a ban, the word filter and flood detection compare.

A ban on "troll" must also catch full-width "\uff54\uff52\uff4f\uff4c\uff4c", "TROLL", "tr\u00f6ll" and "tr\u043ell"
(a Cyrillic o). `fold` applies NFKC (compatibility forms: full-width, ligatures,
superscripts), case folding, drops accents and invisible format characters, and maps the Cyrillic and Greek
letters that look like Latin ones (a short table after Unicode's confusables.txt, the letters that matter
for abuse in Latin-script chat). `flood_key` also ignores punctuation and spacing, so "BUY NOW." and
"buy  now!!" are the same message.
"""

from __future__ import annotations

import re
import unicodedata

# Cyrillic, Greek and IPA letters (code points, after case folding) that render like a Latin letter.
_CONFUSABLES: dict[int, str] = {
    0x0430: "a", 0x0432: "b", 0x0435: "e", 0x0451: "e", 0x04BB: "h", 0x0456: "i", 0x0457: "i", 0x0458: "j",
    0x043A: "k", 0x043C: "m", 0x043D: "h", 0x043E: "o", 0x0440: "p", 0x0441: "c", 0x0442: "t", 0x0443: "y",
    0x0445: "x", 0x0455: "s", 0x0501: "d", 0x051B: "q", 0x051D: "w", 0x0261: "g", 0x0269: "i", 0x03B1: "a",
    0x03B2: "b", 0x03B5: "e", 0x03B7: "n", 0x03B9: "i", 0x03BA: "k", 0x03BC: "u", 0x03BD: "v", 0x03BF: "o",
    0x03C1: "p", 0x03C4: "t", 0x03C5: "u", 0x03C7: "x", 0x03C9: "w", 0x0475: "v", 0x04CF: "l",
}
_NON_WORD = re.compile(r"[\W_]+")


def _fold_char(ch: str) -> str:
    out = []
    for c in unicodedata.normalize("NFKD", unicodedata.normalize("NFKC", ch).casefold()):
        category = unicodedata.category(c)
        if category == "Mn" or category == "Cf":  # accents; zero-width and bidi characters
            continue
        out.append(c)
    return "".join(out).translate(_CONFUSABLES)


def fold(text: str) -> str:
    return "".join(_fold_char(ch) for ch in text)


def folded_with_index(text: str) -> tuple[str, list[int]]:
    """`fold(text)` and, for each folded character, the index of the original character it came from."""
    chars: list[str] = []
    index: list[int] = []
    for i, ch in enumerate(text):
        for c in _fold_char(ch):
            chars.append(c)
            index.append(i)
    return "".join(chars), index


def flood_key(text: str) -> str:
    """The message as flood and duplicate detection see it: folded, punctuation and spacing ignored."""
    return " ".join(_NON_WORD.sub(" ", fold(text)).split())


def mask_words(text: str, words: list[str] | tuple[str, ...]) -> str:
    """Each listed word (whole word, compared folded) becomes asterisks in the original text."""
    folded, index = folded_with_index(text)
    hidden = set()
    for word in words:
        target = fold(word.strip())
        if not target:
            continue
        for m in re.finditer(rf"(?<!\w){re.escape(target)}(?!\w)", folded):
            hidden.update(range(index[m.start()], index[m.end() - 1] + 1))
    return "".join("*" if i in hidden else ch for i, ch in enumerate(text))
