"""Load YAML into plain values, remembering the line and column of every key and value."""

from __future__ import annotations

import hashlib
import re
import stat
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.error import MarkedYAMLError, YAMLError
from ruamel.yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from mailer.errors import IssueError, Problem

Loc = tuple[str | int, ...]
# `heading: {{ recipient.first_name }}` unquoted is a YAML mapping inside a mapping.
UNQUOTED = 'a value that starts with {{ must be in quotes: "{{ recipient.first_name }}"'
MAX_NODES = 100_000  # an alias bomb ("billion laughs") stops here, not in memory
MAX_DEPTH = 50  # an issue nests 5 levels; deeper is a mistake or an attack
# A long issue is ~30 KB of YAML, and Gmail clips an email at 102 KB: a bigger file is a
# mistake (a pasted document), refused before YAML parsing spends seconds on it.
MAX_ISSUE_BYTES = 1_000_000

_SCALAR_TAGS = {
    "tag:yaml.org,2002:int": int,
    "tag:yaml.org,2002:float": float,
}


@dataclass
class YamlSource:
    """The plain data of a YAML file and where each part of it stands (1-based)."""

    path: str
    data: Any
    value_marks: dict[Loc, tuple[int, int]] = field(default_factory=dict)
    key_marks: dict[Loc, tuple[int, int]] = field(default_factory=dict)
    block_scalars: set[Loc] = field(default_factory=set)
    problems: list[Problem] = field(default_factory=list)
    digest: str = ""  # SHA-256 of the bytes parsed

    def mark(self, loc: Loc) -> tuple[int, int] | None:
        """Return the line and column of the nearest known node at or above loc."""
        while True:
            if loc in self.value_marks:
                return self.value_marks[loc]
            if not loc:
                return None
            loc = loc[:-1]

    def key_mark(self, loc: Loc) -> tuple[int, int] | None:
        """Return where the key at loc is written, else where its nearest parent is."""
        return self.key_marks.get(loc) or self.mark(loc)


class _Builder:
    def __init__(self, source: YamlSource) -> None:
        self.source = source
        self.problems: list[Problem] = []
        self.count = 0
        self.open: set[int] = set()  # the nodes being built: an alias back to one is a loop

    def build(self, node: Node, loc: Loc) -> Any:
        self.count += 1
        mark = node.start_mark
        where = f"{self.source.path}:{mark.line + 1}:{mark.column + 1}"
        if self.count > MAX_NODES:
            raise IssueError(
                f"{self.source.path}: over {MAX_NODES} YAML values (aliases repeated inside "
                "aliases?); write the values out"
            )
        if len(loc) > MAX_DEPTH:
            raise IssueError(f"{where}: nested over {MAX_DEPTH} levels deep; flatten it")
        if id(node) in self.open:
            raise IssueError(
                f"{where}: {dotted(loc)}: an alias (*name) inside its own anchor; remove it"
            )
        self.source.value_marks[loc] = (mark.line + 1, mark.column + 1)
        if isinstance(node, MappingNode | SequenceNode):
            self.open.add(id(node))
            try:
                if isinstance(node, MappingNode):
                    return self._mapping(node, loc)
                return [self.build(item, (*loc, i)) for i, item in enumerate(node.value)]
            finally:
                self.open.discard(id(node))
        assert isinstance(node, ScalarNode)
        if node.style in ("|", ">"):
            self.source.block_scalars.add(loc)
        return self._scalar(node)

    def _mapping(self, node: MappingNode, loc: Loc) -> dict[str, Any]:
        result: dict[str, Any] = {}
        for key_node, value_node in node.value:
            mark = key_node.start_mark
            place = (mark.line + 1, mark.column + 1)
            key = key_node.value if isinstance(key_node, ScalarNode) else None
            if not isinstance(key, str) or key_node.tag == "tag:yaml.org,2002:merge":
                self.problems.append(Problem(self.source.path, *place, dotted(loc), UNQUOTED))
                continue
            if key in result:
                first = self.source.key_marks[(*loc, key)][0]
                self.problems.append(
                    Problem(
                        self.source.path,
                        *place,
                        dotted((*loc, key)),
                        f'duplicate key "{key}" (first on line {first})',
                        "keep one of them",
                    )
                )
                continue
            self.source.key_marks[(*loc, key)] = place
            result[key] = self.build(value_node, (*loc, key))
        return result

    @staticmethod
    def _scalar(node: ScalarNode) -> Any:
        # Dates and timestamps stay strings: Pydantic parses them and keeps the UTC offset,
        # which YAML loaders drop or mangle.
        value: str = node.value
        if node.style is not None:
            return value
        if node.tag == "tag:yaml.org,2002:null":
            return None
        if node.tag == "tag:yaml.org,2002:bool":
            return value.lower() == "true"
        convert = _SCALAR_TAGS.get(str(node.tag))
        if convert is not None:
            try:
                return convert(value.replace("_", ""))
            except ValueError:
                return value
        return value


