"""Recipient placeholders: kept as inert tokens through rendering, filled cheaply per recipient.

An issue may say `{{ recipient.first_name | default("colleague") }}` anywhere in its text or
links. Rendering (Markdown, Jinja, MJML, premailer) would escape or URL-encode such text, so each
placeholder becomes a plain token first (letters and digits only, which every step leaves alone).
After rendering, the document is split once at the tokens; per recipient only the expressions are
evaluated and the pieces joined, HTML-escaped for the HTML part and raw for the text part.
"""

from __future__ import annotations

import html
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from jinja2 import TemplateSyntaxError, meta, nodes
from jinja2.exceptions import SecurityError, UndefinedError
from jinja2.sandbox import ImmutableSandboxedEnvironment

from mailer.errors import TemplateError

PLACEHOLDER = re.compile(r"\{\{(.*?)\}\}", re.DOTALL)
TEMPLATE_TAG = re.compile(r"\{%|\{#")
TOKEN = re.compile(r"MAILERPH(\d{4})X")

_ENV = ImmutableSandboxedEnvironment(autoescape=False)


def check_placeholders(text: str) -> list[str]:
    """Return what is wrong with the placeholders in text (empty when all are fine)."""
    problems = []
    if TEMPLATE_TAG.search(text):
        problems.append(
            "only {{ recipient.<column> }} placeholders are allowed, not {% %} or {# #} tags"
        )
    if TOKEN.search(text):
        problems.append("contains text reserved by mailer (MAILERPH....X); reword it")
    for match in PLACEHOLDER.finditer(text):
        expression = match.group(1).strip()
        try:
            names = meta.find_undeclared_variables(_ENV.parse("{{ " + expression + " }}"))
        except TemplateSyntaxError as err:
            problems.append(f'placeholder "{match.group(0)}" is not valid: {err.message}')
            continue
        if "__" in expression or names - {"recipient"}:
            problems.append(
                f'placeholder "{match.group(0)}" may only use recipient.<column>, '
                'e.g. {{ recipient.first_name | default("colleague") }}'
            )
    return problems


def columns_without_default(expressions: Sequence[str]) -> dict[str, str]:
    """Return {column: expression} for columns a placeholder shows with no default that applies.

    An empty cell counts as missing, so `recipient.x | default("...")` and `recipient.x or
    "..."` cover it; `recipient.x | title | default("...")` does not (title turns the missing
    value into "", which default() keeps) unless it is `default("...", true)`.
    """
    needed: dict[str, str] = {}
    for expression in expressions:
        try:
            tree = _ENV.parse("{{ " + expression + " }}")
        except TemplateSyntaxError:
            continue  # check_placeholders reports it
        for column in _bare_columns(tree, covered=False):
            needed.setdefault(column, expression)
    return needed


def _bare_columns(node: nodes.Node, *, covered: bool) -> Iterator[str]:
    """Yield the recipient columns under node that an empty cell would show as nothing."""
    column = _column(node)
    if column is not None:
        if not covered:
            yield column
        return
    children: list[tuple[nodes.Node, bool]]
    if isinstance(node, nodes.Filter) and node.name in ("default", "d") and node.node:
        # default(value, true) also replaces "", so it covers whatever filters came first.
        flag = node.args[1] if len(node.args) > 1 else None
        flag = next((kw.value for kw in node.kwargs if kw.key == "boolean"), flag)
        replaces_empty = isinstance(flag, nodes.Const) and bool(flag.value)
        direct = _column(node.node) is not None
        children = [(node.node, covered or direct or replaces_empty)]
        children += [(arg, covered) for arg in [*node.args, *node.kwargs]]
    elif isinstance(node, nodes.Or):
        children = [(node.left, True), (node.right, covered)]
    else:
        children = [(child, covered) for child in node.iter_child_nodes()]
    for child, child_covered in children:
        yield from _bare_columns(child, covered=child_covered)


