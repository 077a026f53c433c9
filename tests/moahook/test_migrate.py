"""`moahook migrate [--check]`: the migrations on their own, and one clear line on failure."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from moahook.cli import main
from storage.db import head_revision


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    for name in ("MOAHOOK_DATABASE_URL", "MOAHOOK_DATA_DIR"):
        monkeypatch.delenv(name, raising=False)
    return tmp_path


def test_migrate_check_then_migrate_then_check(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    head = head_revision()
    assert main(["migrate", "--check"]) == 1
    assert f"{head} is due" in capsys.readouterr().out
    assert not (workdir / "data" / "moahook.db").exists()  # checking created nothing
    assert main(["migrate"]) == 0
    assert f"migrated from revision (none) to {head}" in capsys.readouterr().out
    assert main(["migrate", "--check"]) == 0
    assert f"current (revision {head})" in capsys.readouterr().out
    assert main(["migrate"]) == 0
    assert "already current" in capsys.readouterr().out


def test_a_failing_migration_is_one_line_not_a_traceback(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # A database stamped at 0001 whose tables are missing: the next revision fails.
    (workdir / "data").mkdir()
    with sqlite3.connect(workdir / "data" / "moahook.db") as conn:
        conn.execute("CREATE TABLE alembic_version (version_num VARCHAR(32) PRIMARY KEY)")
        conn.execute("INSERT INTO alembic_version VALUES ('0001')")
    assert main(["migrate"]) == 2
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1, captured.err
    assert lines[0].startswith(f"moahook: migrating the database to revision {head_revision()}")
    assert "no such table" in lines[0]  # the driver's own words, one line
    assert "Traceback" not in captured.err + captured.out


def test_a_database_refusing_connections_is_one_line(
    workdir: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # Nothing listens on port 1.
    monkeypatch.setenv("MOAHOOK_DATABASE_URL", "postgresql+asyncpg://moa:hunter2pw@127.0.0.1:1/x")
    assert main(["migrate", "--check"]) == 2
    captured = capsys.readouterr()
    assert captured.err.strip().splitlines() == [
        "moahook: cannot connect to the database postgresql+asyncpg://moa:***@127.0.0.1:1/x: "
        "connection refused (is the database server running and listening there?)"
    ]
    assert "hunter2pw" not in captured.err


def test_alembic_current_works_from_the_project_root(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import os
    import subprocess
    import sys

    assert main(["migrate"]) == 0
    root = Path(__file__).resolve().parents[2]
    env = {k: v for k, v in os.environ.items() if not k.startswith("MOAHOOK_")}
    env["MOAHOOK_DATA_DIR"] = str(workdir / "data")
    done = subprocess.run(
        [sys.executable, "-m", "alembic", "current"], cwd=root, env=env,
        capture_output=True, text=True, timeout=60, check=False,
    )
    assert done.returncode == 0, done.stderr
    assert f"{head_revision()} (head)" in done.stdout
