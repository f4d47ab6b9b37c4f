"""A stand-in for OCI Generative AI on 127.0.0.1 that checks OCI's request signature on every
request, with implementations that are not ogx's:

- the `cryptography` package verifies the `Authorization: Signature ...` over the signing
  string rebuilt from the headers received, as OCI's docs define it (draft-cavage-http-
  signatures-08: `date (request-target) host`, plus `content-length content-type
  x-content-sha256` with a body), against the public key of the API key the mock knows;
- when the `oci` SDK is installed, its own signer (`oci.signer.Signer`) signs the same request
  again with the same private key and date: RSA PKCS#1 v1.5 is deterministic, so its
  `Authorization` must be ogx's byte for byte.

A request that fails either check is answered 401 `NotAuthenticated`, as OCI answers it.
Served: the OpenAI-compatible `POST /20231130/actions/v1/chat/completions` (plain and SSE) and
`GET /20231130/models` (OCI's `ListModels`, the shape of `ModelCollection`). Every request is
recorded with its verdict."""
from __future__ import annotations

import base64
import hashlib
import json
import threading
from dataclasses import dataclass, field
from http.server import ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from loopback_server import LoopbackHandler, LoopbackServer

CHAT_PATH = "/20231130/actions/v1/chat/completions"
MODELS_PATH = "/20231130/models"
GENERIC = ["date", "(request-target)", "host"]
BODY = ["content-length", "content-type", "x-content-sha256"]
NOT_AUTHENTICATED = {"code": "NotAuthenticated",
                     "message": "The required information to complete authentication was not "
                                "provided or was incorrect."}
# What ListModels answers: two usable chat models (one listed twice), and models OGX skips.
MODELS = [
    {"displayName": "meta.llama-3.3-70b-instruct", "capabilities": ["CHAT"]},
    {"displayName": "meta.llama-3.3-70b-instruct", "capabilities": ["CHAT"]},
    {"displayName": "xai.grok-4", "capabilities": ["CHAT"], "timeDeprecated": None},
    {"displayName": "cohere.embed-v4.0", "capabilities": ["TEXT_EMBEDDINGS"]},
    {"displayName": "cohere.command-r-16k", "capabilities": ["CHAT"],
     "timeDeprecated": "2025-01-01T00:00:00.000Z"},
    {"displayName": "ft-model", "capabilities": ["CHAT", "FINE_TUNE"]},
]


def answer_for(question: str) -> str:
    return f"OCI says: {question[::-1]}"


@dataclass
class ApiKey:
    """An OCI API key: the OCIDs, the fingerprint, the PEM private key file."""
    tenancy: str
    user: str
    fingerprint: str
    key_file: Path

    @property
    def key_id(self) -> str:
        return f"{self.tenancy}/{self.user}/{self.fingerprint}"

    def private_key(self) -> rsa.RSAPrivateKey:
        return serialization.load_pem_private_key(self.key_file.read_bytes(), password=None)

    def pem_body(self) -> str:
        """The base64 lines of the PEM, which must never appear in a log."""
        lines = self.key_file.read_text().splitlines()
        return "".join(line for line in lines if not line.startswith("-----"))

    @staticmethod
    def create(directory: Path, name: str = "oci_api_key") -> "ApiKey":
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        key_file = directory / f"{name}.pem"
        key_file.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                               serialization.PrivateFormat.PKCS8,
                                               serialization.NoEncryption()))
        key_file.chmod(0o600)
        der = key.public_key().public_bytes(serialization.Encoding.DER,
                                            serialization.PublicFormat.SubjectPublicKeyInfo)
        digest = hashlib.md5(der).hexdigest()
        fingerprint = ":".join(digest[i:i + 2] for i in range(0, 32, 2))
        return ApiKey(tenancy="ocid1.tenancy.oc1..aaaatest", user="ocid1.user.oc1..aaaatest",
                      fingerprint=fingerprint, key_file=key_file)


@dataclass
class Seen:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    problem: str | None = None
    sdk_checked: bool = False
    json: Any = field(default=None)

    @property
    def verified(self) -> bool:
        return self.problem is None


def _params(authorization: str) -> dict[str, str]:
    if not authorization.startswith("Signature "):
        raise ValueError("not a Signature authorization")
    params = {}
    for part in authorization[len("Signature "):].split(","):
        name, _, value = part.partition("=")
        params[name.strip()] = value.strip().strip('"')
    return params


