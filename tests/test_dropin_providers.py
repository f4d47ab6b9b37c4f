"""The OpenAI-compatible provider types of OGX 1.5.0 beyond openai/vllm/ollama: one `ogx` with
every one of them, each pointed at its own mock upstream on 127.0.0.1, used through the OpenAI
SDK as a client would.

The fixed public URLs of `remote::anthropic` and `remote::gemini` are moved to the mocks with
`ANTHROPIC_BASE_URL` and `GEMINI_BASE_URL`; `remote::deepseek` takes its URL from
`DEEPSEEK_BASE_URL`, as OGX's config does when `base_url` is absent.
"""

from __future__ import annotations

import json
from contextlib import ExitStack
from dataclasses import dataclass, field

import openai
import pytest
import requests

from mock_openai import MockOpenAI, answer_for, stream_pieces
from ogx_harness import free_port, wait_until

REQUEST_KEY = "per-request-key-4b1d"


def config_key(provider_id: str) -> str:
    return f"cfg-secret-{provider_id}-9f3a"


@dataclass
class Case:
    provider_id: str
    provider_type: str
    provider_data_key: str | None
    models: tuple[str, ...] = ("model-a", "model-b")
    flavor: str = "openai"
    prefix: str = "/v1"
    key_field: str = "api_key"
    # How the provider finds its mock: "config" (base_url), or the environment variable.
    url_from: str = "config"
    chat: bool = True
    completions: bool = True
    embeddings: bool = True
    extra_config: dict = field(default_factory=dict)
    # A listed embedding model, or None: then `<provider_id>/embed` is registered as one.
    listed_embedding: str | None = None
    # A listed chat model, or None: then `<provider_id>/chat` is registered as an llm.
    listed_chat: str | None = "model-a"


CASES = [
    Case("together", "remote::together", "together_api_key", flavor="together",
         models=("model-a", "BAAI/bge-base-en-v1.5"), listed_embedding="BAAI/bge-base-en-v1.5"),
    Case("anthropic", "remote::anthropic", "anthropic_api_key", flavor="anthropic",
         models=("claude-a", "claude-b", "claude-c"), listed_chat="claude-a",
         url_from="ANTHROPIC_BASE_URL", completions=False, embeddings=False),
    Case("gemini", "remote::gemini", "gemini_api_key", flavor="gemini",
         prefix="/v1beta/openai", url_from="GEMINI_BASE_URL",
         models=("models/gemini-2.5-flash", "models/text-embedding-004"),
         listed_chat="models/gemini-2.5-flash", listed_embedding="models/text-embedding-004"),
    Case("meta", "remote::meta", "meta_api_key"),
    Case("sambanova", "remote::sambanova", "sambanova_api_key"),
    Case("nvidia", "remote::nvidia", "nvidia_api_key",
         models=("meta/llama-3.1-8b-instruct", "nvidia/nv-embedqa-e5-v5"),
         listed_chat="meta/llama-3.1-8b-instruct", listed_embedding="nvidia/nv-embedqa-e5-v5"),
    Case("databricks", "remote::databricks", "databricks_api_token", flavor="databricks",
         prefix="/serving-endpoints", key_field="api_token", completions=False,
         models=("databricks-meta-llama", "databricks-gte-large-en"),
         listed_chat="databricks-meta-llama", listed_embedding="databricks-gte-large-en"),
    Case("deepseek", "remote::deepseek", "deepseek_api_key", url_from="DEEPSEEK_BASE_URL",
         completions=False, embeddings=False),
    Case("mistral", "remote::mistral", "mistral_api_key", completions=False,
         models=("mistral-small", "mistral-embed"), listed_chat="mistral-small",
         listed_embedding="mistral-embed"),
    Case("azure", "remote::azure", "azure_api_key",
         extra_config={"api_version": "2024-12-01-preview", "api_type": "azure"}),
    Case("tei", "remote::text-embeddings-inference", None, flavor="tei",
         models=("BAAI/bge-small-en-v1.5",), chat=False, completions=False, listed_chat=None,
         listed_embedding="BAAI/bge-small-en-v1.5"),
]
BY_ID = {c.provider_id: c for c in CASES}
CHAT = [c.provider_id for c in CASES if c.chat]
EMBED = [c.provider_id for c in CASES if c.embeddings]
# Anthropic's adapter forwards embeddings to an upstream that has none: nothing to test here.
NOT_EMBED = [c.provider_id for c in CASES if not c.embeddings and c.provider_id != "anthropic"]
WITH_KEY = [c.provider_id for c in CASES if c.provider_data_key]