def _column(node: nodes.Node) -> str | None:
    """Return the column that node reads (recipient.x or recipient["x"]), or None."""
    if isinstance(node, nodes.Getattr | nodes.Getitem) and isinstance(node.node, nodes.Name):
        if node.node.name != "recipient":
            return None
        if isinstance(node, nodes.Getattr):
            return node.attr
        if isinstance(node.arg, nodes.Const) and isinstance(node.arg.value, str):
            return node.arg.value
    return None


class _RecipientView(dict[str, str]):
    """The fields of one recipient; empty cells count as missing so `default()` applies."""

    def __getattr__(self, name: str) -> str:
        try:
            return self[name]
        except KeyError:
            raise AttributeError(name) from None


# `recipient.first_name` or `recipient.first_name | default("colleague")`: most placeholders.
# These are looked up directly, as Jinja would (an empty cell counts as missing), without
# building a Jinja context per recipient (0.2 ms a message).
_SIMPLE = re.compile(
    r"^(recipient|mailer)\.([A-Za-z][A-Za-z0-9_]*)"
    r"(?:\s*\|\s*default\(\s*(?:\"([^\"\\]*)\"|'([^'\\]*)')\s*\))?$"
)
Simple = tuple[str, str, str]  # (recipient or mailer, field, default)


def _simple(expression: str) -> Simple | None:
    match = _SIMPLE.match(expression)
    if match is None or hasattr(dict, match.group(2)):  # `recipient.items` is dict's method
        return None
    default = match.group(3) if match.group(3) is not None else match.group(4) or ""
    return match.group(1), match.group(2), default


@dataclass
class PlaceholderTable:
    """The distinct placeholder expressions of one issue, numbered in order of appearance."""

    expressions: list[str] = field(default_factory=list)
    _compiled: list[Any] = field(default_factory=list, repr=False)
    _simple: list[Simple | None] = field(default_factory=list, repr=False)

    def tokenise(self, text: str) -> str:
        """Replace every {{ expression }} in text with its token."""
        return PLACEHOLDER.sub(self._token_for, text)

    def _token_for(self, match: re.Match[str]) -> str:
        expression = " ".join(match.group(1).split())
        if expression not in self.expressions:
            self.expressions.append(expression)
            self._compiled.append(_ENV.compile_expression(expression, undefined_to_none=False))
            self._simple.append(_simple(expression))
        return f"MAILERPH{self.expressions.index(expression):04d}X"

    def evaluate(self, fields: Mapping[str, str], extras: Mapping[str, str]) -> list[str]:
        """Return the value of every expression for one recipient (extras: mailer's own)."""
        view = _RecipientView({key: value for key, value in fields.items() if value != ""})
        own = _RecipientView(extras)
        values = []
        for expression, compiled, simple in zip(
            self.expressions, self._compiled, self._simple, strict=True
        ):
            if simple is not None:
                where, name, default = simple
                values.append((view if where == "recipient" else own).get(name) or default)
                continue
            try:
                values.append(str(compiled(recipient=view, mailer=own)))
            except (SecurityError, UndefinedError, TypeError, ValueError) as err:
                raise TemplateError(
                    f'placeholder "{{{{ {expression} }}}}" failed for {fields.get("email", "?")}: '
                    f"{err}"
                ) from err
        return values


@dataclass(frozen=True)
class Personalisable:
    """A rendered document split at its placeholder tokens, ready to fill per recipient."""

    pieces: tuple[str | int, ...]

    @classmethod
    def split(cls, rendered: str) -> Personalisable:
        """Split rendered text at its tokens, once per issue."""
        pieces: list[str | int] = []
        last = 0
        for match in TOKEN.finditer(rendered):
            pieces.append(rendered[last : match.start()])
            pieces.append(int(match.group(1)))
            last = match.end()
        pieces.append(rendered[last:])
        return cls(tuple(piece for piece in pieces if piece != ""))

    def fill(self, values: Sequence[str], *, escape: bool) -> str:
        """Join the pieces with one recipient's values, HTML-escaped when escape is true."""
        if escape:
            values = [html.escape(value, quote=True) for value in values]
        return "".join(piece if isinstance(piece, str) else values[piece] for piece in self.pieces)
