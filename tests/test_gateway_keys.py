"""Gateway keys as a platform team and its users see them: an admin creates, lists, rotates,
disables and deletes keys through `/v1/admin/keys` (the secret shown once, its SHA-256 stored);
users call ogx with them from the OpenAI, Anthropic and Google SDKs; ogx enforces each key's
model patterns, request and token limits and budget (429 with Retry-After, 402 when configured),
counts streamed answers' tokens, and keeps serving after every refusal. Two replicas on one
Redis, and on one PostgreSQL database, enforce one request limit together: of 200 concurrent
requests against a limit of 50, exactly 50 pass. Every socket ogx holds is to 127.0.0.1."""
from __future__ import annotations

import hashlib
import sqlite3
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import anthropic
import openai
import pytest
import requests
from google import genai
from google.genai import types as genai_types

from mock_openai import answer_for
from ogx_harness import MESSAGES_PROVIDER, MY_MODEL, RegisteredModel, vllm_config
from postgres_server import PASSWORD, USER

MODEL = "vllm/my-model"
OTHER_MODEL = "vllm/other-model"
ADMIN_KEY = "bootstrap-admin-secret-for-tests"
ADMIN_ENV = {"OGX_GATEWAY_ADMIN_KEY": ADMIN_KEY}
PROMPT = "one two three"
# The mock's usage for PROMPT: 3 prompt words, and "You said: one two three" is 5 words.
TOKENS_PER_CALL = 3 + 5
# 3 × 1000 + 5 × 2000 per million tokens, with the price table below.
COST_PER_CALL = 0.013


def gateway_section(backend: str = "kv_default", *, required: bool = False,
                    over_budget_status: int = 402) -> str:
    return f"""
gateway_keys:
  store: {{backend: {backend}}}
  required: {str(required).lower()}
  over_budget_status: {over_budget_status}
  prices:
    "vllm/*": {{input: 1000, output: 2000}}
"""


def config(upstream_url: str, more: str) -> str:
    # The mock speaks chat completions only: /v1/messages is served by translation.
    return vllm_config(upstream_url, distro_name="gateway-keys-e2e",
                       apis=("inference", "models", "messages"), more_providers=MESSAGES_PROVIDER,
                       extra_provider_config={"native_messages": False},
                       models=(MY_MODEL, RegisteredModel("other-model", "upstream-other")),
                       more_sections=more)


def admin(server, method: str, path: str, **kwargs) -> requests.Response:
    headers = {"Authorization": f"Bearer {ADMIN_KEY}"}
    return requests.request(method, server.url + path, headers=headers, timeout=30, **kwargs)


def create_key(server, **settings) -> dict:
    settings.setdefault("owner", "team-a")
    created = admin(server, "POST", "/v1/admin/keys", json=settings)
    assert created.status_code == 200, created.text
    return created.json()


def chat(server, secret: str, model: str = MODEL, **kwargs) -> requests.Response:
    return server.post("/v1/chat/completions", headers={"Authorization": f"Bearer {secret}"},
                       json={"model": model, "messages": [{"role": "user", "content": PROMPT}],
                             **kwargs})


def usage_of(server, key_id: str, requests_served: int) -> dict:
    """The key's usage once `requests_served` answers were counted (counting follows the
    answer on a task of its own)."""
    deadline = time.monotonic() + 10
    while True:
        usage = admin(server, "GET", f"/v1/admin/keys/{key_id}/usage").json()
        if usage["requests"] >= requests_served or time.monotonic() > deadline:
            assert usage["requests"] == requests_served, usage
            return usage
        time.sleep(0.05)


def loopback_only(server) -> None:
    """Every TCP socket the ogx process holds is connected to (or listening on) loopback."""
    pid = server.proc.pid
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = fd.readlink().as_posix()
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    remotes = []
    for table in ("tcp", "tcp6"):
        for line in Path(f"/proc/{pid}/net/{table}").read_text().splitlines()[1:]:
            fields = line.split()
            if fields[9] in inodes:
                remotes.append(fields[2].split(":")[0])
    loopback = {"00000000", "0100007F", "00000000000000000000000000000000",
                "00000000000000000000000001000000", "0000000000000000FFFF00000100007F"}
    assert remotes and set(remotes) <= loopback, remotes


def assert_no_key_in(response: requests.Response, *secrets: str) -> None:
    for secret in secrets:
        assert secret not in response.text and secret not in str(response.headers)


