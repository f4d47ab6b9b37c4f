"""Self-tests of the mock Bedrock: what it accepts and refuses must match what the real service
accepts and refuses, or the plugin's end-to-end tests prove nothing."""

from __future__ import annotations

import json

import pytest
import requests
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from mock_bedrock import (MSG_BAD_SIGNATURE, MSG_EXPIRED_BEARER, MSG_EXPIRED_TOKEN,
                          MSG_INVALID_KEY, MSG_WRONG_REGION_KEY, REASONING_TEXT, MockBedrock,
                          answer_for)

AKID = "AKIDMOCKSELFTEST0001"
SECRET = "mock/self/test/secret/key/0000000000000"
REGION = "us-west-2"
CHAT = "/openai/v1/chat/completions"
BODY = json.dumps({"model": "openai.gpt-oss-20b-1:0",
                   "messages": [{"role": "user", "content": "Which planet do humans live on?"}]})


@pytest.fixture
def mock():
    with MockBedrock(region=REGION) as m:
        m.add_credentials(AKID, SECRET)
        yield m


def signed(mock: MockBedrock, path: str = CHAT, body: str = BODY, method: str = "POST",
           service: str = "bedrock", region: str = REGION, akid: str = AKID,
           secret: str = SECRET, token: str | None = None) -> AWSRequest:
    """A request signed by botocore exactly as OGX signs it (host + content-type)."""
    headers = {"Content-Type": "application/json"} if body else {}
    request = AWSRequest(method=method, url=mock.url + path, data=body.encode(), headers=headers)
    SigV4Auth(Credentials(akid, secret, token), service, region).add_auth(request)
    return request


def send(request: AWSRequest, body: bytes | None = None) -> requests.Response:
    return requests.request(request.method, request.url, headers=dict(request.headers.items()),
                            data=request.body if body is None else body, timeout=10)


def test_a_botocore_signed_request_verifies(mock):
    response = send(signed(mock))
    assert response.status_code == 200, response.text
    assert response.json()["choices"][0]["message"]["content"] == \
        answer_for("Which planet do humans live on?")
    seen = mock.last_chat_request()
    assert (seen.auth, seen.access_key_id, seen.scope_region, seen.scope_service) == \
        ("sigv4", AKID, REGION, "bedrock")
    assert seen.signed_headers == ["content-type", "host", "x-amz-date"]
    assert seen.host == f"127.0.0.1:{mock.port}"


def test_one_byte_changed_in_the_body_fails(mock):
    request = signed(mock)
    tampered = request.body.replace(b"planet", b"planeT")
    response = send(request, tampered)
    assert response.status_code == 403
    assert response.json()["message"] == MSG_BAD_SIGNATURE
    assert "signature mismatch" in mock.last_chat_request().rejection


def test_signing_for_bedrock_runtime_instead_of_bedrock_fails(mock):
    response = send(signed(mock, service="bedrock-runtime"))
    assert response.status_code == 403
    assert response.json()["message"] == MSG_BAD_SIGNATURE
    assert "bedrock-runtime" in mock.last_chat_request().rejection


def test_a_scope_for_another_region_fails(mock):
    response = send(signed(mock, region="us-east-2"))
    assert response.status_code == 403
    assert "region" in mock.last_chat_request().rejection


def test_a_wrong_secret_fails(mock):
    response = send(signed(mock, secret="not-the-secret"))
    assert response.status_code == 403
    assert response.json()["message"] == MSG_BAD_SIGNATURE


def test_an_unknown_access_key_fails(mock):
    response = send(signed(mock, akid="AKIDUNKNOWN000000000"))
    assert response.status_code == 403
    assert response.headers["x-amzn-ErrorType"] == "UnrecognizedClientException"


def test_the_host_header_must_match_the_signed_host_with_its_port(mock):
    request = signed(mock)
    headers = dict(request.headers.items())
    headers["Host"] = "127.0.0.1"  # what a signer that drops the port would have signed
    response = requests.post(request.url, headers=headers, data=request.body, timeout=10)
    assert response.status_code == 403


def test_temporary_keys_need_a_signed_session_token(mock):
    mock.add_credentials("ASIAMOCKSELFTEST0001", SECRET, "the-session-token")
    good = send(signed(mock, akid="ASIAMOCKSELFTEST0001", token="the-session-token"))
    assert good.status_code == 200, good.text
    assert mock.last_chat_request().session_token == "the-session-token"
    assert "x-amz-security-token" in mock.last_chat_request().signed_headers

    request = signed(mock, akid="ASIAMOCKSELFTEST0001", token="the-session-token")
    headers = {k: v for k, v in request.headers.items() if k.lower() != "x-amz-security-token"}
    stripped = requests.post(request.url, headers=headers, data=request.body, timeout=10)
    assert stripped.status_code == 403

    other = send(signed(mock, akid="ASIAMOCKSELFTEST0001", token="another-token"))
    assert other.status_code == 403


