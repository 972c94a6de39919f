"""Reading a policy (or policy test) YAML file without ever raising anything but a PolicyError that names the file and
line: whatever an editor, a half-finished ConfigMap swap or an attacker leaves in the directory (a huge file, binary
garbage, bytes that are not UTF-8, YAML nested thousands deep or aliases that expand a billion times, a directory where a
file was, a file that vanishes or cannot be read) is a problem to report, never a crash of the hot-reload watcher or a
traceback from `heedful policy check` and `heedful serve`.
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from app.policy.errors import PolicyError, PolicyProblem

# Real policies are a few kilobytes and nested under ten levels deep; the bounds leave ample room above that while keeping
# PyYAML's recursive composer far from Python's recursion limit and a load's memory small.
MAX_POLICY_BYTES = 1024 * 1024
MAX_NESTING = 64
MAX_NODES = 100_000  # after alias expansion: a document that would expand further is a "billion laughs" bomb
# libyaml's parser where PyYAML was built with it: the same events and marks at a twentieth of the cost.
_FAST_LOADER: type[Any] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


@dataclass(frozen=True)
class YamlSource:
    text: str
    node: yaml.Node | None
    data: Any


def _problem(file: str, line: int, message: str, code: str = "policy_yaml_error") -> PolicyError:
    return PolicyError([PolicyProblem(file, line, code, "", message)])


def read_text(path: Path) -> str:
    """The file's text: at most MAX_POLICY_BYTES of UTF-8, read once (the file may change while it is read)."""
    file = str(path)
    try:
        # Non-blocking, then checked: a named pipe by a policy's name would otherwise block the reader for good.
        descriptor = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
        with os.fdopen(descriptor, "rb") as stream:
            mode = os.fstat(stream.fileno()).st_mode
            if stat.S_ISDIR(mode):
                raise _problem(file, 1, "is a directory, not a policy file")
            if not stat.S_ISREG(mode):
                raise _problem(file, 1, "is not a regular file (a pipe, socket or device)")
            raw = stream.read(MAX_POLICY_BYTES + 1)
    except IsADirectoryError as exc:
        raise _problem(file, 1, "is a directory, not a policy file") from exc
    except OSError as exc:  # gone mid-reload, permission denied, a dangling ConfigMap link
        raise _problem(file, 1, f"cannot read: {exc.strerror or exc}") from exc
    if len(raw) > MAX_POLICY_BYTES:
        raise _problem(file, 1, f"file is larger than {MAX_POLICY_BYTES} bytes; a policy file is a few kilobytes")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        column = exc.start - (raw.rfind(b"\n", 0, exc.start) + 1) + 1
        raise _problem(file, line, f"not valid UTF-8: byte 0x{raw[exc.start]:02x} at column {column} (policy files "
                                   f"are UTF-8 text)") from exc


def _check_shape(text: str, file: str, loader: type[Any]) -> None:
    """Bound nesting and alias expansion on PyYAML's event stream, which (unlike its composer) does not recurse."""
    sizes: dict[str, int] = {}
    open_nodes: list[tuple[str | None, int]] = []  # (anchor, nodes so far) of each collection being read
    total = 0
    for event in yaml.parse(text, Loader=loader):
        if isinstance(event, (yaml.MappingStartEvent, yaml.SequenceStartEvent)):
            open_nodes.append((event.anchor, 1))
            if len(open_nodes) > MAX_NESTING:
                raise _problem(file, _line(event), f"nested more than {MAX_NESTING} levels deep")
            continue
        if isinstance(event, (yaml.MappingEndEvent, yaml.SequenceEndEvent)):
            anchor, count = open_nodes.pop()
        elif isinstance(event, yaml.AliasEvent):
            if any(event.anchor == open_anchor for open_anchor, _ in open_nodes):
                raise _problem(file, _line(event), f"alias *{event.anchor} refers to a value that contains it")
            anchor, count = None, sizes.get(event.anchor or "", 1)
        elif isinstance(event, yaml.ScalarEvent):
            anchor, count = event.anchor, 1
        else:
            continue
        if anchor:
            sizes[anchor] = count
        if open_nodes:
            parent_anchor, parent_count = open_nodes[-1]
            open_nodes[-1] = (parent_anchor, parent_count + count)
        else:
            total += count
        if total + sum(c for _, c in open_nodes) > MAX_NODES:
            raise _problem(file, _line(event),
                           f"expands to more than {MAX_NODES} values (aliases that repeat aliases); write it out plainly")


def _line(event: yaml.Event) -> int:
    return event.start_mark.line + 1 if event.start_mark is not None else 1


def parse_yaml(text: str, file: str) -> YamlSource:
    """Compose (for line numbers) and load (for values) one YAML document, within the bounds above."""
    try:
        try:
            node = _tree(text, file, _FAST_LOADER)
        except yaml.YAMLError:  # read again by PyYAML's own parser, whose messages the hints below know
            node = _tree(text, file, yaml.SafeLoader)
        # The values are built from the composed tree: the text is read twice (shape, tree), not three times.
        data = yaml.SafeLoader("").construct_document(node) if node is not None else None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark else _reader_line(exc, text)
        problem = str(getattr(exc, "problem", None) or exc)
        raise PolicyError([PolicyProblem(file, line, "policy_yaml_error", "", problem + _yaml_hint(problem))]) from exc
    except RecursionError as exc:  # the bounds should make this unreachable; a watcher must survive it regardless
        raise _problem(file, 1, "nested too deeply to read") from exc
    return YamlSource(text, node, data)


def _tree(text: str, file: str, loader: type[Any]) -> yaml.Node | None:
    _check_shape(text, file, loader)
    node: yaml.Node | None = yaml.compose(text, Loader=loader)
    return node


def _reader_line(exc: yaml.YAMLError, text: str) -> int:
    """PyYAML's reader errors (a control character, binary garbage) carry a character position, not a mark."""
    position = getattr(exc, "position", None)
    return text.count("\n", 0, position) + 1 if isinstance(position, int) else 1


def _yaml_hint(problem: str) -> str:
    """A plain-language hint for the YAML parser's messages that read like parser internals."""
    if "found '<scalar>'" in problem or "found unexpected ':'" in problem:
        return (" (hint: a value that starts with a quote, or contains ': ', must be quoted as a whole, e.g. "
                "when: \"'crisis' in flags\")")
    if "expected <block end>" in problem or "mapping values are not allowed" in problem or "could not find expected ':'" \
            in problem:
        return (" (hint: check the indentation of this line and the one above it: the keys of one rule line up under "
                "its name, and each rule starts with '- ')")
    return ""