def chat_model(case: Case) -> str:
    return f"{case.provider_id}/{case.listed_chat or 'chat'}"


def embedding_model(case: Case) -> str:
    return f"{case.provider_id}/{case.listed_embedding or 'embed'}"


def upstream_embedding(case: Case) -> str:
    return case.listed_embedding or "upstream-embed"


def yaml_config(mocks: dict[str, MockOpenAI]) -> str:
    text = "version: 2\ndistro_name: dropin-e2e\napis: [inference, models]\n"
    text += "providers:\n  inference:\n"
    for case in CASES:
        config = {case.key_field: config_key(case.provider_id), **case.extra_config}
        if case.url_from == "config":
            config["base_url"] = mocks[case.provider_id].base_url
        text += (f"  - provider_id: {case.provider_id}\n"
                 f"    provider_type: {case.provider_type}\n"
                 f"    config: {json.dumps(config)}\n")
    # Without any key: requests are refused, naming the generic provider-data key.
    text += ("  - provider_id: meta-nokey\n    provider_type: remote::meta\n"
             f"    config: {json.dumps({'base_url': mocks['meta'].base_url})}\n")
    # Gemini with an OAuth access token and its quota project.
    text += ("  - provider_id: gemini-oauth\n    provider_type: remote::gemini\n"
             "    config: {access_token: oauth-token-77, project: quota-proj}\n")
    text += ("registered_resources:\n  models:\n"
             "  - {model_id: m, provider_id: meta-nokey, provider_model_id: model-a}\n")
    for case in CASES:
        if case.listed_embedding is None:
            text += (f"  - {{model_id: embed, provider_id: {case.provider_id}, "
                     f"provider_model_id: {upstream_embedding(case)}, model_type: embedding, "
                     "metadata: {embedding_dimension: 8}}\n")
        if case.listed_chat is None:
            text += (f"  - {{model_id: chat, provider_id: {case.provider_id}, "
                     "provider_model_id: upstream-chat, model_type: llm}\n")
    return text


@pytest.fixture(scope="module")
def mocks():
    with ExitStack() as stack:
        started = {}
        for case in CASES:
            keys = (config_key(case.provider_id), REQUEST_KEY)
            if case.provider_id == "gemini":
                keys += ("oauth-token-77",)
            if case.provider_id == "meta":
                keys = None  # meta-nokey shares it and sends no key at all
            # Anthropic's listing comes in pages of 2, so that ogx must follow `has_more`.
            started[case.provider_id] = stack.enter_context(MockOpenAI(
                require_key=keys, models=case.models, flavor=case.flavor,
                prefix=case.prefix, page_size=2))
        yield started


@pytest.fixture(scope="module")
def server(mocks, module_ogx_server):
    env = {
        "ANTHROPIC_BASE_URL": mocks["anthropic"].url,
        "GEMINI_BASE_URL": mocks["gemini"].base_url + "/",
        "DEEPSEEK_BASE_URL": mocks["deepseek"].base_url,
    }
    server = module_ogx_server(yaml_config(mocks), env=env)
    expected = {f"{c.provider_id}/{m}" for c in CASES for m in c.models}
    wait_until(lambda: expected <= set(listed(server)), timeout=30,
               what=f"every provider's models in /v1/models: {sorted(expected)}")
    return server


def listed(server) -> dict[str, dict]:
    return {m["id"]: m for m in server.get("/v1/models").json()["data"]}


@pytest.fixture
def fresh(mocks):
    for mock in mocks.values():
        mock.clear()
    return mocks


def ask(server, case: Case, text: str, **kwargs):
    return server.client().chat.completions.create(
        model=chat_model(case), messages=[{"role": "user", "content": text}], **kwargs)


# -- model listing ---------------------------------------------------------------------------

