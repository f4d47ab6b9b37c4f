"""The seed post's session with SigV4: ogx signs Bedrock requests with the AWS identity the
machine has (static keys, a profile, web identity, an assumed role), refreshes temporary
credentials before they expire, and says what to do when there is no identity at all.

Upstream is tests/mock_bedrock.py (which verifies every signature with botocore), STS is moto
behind a recorder (aws_fixtures.py); ogx reaches both through AWS_ENDPOINT_URL_*."""

from __future__ import annotations

import datetime as dt
import time

import pytest

from aws_fixtures import (MODEL_ID, REFRESH_ADVISORY_ENV, REFRESH_MANDATORY_ENV, REGION,
                          ROLE_ARN, STATIC_KEYS, bedrock_mock, endpoint_env,  # noqa: F401
                          static_keys_env, sts)
from bedrock_session import (POST_CONFIG, QUESTION, SEED_CONFIG_PATH, config_with, content_of,
                             curl_chat, first_model_id, listed_ids_once_refreshed,
                             openai_session, streamed_chunks)
from mock_bedrock import REASONING_TEXT, answer_for
from ogx_harness import error_message_of, wait_until

CREDENTIALS_UNRESOLVED = ("Authentication failed because the server could not resolve AWS "
                          "credentials. Please verify that the server has valid AWS credentials "
                          "configured.")
SIGV4_REJECTED = ("Authentication failed because the configured cloud credentials could not "
                  "authorize this request. Please verify that the credentials available to the "
                  "server are valid, unexpired, and allowed to access the requested model.")
FORBIDDEN_IN_MESSAGES = ("Bedrock", "x-ogx-provider-data", "AWS_ROLE_ARN",
                         "AWS_BEARER_TOKEN_BEDROCK")


def post_env(mock, **extra: str) -> dict[str, str]:
    """Step 1 (`export AWS_DEFAULT_REGION=us-west-2`), plus the mock's endpoints."""
    return {"AWS_DEFAULT_REGION": REGION, **endpoint_env(mock), **extra}


def assert_post_session_works(server, mock) -> None:
    """Steps 4-6 of the post, and what the mock Bedrock saw."""
    model_id = first_model_id(server.url)
    assert model_id.endswith(MODEL_ID), model_id
    assert content_of(curl_chat(server.url, model_id)) == answer_for(QUESTION)
    assert openai_session(server.url) == answer_for(QUESTION)
    seen = mock.chat_requests()[-2:]
    assert [r.status for r in seen] == [200, 200]
    assert all(r.json["model"] == MODEL_ID for r in seen)


def test_static_keys_from_the_environment(ogx_server, bedrock_mock):
    server = ogx_server(POST_CONFIG, env=post_env(bedrock_mock, **static_keys_env()))
    assert_post_session_works(server, bedrock_mock)
    seen = bedrock_mock.last_chat_request()
    assert (seen.auth, seen.access_key_id, seen.scope_region, seen.scope_service) == \
        ("sigv4", STATIC_KEYS.access_key_id, REGION, "bedrock")
    assert seen.session_token is None
    assert "host" in seen.signed_headers and seen.host == f"127.0.0.1:{bedrock_mock.port}"


def test_static_keys_in_the_provider_config(ogx_server, bedrock_mock):
    bedrock_mock.add_credentials("ASIAOGXCONFIGKEYS001", "config/secret", "config-session")
    server = ogx_server(config_with({
        "region_name": REGION, "aws_access_key_id": "ASIAOGXCONFIGKEYS001",
        "aws_secret_access_key": "config/secret", "aws_session_token": "config-session",
        "network": {"headers": {"X-Team": "ml-platform"}}}),
        env=endpoint_env(bedrock_mock))
    assert content_of(curl_chat(server.url, first_model_id(server.url))) == answer_for(QUESTION)
    seen = bedrock_mock.last_chat_request()
    assert (seen.access_key_id, seen.session_token) == ("ASIAOGXCONFIGKEYS001", "config-session")
    assert "x-amz-security-token" in seen.signed_headers
    assert seen.headers["x-team"] == "ml-platform"
    providers = server.get("/v1/providers").json()["data"]
    shown = next(p for p in providers if p["provider_id"] == "bedrock-inference")["config"]
    assert "config/secret" not in str(shown) and "config-session" not in str(shown)


