"""`remote::oci` end to end: ogx signs every request to OCI Generative AI with the API key of
an OCI config-file profile, in the host; the plugin never holds the key. The upstream is
tests/mock_oci.py, which verifies each signature with `cryptography` against the public key
and, where the `oci` SDK is installed, against the SDK's own signer. Also: a wrong key is the
upstream's 401, a missing key file or profile an error naming the file and the fix, and
nothing secret reaches the log or an error body."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from mock_oci import MODELS_PATH, ApiKey, MockOci, answer_for
from ogx_harness import error_message_of, free_port, wait_until

COMPARTMENT = "ocid1.compartment.oc1..aaaatest"
MODEL = "meta.llama-3.3-70b-instruct"
QUESTION = "Where is the key?"
# Registered in the config, so that it is served even when the listing fails.
REGISTERED = "registered-llama"


def oci_config_file(directory: Path, key: ApiKey, profile: str = "DEFAULT",
                    key_file: Path | None = None) -> Path:
    path = directory / "oci_config"
    path.write_text(f"[{profile}]\nuser={key.user}\nfingerprint={key.fingerprint}\n"
                    f"tenancy={key.tenancy}\nregion=us-chicago-1\n"
                    f"key_file={key_file or key.key_file}\n")
    return path


def run_config(mock: MockOci, config_file: Path, profile: str = "DEFAULT") -> str:
    return f"""
version: 2
distro_name: oci-test
apis: [inference, models]
providers:
  inference:
  - provider_id: oci
    provider_type: remote::oci
    config:
      oci_auth_type: config_file
      oci_config_file_path: {config_file}
      oci_config_profile: {profile}
      oci_region: us-chicago-1
      oci_compartment_id: {COMPARTMENT}
      base_url: {mock.base_url}
registered_resources:
  models:
  - model_id: {REGISTERED}
    provider_id: oci
    provider_model_id: {MODEL}