def test_every_type_lists_its_upstream_models_with_their_types(server):
    models = listed(server)

    def model_type(model_id: str) -> str:
        return models[model_id]["custom_metadata"]["model_type"]

    assert model_type("tei/BAAI/bge-small-en-v1.5") == "embedding"
    assert model_type("nvidia/nvidia/nv-embedqa-e5-v5") == "embedding"
    assert model_type("mistral/mistral-embed") == "embedding"
    assert model_type("databricks/databricks-gte-large-en") == "embedding"
    assert model_type("gemini/models/text-embedding-004") == "embedding"
    assert model_type("together/model-a") == "llm"
    assert model_type("together/BAAI/bge-base-en-v1.5") == "embedding"
    # NVIDIA adds its configured rerank models to what the upstream lists.
    assert model_type("nvidia/nvidia/nv-rerankqa-mistral-4b-v3") == "rerank"
    assert not any(m.startswith("meta-nokey/") and m != "meta-nokey/m" for m in models)


def test_native_listings_use_each_upstreams_own_route_and_auth(server, mocks):
    anthropic = mocks["anthropic"].last_request("/v1/models")
    assert anthropic.headers["x-api-key"] == config_key("anthropic")
    assert anthropic.headers["anthropic-version"] == "2023-06-01"
    assert "authorization" not in anthropic.headers

    databricks = mocks["databricks"].last_request("/api/2.0/serving-endpoints")
    assert databricks.headers["authorization"] == f"Bearer {config_key('databricks')}"

    tei = mocks["tei"].last_request("/info")
    assert tei.method == "GET"
    assert not mocks["tei"].requests_to("/v1/models")

    together = mocks["together"].last_request("/v1/models")
    assert isinstance(together.response, list)


def test_the_anthropic_listing_follows_pages(server, mocks):
    pages = [r.query for r in mocks["anthropic"].requests_to("/v1/models")]

    assert pages[:2] == ["limit=1000", "limit=1000&after_id=claude-b"]
    assert {f"anthropic/{m}" for m in BY_ID["anthropic"].models} <= set(listed(server))


# -- chat --------------------------------------------------------------------------------------

@pytest.mark.parametrize("provider_id", CHAT)
def test_chat_reaches_the_upstream_with_the_configured_key(server, fresh, provider_id):
    case = BY_ID[provider_id]
    text = f"hello {provider_id}"

    answer = ask(server, case, text)

    assert answer.choices[0].message.content == answer_for(text)
    request = fresh[provider_id].last_request(f"{case.prefix}/chat/completions")
    assert request.headers["authorization"] == f"Bearer {config_key(provider_id)}"
    assert request.json["model"] == case.listed_chat


@pytest.mark.parametrize("provider_id", CHAT)
def test_chat_streams(server, fresh, provider_id):
    case = BY_ID[provider_id]
    text = f"stream from {provider_id} please"

    chunks = list(ask(server, case, text, stream=True,
                      stream_options={"include_usage": True}))

    content = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert content == answer_for(text)
    with_usage = [c for c in chunks if c.usage is not None]
    assert len(with_usage) == 1, [c.usage for c in chunks]
    assert with_usage[0].usage.completion_tokens == len(answer_for(text).split())


def test_gemini_usage_on_every_chunk_becomes_one_final_chunk(server, fresh):
    text = "count my tokens"
    chunks = list(ask(server, BY_ID["gemini"], text, stream=True))

    upstream = fresh["gemini"].last_request("/v1beta/openai/chat/completions")
    assert all("usage" in c for c in upstream.stream_chunks)
    assert [c.usage is not None for c in chunks] == [False] * (len(chunks) - 1) + [True]
    assert chunks[-1].choices == []
    assert chunks[-1].usage.total_tokens == upstream.stream_chunks[-1]["usage"]["total_tokens"]
    assert len(chunks) == len(stream_pieces(answer_for(text))) + 2


@pytest.mark.parametrize("provider_id", WITH_KEY)
def test_the_per_request_key_reaches_the_upstream(server, fresh, provider_id):
    case = BY_ID[provider_id]
    text = f"my own key for {provider_id}"
    data = json.dumps({case.provider_data_key: REQUEST_KEY})

    if case.chat:
        ask(server, case, text, extra_headers={"x-ogx-provider-data": data})
        path = f"{case.prefix}/chat/completions"
    else:
        server.client().embeddings.create(model=embedding_model(case), input=[text],
                                          extra_headers={"x-ogx-provider-data": data})
        path = f"{case.prefix}/embeddings"

    assert fresh[provider_id].last_request(path).headers["authorization"] == \
        f"Bearer {REQUEST_KEY}"


