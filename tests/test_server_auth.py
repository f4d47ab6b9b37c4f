"""OGX 1.5.0's server security, as a platform team sets it up and its users meet it: bearer JWTs
checked against a JWKS issuer (keys generated per run, rotated mid-test; expired, wrong
audience, wrong issuer, forged, `alg: none` and huge tokens refused), the route policy, stored
chat completions visible only to those the access policy lets read them, a browser's CORS
preflight, and an issuer that is down (503). Every refusal leaves the server serving."""
from __future__ import annotations

import json
import sqlite3
import time

import openai
import pytest
import requests

from mock_auth import AUDIENCE, ISSUER, AuthServices
from mock_openai import answer_for
from ogx_harness import free_port, vllm_config

MODEL = "vllm/my-model"


def server_yaml(server: dict) -> str:
    return "server: " + json.dumps(server) + "\n"


def oauth2(services: AuthServices, **extra) -> dict:
    return {"type": "oauth2_token", "issuer": ISSUER, "audience": AUDIENCE,
            "jwks": {"uri": f"{services.url}/jwks"}, **extra}


@pytest.fixture(scope="module")
def services():
    with AuthServices() as running:
        yield running


@pytest.fixture(scope="module")
def jwks_server(module_ogx_server, module_mock_upstream, services):
    auth = {
        "provider_config": oauth2(services, claims_mapping={
            "sub": "roles", "roles": "roles", "groups": "teams"}),
        "route_policy": [
            {"forbid": {"paths": "/v1/providers*"}, "unless": "user with admin in roles",
             "description": "only admins see the providers"},
            {"permit": {"paths": "*"}},
        ],
    }
    cors = {"allow_origins": ["https://chat.example"], "allow_methods": ["GET", "POST"],
            "allow_headers": ["Authorization"], "expose_headers": ["x-request-id"]}
    config = vllm_config(module_mock_upstream.base_url, distro_name="auth-e2e",
                         more_sections=server_yaml({"auth": auth, "cors": cors}))
    return module_ogx_server(config)


def bearer(token: str) -> dict:
    return {"Authorization": f"Bearer {token}"}


def chat(server, token: str, text: str = "hello"):
    client = server.client(api_key=token, max_retries=0)
    return client.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": text}])


def assert_serving(server, services) -> None:
    """A good token still gets an answer."""
    assert chat(server, services.sign(services.claims("alice")), "still there?").choices[0] \
        .message.content == answer_for("still there?")


def test_public_routes_need_no_token_and_others_say_how_to_authenticate(jwks_server, services):
    assert jwks_server.get("/v1/health").json() == {"status": "OK"}
    assert jwks_server.get("/v1/version").status_code == 200
    missing = jwks_server.get("/v1/models")
    assert missing.status_code == 401
    assert missing.json() == {"error": {"message":
        f"Authentication required. Please provide a valid OAuth2 Bearer token from {ISSUER}"}}
    basic = jwks_server.get("/v1/models", headers={"Authorization": "Basic YWxpY2U6cHc="})
    assert basic.status_code == 401
    assert basic.json()["error"]["message"] == "Invalid Authorization header format"
    # Anthropic's and Google's key headers are not credentials in OGX.
    assert jwks_server.get("/v1/models", headers={"x-api-key": services.sign(
        services.claims("alice"))}).status_code == 401


def test_a_valid_token_is_served_and_every_bad_one_is_refused(jwks_server, services):
    good = services.claims("alice")
    assert chat(jwks_server, services.sign(good)).choices[0].message.content == answer_for("hello")
    now = int(time.time())
    bad_tokens = {
        "expired": services.sign({**good, "iat": now - 600, "exp": now - 60}),
        "not yet valid": services.sign({**good, "nbf": now + 600}),
        "wrong audience": services.sign({**good, "aud": "someone-else"}),
        "no audience": services.sign({k: v for k, v in good.items() if k != "aud"}),
        "wrong issuer": services.sign({**good, "iss": "https://evil.test"}),
        "forged signature": services.forge(good),
        "alg none": services.unsigned(good),
        "huge": services.sign({**good, "padding": "x" * 20_000}),
        "not a JWT": "opaque-token",
    }
    for what, token in bad_tokens.items():
        with pytest.raises(openai.AuthenticationError) as refused:
            chat(jwks_server, token)
        assert refused.value.status_code == 401, what
        assert refused.value.body == {"message": "Invalid JWT token"}, what
        assert_serving(jwks_server, services)


def test_a_rotated_key_is_fetched_and_the_old_one_no_longer_verifies(jwks_server, services):
    old = services.sign(services.claims("alice"))
    assert jwks_server.get("/v1/models", headers=bearer(old)).status_code == 200
    fetched = len([r for r in services.requests if r.path == "/jwks"])
    assert jwks_server.get("/v1/models", headers=bearer(old)).status_code == 200
    assert len([r for r in services.requests if r.path == "/jwks"]) == fetched, "keys are cached"
    services.rotate()
    # An unknown key id refetches the set at most once a second.
    time.sleep(1.1)
    new = services.sign(services.claims("alice"))
    assert jwks_server.get("/v1/models", headers=bearer(new)).status_code == 200
    assert jwks_server.get("/v1/models", headers=bearer(old)).status_code == 401


