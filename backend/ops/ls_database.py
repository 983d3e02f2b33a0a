"""Where Label Studio keeps its data, for the stack and the tests: SQLite, or PostgreSQL (its production database).

PostgreSQL databases are created and dropped with ``psql`` when it is on PATH, else with the driver in
Label Studio's own virtualenv.
"""
from __future__ import annotations

import os
import shutil
import socket
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def label_studio_binary() -> str:
    candidates = [os.environ.get("LABEL_STUDIO_BIN"), str(ROOT / ".venv-ls" / "bin" / "label-studio"), shutil.which("label-studio")]
    for candidate in candidates:
        if candidate and Path(candidate).exists():
            return candidate
    raise RuntimeError(
        "Label Studio is not installed: run ./dev setup (it creates .venv-ls), or set LABEL_STUDIO_BIN"
    )


#: PostgreSQL's limit on identifiers; database names are also kept to [A-Za-z0-9_] so they never need quoting.
POSTGRES_NAME_MAX = 63


@dataclass(frozen=True)
class LabelStudioDatabase:
    """Where Label Studio keeps its data: SQLite in its data dir (the default), or a PostgreSQL database.

    PostgreSQL is LS's production database. On SQLite, LS's own bulk writes (a prediction import while an
    old version is deleted) lock the whole file and annotators' submissions fail with "database is locked".
    """

    kind: str = "sqlite"  # "sqlite" or "postgresql"
    host: str = "127.0.0.1"
    port: int = 5432
    user: str = "postgres"
    name: str = ""
    password: str = field(default="", repr=False)

    def __post_init__(self):
        if self.kind not in ("sqlite", "postgresql"):
            raise ValueError(f"unknown Label Studio database kind {self.kind!r}: use 'sqlite' or 'postgresql'")
        if self.kind == "postgresql" and not (
            self.name and len(self.name) <= POSTGRES_NAME_MAX and self.name.replace("_", "").isalnum()
            and self.name.isascii() and not self.name[0].isdigit()
        ):
            raise ValueError(
                f"PostgreSQL database name {self.name!r}: use 1-{POSTGRES_NAME_MAX} ASCII letters, digits and "
                "underscores, not starting with a digit"
            )

    @classmethod
    def sqlite(cls) -> "LabelStudioDatabase":
        return cls()

    @classmethod
    def postgres(
        cls, name: str, host: str = "127.0.0.1", port: int = 5432, user: str = "postgres", password: str = ""
    ) -> "LabelStudioDatabase":
        return cls("postgresql", host, port, user, name, password)

    @property
    def is_postgres(self) -> bool:
        return self.kind == "postgresql"

    def describe(self) -> str:
        return f"PostgreSQL database {self.name} at {self.host}:{self.port}" if self.is_postgres else "SQLite"

    def label_studio_env(self) -> dict[str, str]:
        """The settings LS 1.23 reads to pick its database (label_studio/core/settings/base.py)."""
        if not self.is_postgres:
            # Explicit, so a DJANGO_DB=default left in a developer's shell cannot move LS to PostgreSQL.
            return {"DJANGO_DB": "sqlite"}
        return {
            "DJANGO_DB": "default",
            "POSTGRE_NAME": self.name,
            "POSTGRE_USER": self.user,
            "POSTGRE_PASSWORD": self.password,
            "POSTGRE_HOST": self.host,
            "POSTGRE_PORT": str(self.port),
        }


class PostgresError(RuntimeError):
    pass


#: The fallback client when no psql is on PATH: the driver Label Studio's own venv ships for Django
#: (psycopg 3 in LS 1.23; psycopg2 in older releases).
_PYTHON_CLIENT_SCRIPT = """
import sys
host, port, user, timeout, sql = sys.argv[1:]
# The password, if any, comes from PGPASSWORD, which libpq reads.
options = dict(host=host, port=int(port), user=user, dbname="postgres", connect_timeout=int(timeout))
try:
    import psycopg
    connection = psycopg.connect(**options, autocommit=True)
except ImportError:
    import psycopg2
    connection = psycopg2.connect(**options)
    connection.autocommit = True  # CREATE/DROP DATABASE cannot run inside a transaction
try:
    cursor = connection.cursor()
    cursor.execute(sql)
    if cursor.description:
        for row in cursor.fetchall():
            print("|".join("" if v is None else str(v) for v in row))
finally:
    connection.close()
"""