def test_gemini_access_token_mode_sends_the_quota_project(server, fresh):
    server.client().chat.completions.create(
        model="gemini-oauth/models/gemini-2.5-flash",
        messages=[{"role": "user", "content": "oauth"}])

    request = fresh["gemini"].last_request("/v1beta/openai/chat/completions")
    assert request.headers["authorization"] == "Bearer oauth-token-77"
    assert request.headers["x-goog-user-project"] == "quota-proj"


def test_a_provider_without_a_key_names_the_generic_provider_data_key(server, fresh):
    with pytest.raises(openai.BadRequestError) as caught:
        server.client().chat.completions.create(
            model="meta-nokey/m", messages=[{"role": "user", "content": "no key"}])

    assert 'x-ogx-provider-data: {"meta-nokey_api_key": "<API_KEY>"}' in str(caught.value)
    assert not fresh["meta"].requests_to("/v1/chat/completions")


def test_tei_refuses_chat_with_501(server):
    with pytest.raises(openai.APIStatusError) as caught:
        server.client().chat.completions.create(
            model="tei/chat", messages=[{"role": "user", "content": "x"}])

    assert caught.value.status_code == 501
    assert "Text-Embeddings-Inference provider does not support chat completions" in \
        str(caught.value)


# -- what OGX's adapters change in a chat request -------------------------------------------------

def test_anthropic_gets_object_parameters_and_a_strict_schema(server, fresh):
    ask(server, BY_ID["anthropic"], "structured", tools=[
        {"type": "function", "function": {"name": "now", "parameters": {}}}],
        response_format={"type": "json_schema", "json_schema": {"name": "out", "schema": {
            "type": "object", "properties": {"a": {"type": "object", "properties": {}}}}}})

    body = fresh["anthropic"].last_request("/v1/chat/completions").json
    assert body["tools"][0]["function"]["parameters"] == {"type": "object"}
    json_schema = body["response_format"]["json_schema"]
    assert json_schema["strict"] is True
    assert json_schema["schema"]["additionalProperties"] is False
    assert json_schema["schema"]["properties"]["a"]["additionalProperties"] is False


def test_deepseek_refuses_json_schema_before_calling_the_upstream(server, fresh):
    with pytest.raises(openai.BadRequestError) as caught:
        ask(server, BY_ID["deepseek"], "json please", response_format={
            "type": "json_schema", "json_schema": {"name": "x", "schema": {"type": "object"}}})

    assert "DeepSeek does not support response_format type 'json_schema'" in str(caught.value)
    assert not fresh["deepseek"].requests_to("/v1/chat/completions")


# -- completions ---------------------------------------------------------------------------------

@pytest.mark.parametrize("provider_id", [c.provider_id for c in CASES if c.completions])
def test_completions_where_ogx_serves_them(server, fresh, provider_id):
    case = BY_ID[provider_id]
    answer = server.client().completions.create(model=chat_model(case), prompt="once upon")

    assert answer.choices[0].text == answer_for("once upon")
    assert fresh[provider_id].last_request(f"{case.prefix}/completions")


@pytest.mark.parametrize("provider_id, message", [
    ("anthropic", "Anthropic does not support /v1/completions endpoint."),
    ("databricks", "remote::databricks does not support /v1/completions"),
    ("deepseek", "DeepSeek does not support /v1/completions endpoint."),
    ("mistral", "Mistral does not support /v1/completions endpoint."),
    ("tei", "Text-Embeddings-Inference provider does not support completions"),
])
def test_completions_are_501_where_ogx_refuses_them(server, fresh, provider_id, message):
    case = BY_ID[provider_id]
    with pytest.raises(openai.APIStatusError) as caught:
        server.client().completions.create(model=chat_model(case), prompt="x")

    assert caught.value.status_code == 501
    assert message in str(caught.value)
    assert not fresh[provider_id].requests_to(f"{case.prefix}/completions")


# -- embeddings ----------------------------------------------------------------------------------

