"""Every Bedrock model through ogx's OpenAI API: Converse and ConverseStream for Claude, Nova
and Llama model ids, an inference profile and an ARN; tools, reasoning with signatures, images,
JSON-schema output, Bedrock's errors; embeddings through InvokeModel (Titan, Cohere); the
Responses API on a Claude model; SigV4 and bearer tokens.

Upstream is tests/mock_bedrock.py + mock_converse.py: it verifies every SigV4 signature with
botocore, checks every Converse body against Bedrock's rules and streams real event-stream
frames. The client is the OpenAI Python SDK."""

from __future__ import annotations

import base64
import json
import struct

import openai
import pytest

from aws_fixtures import REGION, STATIC_KEYS, endpoint_env, started_mock, static_keys_env
from mock_bedrock import DEFAULT_FOUNDATION_MODELS, MockBedrock
from bedrock_session import config_with
from mock_converse import MSG_FIRST_USER, PNG_BYTES, needs_profile_message
from ogx_harness import error_message_of, sse_events, wait_until
from scripted_turns import Turn

CLAUDE = "anthropic.claude-3-haiku-20240307-v1:0"
NEEDS_PROFILE = "anthropic.claude-3-5-haiku-20241022-v1:0"
# Registered model id → provider_model_id: a Claude, a Nova and a Llama model id, an inference
# profile and an inference-profile ARN.
CONVERSE_MODELS = {
    CLAUDE: CLAUDE,
    "us.anthropic.claude-sonnet-4-20250514-v1:0": "us.anthropic.claude-sonnet-4-20250514-v1:0",
    "amazon.nova-pro-v1:0": "amazon.nova-pro-v1:0",
    "meta.llama3-1-70b-instruct-v1:0": "meta.llama3-1-70b-instruct-v1:0",
    "claude-arn": f"arn:aws:bedrock:{REGION}:123456789012:inference-profile/us.{CLAUDE}",
}
EMBEDDING_MODELS = ("amazon.titan-embed-text-v2:0", "cohere.embed-v4:0")


def model_entries() -> str:
    """`registered_resources.models` entries for every model these tests call."""
    llms = {**CONVERSE_MODELS, NEEDS_PROFILE: NEEDS_PROFILE, "us." + CLAUDE: "us." + CLAUDE}
    entries = [(name, upstream, "llm") for name, upstream in llms.items()]
    entries += [(name, name, "embedding") for name in EMBEDDING_MODELS]
    return "".join(f"""\
  - metadata: {{{'embedding_dimension: 1024' if kind == 'embedding' else ''}}}
    model_id: {json.dumps(name)}
    provider_id: bedrock-inference
    provider_model_id: {json.dumps(upstream)}
    model_type: {kind}
""" for name, upstream, kind in entries)
TOKEN = "converse-bearer-token"
WEATHER = {"type": "function", "function": {
    "name": "get_weather", "description": "The weather in a city.",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}},
                   "required": ["city"]}}}


@pytest.fixture(scope="module")
def module_mock():
    with started_mock() as mock:
        mock.add_bearer(TOKEN)
        yield mock


@pytest.fixture
def mock(module_mock):
    module_mock.clear()
    return module_mock


@pytest.fixture(scope="module")
def server(module_mock, module_ogx_server):
    return module_ogx_server(config_with({"region_name": REGION}, model_entries()),
                             env={**endpoint_env(module_mock), **static_keys_env()})


@pytest.fixture(scope="module")
def client(server):
    return server.client()


def ask(client, model: str, text: str = "hi", **kwargs):
    return client.chat.completions.create(
        model=f"bedrock-inference/{model}", messages=[{"role": "user", "content": text}], **kwargs)


def streamed(client, model: str, messages: list, **kwargs) -> list:
    return list(client.chat.completions.create(
        model=f"bedrock-inference/{model}", messages=messages, stream=True, **kwargs))