def label_studio_python() -> str:
    """The Python interpreter of Label Studio's venv (next to its ``label-studio`` executable)."""
    python = Path(label_studio_binary()).parent / "python"
    if not python.exists():
        raise RuntimeError(f"no Python next to {label_studio_binary()}")
    return str(python)


def postgres_sql(database: LabelStudioDatabase, sql: str, timeout_s: float = 10.0) -> str:
    """Run one statement in the server's maintenance database (``postgres``); returns its rows as text.

    Uses ``psql`` when it is on PATH, else the PostgreSQL driver in Label Studio's venv. Statements built here only
    interpolate validated database names (see ``LabelStudioDatabase``), never free text.
    """
    connect_timeout = max(1, int(timeout_s))
    env = {**os.environ, "PGCONNECT_TIMEOUT": str(connect_timeout)}
    env.pop("PGPASSWORD", None)
    if database.password:
        env["PGPASSWORD"] = database.password
    psql = shutil.which("psql")
    if psql:
        argv = [
            psql, "--no-psqlrc", "--no-password", "--quiet", "--tuples-only", "--no-align", "-v", "ON_ERROR_STOP=1",
            "-h", database.host, "-p", str(database.port), "-U", database.user, "-d", "postgres", "-c", sql,
        ]
    else:
        argv = [
            label_studio_python(), "-c", _PYTHON_CLIENT_SCRIPT,
            database.host, str(database.port), database.user, str(connect_timeout), sql,
        ]
    try:
        result = subprocess.run(argv, capture_output=True, text=True, timeout=timeout_s, env=env)
    except subprocess.TimeoutExpired as exc:
        raise PostgresError(f"{sql!r} on {database.host}:{database.port} took over {timeout_s:.0f} s") from exc
    if result.returncode != 0:
        message = (result.stderr.strip().splitlines() or [f"exit code {result.returncode}"])[-1]
        raise PostgresError(f"{sql!r} on {database.host}:{database.port} failed: {message}")
    return result.stdout.strip()


def postgres_unavailable_reason(database: LabelStudioDatabase, timeout_s: float = 3.0) -> str | None:
    """None when a PostgreSQL answers at the database's host and port (a TCP connect, then ``select 1``
    as its user); otherwise why not, in a few words."""
    try:
        with socket.create_connection((database.host, database.port), timeout=timeout_s):
            pass
    except OSError as exc:
        return f"nothing listens on {database.host}:{database.port} ({exc.strerror or exc})"
    try:
        answer = postgres_sql(database, "select 1", timeout_s)
    except (PostgresError, RuntimeError, OSError) as exc:
        return str(exc)
    return None if answer == "1" else f"select 1 answered {answer!r}"


def postgres_answers(database: LabelStudioDatabase, timeout_s: float = 3.0) -> bool:
    return postgres_unavailable_reason(database, timeout_s) is None


def postgres_database_exists(database: LabelStudioDatabase) -> bool:
    return postgres_sql(database, f"select 1 from pg_database where datname = '{database.name}'") == "1"


def create_postgres_database(database: LabelStudioDatabase) -> bool:
    """Create the database unless it exists; True when this call created it."""
    if postgres_database_exists(database):
        return False
    try:
        postgres_sql(database, f'create database "{database.name}"')
    except PostgresError as exc:
        if "already exists" in str(exc):  # another process created it in between
            return False
        raise
    return True


def drop_postgres_database(database: LabelStudioDatabase) -> None:
    """Drop the database if it exists, closing any connection left to it (PostgreSQL 13+)."""
    try:
        postgres_sql(database, f'drop database if exists "{database.name}" with (force)', timeout_s=60)
    except PostgresError as exc:
        if "syntax error" not in str(exc):
            raise
        postgres_sql(database, f'drop database if exists "{database.name}"', timeout_s=60)  # PostgreSQL < 13