def dotted(loc: Loc) -> str:
    """Return a location as a path a person reads: blocks[2].items[0].date."""
    text = ""
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else part)
    return text


def load_yaml(path: Path, display: str | None = None) -> YamlSource:
    """Read a YAML file; raise IssueError naming the line on bad YAML, keep key problems."""
    shown = display or str(path)
    data = _read_capped(path, shown)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as err:
        raise IssueError(f"{shown}: not UTF-8 text ({err.reason}); save it as UTF-8") from err
    source = parse_yaml(text, shown)
    source.digest = hashlib.sha256(data).hexdigest()
    return source


def _read_capped(path: Path, shown: str) -> bytes:
    """Read at most MAX_ISSUE_BYTES of a regular file; raise IssueError on anything else."""
    try:
        info = path.stat()
        if not stat.S_ISREG(info.st_mode):  # a FIFO would block, a device never end
            raise IssueError(f"{shown}: not a regular file; an issue is a .yaml file")
        with path.open("rb") as file:
            data = file.read(MAX_ISSUE_BYTES + 1)  # a bigger file is refused unread
    except FileNotFoundError:
        raise IssueError(f"{shown}: no such file; check the path") from None
    except OSError as err:
        raise IssueError(f"{shown}: cannot read ({err.strerror or err})") from err
    if len(data) > MAX_ISSUE_BYTES:
        size = max(info.st_size, len(data))
        raise IssueError(
            f"{shown}: over the {MAX_ISSUE_BYTES // 1_000_000} MB limit for an issue file "
            f"({size / 1_000_000:.1f} MB); link to long documents instead of pasting them"
        )
    return data


_QUOTED_VALUE = re.compile(r"""^(\s*(?:-\s+)?(?:[\w.-]+:\s+)?)(["'])(.*?)\s*$""")


def _quotes_inside_quotes(line: str) -> tuple[int, str] | None:
    """Return (column, what to write) for a quoted value with its own quote mark inside.

    `heading: "Hi {{ recipient.first_name | default("colleague") }}"` ends the value at the
    quote before colleague, and YAML's own words for that ("expected <block end>") say
    nothing useful to someone who only wanted to greet the reader.
    """
    found = _QUOTED_VALUE.match(line)
    if found is None:
        return None
    prefix, quote, value = found.groups()
    inner = value[:-1] if value.endswith(quote) else value
    if quote == "'":
        inner = inner.replace("''", "")  # '' is how a single-quoted value writes a '
    if quote not in inner:
        return None
    other = "'" if quote == '"' else '"'
    if other not in inner:
        fixed = f"{prefix}{other}{inner}{other}"
    elif quote == '"':
        fixed = prefix + '"' + inner.replace('"', '\\"') + '"'
    else:
        fixed = prefix + "'" + inner.replace("'", "''") + "'"
    name = "double" if quote == '"' else "single"
    return len(prefix) + 1, (
        f"this value is in {name} quotes ({quote}...{quote}) and has a {quote} inside, which "
        f"ends it early; write it as:  {fixed.strip()}"
    )


def parse_yaml(text: str, display: str) -> YamlSource:
    """Parse YAML text into a YamlSource."""
    source = YamlSource(display, None)
    try:
        node = YAML(typ="safe", pure=True).compose(text)
    except RecursionError:  # ruamel composes nested collections recursively
        raise IssueError(
            f"{display}: nested too deep to read (over {MAX_DEPTH} levels?); flatten it"
        ) from None
    except MarkedYAMLError as err:
        mark = err.problem_mark or err.context_mark
        where = f":{mark.line + 1}:{mark.column + 1}" if mark else ""
        what = err.problem or err.context or "invalid YAML"
        line = text.splitlines()[mark.line] if mark and mark.line < len(text.splitlines()) else ""
        quoted = _quotes_inside_quotes(line)
        if quoted is not None:
            column, hint = quoted
            where = f":{mark.line + 1}:{column}" if mark else ""
            raise IssueError(f"{display}{where}: {hint}") from err
        if "\t" in what or "'\\t'" in what:
            hint = "indent with spaces, not tabs"
        elif "{{" in line:
            hint = 'put a value that starts with {{ in quotes: "{{ recipient.first_name }}"'
        else:
            hint = "check the indentation, and quote text containing ': ' or ' #'"
        raise IssueError(f"{display}{where}: {what}; {hint}") from err
    except YAMLError as err:
        raise IssueError(f"{display}: invalid YAML ({err})") from err
    if node is None:
        raise IssueError(f"{display}: the file is empty; start from issues/ in `mailer init`")
    builder = _Builder(source)
    source.data = builder.build(node, ())
    source.problems = builder.problems
    return source