@pytest.mark.parametrize("name", sorted(CONVERSE_MODELS))
def test_every_kind_of_model_id_answers_streamed_and_not(client, mock, name):
    upstream = CONVERSE_MODELS[name]
    answer = ask(client, name, "Which planet do humans live on?")
    assert answer.choices[0].message.content == "You said: Which planet do humans live on?"
    assert answer.choices[0].finish_reason == "stop"
    assert answer.model == f"bedrock-inference/{name}"
    assert answer.id.startswith("chatcmpl-req-")
    chunks = streamed(client, name, [{"role": "user", "content": "And the moon?"}])
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == \
        "You said: And the moon?"
    assert chunks[0].choices[0].delta.role == "assistant"
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "stop"
    seen = mock.converse_requests()
    assert [r.path.rsplit("/", 1)[1] for r in seen] == ["converse", "converse-stream"]
    for r in seen:
        assert (r.model_id, r.auth, r.scope_service, r.access_key_id, r.status) == \
            (upstream, "sigv4", "bedrock", STATIC_KEYS.access_key_id, 200)
        assert ":" not in r.path.split("/")[2], "the model id is percent-encoded in the path"
        assert r.json["messages"] == [{"role": "user", "content": [{"text": r.json["messages"][0]["content"][0]["text"]}]}]


def test_gpt_oss_keeps_the_openai_compatible_endpoint(client, mock):
    answer = ask(client, "openai.gpt-oss-20b-1:0")
    assert answer.choices[0].message.content == "You said: hi"
    assert mock.chat_requests() and not mock.converse_requests()


def test_a_model_that_needs_an_inference_profile_says_which(server, mock):
    response = server.post("/v1/chat/completions", json={
        "model": f"bedrock-inference/{NEEDS_PROFILE}",
        "messages": [{"role": "user", "content": "hi"}]})
    assert response.status_code == 400
    message = error_message_of(response)
    assert message.startswith(needs_profile_message(NEEDS_PROFILE))
    assert f"`us.{NEEDS_PROFILE}`" in message


def test_a_parallel_tool_round_trip(client, mock):
    mock.script(Turn(content="Checking both.", tool_calls=[("get_weather", {"city": "Paris"}),
                                                           ("get_weather", {"city": "Rome"})]),
                Turn(content="Sunny in Paris, rainy in Rome."))
    messages = [{"role": "system", "content": "Be brief."},
                {"role": "user", "content": "Weather in Paris and Rome?"}]
    first = client.chat.completions.create(model=f"bedrock-inference/{CLAUDE}", messages=messages,
                                           tools=[WEATHER], tool_choice="required")
    choice = first.choices[0]
    assert choice.finish_reason == "tool_calls"
    calls = choice.message.tool_calls
    assert [json.loads(c.function.arguments) for c in calls] == [{"city": "Paris"},
                                                                 {"city": "Rome"}]
    sent = mock.last_converse_request().json
    assert sent["system"] == [{"text": "Be brief."}]
    assert sent["toolConfig"]["toolChoice"] == {"any": {}}
    messages.append(choice.message.model_dump(exclude_none=True))
    for call, result in zip(calls, ["sunny", "rainy"]):
        messages.append({"role": "tool", "tool_call_id": call.id, "content": result})
    second = client.chat.completions.create(model=f"bedrock-inference/{CLAUDE}",
                                            messages=messages, tools=[WEATHER])
    assert second.choices[0].message.content == "Sunny in Paris, rainy in Rome."
    sent = mock.last_converse_request()
    assert sent.status == 200 and sent.rejection is None
    assert [m["role"] for m in sent.json["messages"]] == ["user", "assistant", "user"]
    assert [list(b) for b in sent.json["messages"][1]["content"]] == \
        [["text"], ["toolUse"], ["toolUse"]]
    assert [b["toolResult"]["toolUseId"] for b in sent.json["messages"][2]["content"]] == \
        [c.id for c in calls]


def test_streamed_tool_calls_keep_stable_indexes(client, mock):
    mock.script(Turn(content="Let me look.", tool_calls=[("get_weather", {"city": "Paris"}),
                                                         ("get_weather", {"city": "Oslo"})]))
    chunks = streamed(client, "us." + CLAUDE, [{"role": "user", "content": "Weather?"}],
                      tools=[WEATHER])
    calls: dict[int, dict] = {}
    for chunk in chunks:
        for call in (chunk.choices[0].delta.tool_calls or []) if chunk.choices else []:
            entry = calls.setdefault(call.index, {"id": None, "args": ""})
            entry["id"] = entry["id"] or call.id
            entry["args"] += call.function.arguments or ""
    assert sorted(calls) == [0, 1]
    assert [json.loads(calls[i]["args"]) for i in (0, 1)] == [{"city": "Paris"}, {"city": "Oslo"}]
    assert all(calls[i]["id"].startswith("tooluse-") for i in (0, 1))
    assert chunks[-1].choices[0].finish_reason == "tool_calls"


