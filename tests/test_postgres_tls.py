"""`ssl_mode` against a PostgreSQL server that accepts TCP clients only over TLS: the default
(`prefer`, and `sql_postgres`, which has no TLS settings) encrypts; `verify-full` with the CA
that signed the server's certificate connects; the wrong CA, or `disable`, stops start-up with
a message that says why."""

from __future__ import annotations

import pytest

from ogx_harness import free_port
from postgres_server import PostgresServer, PostgresUnavailable
from test_chat_history import ask, stored
from test_postgres_storage import PASSWORD_ENV, config, postgres_storage_yaml
from test_tls import pki  # noqa: F401 (the CA and certificates fixture)


@pytest.fixture(scope="module")
def tls_postgres(pki):  # noqa: F811
    try:
        server = PostgresServer(tls=(pki / "server.pem", pki / "server.key"))
    except PostgresUnavailable as error:
        pytest.skip(str(error))
    with server:
        yield server


def storage(pg: PostgresServer, kv_tls: str) -> str:
    return postgres_storage_yaml(pg.port, pg.new_database()).replace("ssl_mode: disable", kv_tls)


def test_prefer_and_verify_full_connect_over_tls(ogx_server, mock_upstream, tls_postgres, pki):  # noqa: F811
    for kv_tls in ("ssl_mode: prefer", f"ssl_mode: verify-full, ca_cert_path: {pki / 'ca.pem'}"):
        server = ogx_server(config(mock_upstream.base_url, storage(tls_postgres, kv_tls)),
                            env=PASSWORD_ENV)
        answer = ask(server.client(), "Over TLS to the database.")
        assert stored(server.client(), answer.id).id == answer.id
        server.stop()
        assert server.proc.returncode == 0, server.output()


@pytest.mark.parametrize("kv_tls, reason", [
    ("ssl_mode: disable", "no encryption"),
    ("ssl_mode: verify-full, ca_cert_path: {pki}/client.pem", "certificate"),
])
def test_no_tls_or_the_wrong_ca_stops_start_up(run_ogx, mock_upstream, tls_postgres, pki,  # noqa: F811
                                               tmp_path, kv_tls, reason):
    path = tmp_path / "config.yaml"
    path.write_text(config(mock_upstream.base_url,
                           storage(tls_postgres, kv_tls.format(pki=pki))))

    result = run_ogx(["run", "--port", free_port(), path], env=PASSWORD_ENV)

    assert result.returncode != 0
    assert "storage.backends.kv_default: cannot connect to PostgreSQL" in result.output, result.output
    assert reason in result.output, result.output