@pytest.fixture(scope="module")
def server(module_ogx_server, module_mock_upstream):
    return module_ogx_server(config(module_mock_upstream.base_url, gateway_section()),
                             env=ADMIN_ENV)


def test_admin_lifecycle_shows_the_secret_once_stores_its_hash_and_rotation_retires_it(server):
    assert server.get("/v1/admin/keys").status_code == 401
    created = create_key(server, name="ci", models=["vllm/*"])
    secret, key_id = created["secret"], created["id"]
    assert secret.startswith("sk-ogx-") and len(secret) == len("sk-ogx-") + 64
    assert created["secret_hint"] == "sk-ogx-..." + secret[-4:]
    assert chat(server, secret).status_code == 200

    # Listed and read without the secret or its hash.
    listed = admin(server, "GET", "/v1/admin/keys")
    assert key_id in [k["id"] for k in listed.json()["data"]]
    got = admin(server, "GET", f"/v1/admin/keys/{key_id}")
    digest = hashlib.sha256(secret.encode()).hexdigest()
    for answer in (listed, got):
        assert secret not in answer.text and digest not in answer.text
    assert got.json()["owner"] == "team-a" and got.json()["models"] == ["vllm/*"]

    # The store holds the SHA-256, never the secret.
    db = server.config_path.parent / "kvstore.db"
    with sqlite3.connect(db) as conn:
        row = conn.execute("SELECT secret_hash, record FROM ogx_gateway_keys WHERE key_id = ?",
                           (key_id,)).fetchone()
    assert row[0] == digest and secret not in row[1]
    assert secret.encode() not in db.read_bytes()

    # A gateway key is no admin credential.
    as_key = requests.get(server.url + "/v1/admin/keys", headers={"Authorization": f"Bearer {secret}"})
    assert as_key.status_code == 401

    rotated = admin(server, "POST", f"/v1/admin/keys/{key_id}/rotate").json()
    new_secret = rotated["secret"]
    assert new_secret != secret and rotated["id"] == key_id
    old = chat(server, secret)
    assert old.status_code == 401 and old.json()["error"]["code"] == "invalid_api_key"
    assert chat(server, new_secret).status_code == 200

    assert admin(server, "POST", f"/v1/admin/keys/{key_id}/disable").json()["disabled"] is True
    disabled = chat(server, new_secret)
    assert disabled.status_code == 401 and "disabled" in disabled.json()["error"]["message"]
    admin(server, "POST", f"/v1/admin/keys/{key_id}/enable")
    assert chat(server, new_secret).status_code == 200

    expired = create_key(server, expires_at=int(time.time()) - 1)
    answer = chat(server, expired["secret"])
    assert answer.status_code == 401 and "expired" in answer.json()["error"]["message"]

    deleted = admin(server, "DELETE", f"/v1/admin/keys/{key_id}")
    assert deleted.json() == {"id": key_id, "object": "gateway_key.deleted", "deleted": True}
    assert chat(server, new_secret).status_code == 401
    assert admin(server, "GET", f"/v1/admin/keys/{key_id}").status_code == 404
    bad = admin(server, "POST", "/v1/admin/keys", json={"owner": "x", "limit": {}})
    assert bad.status_code == 400 and "unknown field `limit`" in bad.json()["error"]["message"]
    for answer in (old, disabled, deleted):
        assert_no_key_in(answer, secret, new_secret)
    assert server.get("/v1/health").status_code == 200