def test_reasoning_signatures_go_back_with_the_tool_turn(client, mock):
    mock.script(Turn(reasoning="I should call the tool.", signature="c2lnbmVk",
                     tool_calls=[("get_weather", {"city": "Paris"})]),
                Turn(content="Sunny."))
    model = "us.anthropic.claude-sonnet-4-20250514-v1:0"
    chunks = streamed(client, model, [{"role": "user", "content": "Weather?"}], tools=[WEATHER],
                      reasoning_effort="low")
    assert mock.last_converse_request().json["additionalModelRequestFields"] == \
        {"thinking": {"type": "enabled", "budget_tokens": 1024}}
    deltas = [c.choices[0].delta.model_dump() for c in chunks if c.choices]
    reasoning = "".join(d.get("reasoning_content") or "" for d in deltas)
    assert reasoning == "I should call the tool."
    blocks = [b for d in deltas for b in d.get("thinking_blocks") or []]
    assert blocks == [{"type": "thinking", "thinking": "", "signature": "c2lnbmVk"}]
    call = next(c for d in deltas for c in d.get("tool_calls") or [] if c.get("id"))
    answer = client.chat.completions.create(
        model=f"bedrock-inference/{model}", tools=[WEATHER], messages=[
            {"role": "user", "content": "Weather?"},
            {"role": "assistant", "content": None, "tool_calls": [
                {"id": call["id"], "type": "function",
                 "function": {"name": "get_weather", "arguments": '{"city":"Paris"}'}}],
             "thinking_blocks": [{"type": "thinking", "thinking": reasoning,
                                  "signature": "c2lnbmVk"}]},
            {"role": "tool", "tool_call_id": call["id"], "content": "sunny"}])
    assert answer.choices[0].message.content == "Sunny."
    sent = mock.last_converse_request().json["messages"][1]["content"][0]
    assert sent == {"reasoningContent": {"reasoningText": {"text": reasoning,
                                                           "signature": "c2lnbmVk"}}}
    mock.script(Turn(content="ok", reasoning="thought", signature="c2ln"))
    message = ask(client, model).choices[0].message.model_dump()
    assert message["reasoning_content"] == "thought"
    assert message["thinking_blocks"] == [{"type": "thinking", "thinking": "thought",
                                           "signature": "c2ln"}]


def test_images_by_data_url_and_by_url(client, mock):
    data_url = "data:image/png;base64," + base64.b64encode(PNG_BYTES).decode()
    content = [{"type": "text", "text": "What is this?"},
               {"type": "image_url", "image_url": {"url": data_url}},
               {"type": "image_url", "image_url": {"url": mock.url + "/__mock/image.png"}}]
    answer = client.chat.completions.create(model="bedrock-inference/amazon.nova-pro-v1:0",
                                            messages=[{"role": "user", "content": content}])
    assert answer.choices[0].message.content == \
        "You said: What is this? [image: png] [image: png]"
    images = [b["image"] for b in mock.last_converse_request().json["messages"][0]["content"]
              if "image" in b]
    assert [base64.b64decode(i["source"]["bytes"]) for i in images] == [PNG_BYTES, PNG_BYTES]


def test_an_image_url_outside_the_egress_policy_is_a_clear_400(server, mock):
    response = server.post("/v1/chat/completions", json={
        "model": f"bedrock-inference/{CLAUDE}", "messages": [{"role": "user", "content": [
            {"type": "image_url", "image_url": {"url": "https://example.com/cat.png"}}]}]})
    assert response.status_code == 400
    assert "data: URL" in error_message_of(response)
    assert not mock.converse_requests()


def test_json_schema_output_through_a_forced_tool(client, mock):
    schema = {"type": "object", "properties": {"planet": {"type": "string"}},
              "required": ["planet"]}
    mock.script(Turn(tool_calls=[("planet_answer", {"planet": "Earth"})]))
    answer = client.chat.completions.create(
        model="bedrock-inference/meta.llama3-1-70b-instruct-v1:0",
        messages=[{"role": "user", "content": "Which planet?"}],
        response_format={"type": "json_schema", "json_schema": {"name": "planet_answer",
                                                                "schema": schema}})
    assert json.loads(answer.choices[0].message.content) == {"planet": "Earth"}
    assert answer.choices[0].finish_reason == "stop" and not answer.choices[0].message.tool_calls
    sent = mock.last_converse_request().json["toolConfig"]
    assert sent["toolChoice"] == {"tool": {"name": "planet_answer"}}
    assert sent["tools"][0]["toolSpec"]["inputSchema"]["json"] == schema