def test_the_route_policy_forbids_providers_to_non_admins(jwks_server, services):
    dev = services.sign(services.claims("dev", groups=["ml"]))
    admin = services.sign(services.claims("root", roles=["admin"]))
    denied = jwks_server.get("/v1/providers", headers=bearer(dev))
    assert denied.status_code == 403
    assert denied.json() == {"error": {"message":
        "Access denied: insufficient permissions for route /v1/providers"}}
    assert jwks_server.get("/v1/providers", headers=bearer(admin)).status_code == 200
    assert jwks_server.get("/v1/models", headers=bearer(dev)).status_code == 200


def test_stored_completions_are_seen_only_by_those_the_policy_lets_read_them(jwks_server, services):
    alice = services.sign(services.claims("alice", groups=["ml"]))
    teammate = services.sign(services.claims("carol", groups=["ml"]))
    stranger = services.sign(services.claims("bob", groups=["web"]))
    mine = chat(jwks_server, alice, "a secret plan")
    owner = openai.OpenAI(base_url=jwks_server.url + "/v1", api_key=alice, max_retries=0)
    deadline = time.monotonic() + 10
    while True:
        try:
            owner.chat.completions.retrieve(mine.id)
            break
        except openai.NotFoundError:
            assert time.monotonic() < deadline, "the completion was never stored"
            time.sleep(0.05)
    team = openai.OpenAI(base_url=jwks_server.url + "/v1", api_key=teammate, max_retries=0)
    assert team.chat.completions.retrieve(mine.id).id == mine.id
    other = openai.OpenAI(base_url=jwks_server.url + "/v1", api_key=stranger, max_retries=0)
    with pytest.raises(openai.NotFoundError):
        other.chat.completions.retrieve(mine.id)
    with pytest.raises(openai.NotFoundError):
        other.chat.completions.messages.list(mine.id)
    assert mine.id not in [c.id for c in other.chat.completions.list(limit=100).data]
    assert mine.id in [c.id for c in owner.chat.completions.list(limit=100).data]
    # The row records its owner as OGX writes it.
    db = jwks_server.config_path.parent / "sql_store.db"
    with sqlite3.connect(db) as connection:
        principal, attributes = connection.execute(
            "SELECT owner_principal, access_attributes FROM inference_store WHERE id = ?",
            (mine.id,)).fetchone()
    assert principal == "alice"
    assert json.loads(attributes) == {"roles": ["alice"], "teams": ["ml"]}


def test_a_browser_preflight_is_answered_without_credentials(jwks_server, services):
    browser = {"Origin": "https://chat.example", "Access-Control-Request-Method": "POST",
               "Access-Control-Request-Headers": "authorization,content-type",
               "Sec-Fetch-Mode": "cors", "User-Agent": "Mozilla/5.0"}
    preflight = requests.options(jwks_server.url + "/v1/chat/completions", headers=browser,
                                 timeout=10)
    assert preflight.status_code == 200, preflight.text
    assert preflight.headers["access-control-allow-origin"] == "https://chat.example"
    assert set(preflight.headers["access-control-allow-methods"].split(", ")) == {"GET", "POST"}
    assert "authorization" in preflight.headers["access-control-allow-headers"]
    refused = requests.options(jwks_server.url + "/v1/chat/completions",
                               headers={**browser, "Origin": "https://evil.example"}, timeout=10)
    assert refused.status_code == 400
    assert refused.text == "Disallowed CORS origin"
    assert "access-control-allow-origin" not in refused.headers
    answered = jwks_server.get("/v1/models", headers={
        "Origin": "https://chat.example", **bearer(services.sign(services.claims("alice")))})
    assert answered.headers["access-control-allow-origin"] == "https://chat.example"
    assert answered.headers["access-control-expose-headers"] == "x-request-id"


def test_an_unreachable_issuer_is_503_and_health_stays_up(ogx_server, mock_upstream, services):
    dead = f"http://127.0.0.1:{free_port()}"
    config = vllm_config(mock_upstream.base_url, distro_name="auth-down", more_sections=server_yaml(
        {"auth": {"provider_config": {**oauth2(services), "jwks": {"uri": f"{dead}/jwks"}}}}))
    server = ogx_server(config)
    token = services.sign(services.claims("alice"))
    for _ in range(2):
        answer = server.get("/v1/models", headers=bearer(token))
        assert answer.status_code == 503
        assert answer.json() == {"error": {"message": "Authentication service unavailable"}}
        assert server.get("/v1/health").status_code == 200
    assert token not in server.output()