def test_keys_work_from_the_openai_and_anthropic_sdks_and_the_google_header(
        server, module_mock_upstream):
    secret = create_key(server)["secret"]
    client = openai.OpenAI(base_url=server.url + "/v1", api_key=secret, max_retries=0)
    answer = client.chat.completions.create(
        model=MODEL, messages=[{"role": "user", "content": PROMPT}])
    assert answer.choices[0].message.content == answer_for(PROMPT)
    # The upstream gets the provider's own key; the gateway key goes no further.
    sent = module_mock_upstream.last_request("/v1/chat/completions")
    assert sent.headers["authorization"] == "Bearer fake-token"
    assert secret not in str(sent.headers) and secret not in str(sent.json)

    claude = anthropic.Anthropic(base_url=server.url, api_key=secret, max_retries=0)
    message = claude.messages.create(model=MODEL, max_tokens=50,
                                     messages=[{"role": "user", "content": PROMPT}])
    assert message.content[0].text == answer_for(PROMPT)

    google = server.post("/v1/chat/completions", headers={"x-goog-api-key": secret},
                         json={"model": MODEL, "messages": [{"role": "user", "content": PROMPT}]})
    assert google.status_code == 200

    wrong = "sk-ogx-" + "0" * 64
    with pytest.raises(openai.AuthenticationError) as refused:
        openai.OpenAI(base_url=server.url + "/v1", api_key=wrong, max_retries=0) \
            .chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "hi"}])
    assert refused.value.body["code"] == "invalid_api_key"
    with pytest.raises(anthropic.AuthenticationError) as refused:
        anthropic.Anthropic(base_url=server.url, api_key=wrong, max_retries=0).messages.create(
            model=MODEL, max_tokens=5, messages=[{"role": "user", "content": "hi"}])
    assert refused.value.body == {"type": "error", "error": {
        "type": "authentication_error",
        "message": "Invalid gateway key. Check the key you send, or ask your gateway's admin for one."}}
    assert wrong not in str(refused.value.body)
    # Other credentials pass on untouched when keys are not required.
    assert server.post("/v1/chat/completions", headers={"Authorization": "Bearer not-a-gateway-key"},
                       json={"model": MODEL, "messages": [{"role": "user", "content": "hi"}]}
                       ).status_code == 200


def test_model_patterns_allow_and_refuse(server):
    key = create_key(server, models=["vllm/my-*"])
    assert chat(server, key["secret"]).status_code == 200
    refused = chat(server, key["secret"], model=OTHER_MODEL)
    assert refused.status_code == 403
    assert refused.json()["error"] == {
        "message": "This gateway key may not call model 'vllm/other-model'. Use a model your key allows.",
        "type": "invalid_request_error", "param": None, "code": "model_not_allowed"}
    assert key["id"] not in refused.text
    embeddings = server.post("/v1/embeddings", headers={"x-api-key": key["secret"]},
                             json={"model": OTHER_MODEL, "input": "x"})
    assert embeddings.status_code == 403


def test_a_request_limit_answers_429_with_retry_after_and_the_server_keeps_serving(server):
    key = create_key(server, limits={"requests_per_day": 3})
    for _ in range(3):
        assert chat(server, key["secret"]).status_code == 200
    refused = chat(server, key["secret"])
    assert refused.status_code == 429
    assert 1 <= int(refused.headers["Retry-After"]) <= 86_400
    error = refused.json()["error"]
    assert error["code"] == "rate_limit_exceeded" and error["type"] == "requests"
    assert error["message"].startswith("Rate limit reached: 3 requests per day for this key.")
    assert_no_key_in(refused, key["secret"], key["id"])
    # The Anthropic SDK sees its own error shape, with the same Retry-After.
    with pytest.raises(anthropic.RateLimitError) as limited:
        anthropic.Anthropic(base_url=server.url, api_key=key["secret"], max_retries=0) \
            .messages.create(model=MODEL, max_tokens=5, messages=[{"role": "user", "content": "hi"}])
    assert limited.value.body["error"]["type"] == "rate_limit_error"
    # The same window's end (a second may have passed between the two answers).
    assert int(refused.headers["Retry-After"]) - int(limited.value.response.headers["retry-after"]) in (0, 1)
    # Other keys and the server are unaffected.
    assert chat(server, create_key(server)["secret"]).status_code == 200
    assert server.get("/v1/health").status_code == 200
    usage = usage_of(server, key["id"], 3)
    assert usage["limits"]["requests_per_day"]["limit"] == 3


def stream_without_usage(server, secret: str) -> list:
    client = openai.OpenAI(base_url=server.url + "/v1", api_key=secret, max_retries=0)
    return list(client.chat.completions.create(
        model=MODEL, messages=[{"role": "user", "content": PROMPT}], stream=True))