def test_a_shared_profile(ogx_server, bedrock_mock, tmp_path):
    bedrock_mock.add_credentials("AKIAOGXPROFILEDEV001", "profile/dev/secret")
    (tmp_path / "credentials").write_text(
        "[default]\naws_access_key_id = AKIAOGXWRONGDEFAULT1\n"
        "aws_secret_access_key = wrong\n\n"
        "[dev]\naws_access_key_id = AKIAOGXPROFILEDEV001\n"
        "aws_secret_access_key = profile/dev/secret\n")
    (tmp_path / "config").write_text("[profile dev]\nregion = eu-west-1\n")
    server = ogx_server(POST_CONFIG, env=post_env(
        bedrock_mock, AWS_PROFILE="dev", AWS_CONFIG_FILE=str(tmp_path / "config"),
        AWS_SHARED_CREDENTIALS_FILE=str(tmp_path / "credentials")))
    assert_post_session_works(server, bedrock_mock)
    seen = bedrock_mock.last_chat_request()
    # region_name (from AWS_DEFAULT_REGION) wins over the profile's region.
    assert (seen.access_key_id, seen.scope_region) == ("AKIAOGXPROFILEDEV001", REGION)


def test_web_identity_exported_as_in_the_post(ogx_server, bedrock_mock, sts, tmp_path):
    token_file = tmp_path / "token"
    token_file.write_text("eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJvZ3gifQ.c2lnbmF0dXJl\n")
    server = ogx_server(POST_CONFIG, env=post_env(
        bedrock_mock, AWS_ROLE_ARN=ROLE_ARN, AWS_WEB_IDENTITY_TOKEN_FILE=str(token_file),
        AWS_ENDPOINT_URL_STS=sts.url))
    assert_post_session_works(server, bedrock_mock)

    [call] = sts.assume_calls()
    assert call.action == "AssumeRoleWithWebIdentity"
    assert call.params["RoleArn"] == ROLE_ARN
    assert call.params["WebIdentityToken"] == token_file.read_text().strip()
    assert call.params["RoleSessionName"] == "ogx-bedrock-demo"
    assert call.params["DurationSeconds"] == "3600"
    for seen in bedrock_mock.chat_requests():
        assert (seen.auth, seen.access_key_id, seen.session_token) == \
            ("sigv4", call.access_key_id, call.session_token)
        assert seen.access_key_id.startswith("ASIA")
        assert "x-amz-security-token" in seen.signed_headers
    assert sts.caller_arn(call.access_key_id, call.session_token) == \
        "arn:aws:sts::123456789012:assumed-role/ogx-bedrock-test/ogx-bedrock-demo"


def test_role_session_name_and_session_ttl_reach_sts(ogx_server, bedrock_mock, sts, tmp_path):
    token_file = tmp_path / "token"
    token_file.write_text("header.payload.signature")
    server = ogx_server(POST_CONFIG, env=post_env(
        bedrock_mock, AWS_ROLE_ARN=ROLE_ARN, AWS_WEB_IDENTITY_TOKEN_FILE=str(token_file),
        AWS_ROLE_SESSION_NAME="team-a-inference", AWS_SESSION_TTL="900",
        AWS_ENDPOINT_URL_STS=sts.url))
    content_of(curl_chat(server.url, first_model_id(server.url)))

    [call] = sts.assume_calls()
    assert (call.params["RoleSessionName"], call.params["DurationSeconds"]) == \
        ("team-a-inference", "900")
    lifetime = call.expiration - dt.datetime.fromtimestamp(call.time, dt.timezone.utc)
    assert abs(lifetime.total_seconds() - 900) < 30, lifetime
    seen = bedrock_mock.last_chat_request()
    assert seen.access_key_id == call.access_key_id
    assert sts.caller_arn(seen.access_key_id, seen.session_token).endswith(
        "/ogx-bedrock-test/team-a-inference")