@pytest.mark.parametrize("provider_id", EMBED)
def test_embeddings_where_ogx_serves_them(server, fresh, provider_id):
    case = BY_ID[provider_id]
    # The OpenAI SDK asks for base64 unless told otherwise, which OGX's Mistral adapter refuses.
    options = {"encoding_format": "float"} if provider_id == "mistral" else {}
    answer = server.client().embeddings.create(model=embedding_model(case),
                                               input=["alpha", "beta"], **options)

    assert [d.index for d in answer.data] == [0, 1]
    assert len(answer.data[0].embedding) == 8
    request = fresh[provider_id].last_request(f"{case.prefix}/embeddings")
    assert request.json["model"] == upstream_embedding(case)
    assert answer.model == embedding_model(case)


@pytest.mark.parametrize("provider_id", NOT_EMBED)
def test_embeddings_are_501_where_ogx_refuses_them(server, fresh, provider_id):
    with pytest.raises(openai.APIStatusError) as caught:
        server.client().embeddings.create(model=embedding_model(BY_ID[provider_id]), input="x")

    assert caught.value.status_code == 501
    assert "DeepSeek does not expose an embeddings endpoint." in str(caught.value)


@pytest.mark.parametrize("provider_id, usage", [("together", -1), ("gemini", 0)])
def test_a_missing_embeddings_usage_is_filled_as_ogx_does(server, fresh, provider_id, usage):
    answer = server.client().embeddings.create(
        model=embedding_model(BY_ID[provider_id]), input="[mock:no-usage] text")

    assert (answer.usage.prompt_tokens, answer.usage.total_tokens) == (usage, usage)


@pytest.mark.parametrize("provider_id, kwargs, message", [
    ("together", {"user": "u1"}, "Together's embeddings endpoint does not support user param."),
    ("together", {"dimensions": 4},
     "Together's embeddings endpoint does not support dimensions param."),
    ("mistral", {"encoding_format": "base64"},
     "Mistral's embeddings endpoint does not support encoding_format='base64'."),
])
def test_embedding_options_the_upstream_rejects_are_400(server, fresh, provider_id, kwargs,
                                                        message):
    case = BY_ID[provider_id]
    with pytest.raises(openai.BadRequestError) as caught:
        server.client().embeddings.create(model=embedding_model(case), input="x", **kwargs)

    assert message in str(caught.value)
    assert not fresh[provider_id].requests_to(f"{case.prefix}/embeddings")


# -- secrets ---------------------------------------------------------------------------------------

def test_configured_keys_never_appear_in_errors_providers_or_the_log(server, fresh):
    bodies = []
    for case in CASES:
        if not case.chat:
            continue
        response = server.post("/v1/chat/completions", json={
            "model": chat_model(case),
            "messages": [{"role": "user", "content": "[mock:error=401] who am i"}]})
        assert response.status_code == 401, (case.provider_id, response.text)
        bodies.append(response.text)
    bodies.append(server.get("/v1/providers").text)
    with pytest.raises(openai.APIStatusError):
        server.client().chat.completions.create(
            model="meta-nokey/m", messages=[{"role": "user", "content": "x"}])

    seen = "\n".join(bodies) + server.output()
    for case in CASES:
        assert config_key(case.provider_id) not in seen, case.provider_id
    assert "oauth-token-77" not in seen
    assert REQUEST_KEY not in server.output()


def test_tei_health_is_its_info_route_and_tokens_are_redacted(server, fresh):
    tei = server.get("/v1/providers/tei").json()
    gemini = server.get("/v1/providers/gemini-oauth").json()

    assert tei["health"]["status"] == "OK", tei["health"]
    assert fresh["tei"].last_request("/info").headers["authorization"] == \
        f"Bearer {config_key('tei')}"
    assert gemini["config"]["access_token"] == "********"
    assert gemini["config"]["project"] == "quota-proj"


# -- configs OGX refuses ---------------------------------------------------------------------------

def test_a_gemini_config_with_both_credentials_is_refused_naming_the_keys(run_ogx, tmp_path):
    config = tmp_path / "gemini.yaml"
    config.write_text("version: 2\ndistro_name: bad\napis: [inference]\nproviders:\n"
                      "  inference:\n  - provider_id: g\n    provider_type: remote::gemini\n"
                      "    config: {api_key: k-123, access_token: t-456, project: p}\n")

    result = run_ogx(["run", "--port", free_port(), config])

    assert result.returncode != 0
    assert "api_key and access_token are mutually exclusive" in result.output
    assert "k-123" not in result.output and "t-456" not in result.output


