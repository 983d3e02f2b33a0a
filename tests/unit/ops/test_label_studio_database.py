"""Label Studio's database choice: the settings it gets, and databases made on the machine's real PostgreSQL."""
from __future__ import annotations

import shutil
import socket
import subprocess
import uuid

import pytest

from backend.ops import ls_database, processes, stack
from backend.ops.ls_database import LabelStudioDatabase, PostgresError

LOCAL_POSTGRES = LabelStudioDatabase.postgres("postgres")


def closed_port() -> int:
    return processes.free_port()  # bound, then released: nothing listens on it


@pytest.fixture
def scratch_database():
    """A uniquely named database on the machine's PostgreSQL, dropped afterwards whatever happens."""
    reason = ls_database.postgres_unavailable_reason(LOCAL_POSTGRES)
    if reason is not None:
        pytest.skip(f"no PostgreSQL on 127.0.0.1:5432: {reason}")
    database = LabelStudioDatabase.postgres(f"ls_unit_{uuid.uuid4().hex[:12]}")
    yield database
    ls_database.drop_postgres_database(database)


def test_sqlite_is_the_default_and_pins_label_studio_to_sqlite():
    database = LabelStudioDatabase()
    assert database == LabelStudioDatabase.sqlite() and not database.is_postgres
    # Explicit, so a DJANGO_DB=default exported in a developer's shell cannot move LS off SQLite.
    assert database.label_studio_env() == {"DJANGO_DB": "sqlite"}
    assert database.describe() == "SQLite"


def test_postgresql_gives_label_studio_its_database_settings():
    database = LabelStudioDatabase.postgres("label_studio_dev", host="db.internal", port=6543, user="ls", password="s3cret")
    assert database.label_studio_env() == {
        "DJANGO_DB": "default",
        "POSTGRE_NAME": "label_studio_dev",
        "POSTGRE_USER": "ls",
        "POSTGRE_PASSWORD": "s3cret",
        "POSTGRE_HOST": "db.internal",
        "POSTGRE_PORT": "6543",
    }
    assert "s3cret" not in repr(database)


def test_the_local_postgresql_defaults_are_the_machines_trust_setup():
    env = LabelStudioDatabase.postgres("x").label_studio_env()
    assert (env["POSTGRE_HOST"], env["POSTGRE_PORT"], env["POSTGRE_USER"], env["POSTGRE_PASSWORD"]) == (
        "127.0.0.1", "5432", "postgres", ""
    )


def test_the_database_description_is_frozen():
    database = LabelStudioDatabase.postgres("a")
    with pytest.raises(AttributeError):
        database.name = "b"


@pytest.mark.parametrize("name", ["", "1abc", "a-b", "a b", 'a"; drop database postgres; --', "é", "x" * 64])
def test_database_names_that_would_need_quoting_are_refused(name):
    with pytest.raises(ValueError):
        LabelStudioDatabase.postgres(name)


def test_an_unknown_kind_is_refused():
    with pytest.raises(ValueError):
        LabelStudioDatabase("mysql")


def test_nothing_listening_is_reported_fast_and_not_as_an_answer():
    database = LabelStudioDatabase.postgres("anything", port=closed_port())
    reason = ls_database.postgres_unavailable_reason(database, timeout_s=1)
    assert reason and "nothing listens" in reason
    assert not ls_database.postgres_answers(database, timeout_s=1)


def test_a_listener_that_is_not_postgresql_is_not_an_answer():
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        database = LabelStudioDatabase.postgres("anything", port=server.getsockname()[1])
        # Accepts the TCP connect, then never speaks the protocol: select 1 must time out, not hang.
        assert not ls_database.postgres_answers(database, timeout_s=2)


def test_the_machines_postgresql_answers(scratch_database):
    assert ls_database.postgres_answers(scratch_database)


def test_a_database_is_created_once_and_dropped(scratch_database):
    assert not ls_database.postgres_database_exists(scratch_database)
    assert ls_database.create_postgres_database(scratch_database) is True
    assert ls_database.postgres_database_exists(scratch_database)
    assert ls_database.create_postgres_database(scratch_database) is False  # exists: left as it is
    ls_database.drop_postgres_database(scratch_database)
    assert not ls_database.postgres_database_exists(scratch_database)
    ls_database.drop_postgres_database(scratch_database)  # dropping a missing one is fine


def test_a_database_can_be_dropped_while_a_client_still_holds_a_connection(scratch_database):
    psql = shutil.which("psql")
    if psql is None:
        pytest.skip("needs psql to hold a connection open")
    ls_database.create_postgres_database(scratch_database)
    holder = subprocess.Popen(
        [psql, "-X", "-h", scratch_database.host, "-U", scratch_database.user, "-d", scratch_database.name,
         "-c", "select pg_sleep(30)"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    try:
        check = f"select count(*) from pg_stat_activity where datname = '{scratch_database.name}'"
        processes.wait_until(lambda: ls_database.postgres_sql(scratch_database, check) != "0", "a held connection", 10)
        ls_database.drop_postgres_database(scratch_database)  # a test session's LS that died uncleanly must not block it
        assert not ls_database.postgres_database_exists(scratch_database)
    finally:
        holder.kill()
        holder.wait()


def test_without_psql_the_driver_in_label_studios_venv_does_the_same(scratch_database, monkeypatch):
    try:
        ls_database.label_studio_python()
    except RuntimeError as exc:
        pytest.skip(str(exc))
    real_which = shutil.which
    monkeypatch.setattr(shutil, "which", lambda name, *a, **k: None if name == "psql" else real_which(name, *a, **k))
    assert ls_database.postgres_answers(scratch_database)
    assert ls_database.create_postgres_database(scratch_database) is True
    assert ls_database.postgres_database_exists(scratch_database)
    ls_database.drop_postgres_database(scratch_database)
    assert not ls_database.postgres_database_exists(scratch_database)


def test_a_failing_statement_raises_with_the_servers_message(scratch_database):
    with pytest.raises(PostgresError, match="does not exist"):
        ls_database.postgres_sql(scratch_database, f'drop database "{scratch_database.name}"')


def test_auto_picks_postgresql_when_it_answers_and_sqlite_otherwise(scratch_database, capsys):
    assert stack.choose_dev_database("auto", scratch_database) == scratch_database
    assert stack.choose_dev_database("sqlite", scratch_database) == LabelStudioDatabase.sqlite()
    absent = LabelStudioDatabase.postgres("label_studio_dev", port=closed_port())
    assert stack.choose_dev_database("auto", absent) == LabelStudioDatabase.sqlite()
    (line,) = capsys.readouterr().out.strip().splitlines()
    assert "SQLite" in line and str(absent.port) in line
    with pytest.raises(SystemExit, match="no usable PostgreSQL"):
        stack.choose_dev_database("postgres", absent)


def test_the_quick_start_offers_the_database_choice(monkeypatch):
    seen = {}
    monkeypatch.setattr(stack, "up", lambda args: seen.update(vars(args)))
    monkeypatch.setattr("sys.argv", ["stack", "up"])
    stack.main()
    assert seen["database"] == "auto"
    monkeypatch.setattr("sys.argv", ["stack", "up", "--database", "sqlite"])
    stack.main()
    assert seen["database"] == "sqlite"
    monkeypatch.setattr("sys.argv", ["stack", "up", "--database", "mysql"])
    with pytest.raises(SystemExit):
        stack.main()