def test_assume_role_over_static_keys(ogx_server, bedrock_mock, sts):
    server = ogx_server(config_with({"region_name": REGION, "aws_role_arn": ROLE_ARN,
                                     "aws_role_session_name": "assumed-from-keys"}),
                        env={**endpoint_env(bedrock_mock), **static_keys_env(),
                             "AWS_ENDPOINT_URL_STS": sts.url})
    content_of(curl_chat(server.url, first_model_id(server.url)))
    [call] = sts.assume_calls()
    assert call.action == "AssumeRole"
    assert call.signed_by == STATIC_KEYS.access_key_id
    assert call.params["RoleSessionName"] == "assumed-from-keys"
    assert bedrock_mock.last_chat_request().access_key_id == call.access_key_id


def test_temporary_credentials_are_refreshed_before_they_expire(ogx_server, bedrock_mock, sts,
                                                                tmp_path):
    """60-second credentials, refreshed 50 s (advisory) / 40 s (mandatory) before expiry:
    the first ones serve for about 10 s, then new ones are fetched, once, and used."""
    token_file = tmp_path / "token"
    token_file.write_text("header.payload.signature")
    server = ogx_server(POST_CONFIG, env=post_env(
        bedrock_mock, AWS_ROLE_ARN=ROLE_ARN, AWS_WEB_IDENTITY_TOKEN_FILE=str(token_file),
        AWS_SESSION_TTL="60", AWS_ENDPOINT_URL_STS=sts.url,
        **{REFRESH_ADVISORY_ENV: "50", REFRESH_MANDATORY_ENV: "40"}))
    model_id = first_model_id(server.url)
    for _ in range(5):
        content_of(curl_chat(server.url, model_id))
    [first] = sts.assume_calls()
    assert first.params["DurationSeconds"] == "60"
    assert {r.access_key_id for r in bedrock_mock.chat_requests()} == {first.access_key_id}

    time.sleep(max(0.0, first.expiration.timestamp() - 50 - time.time()) + 1.5)
    for _ in range(5):
        content_of(curl_chat(server.url, model_id))
    calls = sts.assume_calls()
    assert len(calls) == 2, [c.access_key_id for c in calls]
    assert calls[1].access_key_id != first.access_key_id
    assert bedrock_mock.last_chat_request().access_key_id == calls[1].access_key_id
    assert [r.status for r in bedrock_mock.chat_requests()] == [200] * 10


def test_without_any_aws_identity_ogx_starts_and_the_request_says_what_to_do(ogx_server,
                                                                            bedrock_mock):
    server = ogx_server(POST_CONFIG, env=post_env(bedrock_mock))
    model_id = first_model_id(server.url)
    assert model_id.endswith(MODEL_ID)
    response = curl_chat(server.url, model_id)
    assert response.status_code == 500
    message = error_message_of(response)
    assert message == CREDENTIALS_UNRESOLVED
    assert not bedrock_mock.chat_requests()


def test_an_unreadable_web_identity_token_file(ogx_server, bedrock_mock, sts, tmp_path):
    server = ogx_server(POST_CONFIG, env=post_env(
        bedrock_mock, AWS_ROLE_ARN=ROLE_ARN,
        AWS_WEB_IDENTITY_TOKEN_FILE=str(tmp_path / "missing-token"),
        AWS_ENDPOINT_URL_STS=sts.url))
    response = curl_chat(server.url, first_model_id(server.url))
    assert (response.status_code, error_message_of(response)) == (500, CREDENTIALS_UNRESOLVED)


