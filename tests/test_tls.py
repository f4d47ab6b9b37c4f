"""HTTPS: ogx serves TLS only when the config names a certificate and key, and requires client
certificates when it also names a CA (`server.tls_cafile`). Certificates are made with the
`openssl` command for each test run."""
from __future__ import annotations

import ssl
import subprocess
from pathlib import Path

import pytest
import requests
from openai import DefaultHttpxClient, OpenAI

from mock_openai import answer_for
from ogx_harness import vllm_config


def openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


@pytest.fixture(scope="module")
def pki(tmp_path_factory) -> Path:
    """A CA, a server certificate for 127.0.0.1 signed by it, and a client certificate."""
    d = tmp_path_factory.mktemp("pki")
    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.pem",
            "-days", "1", "-subj", "/CN=ogx test CA", cwd=d)
    for name, extension in (("server", "subjectAltName=IP:127.0.0.1,DNS:localhost"),
                            ("client", "extendedKeyUsage=clientAuth")):
        openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", f"{name}.key", "-out",
                f"{name}.csr", "-subj", f"/CN=ogx test {name}", cwd=d)
        (d / f"{name}.ext").write_text(extension + "\n")
        openssl("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
                "-CAcreateserial", "-out", f"{name}.pem", "-days", "1", "-extfile", f"{name}.ext",
                cwd=d)
    return d


def tls_config(upstream_url: str, pki: Path, *, client_ca: bool) -> str:
    server = (f"server:\n  tls_certfile: {pki / 'server.pem'}\n  tls_keyfile: {pki / 'server.key'}\n")
    if client_ca:
        server += f"  tls_cafile: {pki / 'ca.pem'}\n"
    return vllm_config(upstream_url, distro_name="tls-test", more_sections=server)


def test_the_config_turns_on_https(ogx_server, mock_upstream, pki):
    server = ogx_server(tls_config(mock_upstream.url + "/v1", pki, client_ca=False),
                        tls_ca=pki / "ca.pem")

    assert server.url.startswith("https://")
    assert "Listening on https://" in server.output()
    assert server.get("/v1/health").json() == {"status": "OK"}
    client = OpenAI(base_url=server.url + "/v1", api_key="ogx", max_retries=0,
                    http_client=DefaultHttpxClient(
                        verify=ssl.create_default_context(cafile=str(pki / "ca.pem"))))
    answer = client.chat.completions.create(
        model="vllm/my-model", messages=[{"role": "user", "content": "over TLS"}])
    assert answer.choices[0].message.content == answer_for("over TLS")

    plain = server.url.replace("https://", "http://")
    with pytest.raises(requests.RequestException):
        requests.get(plain + "/v1/health", timeout=5)


def test_a_client_ca_requires_client_certificates(ogx_server, mock_upstream, pki):
    client_cert = (str(pki / "client.pem"), str(pki / "client.key"))
    server = ogx_server(tls_config(mock_upstream.url + "/v1", pki, client_ca=True),
                        tls_ca=pki / "ca.pem", health_cert=client_cert)

    with pytest.raises(requests.exceptions.SSLError):
        server.get("/v1/health")
    assert server.get("/v1/health", cert=client_cert).json() == {"status": "OK"}
    assert server.get("/v1/models", cert=client_cert).json()["data"][0]["id"] == "vllm/my-model"
