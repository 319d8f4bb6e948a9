"""The docs name real code: every `path.py:name` and `path.py:Class.method` in docs/*.md exists.

A reference is a repository path to a Python file, a colon and a dotted name: `telephony/agi.py`
followed by `:AgiServer` or `:_Connection.data_received`. The file must exist and, read with
`ast` (never imported), define the name at its top level (a function, a class, or an assigned
name such as a constant or a type alias), and a `Class.member` must be a method of that class
or a name assigned in its body. `path.js:name` references (the pages' scripts) must name a
`function name` in that file. A shorthand `Class.method` in backticks, once the page has named
the class's file (`telephony/tracker.py:CallTracker.feed`, later `CallTracker._end`), is checked
against that class too. A page that names code which was renamed or moved fails here instead of
rotting silently.
"""

from __future__ import annotations

import ast
import re
from functools import cache
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = sorted((ROOT / "docs").glob("*.md"))

_IDENT = r"[A-Za-z_][A-Za-z0-9_]*"
# `web/ws.py:events_socket`, `telephony/tracker.py:CallTracker.feed`; a trailing `()` is allowed
REFERENCE = re.compile(rf"(?<![\w/.-])((?:[\w.-]+/)*[\w.-]+\.(?:py|js)):({_IDENT}(?:\.{_IDENT})?)")


# `CallTracker._end` or `CallTracker._end(...)`, alone in backticks
SHORTHAND = re.compile(rf"`({_IDENT})\.({_IDENT})(?:\([^`]*\))?`")


def references(text: str) -> list[tuple[str, str]]:
    """The (path, dotted name) pairs a markdown text refers to, in order, repeats dropped."""
    return list(dict.fromkeys(REFERENCE.findall(text)))


def _assigned(body: list[ast.stmt]) -> set[str]:
    names: set[str] = set()
    for node in body:
        if isinstance(node, ast.Assign):
            names.update(t.id for t in node.targets if isinstance(t, ast.Name))
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            names.add(node.target.id)
    return names


def _defined(body: list[ast.stmt]) -> dict[str, ast.stmt | None]:
    """Functions and classes (with their nodes) and assigned names (None) of one body."""
    found: dict[str, ast.stmt | None] = dict.fromkeys(_assigned(body))
    for node in body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            found[node.name] = node
    return found


@cache
def _module(path: str) -> dict[str, ast.stmt | None]:
    return _defined(ast.parse((ROOT / path).read_text(encoding="utf-8"), filename=path).body)


def problem(path: str, name: str) -> str | None:
    """Why `path:name` names nothing, or None when it names real code."""
    file = ROOT / path
    if not file.is_file():
        return f"{path}: no such file"
    head, _, member = name.partition(".")
    if path.endswith(".js"):
        if member or not re.search(rf"\bfunction\s+{re.escape(head)}\s*\(", file.read_text()):
            return f"{path}: no function {name}"
        return None
    top = _module(path)
    if head not in top:
        return f"{path}: no top-level function, class or name {head}"
    if not member:
        return None
    cls = top[head]
    if not isinstance(cls, ast.ClassDef):
        return f"{path}: {head} is not a class, so it has no {member}"
    if member not in _defined(cls.body):
        return f"{path}: class {head} has no method or attribute {member}"
    return None


def shorthand_problems(text: str) -> list[str]:
    """`Class.member` shorthands whose class the page named by path, but which lack the member."""
    homes: dict[str, list[str]] = {}  # class name -> the referenced files defining it
    for path in dict.fromkeys(p for p, _ in references(text)):
        if path.endswith(".py") and (ROOT / path).is_file():
            for name, node in _module(path).items():
                if isinstance(node, ast.ClassDef):
                    homes.setdefault(name, []).append(path)
    problems = []
    for cls, member in dict.fromkeys(SHORTHAND.findall(text)):
        paths = homes.get(cls)
        if paths and all(problem(path, f"{cls}.{member}") for path in paths):
            where = " or ".join(paths)
            problems.append(f"{where}: class {cls} has no method or attribute {member}")
    return problems


def test_the_docs_exist_and_name_code() -> None:
    assert (ROOT / "docs" / "LIFE_OF_A_CALL.md") in DOCS
    assert references((ROOT / "docs" / "LIFE_OF_A_CALL.md").read_text()), "no references found"


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: p.name)
def test_every_code_reference_in_the_docs_exists(doc: Path) -> None:
    refs = references(doc.read_text(encoding="utf-8"))
    problems = [p for p in (problem(path, name) for path, name in refs) if p is not None]
    problems += shorthand_problems(doc.read_text(encoding="utf-8"))
    assert not problems, f"{doc.name} names code that does not exist:\n" + "\n".join(problems)


def test_relative_links_in_the_docs_resolve() -> None:
    for doc in DOCS:
        for target in re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", doc.read_text(encoding="utf-8")):
            if "://" in target or target.startswith("mailto:"):
                continue
            assert (doc.parent / target).exists(), f"{doc.name}: broken link {target}"


def test_readme_links_the_life_of_a_call() -> None:
    assert "docs/LIFE_OF_A_CALL.md" in (ROOT / "README.md").read_text(encoding="utf-8")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("`telephony/agi.py:AgiServer`", None),
        ("`telephony/agi.py:_Connection.data_received`", None),
        ("`telephony/ami_listener.py:AmiEvent`", None),  # a type alias: an assigned name
        ("`telephony/agi.py:AgiServer.no_such_method`", "class AgiServer has no"),
        ("`telephony/agi.py:no_such_function`", "no top-level function"),
        ("`telephony/agi.py:quote.upper`", "quote is not a class"),
        ("`telephony/no_such_file.py:x`", "no such file"),
        ("`web/pages/static/operator/events.js:onRinging`", None),
        ("`web/pages/static/operator/events.js:noSuchHandler`", "no function noSuchHandler"),
    ],
)
def test_the_checker_tells_real_code_from_made_up(text: str, expected: str | None) -> None:
    [(path, name)] = references(text)
    found = problem(path, name)
    if expected is None:
        assert found is None
    else:
        assert found is not None and expected in found


def test_the_shorthand_check_uses_the_classes_the_page_named() -> None:
    page = "`telephony/tracker.py:CallTracker.feed`, then `CallTracker._end` and `ws.onmessage`"
    assert shorthand_problems(page) == []
    made_up = page + ", `CallTracker._no_such_step(...)`"
    [found] = shorthand_problems(made_up)
    assert "CallTracker has no method or attribute _no_such_step" in found