def test_streamed_answers_count_tokens_until_the_token_limit(server, module_mock_upstream):
    key = create_key(server, limits={"tokens_per_day": 2 * TOKENS_PER_CALL + 1})
    for served in (1, 2, 3):
        chunks = stream_without_usage(server, key["secret"])
        # ogx asked upstream for usage, and the client, who did not, sees no usage chunk.
        assert module_mock_upstream.last_request("/v1/chat/completions").json[
            "stream_options"] == {"include_usage": True}
        assert all(c.usage is None for c in chunks) and all(c.choices for c in chunks)
        assert "".join(c.choices[0].delta.content or "" for c in chunks) == answer_for(PROMPT)
        usage_of(server, key["id"], served)
    refused = chat(server, key["secret"], stream=True)
    assert refused.status_code == 429 and refused.json()["error"]["type"] == "tokens"
    usage = usage_of(server, key["id"], 3)
    assert (usage["input_tokens"], usage["output_tokens"]) == (9, 15)
    assert usage["limits"]["tokens_per_day"]["used"] == 3 * TOKENS_PER_CALL

    # A client that asks for usage still gets its usage chunk.
    other = create_key(server)
    client = openai.OpenAI(base_url=server.url + "/v1", api_key=other["secret"], max_retries=0)
    chunks = list(client.chat.completions.create(
        model=MODEL, messages=[{"role": "user", "content": PROMPT}], stream=True,
        stream_options={"include_usage": True}))
    assert chunks[-1].usage.total_tokens == TOKENS_PER_CALL


def test_a_budget_spent_by_streamed_answers_answers_402_naming_the_budget(server):
    key = create_key(server, budget={"amount": 0.03, "period": "day"})
    for served in (1, 2, 3):
        stream_without_usage(server, key["secret"])
        usage_of(server, key["id"], served)
    refused = chat(server, key["secret"], stream=True)
    assert refused.status_code == 402
    error = refused.json()["error"]
    assert error["code"] == "insufficient_quota"
    assert error["message"].startswith("Budget exceeded: the daily budget of 0.03 for this key is spent")
    assert_no_key_in(refused, key["secret"], key["id"])
    # Streamed Messages answers count too, and are refused in Anthropic's shape.
    with pytest.raises(anthropic.APIStatusError) as over:
        with anthropic.Anthropic(base_url=server.url, api_key=key["secret"], max_retries=0) \
                .messages.stream(model=MODEL, max_tokens=5,
                                 messages=[{"role": "user", "content": "hi"}]) as stream:
            list(stream)
    assert over.value.status_code == 402 and over.value.body["error"]["type"] == "billing_error"
    usage = usage_of(server, key["id"], 3)
    assert usage["spend"] == pytest.approx(3 * COST_PER_CALL)
    assert usage["limits"]["budget"]["used"] == pytest.approx(3 * COST_PER_CALL)
    all_usage = admin(server, "GET", "/v1/admin/usage").json()["data"]
    assert key["id"] in [u["key_id"] for u in all_usage]

    messages_key = create_key(server)
    with anthropic.Anthropic(base_url=server.url, api_key=messages_key["secret"],
                             max_retries=0).messages.stream(
            model=MODEL, max_tokens=50, messages=[{"role": "user", "content": PROMPT}]) as stream:
        assert stream.get_final_text() == answer_for(PROMPT)
    usage = usage_of(server, messages_key["id"], 1)
    assert (usage["input_tokens"], usage["output_tokens"]) == (3, 5)
    assert server.get("/v1/health").status_code == 200
    loopback_only(server)


# -- two replicas, one limit ----------------------------------------------------------------

LIMIT = 50
ATTEMPTS = 200


def race(replicas, secret: str) -> dict[int, int]:
    """ATTEMPTS concurrent chat requests with `secret`, alternating between the replicas;
    answers {status: count}."""
    def one(n: int) -> int:
        return chat(replicas[n % len(replicas)], secret).status_code
    with ThreadPoolExecutor(max_workers=40) as pool:
        statuses = list(pool.map(one, range(ATTEMPTS)))
    return {status: statuses.count(status) for status in set(statuses)}


def shared_limit_holds(first, second) -> None:
    key = create_key(first, limits={"requests_per_day": LIMIT})
    # The key made on one replica works on the other.
    assert chat(second, key["secret"]).status_code == 200
    counts = race([first, second], key["secret"])
    print(f"{ATTEMPTS} concurrent requests, limit {LIMIT} (1 used before), two replicas: {counts}")
    assert counts == {200: LIMIT - 1, 429: ATTEMPTS - LIMIT + 1}, counts
    for replica in (first, second):
        assert replica.get("/v1/health").status_code == 200
        loopback_only(replica)
    assert usage_of(second, key["id"], LIMIT)["limits"]["requests_per_day"]["used"] == ATTEMPTS + 1


