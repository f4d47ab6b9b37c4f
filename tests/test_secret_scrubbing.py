"""No secret ever leaves: an upstream that repeats the credential it was sent (in a JSON error
body, a plain-text body, an SSE error event split across chunks, a response header, even a
successful answer) must not get it to the client or into ogx's log.

The upstream here is a real HTTP server on 127.0.0.1 that echoes the `Authorization` header it
receives; the client is the OpenAI SDK (and `requests` for raw SSE). Two credentials are
exercised: the operator's configured key and a caller's key sent in `X-OGX-Provider-Data`."""

from __future__ import annotations

import json
import time
from http.server import ThreadingHTTPServer

import openai
import pytest

from loopback_server import LoopbackHandler, LoopbackServer, text_of
from ogx_harness import sse_events, vllm_config

CONFIG_KEY = "sk-operator-config-key-7f3a9c2e51d04b8b"
CALLER_KEY = "sk-caller-provider-data-key-0c41d9e2aa"
MARKER = "********"
MODEL = "vllm/echo-model"


class _EchoHandler(LoopbackHandler):
    """An OpenAI-compatible upstream whose every failure repeats the credential it got."""

    def log_message(self, format, *args):  # noqa: A002 (stdlib signature)
        pass

    def do_GET(self) -> None:
        self._send_json(200, {"object": "list", "data": [
            {"id": "echo-model", "object": "model", "owned_by": "test"}]})

    def do_POST(self) -> None:
        body = json.loads(self._read_body() or b"{}")
        auth = self.headers.get("Authorization", "")
        self.server.authorizations.append(auth)
        token = auth.removeprefix("Bearer ")
        text = text_of(body["messages"][-1]["content"])
        if "echo-json" in text:
            self._send_json(401, {"error": {
                "message": f"Incorrect API key provided: {token}. Header was '{auth}'.",
                "type": "invalid_request_error", "code": "invalid_api_key"}})
        elif "echo-text" in text:
            data = f"401 Unauthorized: token {token} is not valid".encode()
            self.send_response(401)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Content-Length", str(len(data)))
            self.send_header("WWW-Authenticate", f'Bearer realm="{token}"')
            self.end_headers()
            self.wfile.write(data)
        elif "echo-header" in text:
            self._send_json(429, {"error": {"message": "slow down"}},
                            headers={"Retry-After": "1", "X-Echo-Authorization": auth})
        elif "echo-sse" in text:
            self._echo_in_stream(token)
        else:
            self._send_json(200, {
                "id": "chatcmpl-echo", "object": "chat.completion", "created": int(time.time()),
                "model": body.get("model"),
                "choices": [{"index": 0, "finish_reason": "stop", "message": {
                    "role": "assistant", "content": f"you sent me {token}"}}],
                "usage": {"prompt_tokens": 1, "completion_tokens": 4, "total_tokens": 5}})

    def _echo_in_stream(self, token: str) -> None:
        """Two content chunks, then an error event whose token is cut in two HTTP chunks."""
        self._start_sse()
        for piece in ("Hello", " there"):
            self._send_sse(json.dumps({
                "id": "chatcmpl-echo", "object": "chat.completion.chunk", "created": 1,
                "model": "echo-model",
                "choices": [{"index": 0, "delta": {"content": piece}, "finish_reason": None}]}))
            time.sleep(0.02)
        event = f'data: {{"error": {{"message": "token {token} was revoked"}}}}\n\n'.encode()
        cut = event.index(token.encode()) + len(token) // 2
        for part in (event[:cut], event[cut:]):
            self.wfile.write(b"%x\r\n%s\r\n" % (len(part), part))
            self.wfile.flush()
            time.sleep(0.05)
        self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()


class EchoUpstream(LoopbackServer):
    thread_name = "echo-upstream"

    def __init__(self) -> None:
        server = ThreadingHTTPServer(("127.0.0.1", 0), _EchoHandler)
        server.authorizations = []
        super().__init__(server, "127.0.0.1")

    @property
    def base_url(self) -> str:
        return self.url + "/v1"

    @property
    def requests(self) -> list[str]:
        """The `Authorization` header of every chat request received."""
        return list(self._server.authorizations)


