"""Where things live: rules never read the request, SQL stays in kamusm/storage/, the layers point one way.

The layout (README.md, "Where is X"): kamusm/<domain>.py holds rules (plain functions of db, now and
their inputs), kamusm/storage/ every SQL statement, kamusm/web/ rendering, guards, errors and forms,
kamusm/web/views/ the thin blueprints, kamusm/cli/ the commands; kamusm/card/ and kamusm/helper/ stand
alone. These tests read the source (ast), so a new module is checked the day it is added.
"""
from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "kamusm"
REQUEST_STATE = {"request", "session", "g"}
SQL = re.compile(r"^\s*(SELECT\s.+\sFROM\s|INSERT\s+INTO\s|UPDATE\s+\w+\s+SET\s|DELETE\s+FROM\s|"
                 r"(CREATE|ALTER|DROP)\s+(TABLE|INDEX)\s|PRAGMA\s+\w+|(BEGIN(\s+IMMEDIATE)?|COMMIT|ROLLBACK)\s*$)",
                 re.IGNORECASE | re.DOTALL)


def modules(*parts: str) -> list[Path]:
    return sorted((PACKAGE.joinpath(*parts)).rglob("*.py"))


def rule_modules() -> list[Path]:
    """Everything outside the web layer and the commands: domain rules, storage, the card, the helper."""
    return [path for path in modules() if path.relative_to(PACKAGE).parts[0] not in {"web", "cli"}]


def name(path: Path) -> str:
    return str(path.relative_to(PACKAGE.parent))


def imported_from(tree: ast.AST) -> list[tuple[str, str]]:
    """(module, name) for every `from m import n`, and (m, "") for every `import m`."""
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module:
            found += [(node.module, alias.name) for alias in node.names]
        elif isinstance(node, ast.Import):
            found += [(alias.name, "") for alias in node.names]
    return found


def test_the_layers_exist_where_the_readme_says():
    for folder in ("storage", "web", "web/views", "cli", "card", "helper"):
        assert (PACKAGE / folder / "__init__.py").is_file(), folder
    assert not (PACKAGE / "store.py").exists() and not (PACKAGE / "web.py").exists()


@pytest.mark.parametrize("path", rule_modules(), ids=name)
def test_rules_and_storage_never_read_the_request_or_the_session(path):
    tree = ast.parse(path.read_text())
    reads = [f"{module}.{imported}" for module, imported in imported_from(tree)
             if module == "flask" and imported in REQUEST_STATE]
    reads += [f"flask.{node.attr}" for node in ast.walk(tree) if isinstance(node, ast.Attribute)
              and isinstance(node.value, ast.Name) and node.value.id == "flask" and node.attr in REQUEST_STATE]
    assert not reads, f"{name(path)} reads {reads}: take the value as an argument from the view instead"


@pytest.mark.parametrize("path", rule_modules(), ids=name)
def test_rules_never_import_the_web_layer_or_the_commands(path):
    tree = ast.parse(path.read_text())
    upward = [module for module, _ in imported_from(tree) if module.startswith(("kamusm.web", "kamusm.cli"))]
    upward += [f"kamusm.{imported}" for module, imported in imported_from(tree)
               if module == "kamusm" and imported in {"web", "cli"}]
    assert not upward, f"{name(path)} imports {upward}"


@pytest.mark.parametrize("path", [path for path in modules() if "storage" not in path.parts], ids=name)
def test_sql_appears_only_in_storage(path):
    tree = ast.parse(path.read_text())
    statements = [node.value for node in ast.walk(tree)
                  if isinstance(node, ast.Constant) and isinstance(node.value, str) and SQL.match(node.value)]
    calls = [node.func.attr for node in ast.walk(tree) if isinstance(node, ast.Call)
             and isinstance(node.func, ast.Attribute) and node.func.attr in {"execute", "executemany", "executescript"}]
    assert not statements and not calls, f"{name(path)} holds SQL: {statements or calls}"


@pytest.mark.parametrize("path", modules("storage"), ids=name)
def test_storage_depends_on_nothing_of_ours_but_itself(path):
    ours = [module for module, _ in imported_from(ast.parse(path.read_text()))
            if module.startswith("kamusm") and not module.startswith("kamusm.storage")]
    assert not ours, f"{name(path)} imports {ours}"


@pytest.mark.parametrize("path", modules("web", "views"), ids=name)
def test_views_hold_no_sql_and_no_storage_transaction_of_their_own_making(path):
    """A view may call storage functions and wrap them in storage.write(); it never names a table."""
    tree = ast.parse(path.read_text())
    assert not [node for node in ast.walk(tree) if isinstance(node, ast.Attribute) and node.attr == "conn"], \
        f"{name(path)} reaches into the connection"


def test_the_sql_pattern_catches_what_it_is_for():
    """The check above is only as good as its pattern (a test that cannot fail is a defect)."""
    for statement in ("SELECT * FROM holders WHERE id = ?", "INSERT INTO audit (at) VALUES (?)",
                      "UPDATE codes SET used_at = ?", "DELETE FROM sessions WHERE id = ?", "ROLLBACK",
                      "  select id from cards", "PRAGMA user_version"):
        assert SQL.match(statement), statement
    for text in ("Select your card", "Update your phone number", "Delete my PIN and PUK", "Begin here"):
        assert not SQL.match(text), text