"""


@pytest.fixture
def api_key(tmp_path: Path) -> ApiKey:
    return ApiKey.create(tmp_path)


@pytest.fixture
def mock(api_key: ApiKey):
    with MockOci(api_key, COMPARTMENT) as server:
        yield server


def registered_id(server) -> str:
    ids = [m["id"] for m in server.get("/v1/models").json()["data"]]
    return next(i for i in ids if i.endswith(REGISTERED))


def chat(server, stream: bool = False, model: str | None = None):
    return server.post("/v1/chat/completions", json={
        "model": model or registered_id(server), "stream": stream,
        "messages": [{"role": "user", "content": QUESTION}]})


def assert_nothing_secret(text: str, key: ApiKey, mock: MockOci) -> None:
    assert "PRIVATE KEY" not in text
    body = key.pem_body()
    for start in range(0, len(body) - 32, 97):
        assert body[start:start + 32] not in text
    assert "Signature version" not in text
    for seen in mock.requests:
        authorization = seen.headers.get("authorization", "")
        signature = authorization.rpartition('signature="')[2].rstrip('"')
        if signature:
            assert signature[:24] not in text


def test_listing_and_chat_are_signed_in_the_host(ogx_server, mock, api_key, tmp_path):
    config_file = oci_config_file(tmp_path, api_key)
    server = ogx_server(run_config(mock, config_file))

    def oci_ids():
        listed = server.get("/v1/models").json()["data"]
        return sorted(m["id"] for m in listed if m["id"].startswith("oci/"))

    listed = {f"oci/{MODEL}", "oci/xai.grok-4"}
    ids = wait_until(lambda: listed <= set(oci_ids()) and oci_ids(), timeout=60,
                     what="the models of OCI's ListModels")
    # OGX's filter: chat-capable, not fine-tuned, neither deprecated nor retired, one per name.
    for skipped in ("cohere.embed-v4.0", "cohere.command-r-16k", "ft-model"):
        assert f"oci/{skipped}" not in ids, ids
    assert len([i for i in ids if i == f"oci/{MODEL}"]) == 1, ids

    answer = chat(server, model=f"oci/{MODEL}")
    assert answer.status_code == 200, answer.text
    assert answer.json()["choices"][0]["message"]["content"] == answer_for(QUESTION)

    streamed = chat(server, stream=True, model=f"oci/{MODEL}")
    assert streamed.status_code == 200, streamed.text
    pieces = []
    for line in streamed.text.splitlines():
        if line.startswith("data: ") and line != "data: [DONE]":
            delta = json.loads(line[6:])["choices"][0]["delta"] if \
                json.loads(line[6:]).get("choices") else {}
            pieces.append(delta.get("content") or "")
    assert "".join(pieces) == answer_for(QUESTION)

    seen = mock.requests
    assert [s.method for s in seen].count("POST") == 2
    assert any(s.path.startswith(MODELS_PATH) for s in seen)
    for request in seen:
        assert request.verified, (request.path, request.problem)
    posts = [s for s in seen if s.method == "POST"]
    assert all(s.headers["compartmentid"] == COMPARTMENT for s in posts)
    assert all(s.json["model"] == MODEL for s in posts)
    try:
        import oci  # noqa: F401
        assert all(s.sdk_checked for s in seen), "the oci SDK's signer checked every request"
    except ImportError:
        pass
    assert_nothing_secret(server.output(), api_key, mock)


def test_a_wrong_key_is_the_upstreams_401(ogx_server, mock, api_key, tmp_path):
    other = ApiKey.create(tmp_path, "other_key")
    config_file = oci_config_file(tmp_path, api_key, key_file=other.key_file)
    # OGX's variables instead of the config keys, and ogx's OCI_GENAI_BASE_URL.
    text = "\n".join(line for line in run_config(mock, config_file).splitlines()
                     if "oci_compartment_id" not in line and "base_url" not in line
                     and "oci_config_file_path" not in line)
    server = ogx_server(text, env={"OCI_COMPARTMENT_OCID": COMPARTMENT,
                                   "OCI_CONFIG_FILE_PATH": str(config_file),
                                   "OCI_GENAI_BASE_URL": mock.base_url})

    answer = chat(server)
    assert answer.status_code == 401, answer.text
    message = error_message_of(answer)
    assert "NotAuthenticated" in message or "authentication" in message.lower(), message
    assert mock.requests and not mock.requests[-1].verified
    assert mock.requests[-1].problem == "signature does not verify"
    assert_nothing_secret(server.output() + answer.text, other, mock)


@pytest.mark.parametrize("broken", ["key_file", "profile", "config_file"])
def test_a_missing_key_file_or_profile_names_the_file_and_the_fix(
        broken, ogx_server, mock, api_key, tmp_path):
    config_file = oci_config_file(tmp_path, api_key)
    profile = "DEFAULT"
    expected: tuple[str, ...]
    if broken == "key_file":
        missing = tmp_path / "nowhere" / "key.pem"
        config_file = oci_config_file(tmp_path, api_key, key_file=missing)
        expected = (str(missing), "check the path")
    elif broken == "profile":
        profile = "TEAM"
        expected = (str(config_file), "[TEAM]", "oci_config_profile")
    else:
        config_file = tmp_path / "no_such_config"
        expected = (str(config_file), "oci_config_file_path")
    server = ogx_server(run_config(mock, config_file, profile))

    answer = chat(server)
    assert answer.status_code == 500, answer.text
    message = error_message_of(answer)
    for part in expected:
        assert part in message, message
    # Nothing was sent unsigned: the mock saw no request at all.
    assert mock.requests == []
    assert_nothing_secret(server.output() + answer.text, api_key, mock)


def test_the_instance_principal_is_refused_naming_the_alternative(ogx_server, mock, api_key,
                                                                   tmp_path):
    config_file = oci_config_file(tmp_path, api_key)
    text = run_config(mock, config_file).replace("oci_auth_type: config_file",
                                                 "oci_auth_type: instance_principal")
    server = ogx_server(text)
    answer = chat(server)
    assert answer.status_code == 500, answer.text
    message = error_message_of(answer)
    assert "instance principal" in message and "config_file" in message, message
    assert mock.requests == []


def test_a_missing_compartment_stops_start_up_with_ogx_message(run_ogx, mock, api_key,
                                                              tmp_path):
    config_file = oci_config_file(tmp_path, api_key)
    text = "\n".join(line for line in run_config(mock, config_file).splitlines()
                     if "oci_compartment_id" not in line)
    path = tmp_path / "run.yaml"
    path.write_text(text)
    result = run_ogx(["run", "--port", free_port(), str(path)], timeout=120)
    assert result.returncode != 0
    assert "OCI_COMPARTMENT_OCID is a required parameter" in result.output, result.output