def test_expired_temporary_credentials_are_refused(mock):
    mock.add_credentials("ASIAMOCKEXPIRED00001", SECRET, "tok", expires_at=1.0)
    response = send(signed(mock, akid="ASIAMOCKEXPIRED00001", token="tok"))
    assert response.status_code == 403
    assert response.json()["message"] == MSG_EXPIRED_TOKEN


def test_bearer_tokens(mock):
    mock.add_bearer("good-token")
    mock.add_bearer("old-token", expired=True)
    mock.add_bearer("east-token", region="us-east-2")
    mock.add_bearer("west-token", region=REGION)

    def chat(token: str) -> requests.Response:
        return requests.post(mock.url + CHAT, data=BODY, timeout=10, headers={
            "Authorization": f"Bearer {token}", "Content-Type": "application/json"})

    assert chat("good-token").status_code == 200
    assert chat("west-token").status_code == 200
    unknown = chat("nobody-knows-me")
    assert (unknown.status_code, unknown.json()["message"]) == (401, MSG_INVALID_KEY)
    expired = chat("old-token")
    assert (expired.status_code, expired.json()["message"]) == (401, MSG_EXPIRED_BEARER)
    wrong_region = chat("east-token")
    assert (wrong_region.status_code, wrong_region.json()["message"]) == \
        (403, MSG_WRONG_REGION_KEY)
    assert [r.bearer_token for r in mock.chat_requests()] == \
        ["good-token", "west-token", "nobody-knows-me", "old-token", "east-token"]


def test_no_authorization_at_all_is_refused(mock):
    response = requests.post(mock.url + CHAT, data=BODY, timeout=10)
    assert response.status_code == 403


def test_streaming_keeps_reasoning_deltas_and_ends_with_done(mock):
    body = json.dumps({**json.loads(BODY), "stream": True})
    response = send(signed(mock, body=body))
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/event-stream"
    events = [line[len("data: "):] for line in response.text.split("\n") if line]
    assert events[-1] == "[DONE]"
    chunks = [json.loads(e) for e in events[:-1]]
    assert chunks[0]["choices"][0]["delta"]["reasoning"] == REASONING_TEXT
    text = "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks)
    assert text == answer_for("Which planet do humans live on?")


def test_list_foundation_models_filters_by_inference_type(mock):
    response = send(signed(mock, path="/foundation-models?byInferenceType=ON_DEMAND",
                           method="GET", body=""))
    assert response.status_code == 200, response.text
    summaries = response.json()["modelSummaries"]
    assert {s["modelId"] for s in summaries} == {
        "openai.gpt-oss-20b-1:0", "openai.gpt-oss-120b-1:0", "anthropic.claude-v2"}
    assert all(s["modelLifecycle"]["status"] in ("ACTIVE", "LEGACY") for s in summaries)
    assert mock.requests[-1].query == "byInferenceType=ON_DEMAND"


def test_a_signed_query_string_cannot_be_changed(mock):
    request = signed(mock, path="/foundation-models?byInferenceType=ON_DEMAND", method="GET",
                     body="")
    tampered = request.url.replace("ON_DEMAND", "PROVISIONED")
    response = requests.get(tampered, headers=dict(request.headers.items()), timeout=10)
    assert response.status_code == 403


def test_mantle_model_list_with_a_bearer_token(mock):
    mock.add_bearer("good-token")
    response = requests.get(mock.url + "/v1/models", timeout=10,
                            headers={"Authorization": "Bearer good-token"})
    assert response.status_code == 200
    assert [m["id"] for m in response.json()["data"]] == \
        ["openai.gpt-oss-20b-1:0", "openai.gpt-oss-120b-1:0"]


def test_control_endpoints(mock):
    assert requests.post(mock.url + "/__mock/credentials", timeout=10, json={
        "access_key_id": "AKIDVIACONTROL000001", "secret_access_key": SECRET}).ok
    assert send(signed(mock, akid="AKIDVIACONTROL000001")).status_code == 200
    assert requests.post(mock.url + "/__mock/bearer", json={"token": "t2"}, timeout=10).ok
    recorded = requests.get(mock.url + "/__mock/requests", timeout=10).json()
    assert recorded[-1]["access_key_id"] == "AKIDVIACONTROL000001"
    assert requests.delete(mock.url + "/__mock/requests", timeout=10).ok
    assert mock.requests == []


def test_upstream_errors_can_be_scripted(mock):
    body = json.dumps({"model": "m", "messages": [{"role": "user", "content": "[mock:error=429]"}]})
    response = send(signed(mock, body=body))
    assert response.status_code == 429
