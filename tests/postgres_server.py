"""A throwaway PostgreSQL (Debian's postgresql package) for the tests that run on both databases.

One cluster per test session in a temporary folder, owned by the postgres system user (the server refuses to run
as root), listening only on a Unix socket there, fsync off; each test gets a database of its own. Under CI=true a
missing server fails; elsewhere it skips, like the redis and card-stack tests.
"""
from __future__ import annotations

import glob
import itertools
import os
import pwd
import shutil
import subprocess
import tempfile
from pathlib import Path

import psycopg
import pytest

PORT = 55432
USER = "kamusm"
_numbers = itertools.count(1)


def _binaries() -> Path:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if not found:
        message = "PostgreSQL is missing (Debian package postgresql; `make system-test-deps` installs it)"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    return Path(found[-1]).parent


def _as_postgres(*command: str) -> None:
    runner = [] if os.geteuid() != 0 else ["runuser", "-u", "postgres", "--"]
    subprocess.run([*runner, *command], check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


class Server:
    def __init__(self) -> None:
        binaries = _binaries()
        self.home = Path(tempfile.mkdtemp(prefix="kamusm-pg-"))
        if os.geteuid() == 0:
            postgres = pwd.getpwnam("postgres")
            os.chown(self.home, postgres.pw_uid, postgres.pw_gid)
        self.pg_ctl = str(binaries / "pg_ctl")
        self._template = ""
        data = str(self.home / "data")
        _as_postgres(str(binaries / "initdb"), "-D", data, "-A", "trust", "-U", USER, "-E", "UTF8", "--no-sync")
        _as_postgres(self.pg_ctl, "-D", data, "-l", str(self.home / "log"), "-w", "-o",
                     f"-k {self.home} -c listen_addresses='' -p {PORT} -c fsync=off -c max_connections=200", "start")

    def url(self, database: str) -> str:
        return f"postgresql://{USER}@/{database}?host={self.home}&port={PORT}"

    def new_database(self, empty: bool = False) -> str:
        """A new database; unless `empty`, with the schema already built (a copy of a migrated template,
        which takes a fraction of running the migrations for every test)."""
        name = f"kamusm_test_{os.getpid()}_{next(_numbers)}"
        template = "template0" if empty else self._schema_template()
        with psycopg.connect(self.url("postgres"), autocommit=True) as admin:
            admin.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template}"')
        return self.url(name)

    def _schema_template(self) -> str:
        if not self._template:
            from kamusm import storage

            name = f"kamusm_schema_{os.getpid()}"
            with psycopg.connect(self.url("postgres"), autocommit=True) as admin:
                admin.execute(f'CREATE DATABASE "{name}"')
            database = storage.connect(self.url(name))
            try:
                storage.migrations.migrate(database)
            finally:
                database.conn.close()
            self._template = name
        return self._template

    def stop(self) -> None:
        _as_postgres(self.pg_ctl, "-D", str(self.home / "data"), "-w", "-m", "immediate", "stop")
        shutil.rmtree(self.home, ignore_errors=True)