def check_signature(seen: Seen, key: ApiKey) -> tuple[str | None, bool]:
    """(what is wrong or None, whether the oci SDK's signer cross-checked it)."""
    headers = seen.headers
    try:
        params = _params(headers.get("authorization", ""))
    except ValueError as error:
        return str(error), False
    if params.get("version") != "1" or params.get("algorithm") != "rsa-sha256":
        return f"version/algorithm {params.get('version')}/{params.get('algorithm')}", False
    if params.get("keyId") != key.key_id:
        return "unknown keyId", False
    signed = params.get("headers", "").split(" ")
    required = GENERIC + (BODY if seen.method in ("POST", "PUT", "PATCH") else [])
    if signed != required:
        return f"signed headers {signed}, OCI requires {required}", False
    lines = []
    for name in signed:
        if name == "(request-target)":
            lines.append(f"(request-target): {seen.method.lower()} {seen.path}")
        elif name not in headers:
            return f"signed header {name} missing", False
        else:
            lines.append(f"{name}: {headers[name]}")
    if "x-content-sha256" in signed:
        digest = base64.b64encode(hashlib.sha256(seen.body).digest()).decode()
        if headers["x-content-sha256"] != digest:
            return "x-content-sha256 is not the body's", False
        if headers["content-length"] != str(len(seen.body)):
            return "content-length is not the body's", False
    try:
        key.private_key().public_key().verify(base64.b64decode(params["signature"]),
                                              "\n".join(lines).encode(),
                                              padding.PKCS1v15(), hashes.SHA256())
    except (InvalidSignature, ValueError, KeyError):
        return "signature does not verify", False
    return sdk_cross_check(seen, key)


def sdk_cross_check(seen: Seen, key: ApiKey) -> tuple[str | None, bool]:
    """The oci SDK's signer, on the same request, must produce the same Authorization."""
    try:
        import oci  # noqa: F401
        from oci.signer import Signer
        from oci._vendor import requests as oci_requests
    except ImportError:
        return None, False
    headers = {name: seen.headers[name] for name in ("date", "content-type")
               if name in seen.headers}
    url = f"http://{seen.headers['host']}{seen.path}"
    body = seen.body if seen.method in ("POST", "PUT", "PATCH") else None
    prepared = oci_requests.Request(seen.method, url, headers=headers, data=body).prepare()
    Signer(key.tenancy, key.user, key.fingerprint, str(key.key_file))(prepared)
    if _params(prepared.headers["authorization"])["signature"] != \
            _params(seen.headers["authorization"])["signature"]:
        return "the oci SDK's signer signs this request differently", True
    return None, True


class _Handler(LoopbackHandler):
    server: "_Server"

    def log_message(self, *args) -> None:
        pass

    def _handle(self, method: str) -> None:
        body = self._read_body()
        seen = Seen(method, self.path, {k.lower(): v for k, v in self.headers.items()}, body)
        seen.problem, seen.sdk_checked = check_signature(seen, self.server.api_key)
        with self.server.lock:
            self.server.seen.append(seen)
        if seen.problem is not None:
            self._send_json(401, NOT_AUTHENTICATED, {"opc-request-id": "mock"})
            return
        route = urlsplit(self.path)
        if method == "GET" and route.path == MODELS_PATH:
            query = parse_qs(route.query)
            if query.get("compartmentId") != [self.server.compartment]:
                self._send_json(404, {"code": "NotAuthorizedOrNotFound", "message": "compartment"})
                return
            self._send_json(200, {"items": MODELS})
            return
        if method == "POST" and route.path == CHAT_PATH:
            if seen.headers.get("compartmentid") != self.server.compartment:
                self._send_json(400, {"code": "MissingParameter", "message": "CompartmentId"})
                return
            request = json.loads(body)
            seen.json = request
            question = request["messages"][-1]["content"]
            text = answer_for(question if isinstance(question, str) else "")
            if request.get("stream"):
                self._start_sse()
                for piece in (text[:5], text[5:]):
                    self._send_sse(json.dumps({
                        "id": "chatcmpl-oci", "object": "chat.completion.chunk", "created": 1,
                        "model": request["model"],
                        "choices": [{"index": 0, "delta": {"content": piece},
                                     "finish_reason": None}]}))
                self._send_sse(json.dumps({
                    "id": "chatcmpl-oci", "object": "chat.completion.chunk", "created": 1,
                    "model": request["model"],
                    "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}))
                self._end_sse()
                return
            self._send_json(200, {
                "id": "chatcmpl-oci", "object": "chat.completion", "created": 1,
                "model": request["model"],
                "choices": [{"index": 0, "finish_reason": "stop",
                             "message": {"role": "assistant", "content": text}}],
                "usage": {"prompt_tokens": 3, "completion_tokens": 4, "total_tokens": 7}})
            return
        self._send_json(404, {"code": "NotFound", "message": self.path})

    def do_GET(self) -> None:
        self._handle("GET")

    def do_POST(self) -> None:
        self._handle("POST")


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    api_key: ApiKey
    compartment: str
    seen: list[Seen]
    lock: threading.Lock


class MockOci(LoopbackServer):
    """The mock; `base_url` is what `remote::oci`'s `base_url` is set to."""

    thread_name = "mock-oci"

    def __init__(self, api_key: ApiKey, compartment: str) -> None:
        server = _Server(("127.0.0.1", 0), _Handler)
        server.api_key = api_key
        server.compartment = compartment
        server.seen = []
        server.lock = threading.Lock()
        super().__init__(server, "127.0.0.1")

    @property
    def base_url(self) -> str:
        return f"{self.url}/20231130/actions/v1"

    @property
    def requests(self) -> list[Seen]:
        with self._server.lock:
            return list(self._server.seen)