def test_credentials_bedrock_refuses_give_the_sanitized_message(ogx_server, bedrock_mock):
    server = ogx_server(POST_CONFIG, env=post_env(
        bedrock_mock, AWS_ACCESS_KEY_ID=STATIC_KEYS.access_key_id,
        AWS_SECRET_ACCESS_KEY="not-the-right-secret"))
    response = curl_chat(server.url, first_model_id(server.url))
    assert response.status_code == 500
    message = error_message_of(response)
    assert message == SIGV4_REJECTED
    assert not any(word in message for word in FORBIDDEN_IN_MESSAGES)
    assert "signature mismatch" in bedrock_mock.last_chat_request().rejection


def test_signing_for_another_region_than_the_endpoint_serves(ogx_server, bedrock_mock):
    server = ogx_server(POST_CONFIG, env=post_env(bedrock_mock, AWS_DEFAULT_REGION="eu-west-1",
                                                  **static_keys_env()))
    response = curl_chat(server.url, first_model_id(server.url))
    assert (response.status_code, error_message_of(response)) == (500, SIGV4_REJECTED)
    seen = bedrock_mock.last_chat_request()
    assert (seen.scope_region, seen.status) == ("eu-west-1", 403)


def test_streaming_with_sigv4_keeps_reasoning(ogx_server, bedrock_mock):
    server = ogx_server(POST_CONFIG, env=post_env(bedrock_mock, **static_keys_env()))
    chunks = streamed_chunks(curl_chat(server.url, first_model_id(server.url), stream=True))
    assert chunks[0]["choices"][0]["delta"]["reasoning"] == REASONING_TEXT
    text = "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks if c["choices"])
    assert text == answer_for(QUESTION)
    seen = bedrock_mock.last_chat_request()
    assert (seen.auth, seen.json["stream"]) == ("sigv4", True)


def test_the_seed_config_file_with_static_keys(ogx_server, bedrock_mock):
    if not SEED_CONFIG_PATH.is_file():
        pytest.skip(f"{SEED_CONFIG_PATH} comes with the config branch")
    server = ogx_server(SEED_CONFIG_PATH.read_text(), config_name=SEED_CONFIG_PATH.name,
                        add_storage=False, env=post_env(bedrock_mock, **static_keys_env()))
    assert_post_session_works(server, bedrock_mock)
    assert bedrock_mock.last_chat_request().access_key_id == STATIC_KEYS.access_key_id


def test_refresh_models_lists_active_foundation_models_with_sigv4(ogx_server, bedrock_mock):
    server = ogx_server(config_with({"region_name": REGION, "refresh_models": True}),
                        env={**endpoint_env(bedrock_mock), **static_keys_env()})
    ids = listed_ids_once_refreshed(server)
    assert not any(i.endswith("anthropic.claude-v2") for i in ids), ids  # LEGACY
    assert not any("provisioned-only" in i for i in ids), ids
    [listing] = bedrock_mock.requests_to("/foundation-models")
    assert (listing.auth, listing.query, listing.access_key_id) == \
        ("sigv4", "byInferenceType=ON_DEMAND", STATIC_KEYS.access_key_id)


def test_a_failing_model_list_does_not_stop_ogx(ogx_server, bedrock_mock):
    server = ogx_server(config_with({"region_name": REGION, "refresh_models": True}),
                        env={**endpoint_env(bedrock_mock),
                             "AWS_ACCESS_KEY_ID": STATIC_KEYS.access_key_id,
                             "AWS_SECRET_ACCESS_KEY": "not-the-right-secret"})
    wait_until(lambda: bedrock_mock.requests_to("/foundation-models"), 20,
               "the model listing to reach the mock")
    assert bedrock_mock.requests_to("/foundation-models")[0].status == 403
    assert server.get("/v1/health").status_code == 200
    assert first_model_id(server.url).endswith(MODEL_ID)
