"""Characters that change how text looks without being seen, and the few places they belong.

Unicode's Default_Ignorable_Code_Point set holds the bidi controls (`abc\\u202egpj.exe` shows as
`abcexe.jpg`), zero-width spaces and joiners, Hangul fillers (a name that looks blank), tags
(ASCII text smuggled invisibly), variation selectors and a few more. Any of them lets two names
look alike while differing, or hide what a title says. Three of them are part of correct
spelling, so they are kept where (and only where) they do that job:

- ZWNJ and ZWJ where RFC 5892 (IDNA2008, which had the same spoofing problem) allows them:
  after a virama, and ZWNJ between Arabic-script letters that would otherwise join. Persian,
  Urdu, Hindi, Malayalam and other names need them.
- ZWJ between emoji (the ZWJ sequences of UTS #51, such as 👩🏽‍💻).
- VS15/VS16 (text or emoji presentation) right after an emoji, or in a keycap such as 1️⃣.

Every other variation selector (including the Mongolian and ideographic ones) and the emoji tag
characters are refused: they are rare in a catalogue, and invisible when misused.
"""

import idna
import regex

# Interlinear annotation controls are not default-ignorable, but they hide text all the same.
_INVISIBLE = regex.compile(r"[\p{Default_Ignorable_Code_Point}\uFFF9-\uFFFB]")
_PICTOGRAPH = regex.compile(r"\p{Extended_Pictographic}")
_EMOJI_BEFORE_JOINER = regex.compile(r"[\p{Extended_Pictographic}\p{Emoji_Modifier}\uFE0F]")
_KEYCAP_BASE = frozenset("0123456789#*")
_KEYCAP = "\u20e3"
ZWNJ, ZWJ = "\u200c", "\u200d"
PRESENTATION_SELECTORS = frozenset("\ufe0e\ufe0f")
# RFC 5892's joiner rules look a few marks either side; idna refuses labels over 1024 characters.
_JOINER_WINDOW = 64


def _joins_script(text: str, index: int) -> bool:
    start = max(0, index - _JOINER_WINDOW)
    window = text[start : index + _JOINER_WINDOW + 1]
    try:
        return bool(idna.valid_contextj(window, index - start))
    except ValueError:  # an unassigned neighbour: no spelling needs the joiner there
        return False


def _belongs(text: str, index: int) -> bool:
    """Whether the ignorable character at `index` is doing its job in this spot."""
    char = text[index]
    before = text[index - 1] if index else ""
    after = text[index + 1] if index + 1 < len(text) else ""
    if char in PRESENTATION_SELECTORS:
        return bool(before) and (
            _PICTOGRAPH.match(before) is not None or (before in _KEYCAP_BASE and after == _KEYCAP)
        )
    if (
        char == ZWJ
        and _EMOJI_BEFORE_JOINER.match(before) is not None
        and _PICTOGRAPH.match(after) is not None
    ):
        return True
    if char in (ZWNJ, ZWJ):
        return _joins_script(text, index)
    return False


def first_invisible(text: str) -> int | None:
    """The index of the first invisible or direction-changing character out of place, or None."""
    for found in _INVISIBLE.finditer(text):
        if not _belongs(text, found.start()):
            return found.start()
    return None
