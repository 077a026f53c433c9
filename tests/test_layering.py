"""The packages' import layering: kis ← storage ← (webhook_server, bot) ← moahook.

`kis/` knows no users, `storage/` no HTTP or Telegram, and the web side never imports
the bot (nor the bot the web side): what both need lives below them.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
# What each package may import among the project's packages (besides itself).
ALLOWED = {
    "kis": set(),
    "storage": {"kis"},
    "webhook_server": {"kis", "storage"},
    "bot": {"kis", "storage"},
    "moahook": {"kis", "storage", "webhook_server", "bot"},
}


def _imported_packages(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names & set(ALLOWED)


@pytest.mark.parametrize("package", sorted(ALLOWED))
def test_package_imports_only_what_is_below_it(package: str) -> None:
    wrong: list[str] = []
    for path in sorted((ROOT / package).rglob("*.py")):
        extra = _imported_packages(path) - ALLOWED[package] - {package}
        if extra:
            wrong.append(f"{path.relative_to(ROOT)} imports {sorted(extra)}")
    assert not wrong, "\n".join(wrong)
