"""The other `server.auth.provider_config` types of OGX 1.5.0, each against a real HTTP service
on 127.0.0.1 (`mock_auth.py`) and checked on what ogx sent it: token introspection, a custom
auth endpoint, Kubernetes' SelfSubjectReview, GitHub's /user; `upstream_header` with trusted
proxy CIDRs and tenancy; `local_api_key` with `server.quota` (429)."""
from __future__ import annotations

import base64
import json

import openai
import pytest

from mock_auth import AuthServices
from mock_openai import answer_for
from ogx_harness import vllm_config

MODEL = "vllm/my-model"


@pytest.fixture(scope="module")
def services():
    with AuthServices() as running:
        yield running


def start(ogx_server, upstream, server: dict):
    return ogx_server(vllm_config(upstream.base_url, distro_name="auth-providers",
                                  more_sections="server: " + json.dumps(server) + "\n"))


def bearer(token: str) -> dict:
    return {"Authorization": f"Bearer {token}"}


def ask(server, key: str, text: str = "hi") -> str:
    client = server.client(api_key=key, max_retries=0)
    answer = client.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": text}])
    return answer.choices[0].message.content


def test_token_introspection(ogx_server, mock_upstream, services):
    services.introspection_tokens["opaque-alice"] = {"sub": "alice", "groups": ["ml"]}
    server = start(ogx_server, mock_upstream, {"auth": {"provider_config": {
        "type": "oauth2_token",
        "introspection": {"url": f"{services.url}/introspect", "client_id": services.client_id,
                          "client_secret": services.client_secret}}}})
    assert ask(server, "opaque-alice") == answer_for("hi")
    call = [r for r in services.requests if r.path == "/introspect"][-1]
    assert "token=opaque-alice" in call.body.decode()
    assert call.headers["authorization"].startswith("Basic ")
    refused = server.get("/v1/models", headers=bearer("opaque-nobody"))
    assert (refused.status_code, refused.json()["error"]["message"]) == (401, "Token not active")
    missing = server.get("/v1/models")
    assert missing.json()["error"]["message"] == (
        "Authentication required. Please provide a valid OAuth2 Bearer token validated by "
        f"127.0.0.1:{services.port}")
    assert services.client_secret not in server.output()


def test_custom_endpoint_gets_the_request_and_names_the_principal(ogx_server, mock_upstream, services):
    services.custom_keys["key-42"] = {"principal": "team-bot", "attributes": {"teams": ["ml"]}}
    server = start(ogx_server, mock_upstream, {"auth": {"provider_config": {
        "type": "custom", "endpoint": f"{services.url}/custom-auth"}}})
    assert ask(server, "key-42") == answer_for("hi")
    sent = json.loads([r for r in services.requests if r.path == "/custom-auth"][-1].body)
    assert sent["api_key"] == "key-42"
    assert sent["request"]["path"] == "/v1/chat/completions"
    assert "authorization" not in {k.lower() for k in sent["request"]["headers"]}
    server.get("/v1/models?limit=5&limit=6", headers=bearer("key-42"))
    sent = json.loads([r for r in services.requests if r.path == "/custom-auth"][-1].body)
    assert sent["request"]["params"] == {"limit": ["5", "6"]}
    refused = server.get("/v1/models", headers=bearer("key-0"))
    assert (refused.status_code, refused.json()["error"]["message"]) == (
        401, "Authentication failed: 401")
    assert server.get("/v1/models").json()["error"]["message"] == (
        "Authentication required. Please provide your API key as a Bearer token "
        f"(validated by 127.0.0.1:{services.port})")


def test_kubernetes_self_subject_review(ogx_server, mock_upstream, services):
    services.kube_tokens["sa-token"] = {"username": "system:serviceaccount:ml:runner",
                                        "groups": ["system:authenticated"]}
    server = start(ogx_server, mock_upstream, {"auth": {"provider_config": {
        "type": "kubernetes", "api_server_url": services.url}}})
    assert ask(server, "sa-token") == answer_for("hi")
    review = [r for r in services.requests if "selfsubjectreviews" in r.path][-1]
    assert review.headers["authorization"] == "Bearer sa-token"
    assert json.loads(review.body)["kind"] == "SelfSubjectReview"
    refused = server.get("/v1/models", headers=bearer("stolen"))
    assert (refused.status_code, refused.json()["error"]["message"]) == (401, "Invalid token")