def test_the_mock_upstream_serves_the_native_routes():
    with MockOpenAI(flavor="anthropic", models=("a", "b", "c"), require_key="k") as mock:
        page = requests.get(f"{mock.url}/v1/models?limit=2", timeout=10,
                            headers={"x-api-key": "k", "anthropic-version": "2023-06-01"}).json()
        assert ([m["id"] for m in page["data"]], page["has_more"]) == (["a", "b"], True)
        rest = requests.get(f"{mock.url}/v1/models?limit=2&after_id=b", timeout=10,
                            headers={"x-api-key": "k", "anthropic-version": "2023-06-01"}).json()
        assert ([m["id"] for m in rest["data"]], rest["has_more"]) == (["c"], False)
        assert requests.get(f"{mock.url}/v1/models", timeout=10,
                            headers={"authorization": "Bearer k",
                                     "anthropic-version": "x"}).status_code == 401
    with MockOpenAI(flavor="tei", models=("e",)) as mock:
        assert requests.get(f"{mock.url}/info", timeout=10).json()["model_id"] == "e"
        assert requests.get(f"{mock.url}/v1/models", timeout=10).status_code == 404
    with MockOpenAI(flavor="databricks", prefix="/serving-endpoints", models=("d",)) as mock:
        answer = requests.get(f"{mock.url}/api/2.0/serving-endpoints", timeout=10).json()
        assert answer["endpoints"][0]["name"] == "d"
        assert mock.base_url.endswith("/serving-endpoints")


# OGX 1.5.0's starter distribution, its entries for these types, verbatim.
STARTER_ENTRIES = """
  - provider_id: together
    provider_type: remote::together
    config:
      base_url: https://api.together.xyz/v1
      api_key: ${env.TOGETHER_API_KEY:=}
  - provider_id: ${env.NVIDIA_API_KEY:+nvidia}
    provider_type: remote::nvidia
    config:
      base_url: ${env.NVIDIA_BASE_URL:=https://integrate.api.nvidia.com/v1}
      api_key: ${env.NVIDIA_API_KEY:=}
  - provider_id: anthropic
    provider_type: remote::anthropic
    config:
      api_key: ${env.ANTHROPIC_API_KEY:=}
  - provider_id: gemini
    provider_type: remote::gemini
    config:
      api_key: ${env.GEMINI_API_KEY:=}
      access_token: ${env.GEMINI_ACCESS_TOKEN:=}
      project: ${env.GEMINI_AI_PROJECT:=}
  - provider_id: meta
    provider_type: remote::meta
    config:
      base_url: https://api.meta.ai/v1
      api_key: ${env.META_API_KEY:=}
  - provider_id: sambanova
    provider_type: remote::sambanova
    config:
      base_url: https://api.sambanova.ai/v1
      api_key: ${env.SAMBANOVA_API_KEY:=}
  - provider_id: ${env.AZURE_API_KEY:+azure}
    provider_type: remote::azure
    config:
      api_key: ${env.AZURE_API_KEY:=}
      base_url: ${env.AZURE_API_BASE:=}
      api_version: ${env.AZURE_API_VERSION:=}
      api_type: ${env.AZURE_API_TYPE:=}
"""


def test_the_starter_entries_start_without_keys_and_ask_for_one(ogx_server):
    server = ogx_server(
        "version: 2\ndistro_name: starter-entries\napis: [inference, models]\n"
        "providers:\n  inference:" + STARTER_ENTRIES +
        "registered_resources:\n  models:\n"
        "  - {model_id: t, provider_id: together, provider_model_id: upstream-t}\n",
        env={"TOGETHER_API_KEY": "", "ANTHROPIC_API_KEY": "", "GEMINI_API_KEY": "",
             "META_API_KEY": "", "SAMBANOVA_API_KEY": "", "NVIDIA_API_KEY": "",
             "AZURE_API_KEY": ""})

    providers = {p["provider_id"] for p in server.get("/v1/providers").json()["data"]}
    assert {"together", "anthropic", "gemini", "meta", "sambanova"} <= providers
    assert not {"nvidia", "azure"} & providers
    with pytest.raises(openai.BadRequestError) as caught:
        server.client().chat.completions.create(
            model="together/t", messages=[{"role": "user", "content": "hi"}])
    assert 'x-ogx-provider-data: {"together_api_key": "<API_KEY>"}' in str(caught.value)
