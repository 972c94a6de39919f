"""Broken policy files as an operator (or a half-finished deploy) leaves them: each fault writes itself over a policy file
and says where the loader must point (the line, or None where a line cannot be known)."""

from __future__ import annotations

import os
import random
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

DEPTH = 2000


@dataclass(frozen=True)
class Fault:
    name: str
    apply: Callable[[Path], None]
    message: str  # a phrase the problem must contain
    line: int | None = None


def _replace(path: Path, content: bytes) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    elif path.exists() or path.is_symlink():
        path.unlink()
    path.write_bytes(content)


def _deep_flow(path: Path) -> None:
    _replace(path, b"apiVersion: heedful/v1\nkind: Policy\nspec: " + b"[" * DEPTH + b"]" * DEPTH + b"\n")


def _deep_block(path: Path) -> None:
    depth = 1000  # indented block style grows with the square of the depth: 1,000 levels stay under the size cap
    lines = ["apiVersion: heedful/v1", "kind: Policy"] + [" " * i + f"k{i}:" for i in range(depth)] + [" " * depth + "x"]
    _replace(path, "\n".join(lines).encode())


def _billion_laughs(path: Path) -> None:
    lines = ['a0: &a0 ["lol","lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for level in range(1, 9):
        lines.append(f"a{level}: &a{level} [" + ",".join([f"*a{level - 1}"] * 10) + "]")
    _replace(path, "\n".join(lines).encode() + b"\n")


def _self_alias(path: Path) -> None:
    _replace(path, b"apiVersion: heedful/v1\nspec: &loop\n  again: *loop\n")


def _binary(path: Path) -> None:
    _replace(path, bytes(random.Random(7).getrandbits(8) for _ in range(4096)))


def _nul_bytes(path: Path) -> None:
    _replace(path, b"apiVersion: heedful/v1\nkind: Policy\nmetadata: {name: \x00\x01}\n")


def _invalid_utf8(path: Path) -> None:
    _replace(path, b"apiVersion: heedful/v1\nkind: Policy\nmetadata:\n  name: caf\xc3\n  version: '1'\n")


def _huge(path: Path) -> None:
    _replace(path, b"# padding\n" * 300_000)  # 3 MB


def _directory(path: Path) -> None:
    _replace(path, b"")
    path.unlink()
    path.mkdir()


def _fifo(path: Path) -> None:
    _replace(path, b"")
    path.unlink()
    os.mkfifo(path)


def _dangling_link(path: Path) -> None:
    """A file deleted under its name (a ConfigMap link whose target went away mid-swap)."""
    _replace(path, b"")
    path.unlink()
    os.symlink(path.parent / "..gone" / path.name, path)


FAULTS = (
    Fault("nested_2000_deep_flow", _deep_flow, "nested more than", 3),
    Fault("nested_1000_deep_block", _deep_block, "nested more than", 67),
    Fault("billion_laughs", _billion_laughs, "expands to more than", None),
    Fault("alias_to_itself", _self_alias, "refers to a value that contains it", 3),
    Fault("binary_garbage", _binary, "", None),
    Fault("nul_bytes", _nul_bytes, "special characters are not allowed", 3),
    Fault("invalid_utf8", _invalid_utf8, "not valid UTF-8: byte 0xc3", 4),
    Fault("huge_file", _huge, "larger than", 1),
    Fault("directory_in_place_of_the_file", _directory, "is a directory", 1),
    Fault("named_pipe_in_place_of_the_file", _fifo, "not a regular file", 1),
    Fault("deleted_under_its_link", _dangling_link, "cannot read", 1),
)