def test_usage_with_cache_tokens_on_the_last_chunk(client, mock):
    mock.script(Turn(content="cached answer", cache_tokens=(30, 5)))
    chunks = streamed(client, CLAUDE, [{"role": "user", "content": [
        {"type": "text", "text": "long context", "cache_control": {"type": "ephemeral"}}]}],
        stream_options={"include_usage": True}, stop=["END"], temperature=0.2, max_tokens=50)
    last = chunks[-1]
    assert last.choices == [] and last.usage is not None
    assert last.usage.prompt_tokens == 2 + 30 + 5
    assert last.usage.prompt_tokens_details.cached_tokens == 30
    assert last.usage.model_dump()["prompt_tokens_details"]["cache_creation_tokens"] == 5
    assert all(c.usage is None for c in chunks[:-1])
    sent = mock.last_converse_request().json
    assert sent["messages"][0]["content"][1] == {"cachePoint": {"type": "default"}}
    assert sent["inferenceConfig"] == {"maxTokens": 50, "temperature": 0.2,
                                       "stopSequences": ["END"]}


def test_guardrails_from_the_extra_body(client, mock):
    mock.script(Turn(content="Sorry, I can't help with that.", stop_reason="guardrail_intervened"))
    answer = ask(client, CLAUDE, extra_body={"guardrailConfig": {
        "guardrailIdentifier": "gr-1", "guardrailVersion": "1"}})
    assert answer.choices[0].finish_reason == "content_filter"
    assert mock.last_converse_request().json["guardrailConfig"] == \
        {"guardrailIdentifier": "gr-1", "guardrailVersion": "1"}


@pytest.mark.parametrize("turn, status, error, text", [
    (Turn(error=(429, "ThrottlingException", "Too many requests, please wait.")), 429,
     openai.RateLimitError, "Too many requests, please wait."),
    (Turn(error=(403, "AccessDeniedException",
                 "User: arn:aws:iam::123456789012:user/x is not authorized")), 403,
     openai.PermissionDeniedError, "Access denied"),
    (Turn(error=(429, "ModelNotReadyException", "The model is not ready.")), 503,
     openai.InternalServerError, "The model is not ready."),
    (Turn(error=(503, "ServiceUnavailableException", "Service unavailable.")), 503,
     openai.InternalServerError, "Service unavailable."),
])
def test_bedrock_errors_as_a_client_expects_them(client, mock, turn, status, error, text):
    # Throttling and unavailability are retried twice by default (README, "Routing and
    # failover"); the client sees the error once every try failed. A 403 is not retried.
    tries = 3 if status in (429, 503) else 1
    mock.script(*[turn] * tries)
    with pytest.raises(error) as raised:
        ask(client, CLAUDE)
    assert raised.value.status_code == status
    assert text in raised.value.message
    assert "arn:aws:iam" not in raised.value.message
    assert len(mock.converse_requests()) == tries


def test_a_validation_error_carries_bedrocks_message(server, mock):
    response = server.post("/v1/chat/completions", json={
        "model": f"bedrock-inference/{CLAUDE}",
        "messages": [{"role": "assistant", "content": "I start."}]})
    assert (response.status_code, error_message_of(response)) == (400, MSG_FIRST_USER)


def test_an_exception_frame_mid_stream_is_one_error_event(server, mock):
    mock.script(Turn(content="one two three",
                     stream_exception=("throttlingException", "Too many tokens.")))
    response = server.post("/v1/chat/completions", stream=True, json={
        "model": f"bedrock-inference/{CLAUDE}", "stream": True,
        "messages": [{"role": "user", "content": "hi"}]})
    assert response.status_code == 200
    events = list(sse_events(response))
    errors = [json.loads(e) for e in events if e != "[DONE]" and "error" in json.loads(e)]
    assert len(errors) == 1 and "Too many tokens." in errors[0]["error"]["message"]
    chunks = [json.loads(e) for e in events if e != "[DONE]" and "error" not in json.loads(e)]
    assert "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks) == "one"
    assert events.index(next(e for e in events if "error" in e)) >= len(events) - 2


