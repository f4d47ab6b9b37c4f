"""Fixtures of the end-to-end suite. The machinery lives in ogx_harness.py; the mock upstream in
mock_openai.py.

  mock_upstream / module_mock_upstream   a started MockOpenAI (stopped at teardown)
  ogx_server / module_ogx_server         start(config_text, env=, plugins_dir=, args=, ...)
                                         -> OgxServer(.url, .proc, .output(), .client(), .stop())
  run_ogx                                run(args, env=, plugins_dir=) -> OgxResult for commands
                                         that exit (returncode, stdout, stderr, output)
  ogx_home                               the HOME every ogx process gets (one per session, so
                                         the compiled-plugin cache is shared)
  postgres                               a private PostgreSQL cluster on 127.0.0.1 for the
                                         session (postgres_server.py): .port, .new_database()
  redis                                  a private redis-server on 127.0.0.1 for the module
                                         (redis_server.py): .port, .command(...)
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Iterator

import pytest

from mock_openai import MockOpenAI
from ogx_harness import OgxLauncher, run_ogx as _run_ogx
from postgres_server import PostgresServer, PostgresUnavailable
from redis_server import RedisServer, RedisUnavailable


@pytest.fixture(scope="session")
def ogx_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    home = tmp_path_factory.mktemp("home")
    return home


@pytest.fixture
def mock_upstream() -> Iterator[MockOpenAI]:
    with MockOpenAI() as mock:
        yield mock


@pytest.fixture(scope="module")
def module_mock_upstream() -> Iterator[MockOpenAI]:
    with MockOpenAI() as mock:
        yield mock


@pytest.fixture
def ogx_server(tmp_path: Path, ogx_home: Path):
    launcher = OgxLauncher(tmp_path, ogx_home)
    yield launcher.start
    launcher.stop_all()


@pytest.fixture(scope="module")
def module_ogx_server(tmp_path_factory: pytest.TempPathFactory, ogx_home: Path):
    launcher = OgxLauncher(tmp_path_factory.mktemp("ogx"), ogx_home)
    yield launcher.start
    launcher.stop_all()


@pytest.fixture
def run_ogx(ogx_home: Path):
    def run(args, env=None, **kwargs):
        return _run_ogx(args, ogx_home, env=env, **kwargs)
    return run


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer]:
    """Skipped where PostgreSQL is not installed, except under CI, where that is a failure."""
    try:
        server = PostgresServer()
    except PostgresUnavailable as error:
        if os.environ.get("CI"):
            pytest.fail(f"CI is set: {error}")
        pytest.skip(str(error))
    with server:
        yield server


@pytest.fixture(scope="module")
def redis() -> Iterator[RedisServer]:
    """Skipped where redis-server is not installed, except under CI, where that is a failure."""
    try:
        server = RedisServer()
    except RedisUnavailable as error:
        if os.environ.get("CI"):
            pytest.fail(f"CI is set: {error}")
        pytest.skip(str(error))
    with server:
        yield server
