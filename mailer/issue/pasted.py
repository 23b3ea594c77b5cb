"""Text pasted from Word or Outlook: its bullets and numbering made into Markdown lists.

Word copies a bulleted list as plain text with a glyph and a tab per paragraph, a level's
glyph standing for its depth (`•` then `o` then `§`, the Wingdings square), and a numbered
list as `1.`, `a.`, `i.` (or `1)`, `a)`) and a tab. Markdown sees none of that as a list:
the items run on as one paragraph. Here each such line becomes a Markdown list item at its
depth, and a list gets a blank line before and after it, so that neither the line above nor
the paragraph below runs into it.

Markdown written by hand passes through unchanged: `- `, `* `, `1. ` and `1) ` lists keep
their own indentation, and a list only gains blank lines where its first or last item meets
a paragraph line.
"""

from __future__ import annotations

import re

# Level 0, 1 and 2 glyphs as Word and Outlook paste them. U+F0B7 and U+F0A7 are the Symbol
# and Wingdings bullets, left in the private use area when the font is lost on the way.
_BULLETS = {
    **dict.fromkeys("•●·\u2013\uf0b7\u2023\u2043\u25aa\u25b8\u27a2\u25ba", 0),
    **dict.fromkeys("o◦○\uf0a7", 1),
    **dict.fromkeys("§▪■\uf0d8\u25a0", 2),
}
_BULLET_LINE = re.compile(r"^([ \t]*)(\S)[ \t\u00a0]+(\S.*)$")
_NUMBER_LINE = re.compile(r"^([ \t]*)\(?(\d{1,3}|[a-z]|[ivx]{1,5})([.)])([ \t\u00a0]+)(\S.*)$")
_MARKDOWN_ITEM = re.compile(r"^([ \t]*)([-*+]|\d{1,9}[.)])([ \t]+|$)")
PASTED_LINE = 100  # longer lines are Word's paragraphs, not lines wrapped by hand
_ROMAN = {"i": 1, "ii": 2, "iii": 3, "iv": 4, "v": 5, "vi": 6, "vii": 7, "viii": 8, "ix": 9}


def pasted_to_markdown(text: str) -> str:
    """Return text with Word's pasted bullets and numbering as Markdown lists."""
    lines = text.split("\n")
    converted = _Converter().lines(lines)
    made = {
        number for number, (old, new) in enumerate(zip(lines, converted, strict=True)) if old != new
    }
    # Text from Word has one paragraph a line; Markdown written by hand wraps its lines.
    pasted = bool(made) or any(len(line) > PASTED_LINE for line in lines)
    return _separate_lists(converted, made, paragraph_per_line=pasted)


def _pasted_item(line: str, *, in_list: bool) -> tuple[int, str, str] | None:
    """Return (level, label, text) for a Word list line, else None.

    label is "-" for a bullet, else the number or letter. A `1.` with a space is a Markdown
    list already; with a tab (or `1)`), Word's. A level 1 or 2 glyph (`o`, `§`) or a letter is
    an item only inside a list: "o" is also a word, and "a. " may start a sentence.
    """
    bullet = _BULLET_LINE.match(line)
    if bullet and bullet.group(2) in _BULLETS:
        level = _BULLETS[bullet.group(2)]
        if level == 0 or in_list:
            return level, "-", bullet.group(3)
    number = _NUMBER_LINE.match(line)
    if number is None:
        return None
    label, delimiter, gap, rest = number.group(2, 3, 4, 5)
    word_gap = "\t" in gap or "\u00a0" in gap
    if label.isdigit():
        return (0, label, rest) if word_gap or delimiter == ")" else None
    if not (word_gap or in_list):
        return None
    return (2 if label in _ROMAN else 1), label, rest


class _Converter:
    def __init__(self) -> None:
        self.stack: list[tuple[int, int]] = []  # per open level: (level, its content's column)
        self.letter = ""  # the last letter item's label: "h" then "i" is a letter, not i.

    def lines(self, lines: list[str]) -> list[str]:
        out = []
        for line in lines:
            item = _pasted_item(line, in_list=bool(self.stack))
            if item is None:
                if line.strip() and not line[:1].isspace():
                    self.stack = []  # a paragraph ends the list
                out.append(line)
                continue
            level, label, rest = item
            follows = len(label) == 1 and self.letter and ord(label) == ord(self.letter) + 1
            if level == 2 and follows:  # h. then i. (or u. then v.): letters, not numerals
                level = 1
            if level == 1 and label != "-":
                self.letter = label
            if label == "-":
                marker = "- "
            elif label.isdigit():
                marker = f"{label}. "
            elif level == 2:
                marker = f"{_ROMAN[label]}. "
            else:
                marker = f"{ord(label) - ord('a') + 1}. "
            out.append(self._item(level, marker, rest))
        return out

    def _item(self, level: int, marker: str, rest: str) -> str:
        while self.stack and self.stack[-1][0] >= level:
            self.stack.pop()
        indent = self.stack[-1][1] if self.stack else 0
        self.stack.append((level, indent + len(marker)))
        return " " * indent + marker + rest.strip()


def _separate_lists(lines: list[str], made: set[int], *, paragraph_per_line: bool) -> str:
    """Put a blank line where a list meets a paragraph line, before or after it.

    Before: a list made here may start at 3, and only a list starting at 1 may interrupt a
    paragraph. After: a paragraph line right after an item would run on inside it. With
    paragraph_per_line (text from Word), between two lines of text too.
    """
    out: list[str] = []
    in_list = fence = False
    for number, line in enumerate(lines):
        fence_line = line.lstrip().startswith(("```", "~~~"))
        if fence_line:
            fence = not fence
        item = None if fence else _MARKDOWN_ITEM.match(line)
        after_text = bool(out) and bool(out[-1].strip())
        if item is not None:
            if not in_list and after_text and number in made:
                out.append("")
            in_list = True
        elif line.strip() and not line[:1].isspace() and not (fence or fence_line):
            if after_text and (in_list or paragraph_per_line):
                out.append("")
            in_list = False
        out.append(line)
    return "\n".join(out)