def test_github_token(ogx_server, mock_upstream, services):
    services.github_tokens["ghp_alice"] = ({"login": "alice", "id": 7}, ["acme", "oss"])
    server = start(ogx_server, mock_upstream, {"auth": {"provider_config": {
        "type": "github_token", "github_api_base_url": services.url}}})
    assert ask(server, "ghp_alice") == answer_for("hi")
    assert [r.path.split("?")[0] for r in services.requests[-2:]] == ["/user", "/user/orgs"]
    refused = server.get("/v1/models", headers=bearer("ghp_nobody"))
    assert refused.status_code == 401
    assert refused.json()["error"]["message"].startswith("GitHub token validation failed")


def test_upstream_header_from_an_untrusted_address_is_403(ogx_server, mock_upstream):
    server = start(ogx_server, mock_upstream, {"auth": {"provider_config": {
        "type": "upstream_header", "principal_header": "X-Auth-User",
        "trusted_proxy_cidrs": ["10.0.0.0/8"]}}})
    refused = server.get("/v1/models", headers={"X-Auth-User": "mallory"})
    assert refused.status_code == 403
    assert refused.json()["error"]["message"] == (
        "Request rejected: client IP is not in trusted proxy CIDR allowlist")
    assert server.get("/v1/health").status_code == 200


def test_upstream_header_with_multi_tenancy_separates_tenants(ogx_server, mock_upstream):
    server = start(ogx_server, mock_upstream, {
        "auth": {"provider_config": {
            "type": "upstream_header", "principal_header": "X-Auth-User",
            "tenant_header": "X-Tenant", "attribute_headers": {"X-Groups": "teams"},
            "trusted_proxy_cidrs": ["127.0.0.0/8", "::1/128"]}},
        "tenancy": {"mode": "multi"}})
    no_tenant = server.get("/v1/models", headers={"X-Auth-User": "alice"})
    assert no_tenant.status_code == 401
    assert no_tenant.json()["error"]["message"] == (
        "Tenant context required but not resolved from authentication")
    missing = server.get("/v1/models", headers={"X-Tenant": "acme"})
    assert missing.json()["error"]["message"] == "Missing required authentication header: X-Auth-User"
    acme = server.client(api_key="unused", max_retries=0,
                         default_headers={"X-Auth-User": "alice", "X-Tenant": "Acme",
                                          "X-Groups": "[\"ml\"]"})
    other = server.client(api_key="unused", max_retries=0,
                          default_headers={"X-Auth-User": "alice", "X-Tenant": "globex",
                                           "X-Groups": "[\"ml\"]"})
    made = acme.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "x"}])
    for _ in range(200):
        if made.id in [c.id for c in acme.chat.completions.list().data]:
            break
        import time
        time.sleep(0.05)
    assert acme.chat.completions.retrieve(made.id).id == made.id
    # Same principal, same team, other tenant: the row does not exist there.
    with pytest.raises(openai.NotFoundError):
        other.chat.completions.retrieve(made.id)
    assert other.chat.completions.list().data == []


def test_local_api_keys_with_a_daily_quota(ogx_server, mock_upstream, tmp_path):
    server = start(ogx_server, mock_upstream, {
        "auth": {"provider_config": {"type": "local_api_key", "api_keys": ["ogk_one", "ogk_two"]}},
        "quota": {"kvstore": {"backend": "kv_default", "namespace": "quota"},
                  "authenticated_max_requests": 3, "anonymous_max_requests": 1}})
    refused = server.get("/v1/models", headers=bearer("ogk_wrong"))
    assert (refused.status_code, refused.json()["error"]["message"]) == (
        401, "Invalid or missing API key")
    for _ in range(3):
        assert ask(server, "ogk_one") == answer_for("hi")
    with pytest.raises(openai.RateLimitError) as limited:
        ask(server, "ogk_one")
    assert limited.value.body == {"message": "Quota exceeded"}
    # The other key has its own count; probes are never counted.
    assert ask(server, "ogk_two") == answer_for("hi")
    for _ in range(3):
        assert server.get("/v1/health").status_code == 200
    kv = (server.config_path.parent / "kvstore.db").read_bytes()
    assert b"ogk_one" not in kv, "the key never lands in the counters' store"