def test_a_corrupted_frame_mid_stream_is_one_error_event(server, mock):
    mock.script(Turn(content="one two three", stream_exception=("corrupt-crc", "")))
    response = server.post("/v1/chat/completions", stream=True, json={
        "model": f"bedrock-inference/{CLAUDE}", "stream": True,
        "messages": [{"role": "user", "content": "hi"}]})
    assert response.status_code == 200
    events = [json.loads(e) for e in sse_events(response) if e != "[DONE]"]
    errors = [e for e in events if "error" in e]
    assert len(errors) == 1 and "checksum" in errors[0]["error"]["message"]
    assert "".join(e["choices"][0]["delta"].get("content") or "" for e in events
                   if "error" not in e) == "one"
    assert server.get("/v1/health").status_code == 200


def test_embeddings_titan_and_cohere(client, mock):
    titan = client.embeddings.create(model="bedrock-inference/amazon.titan-embed-text-v2:0",
                                     input=["hello world", "bye"], dimensions=256)
    assert [len(d.embedding) for d in titan.data] == [256, 256]
    assert [d.index for d in titan.data] == [0, 1]
    assert titan.usage.prompt_tokens == 3
    invokes = mock.requests_to("/model/amazon.titan-embed-text-v2%3A0/invoke")
    assert [r.json for r in invokes] == [
        {"inputText": "hello world", "normalize": True, "dimensions": 256},
        {"inputText": "bye", "normalize": True, "dimensions": 256}]
    assert all(r.auth == "sigv4" and r.status == 200 for r in invokes)
    cohere = client.embeddings.create(model="bedrock-inference/cohere.embed-v4:0",
                                      input=["a b c", "d"], extra_body={"input_type": "search_query"})
    assert [len(d.embedding) for d in cohere.data] == [1536, 1536]
    assert cohere.usage.prompt_tokens == 4
    [invoke] = mock.requests_to("/model/cohere.embed-v4%3A0/invoke")
    assert invoke.json["input_type"] == "search_query"
    raw = client.embeddings.with_raw_response.create(
        model="bedrock-inference/amazon.titan-embed-text-v2:0", input="x", dimensions=256,
        encoding_format="base64").http_response.json()
    floats = struct.unpack("<256f", base64.b64decode(raw["data"][0]["embedding"]))
    plain = client.embeddings.create(model="bedrock-inference/amazon.titan-embed-text-v2:0",
                                     input="x", dimensions=256).data[0].embedding
    assert floats == pytest.approx(plain, abs=1e-6)


def test_a_bearer_token_works_for_converse_too(ogx_server, module_mock):
    module_mock.clear()
    server = ogx_server(config_with({"region_name": REGION, "aws_bedrock_bearer_token": TOKEN},
                                    model_entries()), env=endpoint_env(module_mock))
    client = server.client()
    assert ask(client, CLAUDE).choices[0].message.content == "You said: hi"
    chunks = streamed(client, "amazon.nova-pro-v1:0", [{"role": "user", "content": "yo"}])
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == \
        "You said: yo"
    seen = module_mock.converse_requests()
    assert [(r.auth, r.bearer_token, r.status) for r in seen] == [("bearer", TOKEN, 200)] * 2
    assert TOKEN not in server.output()


def test_listing_types_models_and_adds_inference_profiles(ogx_server):
    foundation = DEFAULT_FOUNDATION_MODELS + (
        ("amazon.titan-embed-text-v2:0", "Amazon", "ACTIVE", ["ON_DEMAND"]),)
    profiles = (("us." + CLAUDE, CLAUDE), ("us.cohere.embed-v4:0", "cohere.embed-v4:0"))
    with MockBedrock(region=REGION, foundation_models=foundation,
                     inference_profiles=profiles) as mock:
        mock.add_credentials(STATIC_KEYS.access_key_id, STATIC_KEYS.secret_access_key)
        server = ogx_server(config_with({"region_name": REGION, "refresh_models": True}),
                            env={**endpoint_env(mock), **static_keys_env()})

        def listed():
            models = {m["id"]: m["custom_metadata"]
                      for m in server.get("/v1/models").json()["data"]}
            return models if f"bedrock-inference/us.{CLAUDE}" in models else None

        models = wait_until(listed, 20, "the listed inference profiles")
        kinds = {name.split("/", 1)[1]: meta["model_type"] for name, meta in models.items()}
        assert kinds["us." + CLAUDE] == "llm"
        assert kinds["us.cohere.embed-v4:0"] == "embedding"
        assert kinds["amazon.titan-embed-text-v2:0"] == "embedding"
        assert kinds["openai.gpt-oss-120b-1:0"] == "llm"
        [listing] = mock.requests_to("/inference-profiles")
        assert (listing.auth, listing.status, listing.query) == ("sigv4", 200, "maxResults=1000")
