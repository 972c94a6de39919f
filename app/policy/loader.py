"""Read policy YAML into validated policies, reporting every problem with its file, line and field."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from app.policy.cel_env import Condition, ConditionError, compile_condition
from app.policy.errors import PolicyError, PolicyProblem
from app.policy.model import PolicyDocument
from app.policy.source import parse_yaml, read_text

Path_ = tuple[Any, ...]


@dataclass(frozen=True)
class LoadedPolicy:
    document: PolicyDocument
    conditions: tuple[Condition, ...]
    file: str
    digest: str
    lines: dict[Path_, int]

    @property
    def name(self) -> str:
        return self.document.metadata.name

    @property
    def version(self) -> str:
        return self.document.metadata.version

    @property
    def revision(self) -> str:
        """A digest of the file's content: two edits under the same declared version still differ here."""
        return self.digest

    def line_of(self, *path: Any) -> int:
        return line_for(self.lines, path)


def is_policy_file(path: Path) -> bool:
    """Policy files in a directory: *.yaml/*.yml, not hidden (ConfigMap internals), not a *_test suite. A directory or an
    unreadable file by such a name is listed too, so that loading it reports it by name instead of it going unseen."""
    return (
        path.suffix in (".yaml", ".yml")
        and not path.name.startswith(".")
        and not path.stem.endswith("_test")
    )


def policy_files(directory: Path) -> list[Path]:
    return sorted(p for p in directory.iterdir() if is_policy_file(p))


def line_map(node: yaml.Node, path: Path_, lines: dict[Path_, int], problems: list[PolicyProblem], file: str) -> None:
    """Record the line of every key and list item under node (keyed by its path); duplicate keys become problems."""
    lines.setdefault(path, node.start_mark.line + 1)
    if isinstance(node, yaml.MappingNode):
        seen: set[str] = set()
        for key, value in node.value:
            name = key.value
            if name in seen:
                problems.append(PolicyProblem(file, key.start_mark.line + 1, "policy_schema_error", dotted((*path, name)), "key appears twice"))
            seen.add(name)
            lines[(*path, name)] = key.start_mark.line + 1
            line_map(value, (*path, name), lines, problems, file)
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            lines[(*path, index)] = item.start_mark.line + 1
            line_map(item, (*path, index), lines, problems, file)


def line_for(lines: dict[Path_, int], path: Iterable[Any]) -> int:
    """The line of path, or of its nearest ancestor that exists (a missing key points at its parent)."""
    path = tuple(path)
    while path and path not in lines:
        path = path[:-1]
    return lines.get(path, 1)


def dotted(path: Iterable[Any]) -> str:
    """A path as an editor reads it: spec.rules[1].when."""
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _known_keys(model: Any) -> list[str]:
    fields = getattr(model, "model_fields", {})
    return [info.alias or name for name, info in fields.items()]


def data_at(exc: ValidationError, loc: tuple[Any, ...]) -> Any:
    """The pydantic model class that owns the field at loc (for 'did you mean' suggestions)."""
    from app.policy import model as models

    owner: Any = models.PolicyDocument
    for part in loc[:-1]:
        if isinstance(part, int):
            continue
        field = owner.model_fields.get(part) if hasattr(owner, "model_fields") else None
        if field is None:
            return None
        annotation = field.annotation
        for candidate in (annotation, *getattr(annotation, "__args__", ())):
            if hasattr(candidate, "model_fields"):
                owner = candidate
                break
        else:
            return None
    return owner


def _did_you_mean(word: str, choices: list[str]) -> str:
    import difflib

    close = difflib.get_close_matches(word, choices, n=1, cutoff=0.75)
    return f"; did you mean {close[0]!r}?" if close else ""


def schema_problems(exc: ValidationError, file: str, lines: dict[Path_, int], code: str = "policy_schema_error",
                    prefix: tuple[Any, ...] = ()) -> list[PolicyProblem]:
    """pydantic's errors as problems that name the line, the field and what was expected."""
    problems = []
    for error in exc.errors():
        loc = (*prefix, *(p for p in error["loc"] if not (isinstance(p, str) and p.startswith("function-"))))
        message = error["msg"].removeprefix("Value error, ")
        if error["type"] == "extra_forbidden":
            message = f"unknown key {loc[-1]!r}" + _did_you_mean(str(loc[-1]), _known_keys(data_at(exc, loc)))
        elif error["type"] == "missing":
            message = f"missing required key {loc[-1]!r}"
        elif "expected" in error.get("ctx", {}):
            message = f"{message} (got {error.get('input')!r})"
        problems.append(PolicyProblem(file, line_for(lines, loc), code, dotted(loc), message))
    return problems


def parse_policy(text: str, file: str) -> LoadedPolicy:
    """Validate one policy document; raises PolicyError listing every problem found."""
    problems: list[PolicyProblem] = []
    source = parse_yaml(text, file)
    node, data = source.node, source.data
    if node is None or not isinstance(data, dict):
        raise PolicyError([PolicyProblem(file, 1, "policy_schema_error", "", "expected a mapping with apiVersion, kind, metadata and spec")])
    lines: dict[Path_, int] = {}
    line_map(node, (), lines, problems, file)
    try:
        document = PolicyDocument.model_validate(data)
    except ValidationError as exc:
        problems.extend(schema_problems(exc, file, lines))
        raise PolicyError(problems) from exc
    conditions: list[Condition] = []
    for index, rule in enumerate(document.spec.rules):
        try:
            conditions.append(compile_condition(rule.when))
        except ConditionError as exc:
            where = ("spec", "rules", index, "when")
            problems.append(PolicyProblem(file, line_for(lines, where), "policy_cel_error", dotted(where), str(exc)))
    if problems:
        raise PolicyError(problems)
    digest = hashlib.sha256(text.encode()).hexdigest()[:12]
    policy = LoadedPolicy(document, tuple(conditions), file, digest, lines)
    # Check and load are one validation: what `heedful policy check` finds (a threshold outside [0, 1], a rule that can
    # never fire) is refused here too, so a hot reload can never put such a policy live.
    from app.policy_tools.check import lint

    findings = lint(policy)
    if findings:
        raise PolicyError(findings)
    return policy


def load_policy_file(path: Path) -> LoadedPolicy:
    text = read_text(path)
    try:
        return parse_policy(text, str(path))
    except PolicyError:
        raise
    except Exception as exc:  # noqa: BLE001 - a fault nobody foresaw is still a problem with this file, never a crash
        raise PolicyError([PolicyProblem(str(path), 1, "policy_load_error", "",
                                         f"cannot load: {type(exc).__name__}: {exc}")]) from exc
