#!/usr/bin/env python3
"""A stand-in for Amazon Bedrock on 127.0.0.1, strict about authentication, for the end-to-end
tests of the `remote::bedrock` plugin.

Run it by hand:    python3 tests/mock_bedrock.py --port 9000 --region us-west-2 \
                       --credentials AKIDEXAMPLE:secret --bearer good-token [--moto-url URL]
Use it in a test:  with MockBedrock(region="us-west-2") as mock: mock.add_credentials(...) ...
Point ogx at it:   AWS_ENDPOINT_URL_BEDROCK_RUNTIME=<mock.url> (inference) and
                   AWS_ENDPOINT_URL_BEDROCK=<mock.url> (model listing), or AWS_ENDPOINT_URL.

Routes:
  POST /openai/v1/chat/completions   the runtime's OpenAI-compatible chat endpoint: JSON, or SSE
                                     when "stream": true (reasoning deltas, then content deltas,
                                     then `data: [DONE]`)
  GET  /foundation-models            the control plane's ListFoundationModels
                                     (`?byInferenceType=ON_DEMAND` filters like the real one)
  GET  /v1/models                    the bedrock-mantle OpenAI-style model list
  POST /model/{id}/converse, /model/{id}/converse-stream, /model/{id}/invoke,
  GET  /inference-profiles           Converse, ConverseStream, InvokeModel (embeddings) and
                                     ListInferenceProfiles: see mock_converse.py
  POST /model/{claude}/invoke, /invoke-with-response-stream, /count-tokens
                                     Claude's Anthropic body: see mock_bedrock_anthropic.py
Control plane of the mock itself (not authenticated):
  POST   /__mock/credentials  {"access_key_id","secret_access_key","session_token"?,"expires_at"?}
  POST   /__mock/bearer       {"token", "region"? (null: any region), "expired"?: bool}
  GET    /__mock/requests     every request seen so far (see RecordedRequest)
  DELETE /__mock/requests     forget them

The mock serves exactly one region (`region`): that is how it tells a request meant for
another region apart, since tests reach it through an endpoint URL with no region in it.

Authentication, as Bedrock does it:
  * `Authorization: Bearer <t>`: t must be registered. Unknown → 401 "Invalid API Key format";
    registered as expired → 401 "Bearer Token has expired"; registered for another region →
    403 "Authentication failed: Please make sure your API Key is valid." (what Bedrock answers
    a short-term key used outside the region it was generated in).
  * `Authorization: AWS4-HMAC-SHA256 ...`: the signature is recomputed with botocore from the
    signed headers and the body. Required: scope `<date>/<region>/bedrock/aws4_request`,
    `host` signed and equal to the Host header (port included), `x-amz-date` within 5 minutes
    of now and on the scope's date, `x-amz-security-token` present and signed for temporary
    (`ASIA`) keys and equal to the registered one, no `x-amz-content-sha256` that disagrees
    with the body. Secrets are looked up by access key id: registered ones first, then (with
    `moto_url`) the credentials a moto server handed out through STS.
    Unknown key → 403 UnrecognizedClientException; wrong signature → 403 "The request
    signature we calculated does not match..."; registered expiry passed → 403
    "The security token included in the request is expired".
  * anything else → 403 "Missing Authentication Token".

Scripted turns (scripted_turns.py): `mock.script(Turn(...), ...)` queues answers (text,
`reasoning` deltas, function calls) that chat requests take in order, after authentication.

Scripted behaviours, switched on by a marker in the last user message:
  [mock:error=429]   answer that status with a Bedrock-style error body
  [mock:slow=0.2]    wait that many seconds before each stream chunk / before the answer
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import hmac
import itertools
import json
import re
import sys
import threading
import time
import urllib.request
from dataclasses import asdict, dataclass, field
from http.server import ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

import mock_bedrock_anthropic
import mock_converse
from loopback_server import LoopbackHandler, LoopbackServer, text_of
from mock_converse import ConverseInvalid
from scripted_turns import Script, Turn

SIGNING_SERVICE = "bedrock"
CLOCK_SKEW = dt.timedelta(minutes=5)

# What Bedrock answers, word for word where we know it.
MSG_INVALID_KEY = "Invalid API Key format: Must start with pre-defined prefix"
MSG_EXPIRED_BEARER = "Bearer Token has expired"
MSG_WRONG_REGION_KEY = "Authentication failed: Please make sure your API Key is valid."
MSG_BAD_SIGNATURE = ("The request signature we calculated does not match the signature you "
                     "provided. Check your AWS Secret Access Key and signing method. Consult "
                     "the service documentation for details.")
MSG_UNKNOWN_KEY = "The security token included in the request is invalid."
MSG_EXPIRED_TOKEN = "The security token included in the request is expired"
MSG_MISSING_AUTH = "Missing Authentication Token"

# (modelId, provider, lifecycle status, inference types)
DEFAULT_FOUNDATION_MODELS = (
    ("openai.gpt-oss-20b-1:0", "OpenAI", "ACTIVE", ["ON_DEMAND"]),
    ("openai.gpt-oss-120b-1:0", "OpenAI", "ACTIVE", ["ON_DEMAND"]),
    ("anthropic.claude-v2", "Anthropic", "LEGACY", ["ON_DEMAND"]),
    ("amazon.titan-provisioned-only-v1", "Amazon", "ACTIVE", ["PROVISIONED"]),
)

REASONING_TEXT = "The user asks a question; answer it briefly."
_MARKER = re.compile(r"\[mock:([a-z-]+)(?:=([^\]]*))?\]")
_AUTH_RE = re.compile(
    r"^AWS4-HMAC-SHA256 Credential=(?P<akid>[^/,\s]+)/(?P<date>\d{8})/(?P<region>[^/]+)/"
    r"(?P<service>[^/]+)/aws4_request,\s*SignedHeaders=(?P<signed>[^,\s]+),\s*"
    r"Signature=(?P<signature>[0-9a-f]{64})$")


def answer_for(text: str) -> str:
    """The deterministic answer to a chat message."""
    return f"You said: {text}"


@dataclass
class RecordedRequest:
    """One request as the mock saw it. `auth` is "sigv4", "bearer" or "none"; `status` is what
    the mock answered; `rejection` says why it refused the request, if it did."""
    method: str
    path: str
    query: str
    host: str
    headers: dict[str, str]
    body: str
    json: Any = None
    auth: str = "none"
    access_key_id: str | None = None
    bearer_token: str | None = None
    session_token: str | None = None
    scope_region: str | None = None
    scope_service: str | None = None
    signed_headers: list[str] = field(default_factory=list)
    status: int = 0
    rejection: str | None = None
    time: float = 0.0
    # /model/{id}/...: the decoded model id.
    model_id: str | None = None
    # /model/{id}/count-tokens: the decoded `input.invokeModel.body`.
    invoke_body: Any = None


@dataclass
class _Secret:
    secret_access_key: str
    session_token: str | None = None
    expires_at: float | None = None  # epoch seconds


@dataclass
class _Bearer:
    region: str | None = None
    expired: bool = False


class AuthRejected(Exception):
    def __init__(self, status: int, error_type: str, message: str, why: str):
        super().__init__(why)
        self.status, self.error_type, self.message, self.why = status, error_type, message, why


def verify_sigv4(method: str, url: str, headers: dict[str, str], body: bytes,
                 secret_for: Any, region: str, now: dt.datetime | None = None) -> dict[str, Any]:
    """Checks a SigV4 `Authorization` header the way Bedrock would, recomputing the signature
    with botocore. `headers` have lower-case names; `url` is `http://<Host header><path>[?q]`;
    `secret_for(akid)` returns a `_Secret` or None. Returns what was parsed; raises
    AuthRejected."""
    now = now or dt.datetime.now(dt.timezone.utc)
    m = _AUTH_RE.match(headers.get("authorization", ""))
    if not m:
        raise AuthRejected(400, "IncompleteSignatureException",
                           "Authorization header requires 'Credential', 'Signature' and "
                           "'SignedHeaders' parameters.", "malformed SigV4 header")
    parsed = {"access_key_id": m["akid"], "scope_region": m["region"],
              "scope_service": m["service"], "signed_headers": m["signed"].split(";"),
              "session_token": headers.get("x-amz-security-token")}
    signed = parsed["signed_headers"]

    def reject(why: str, message: str = MSG_BAD_SIGNATURE,
               error_type: str = "InvalidSignatureException", status: int = 403) -> None:
        raise AuthRejected(status, error_type, message, why)

    if m["service"] != SIGNING_SERVICE:
        reject(f"credential scope service is {m['service']!r}, not {SIGNING_SERVICE!r}")
    if m["region"] != region:
        reject(f"credential scope region is {m['region']!r}, this endpoint serves {region!r}",
               "Credential should be scoped to a valid region.")
    if signed != sorted(signed) or any(h != h.lower() for h in signed):
        reject("SignedHeaders are not sorted lower-case names")
    if "host" not in signed:
        reject("host is not signed")
    for name in signed:
        if name not in headers:
            reject(f"signed header {name!r} is not in the request")
    amz_date = headers.get("x-amz-date", "")
    if "x-amz-date" not in signed:
        reject("x-amz-date is missing or not signed")
    try:
        when = dt.datetime.strptime(amz_date, "%Y%m%dT%H%M%SZ").replace(tzinfo=dt.timezone.utc)
    except ValueError:
        reject(f"x-amz-date {amz_date!r} is not YYYYMMDDTHHMMSSZ")
    if abs(now - when) > CLOCK_SKEW:
        reject("x-amz-date is more than 5 minutes away from now",
               "Signature expired: the request time is too far from the server time.")
    if amz_date[:8] != m["date"]:
        reject("the credential scope date is not the date of x-amz-date")
    content_sha = headers.get("x-amz-content-sha256")
    if content_sha is not None and content_sha != hashlib.sha256(body).hexdigest():
        reject("x-amz-content-sha256 does not match the body")
    if m["akid"].startswith("ASIA"):
        if not parsed["session_token"]:
            reject("temporary (ASIA) key without x-amz-security-token",
                   MSG_UNKNOWN_KEY, "UnrecognizedClientException")
        if "x-amz-security-token" not in signed:
            reject("x-amz-security-token is not signed")

    secret = secret_for(m["akid"])
    if secret is None:
        reject(f"unknown access key id {m['akid']}", MSG_UNKNOWN_KEY,
               "UnrecognizedClientException")
    if secret.session_token is not None and parsed["session_token"] != secret.session_token:
        reject("x-amz-security-token is not the one issued with this key", MSG_UNKNOWN_KEY,
               "UnrecognizedClientException")
    if secret.expires_at is not None and time.time() >= secret.expires_at:
        reject("the temporary credentials have expired", MSG_EXPIRED_TOKEN,
               "ExpiredTokenException")

    request = AWSRequest(method=method, url=url, data=body,
                         headers={name: headers[name] for name in signed})
    request.context["timestamp"] = amz_date
    signer = SigV4Auth(Credentials(m["akid"], secret.secret_access_key,
                                   parsed["session_token"]), m["service"], m["region"])
    canonical = signer.canonical_request(request)
    expected = signer.signature(signer.string_to_sign(request, canonical), request)
    if not hmac.compare_digest(expected, m["signature"]):
        reject("signature mismatch; canonical request was:\n" + canonical)
    return parsed


class _Handler(LoopbackHandler):
    server: "_Server"

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 (stdlib signature)
        if self.server.verbose:
            sys.stderr.write("mock_bedrock: " + (format % args) + "\n")

    def _send_aws_error(self, record: RecordedRequest, status: int, error_type: str,
                        message: str) -> None:
        record.status = status
        self._send_json(status, {"message": message}, {"x-amzn-ErrorType": error_type})

    def do_GET(self) -> None:
        self._handle()

    def do_POST(self) -> None:
        self._handle()

    def do_DELETE(self) -> None:
        self._handle()

    def _handle(self) -> None:
        url = urlsplit(self.path)
        body = self._read_body()
        if url.path.startswith("/__mock/"):
            self._control(url.path, body)
            return
        headers = {k.lower(): v for k, v in self.headers.items()}
        record = RecordedRequest(
            method=self.command, path=url.path, query=url.query,
            host=headers.get("host", ""), headers=headers,
            body=body.decode("utf-8", "replace"), time=time.time())
        try:
            record.json = json.loads(body) if body else None
        except ValueError:
            record.json = None
        self.server.record(record)
        try:
            self._authenticate(record, url, headers, body)
        except AuthRejected as e:
            record.rejection = e.why
            if self.server.verbose:
                sys.stderr.write(f"mock_bedrock: rejected: {e.why}\n")
            self._send_aws_error(record, e.status, e.error_type, e.message)
            return
        model_id = mock_converse.model_id_of(url.path)
        if model_id is not None and self.command == "POST":
            record.model_id = model_id
            self._model_operation(record, model_id, url.path.rsplit("/", 1)[1])
            return
        routes = {
            ("POST", "/openai/v1/chat/completions"): self._chat_completions,
            ("GET", "/foundation-models"): self._foundation_models,
            ("GET", "/inference-profiles"): self._inference_profiles,
            ("GET", "/v1/models"): self._mantle_models,
        }
        route = routes.get((self.command, url.path))
        if route is None:
            self._send_aws_error(record, 404, "UnknownOperationException",
                                 f"No route {self.command} {url.path}")
            return
        route(record)

    # -- authentication --------------------------------------------------------------------
    def _authenticate(self, record: RecordedRequest, url: Any, headers: dict[str, str],
                      body: bytes) -> None:
        authorization = headers.get("authorization", "")
        if authorization.startswith("Bearer "):
            record.auth = "bearer"
            token = authorization[len("Bearer "):]
            record.bearer_token = token
            bearer = self.server.bearer_for(token)
            if bearer is None:
                raise AuthRejected(401, "UnauthorizedException", MSG_INVALID_KEY,
                                   "unknown bearer token")
            if bearer.expired:
                raise AuthRejected(401, "UnauthorizedException", MSG_EXPIRED_BEARER,
                                   "expired bearer token")
            if bearer.region is not None and bearer.region != self.server.region:
                raise AuthRejected(403, "AccessDeniedException", MSG_WRONG_REGION_KEY,
                                   f"bearer token of region {bearer.region} used against "
                                   f"{self.server.region}")
            return
        if authorization.startswith("AWS4-HMAC-SHA256"):
            record.auth = "sigv4"
            full_url = f"http://{headers.get('host', '')}{self.path}"
            try:
                parsed = verify_sigv4(self.command, full_url, headers, body,
                                      self.server.secret_for, self.server.region)
            except AuthRejected:
                m = _AUTH_RE.match(authorization)
                if m:
                    record.access_key_id, record.scope_region = m["akid"], m["region"]
                    record.scope_service = m["service"]
                    record.signed_headers = m["signed"].split(";")
                record.session_token = headers.get("x-amz-security-token")
                raise
            for k, v in parsed.items():
                setattr(record, k, v)
            return
        raise AuthRejected(403, "MissingAuthenticationTokenException", MSG_MISSING_AUTH,
                           "no Authorization header")

    # -- routes ----------------------------------------------------------------------------
    def _chat_completions(self, record: RecordedRequest) -> None:
        req = record.json
        if not isinstance(req, dict) or not isinstance(req.get("messages"), list):
            self._send_aws_error(record, 400, "ValidationException",
                                 "The request body must be a JSON object with messages.")
            return
        turn = self.server.script.next(lambda: self.server.next_id("call"))
        if turn is not None:
            self._scripted_turn(record, turn)
            return
        users = [m for m in req["messages"] if isinstance(m, dict) and m.get("role") == "user"]
        text = text_of(users[-1].get("content")) if users else ""
        markers = {k: v or "" for k, v in _MARKER.findall(text)}
        if "error" in markers:
            status = int(markers["error"])
            record.status = status
            self._send_json(status, {"error": {"message": f"Mock Bedrock error {status}",
                                               "type": "mock_error", "code": str(status)}})
            return
        delay = float(markers.get("slow") or 0)
        answer = answer_for(text)
        completion_id = self.server.next_id("chatcmpl-bedrock")
        created = int(time.time())
        model = req.get("model")
        prompt_tokens = sum(len(text_of(m.get("content")).split())
                            for m in req["messages"] if isinstance(m, dict))
        usage = {"prompt_tokens": prompt_tokens, "completion_tokens": len(answer.split()),
                 "total_tokens": prompt_tokens + len(answer.split())}
        if not req.get("stream"):
            time.sleep(delay)
            record.status = 200
            self._send_json(200, {
                "id": completion_id, "object": "chat.completion", "created": created,
                "model": model, "service_tier": "default",
                "choices": [{"index": 0, "finish_reason": "stop", "logprobs": None,
                             "message": {"role": "assistant", "content": answer,
                                         "reasoning": REASONING_TEXT}}],
                "usage": usage})
            return

        def chunk(delta: dict, finish_reason: str | None = None) -> dict:
            return {"id": completion_id, "object": "chat.completion.chunk", "created": created,
                    "model": model,
                    "choices": [{"index": 0, "delta": delta, "finish_reason": finish_reason}]}

        chunks = [chunk({"role": "assistant", "content": "", "reasoning": REASONING_TEXT})]
        chunks += [chunk({"content": piece}) for piece in re.findall(r"\s*\S+", answer)]
        chunks.append(chunk({}, "stop"))
        if (req.get("stream_options") or {}).get("include_usage"):
            chunks.append({**chunk({}), "choices": [], "usage": usage})
        record.status = 200
        self._send_chunks(chunks, delay)

    def _send_chunks(self, chunks: list[dict], delay: float) -> None:
        self._start_sse()
        for c in chunks:
            time.sleep(delay)
            self._send_sse(json.dumps(c))
        time.sleep(delay)
        self._end_sse()

    def _scripted_turn(self, record: RecordedRequest, turn: Turn) -> None:
        answer = turn.answer(record.json, self.server.next_id("chatcmpl-bedrock"), "reasoning")
        record.status = 200
        if isinstance(answer, dict):
            self._send_json(200, answer)
        else:
            self._send_chunks(answer, 0.0)

    def _foundation_models(self, record: RecordedRequest) -> None:
        query = parse_qs(record.query)
        wanted = query.get("byInferenceType", [None])[0]
        summaries = []
        for model_id, provider, status, types in self.server.foundation_models:
            if wanted and wanted not in types:
                continue
            summaries.append({
                "modelArn": f"arn:aws:bedrock:{self.server.region}::foundation-model/{model_id}",
                "modelId": model_id, "modelName": model_id.split(".", 1)[-1],
                "providerName": provider, "inputModalities": ["TEXT"],
                "outputModalities": ["EMBEDDING" if "embed" in model_id else "TEXT"],
                "responseStreamingSupported": True,
                "customizationsSupported": [], "inferenceTypesSupported": types,
                "modelLifecycle": {"status": status}})
        record.status = 200
        self._send_json(200, {"modelSummaries": summaries})

    def _model_operation(self, record: RecordedRequest, model_id: str, operation: str) -> None:
        """Converse, ConverseStream or InvokeModel (see mock_converse.py); Claude's
        InvokeModel[WithResponseStream] and CountTokens (see mock_bedrock_anthropic.py)."""
        if mock_bedrock_anthropic.is_claude(model_id) and operation in (
                "invoke", "invoke-with-response-stream", "count-tokens"):
            mock_bedrock_anthropic.serve(self, record, model_id, operation,
                                         self.server.next_id("req"))
            return
        try:
            if operation == "invoke":
                answer, headers = mock_converse.invoke_embeddings(model_id, record.json)
                record.status = 200
                self._send_json(200, answer, headers)
                return
            if model_id in mock_converse.PROFILE_ONLY_MODELS:
                raise ConverseInvalid(mock_converse.needs_profile_message(model_id))
            mock_converse.validate(record.json)
        except ConverseInvalid as e:
            record.rejection = str(e)
            self._send_aws_error(record, 400, "ValidationException", str(e))
            return
        turn = self.server.script.next(lambda: self.server.next_id("tooluse"))
        if turn is not None and turn.error is not None:
            status, name, message = turn.error
            self._send_aws_error(record, status, name, message)
            return
        request_id = self.server.next_id("req")
        record.status = 200
        if operation == "converse":
            self._send_json(200, mock_converse.converse_answer(record.json, turn),
                            {"x-amzn-RequestId": request_id})
            return
        mock_converse.send_event_stream(self, request_id,
                                        mock_converse.converse_events(record.json, turn))

    def _inference_profiles(self, record: RecordedRequest) -> None:
        record.status = 200
        self._send_json(200, mock_converse.inference_profile_list(
            self.server.region, self.server.inference_profiles))

    def _mantle_models(self, record: RecordedRequest) -> None:
        record.status = 200
        self._send_json(200, {"object": "list", "data": [
            {"id": model_id, "object": "model", "created": 1735689600, "owned_by": provider.lower()}
            for model_id, provider, status, types in self.server.foundation_models
            if status == "ACTIVE" and "ON_DEMAND" in types]})

    # -- the mock's own control plane ------------------------------------------------------
    def _control(self, path: str, body: bytes) -> None:
        try:
            data = json.loads(body) if body else {}
        except ValueError:
            self._send_json(400, {"message": "body is not JSON"})
            return
        if (self.command, path) == ("GET", "/__mock/image.png"):
            self.send_response(200)
            self.send_header("Content-Type", "image/png")
            self.send_header("Content-Length", str(len(mock_converse.PNG_BYTES)))
            self.end_headers()
            self.wfile.write(mock_converse.PNG_BYTES)
            return
        if (self.command, path) == ("POST", "/__mock/credentials"):
            self.server.add_credentials(data["access_key_id"], data["secret_access_key"],
                                        data.get("session_token"), data.get("expires_at"))
        elif (self.command, path) == ("POST", "/__mock/bearer"):
            self.server.add_bearer(data["token"], data.get("region"),
                                   bool(data.get("expired")))
        elif (self.command, path) == ("GET", "/__mock/requests"):
            self._send_json(200, [asdict(r) for r in self.server.requests()])
            return
        elif (self.command, path) == ("DELETE", "/__mock/requests"):
            self.server.clear()
        else:
            self._send_json(404, {"message": f"no mock control route {self.command} {path}"})
            return
        self._send_json(200, {"ok": True})


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False

    def __init__(self, address: tuple[str, int], region: str, moto_url: str | None,
                 foundation_models: tuple, verbose: bool,
                 inference_profiles: tuple = ()) -> None:
        super().__init__(address, _Handler)
        self.region = region
        self.inference_profiles = tuple(inference_profiles)
        self.moto_url = moto_url
        self.foundation_models = tuple(foundation_models)
        self.verbose = verbose
        self._lock = threading.Lock()
        self._recorded: list[RecordedRequest] = []
        self._secrets: dict[str, _Secret] = {}
        self._bearers: dict[str, _Bearer] = {}
        self.script = Script()
        self._ids = itertools.count(1)

    def record(self, r: RecordedRequest) -> None:
        with self._lock:
            self._recorded.append(r)

    def requests(self) -> list[RecordedRequest]:
        with self._lock:
            return list(self._recorded)

    def clear(self) -> None:
        with self._lock:
            self._recorded.clear()

    def next_id(self, prefix: str) -> str:
        with self._lock:
            return f"{prefix}-{next(self._ids)}"

    def add_credentials(self, akid: str, secret: str, session_token: str | None,
                        expires_at: float | None) -> None:
        with self._lock:
            self._secrets[akid] = _Secret(secret, session_token, expires_at)

    def add_bearer(self, token: str, region: str | None, expired: bool) -> None:
        with self._lock:
            self._bearers[token] = _Bearer(region, expired)

    def bearer_for(self, token: str) -> _Bearer | None:
        with self._lock:
            return self._bearers.get(token)

    def secret_for(self, akid: str) -> _Secret | None:
        with self._lock:
            known = self._secrets.get(akid)
        if known is not None or self.moto_url is None:
            return known
        for role in self._moto_assumed_roles():
            if role.get("access_key_id") == akid:
                secret = _Secret(role["secret_access_key"], role.get("session_token"))
                with self._lock:
                    self._secrets.setdefault(akid, secret)
                return secret
        return None

    def _moto_assumed_roles(self) -> list[dict]:
        """The credentials a moto server issued through AssumeRole*, from its /moto-api."""
        try:
            with urllib.request.urlopen(f"{self.moto_url}/moto-api/data.json", timeout=5) as r:
                return json.load(r).get("sts", {}).get("AssumedRole", [])
        except (OSError, ValueError):
            return []


class MockBedrock(LoopbackServer):
    """The mock, served from a background thread until `stop()`."""

    thread_name = "mock-bedrock"

    def __init__(self, host: str = "127.0.0.1", port: int = 0, region: str = "us-west-2",
                 moto_url: str | None = None,
                 foundation_models: tuple = DEFAULT_FOUNDATION_MODELS,
                 verbose: bool = False, inference_profiles: tuple = ()) -> None:
        """`inference_profiles`: (profile id, foundation-model id) pairs that
        /inference-profiles lists."""
        super().__init__(_Server((host, port), region, moto_url, foundation_models, verbose,
                                 inference_profiles), host)
        self.region = region

    @property
    def moto_url(self) -> str | None:
        return self._server.moto_url

    @moto_url.setter
    def moto_url(self, value: str | None) -> None:
        self._server.moto_url = value

    def add_credentials(self, access_key_id: str, secret_access_key: str,
                        session_token: str | None = None,
                        expires_at: float | None = None) -> None:
        """Lets SigV4 requests signed with this key through (until `expires_at`, epoch s)."""
        self._server.add_credentials(access_key_id, secret_access_key, session_token, expires_at)

    def add_bearer(self, token: str, region: str | None = None, expired: bool = False) -> None:
        """Accepts `Bearer <token>` (only in `region` when given; never when `expired`)."""
        self._server.add_bearer(token, region, expired)

    @property
    def requests(self) -> list[RecordedRequest]:
        return self._server.requests()

    def chat_requests(self) -> list[RecordedRequest]:
        return self.requests_to("/openai/v1/chat/completions")

    def last_chat_request(self) -> RecordedRequest:
        chats = self.chat_requests()
        assert chats, "the mock Bedrock received no chat request; got " + \
            repr([(r.method, r.path) for r in self.requests])
        return chats[-1]

    def converse_requests(self) -> list[RecordedRequest]:
        """Converse and ConverseStream requests, in order."""
        return [r for r in self.requests if r.model_id is not None
                and r.path.endswith(("/converse", "/converse-stream"))]

    def last_converse_request(self) -> RecordedRequest:
        seen = self.converse_requests()
        assert seen, "the mock Bedrock received no Converse request; got " + \
            repr([(r.method, r.path) for r in self.requests])
        return seen[-1]

    def clear(self) -> None:
        self._server.clear()

    def script(self, *turns: Turn) -> None:
        """Queues turns that the next chat and Converse requests get, in order (see
        scripted_turns.py)."""
        self._server.script.add(*turns)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=9000)
    parser.add_argument("--region", default="us-west-2", help="the one region this mock serves")
    parser.add_argument("--credentials", action="append", default=[], metavar="AKID:SECRET",
                        help="an accepted access key (repeatable)")
    parser.add_argument("--bearer", action="append", default=[], metavar="TOKEN",
                        help="an accepted bearer token (repeatable)")
    parser.add_argument("--moto-url", help="also accept credentials this moto server issued")
    args = parser.parse_args(argv)
    mock = MockBedrock(args.host, args.port, args.region, args.moto_url, verbose=True)
    for pair in args.credentials:
        akid, _, secret = pair.partition(":")
        mock.add_credentials(akid, secret)
    for token in args.bearer:
        mock.add_bearer(token)
    print(f"mock_bedrock ({args.region}) listening on {mock.url}", flush=True)
    mock.serve_until_interrupted()
    return 0


if __name__ == "__main__":
    sys.exit(main())
