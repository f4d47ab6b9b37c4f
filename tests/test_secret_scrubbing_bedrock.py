"""No AWS credential ever leaves: a Bedrock stand-in on 127.0.0.1 that repeats the SigV4
`Authorization` header (access key id), the `x-amz-security-token` (session token) and a Bedrock
API key (bearer) in its error bodies and in a stream's error event; ogx must pass none of them to
the client or its log. The secret access key never travels (SigV4 signs with it), and must not
appear either."""

from __future__ import annotations

import json
import time
from http.server import ThreadingHTTPServer

import pytest

from bedrock_session import config_with, curl_chat
from loopback_server import LoopbackHandler, LoopbackServer, text_of

ACCESS_KEY_ID = "ASIAOGXSCRUBTEST0001"
SECRET_KEY = "scrub/test/secret/key/0123456789abcdef"
SESSION_TOKEN = "scrub-test-session-token-0123456789abcdef"
API_KEY = "bedrock-api-key-scrub-test-0123456789abcdef"
SECRETS = (ACCESS_KEY_ID, SECRET_KEY, SESSION_TOKEN, API_KEY)
MODEL = "bedrock-inference/openai.gpt-oss-20b-1:0"


class _EchoBedrock(LoopbackHandler):
    def log_message(self, format, *args):  # noqa: A002 (stdlib signature)
        pass

    def do_GET(self) -> None:
        self._send_json(200, {"modelSummaries": []})

    def do_POST(self) -> None:
        body = json.loads(self._read_body() or b"{}")
        seen = (f"authorization={self.headers.get('Authorization', '')} "
                f"token={self.headers.get('x-amz-security-token', '')}")
        self.server.seen.append(seen)
        text = text_of(body.get("messages", [{}])[-1].get("content", ""))
        if "echo-sse" in text:
            self._start_sse()
            event = f'data: {{"error": {{"message": "rejected: {seen}"}}}}\n\n'.encode()
            # Cut through the middle of every credential in the event.
            cuts = sorted({event.find(s.encode()) + len(s) // 2 for s in SECRETS
                           if s.encode() in event})
            for start, end in zip([0, *cuts], [*cuts, len(event)]):
                part = event[start:end]
                self.wfile.write(b"%x\r\n%s\r\n" % (len(part), part))
                self.wfile.flush()
                time.sleep(0.02)
            self.wfile.write(b"0\r\n\r\n")
            self.wfile.flush()
        else:
            self._send_json(400, {"message": f"ValidationException: request had {seen}"})


class EchoBedrock(LoopbackServer):
    thread_name = "echo-bedrock"

    def __init__(self) -> None:
        server = ThreadingHTTPServer(("127.0.0.1", 0), _EchoBedrock)
        server.seen = []
        super().__init__(server, "127.0.0.1")

    @property
    def requests(self) -> list[str]:
        """What each chat request carried (the `Authorization` and the session token)."""
        return list(self._server.seen)


@pytest.fixture(scope="module")
def upstream():
    with EchoBedrock() as server:
        yield server


@pytest.fixture(scope="module")
def server(upstream, module_ogx_server):
    env = {"AWS_ENDPOINT_URL_BEDROCK_RUNTIME": upstream.url, "AWS_ENDPOINT_URL_BEDROCK": upstream.url,
           "AWS_ENDPOINT_URL_BEDROCK_MANTLE": upstream.url}
    return module_ogx_server(config_with({
        "region_name": "us-west-2", "aws_access_key_id": ACCESS_KEY_ID,
        "aws_secret_access_key": SECRET_KEY, "aws_session_token": SESSION_TOKEN}), env=env)


def _assert_clean(text: str, where: str) -> None:
    for secret in SECRETS:
        assert secret not in text, f"{where} repeats {secret!r}: {text[:2000]!r}"


@pytest.mark.parametrize("api_key", [False, True], ids=["sigv4", "bedrock-api-key"])
@pytest.mark.parametrize("stream", [False, True], ids=["json", "sse"])
def test_echoed_aws_credentials_never_reach_the_client(server, upstream, api_key, stream):
    provider_data = {"aws_bedrock_bearer_token": API_KEY} if api_key else None

    response = curl_chat(server.url, MODEL, content="echo-sse" if stream else "echo-json",
                         stream=stream, provider_data=provider_data)
    text = response.text

    _assert_clean(text, "the answer")
    _assert_clean(json.dumps(dict(response.headers)), "the answer's headers")
    assert "********" in text, text
    # The upstream did receive what it echoed.
    last = upstream.requests[-1]
    if api_key:
        assert f"Bearer {API_KEY}" in last
    else:
        assert ACCESS_KEY_ID in last and SESSION_TOKEN in last


def test_the_log_holds_no_aws_credential_and_the_server_keeps_serving(server, upstream):
    for stream in (False, True):
        curl_chat(server.url, MODEL, content="echo-sse" if stream else "echo-json",
                  stream=stream, provider_data={"aws_bedrock_bearer_token": API_KEY}).content
    assert any(API_KEY in seen for seen in upstream.requests)

    _assert_clean(server.output(), "the ogx log")
    assert server.get("/v1/health").json() == {"status": "OK"}