@pytest.fixture(scope="module")
def upstream():
    with EchoUpstream() as server:
        yield server


@pytest.fixture(scope="module")
def server(upstream, module_ogx_server):
    return module_ogx_server(vllm_config(upstream.base_url, distro_name="scrub-e2e",
                                         api_token=CONFIG_KEY))


def _caller_headers() -> dict[str, str]:
    return {"X-OGX-Provider-Data": json.dumps({"vllm_api_token": CALLER_KEY})}


def _ask(server, text: str, *, caller_key: bool, stream: bool = False):
    headers = _caller_headers() if caller_key else {}
    return server.post("/v1/chat/completions", headers=headers, stream=stream, json={
        "model": MODEL, "stream": stream, "messages": [{"role": "user", "content": text}]})


def _assert_clean(text: str, where: str) -> None:
    for key in (CONFIG_KEY, CALLER_KEY):
        assert key not in text, f"{where} repeats a secret: {text!r}"
        # Nor a long piece of it.
        assert key[:20] not in text and key[-20:] not in text, f"{where}: {text!r}"


@pytest.mark.parametrize("caller_key", [False, True], ids=["config-key", "provider-data-key"])
@pytest.mark.parametrize("mode", ["echo-json", "echo-text", "echo-header"])
def test_an_upstream_error_that_repeats_the_key_reaches_the_client_scrubbed(server, mode,
                                                                            caller_key):
    response = _ask(server, f"please {mode}", caller_key=caller_key)

    assert response.status_code in (401, 429), response.text
    _assert_clean(response.text, "the error body")
    _assert_clean(json.dumps(dict(response.headers)), "the response headers")
    if mode != "echo-header":
        # The echo is still there, with the key replaced: the client learns what happened.
        assert MARKER in response.text, response.text


@pytest.mark.parametrize("caller_key", [False, True], ids=["config-key", "provider-data-key"])
def test_a_stream_error_event_split_across_chunks_is_scrubbed(server, caller_key):
    response = _ask(server, "please echo-sse", caller_key=caller_key, stream=True)

    assert response.status_code == 200
    events = list(sse_events(response))
    raw = "\n".join(events)
    _assert_clean(raw, "the stream")
    last = json.loads([e for e in events if e != "[DONE]"][-1])
    assert "error" in last and MARKER in last["error"]["message"], last


def test_the_sdk_sees_a_scrubbed_authentication_error(server):
    client = server.client(default_headers=_caller_headers())
    with pytest.raises(openai.AuthenticationError) as raised:
        client.chat.completions.create(
            model=MODEL, messages=[{"role": "user", "content": "please echo-json"}])

    _assert_clean(str(raised.value), "the SDK's error")
    _assert_clean(json.dumps(raised.value.body), "the SDK's error body")


def test_a_successful_answer_that_repeats_the_key_is_scrubbed(server):
    answer = server.client(default_headers=_caller_headers()).chat.completions.create(
        model=MODEL, messages=[{"role": "user", "content": "hello"}])

    assert answer.choices[0].message.content == f"you sent me {MARKER}"


def test_the_log_never_holds_a_secret_and_the_server_keeps_serving(server, upstream):
    # Every kind of echo, with both keys, streamed and not.
    for text in ("echo-json", "echo-text", "echo-header", "echo-sse", "hello"):
        for caller_key in (False, True):
            response = _ask(server, text, caller_key=caller_key, stream=text == "echo-sse")
            list(response.iter_content(None))

    # The upstream did get both keys: there was something to scrub.
    assert f"Bearer {CONFIG_KEY}" in upstream.requests
    assert f"Bearer {CALLER_KEY}" in upstream.requests
    log = server.output()
    _assert_clean(log, "the ogx log")
    assert "provider call failed" in log and MARKER in log, log[-3000:]
    answer = server.client().chat.completions.create(
        model=MODEL, messages=[{"role": "user", "content": "still there?"}])
    assert answer.choices[0].message.content == f"you sent me {MARKER}"
