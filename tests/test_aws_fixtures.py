"""Self-tests of the AWS doubles: moto's STS through the recorder, and the mock Bedrock
accepting exactly the credentials STS issued, until they expire."""

from __future__ import annotations

import datetime as dt
import json
import time

import boto3
import requests
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from aws_fixtures import REGION, ROLE_ARN, bedrock_mock, sts  # noqa: F401 (pytest fixtures)
from mock_bedrock import MockBedrock

BODY = json.dumps({"model": "m", "messages": [{"role": "user", "content": "hi"}]})


def signed_chat(mock: MockBedrock, akid: str, secret: str, token: str | None) -> requests.Response:
    request = AWSRequest(method="POST", url=mock.url + "/openai/v1/chat/completions",
                         data=BODY.encode(), headers={"Content-Type": "application/json"})
    SigV4Auth(Credentials(akid, secret, token), "bedrock", REGION).add_auth(request)
    return requests.post(request.url, headers=dict(request.headers.items()), data=request.body,
                         timeout=10)


def test_web_identity_through_the_recorder_is_recorded_and_accepted(sts, bedrock_mock):
    # Through the recorder, as the host will call it (AWS_ENDPOINT_URL_STS=sts.url).
    via_recorder = boto3.client("sts", region_name=REGION, endpoint_url=sts.url,
                                aws_access_key_id="x", aws_secret_access_key="y")
    answer = via_recorder.assume_role_with_web_identity(
        RoleArn=ROLE_ARN, RoleSessionName="fixture-check", WebIdentityToken="jwt.jwt.jwt",
        DurationSeconds=900)
    creds = answer["Credentials"]
    [call] = sts.assume_calls()
    assert call.action == "AssumeRoleWithWebIdentity"
    assert call.params["RoleSessionName"] == "fixture-check"
    assert call.params["DurationSeconds"] == "900"
    assert call.access_key_id == creds["AccessKeyId"]
    assert abs((call.expiration - dt.datetime.now(dt.timezone.utc)).total_seconds() - 900) < 30
    assert call.assumed_role_arn.endswith("/ogx-bedrock-test/fixture-check")
    assert sts.caller_arn(creds["AccessKeyId"], creds["SessionToken"]).endswith("/fixture-check")

    ok = signed_chat(bedrock_mock, creds["AccessKeyId"], creds["SecretAccessKey"],
                     creds["SessionToken"])
    assert ok.status_code == 200, ok.text


def test_the_mock_finds_credentials_moto_issued_directly(sts, bedrock_mock):
    creds = sts.client().assume_role(RoleArn=ROLE_ARN, RoleSessionName="direct")["Credentials"]
    ok = signed_chat(bedrock_mock, creds["AccessKeyId"], creds["SecretAccessKey"],
                     creds["SessionToken"])
    assert ok.status_code == 200, ok.text


def test_short_lived_credentials_are_refused_once_expired(sts, bedrock_mock):
    # Below STS's 900 s minimum: only possible with a raw call, as the host's Rust SDK makes.
    answer = requests.post(sts.url, timeout=10, data={
        "Action": "AssumeRoleWithWebIdentity", "Version": "2011-06-15", "RoleArn": ROLE_ARN,
        "RoleSessionName": "short", "WebIdentityToken": "jwt", "DurationSeconds": "2"})
    assert answer.status_code == 200, answer.text
    [call] = sts.assume_calls()
    assert signed_chat(bedrock_mock, call.access_key_id, call.secret_access_key,
                       call.session_token).status_code == 200
    time.sleep(2.5)
    late = signed_chat(bedrock_mock, call.access_key_id, call.secret_access_key,
                       call.session_token)
    assert late.status_code == 403
    assert "expired" in late.json()["message"]