def test_two_replicas_on_redis_enforce_one_limit_and_require_keys(
        ogx_server, mock_upstream, redis, tmp_path):
    storage_more = gateway_section("kv_redis", required=True) + f"""
storage:
  backends:
    kv_default: {{type: kv_sqlite, db_path: {tmp_path}/kv.db}}
    sql_default: {{type: sql_sqlite, db_path: {tmp_path}/sql.db}}
    kv_redis: {{type: kv_redis, host: 127.0.0.1, port: {redis.port}}}
  stores:
    metadata: {{backend: kv_default, namespace: registry}}
    inference: {{backend: sql_default, table_name: inference_store}}
"""
    text = config(mock_upstream.base_url, storage_more)
    first = ogx_server(text, env=ADMIN_ENV)
    second = ogx_server(text, env=ADMIN_ENV)
    shared_limit_holds(first, second)
    assert redis.command("EXISTS", "ogx:gateway_keys:keys") == 1

    # Keys required: no key is a 401, the public routes stay open.
    missing = first.post("/v1/chat/completions", json={"model": MODEL, "messages": []})
    assert missing.status_code == 401 and missing.json()["error"]["code"] == "missing_api_key"
    assert first.get("/v1/version").status_code == 200
    # The Google SDK sends its key as x-goog-api-key.
    secret = create_key(second)["secret"]
    google = genai.Client(api_key=secret, http_options=genai_types.HttpOptions(
        base_url=first.url, api_version="v1", timeout=30000))
    assert "models/vllm/my-model" in [m.name for m in google.models.list()]
    wrong = genai.Client(api_key="sk-ogx-wrong", http_options=genai_types.HttpOptions(
        base_url=first.url, api_version="v1", timeout=30000))
    with pytest.raises(genai.errors.ClientError) as refused:
        list(wrong.models.list())
    assert refused.value.code == 401


def test_two_replicas_on_postgresql_enforce_one_limit(ogx_server, mock_upstream, postgres):
    server = f"host: 127.0.0.1, port: {postgres.port}, db: {postgres.new_database()}, user: {USER}, password: '{PASSWORD}'"
    storage_more = gateway_section("kv_default") + f"""
storage:
  backends:
    kv_default: {{type: kv_postgres, {server}, ssl_mode: disable}}
    sql_default: {{type: sql_postgres, {server}, pool_size: 4, max_overflow: 0}}
  stores:
    metadata: {{backend: kv_default, namespace: registry}}
    inference: {{backend: sql_default, table_name: inference_store}}
"""
    text = config(mock_upstream.base_url, storage_more)
    first = ogx_server(text, env=ADMIN_ENV)
    second = ogx_server(text, env=ADMIN_ENV)
    shared_limit_holds(first, second)


def test_admin_reload_applies_the_config_for_admins_only_and_refuses_a_broken_one(
        ogx_server, module_mock_upstream):
    """`POST /v1/admin/reload` re-reads the config as SIGHUP does: an admin's call applies a new
    model; anyone else is refused; a broken config is refused with start-up's message and the
    running config keeps serving."""
    upstream = module_mock_upstream.base_url
    server = ogx_server(config(upstream, gateway_section()), env=ADMIN_ENV)
    assert requests.post(server.url + "/v1/admin/reload", timeout=30).status_code == 401
    holder = create_key(server)["secret"]
    refused = requests.post(server.url + "/v1/admin/reload", timeout=30,
                            headers={"Authorization": f"Bearer {holder}"})
    # A gateway key never makes its holder an admin.
    assert refused.status_code == 401 and "admin" in refused.json()["error"]["message"], refused.text

    assert server.get("/v1/models/vllm/third-model").status_code == 404
    grown = vllm_config(upstream, distro_name="gateway-keys-e2e",
                        apis=("inference", "models", "messages"),
                        more_providers=MESSAGES_PROVIDER,
                        extra_provider_config={"native_messages": False},
                        models=(MY_MODEL, RegisteredModel("third-model", "upstream-third")),
                        more_sections=gateway_section())
    server.config_path.write_text(grown)
    applied = admin(server, "POST", "/v1/admin/reload")
    assert applied.status_code == 200, applied.text
    assert applied.json()["status"] == "applied"
    assert "vllm/third-model" in applied.json()["report"]["models_registered"], applied.json()
    assert chat(server, holder, model="vllm/third-model").status_code == 200

    server.config_path.write_text(grown.replace("providers:", "providers: [oops", 1))
    broken = admin(server, "POST", "/v1/admin/reload")
    assert broken.status_code == 400, broken.text
    assert "config refused, the running config stays" in broken.json()["error"]["message"]
    assert chat(server, holder, model="vllm/third-model").status_code == 200
    assert ADMIN_KEY not in server.output()
