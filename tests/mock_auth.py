"""The authentication services ogx's `server.auth` providers call, as one HTTP server on
127.0.0.1 (standard library, plus `cryptography` and PyJWT for the keys and tokens):

  GET  /jwks                     the issuer's current key set (RSA, generated per run; `rotate()`
                                 replaces the key, so older tokens stop verifying)
  POST /introspect               RFC 7662 introspection, client id/secret checked (basic auth or
                                 form), tokens from `introspection_tokens`
  POST /custom-auth              OGX's custom auth protocol: `{api_key, request}` in,
                                 `{principal, attributes}` out for keys in `custom_keys`
  POST /apis/authentication.k8s.io/v1/selfsubjectreviews
                                 Kubernetes' SelfSubjectReview (201 with `status.userInfo`) for
                                 bearer tokens in `kube_tokens`, 401 otherwise
  GET  /user, /user/orgs         GitHub's user and organisation memberships for `github_tokens`

Every request is recorded (`requests`: method, path, headers, body) (header names lowercased) so tests
can check what ogx sent. `sign(claims, ...)` makes a JWT with the current key (PyJWT), `forge(claims)` one with a
key the set never held."""
from __future__ import annotations

import base64
import json
import threading
import time
import uuid
from dataclasses import dataclass
from http.server import ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlparse

import jwt
from cryptography.hazmat.primitives.asymmetric import rsa

from loopback_server import LoopbackHandler, LoopbackServer

ISSUER = "https://issuer.test"
AUDIENCE = "ogx"


@dataclass
class Recorded:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes


def _new_key() -> tuple[str, Any]:
    return f"key-{uuid.uuid4().hex[:8]}", rsa.generate_private_key(public_exponent=65537, key_size=2048)


def _jwk(kid: str, key: Any) -> dict:
    numbers = key.public_key().public_numbers()

    def b64(n: int) -> str:
        raw = n.to_bytes((n.bit_length() + 7) // 8, "big")
        return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()

    return {"kty": "RSA", "kid": kid, "use": "sig", "alg": "RS256", "n": b64(numbers.n), "e": b64(numbers.e)}


class AuthServices(LoopbackServer):
    thread_name = "mock-auth"

    def __init__(self, host: str = "127.0.0.1", port: int = 0,
                 client_id: str = "ogx-client", client_secret: str = "introspection-secret") -> None:
        self.lock = threading.Lock()
        self.recorded: list[Recorded] = []
        self.kid, self.key = _new_key()
        self.client_id, self.client_secret = client_id, client_secret
        self.introspection_tokens: dict[str, dict] = {}
        self.custom_keys: dict[str, dict] = {}
        self.kube_tokens: dict[str, dict] = {}
        self.github_tokens: dict[str, tuple[dict, list[str]]] = {}
        services = self

        class Handler(LoopbackHandler):
            def log_message(self, *args: object) -> None:
                pass

            def _record(self) -> tuple[str, bytes]:
                body = self._read_body() if self.command == "POST" else b""
                with services.lock:
                    services.recorded.append(Recorded(
                        self.command, self.path, {k.lower(): v for k, v in self.headers.items()}, body))
                return urlparse(self.path).path, body

            def _bearer(self) -> str:
                value = self.headers.get("Authorization", "")
                return value[len("Bearer "):] if value.startswith("Bearer ") else ""

            def do_GET(self) -> None:
                path, _ = self._record()
                if path == "/jwks":
                    with services.lock:
                        keys = [_jwk(services.kid, services.key)]
                    return self._send_json(200, {"keys": keys})
                known = services.github_tokens.get(self._bearer())
                if path == "/user" and known:
                    return self._send_json(200, known[0])
                if path == "/user/orgs" and known:
                    page = int(parse_qs(urlparse(self.path).query).get("page", ["1"])[0])
                    orgs = [{"login": o} for o in known[1]] if page == 1 else []
                    return self._send_json(200, orgs)
                self._send_json(401, {"message": "Bad credentials"})

            def do_POST(self) -> None:
                path, body = self._record()
                if path == "/introspect":
                    form = {k: v[0] for k, v in parse_qs(body.decode()).items()}
                    basic = base64.b64encode(f"{services.client_id}:{services.client_secret}".encode()).decode()
                    authorised = self.headers.get("Authorization") == f"Basic {basic}" or (
                        form.get("client_id") == services.client_id
                        and form.get("client_secret") == services.client_secret)
                    if not authorised:
                        return self._send_json(401, {"error": "invalid_client"})
                    answer = services.introspection_tokens.get(form.get("token", ""))
                    return self._send_json(200, {"active": True, **answer} if answer else {"active": False})
                if path == "/custom-auth":
                    request = json.loads(body or b"{}")
                    answer = services.custom_keys.get(request.get("api_key", ""))
                    if answer is None:
                        return self._send_json(401, {"message": "unknown key"})
                    return self._send_json(200, answer)
                if path == "/apis/authentication.k8s.io/v1/selfsubjectreviews":
                    user = services.kube_tokens.get(self._bearer())
                    if user is None:
                        return self._send_json(401, {"kind": "Status", "code": 401})
                    return self._send_json(201, {"apiVersion": "authentication.k8s.io/v1",
                                                 "kind": "SelfSubjectReview",
                                                 "status": {"userInfo": user}})
                self._send_json(404, {"error": "not found"})

        super().__init__(ThreadingHTTPServer((host, port), Handler), host)

    @property
    def requests(self) -> list[Recorded]:
        with self.lock:
            return list(self.recorded)

    # -- tokens --------------------------------------------------------------------------
    def rotate(self) -> None:
        """A new signing key; the key set no longer holds the old one."""
        kid, key = _new_key()
        with self.lock:
            self.kid, self.key = kid, key

    def claims(self, sub: str, **extra: Any) -> dict:
        now = int(time.time())
        return {"sub": sub, "iss": ISSUER, "aud": AUDIENCE, "iat": now, "exp": now + 300, **extra}

    def sign(self, claims: dict, algorithm: str = "RS256") -> str:
        with self.lock:
            kid, key = self.kid, self.key
        return jwt.encode(claims, key, algorithm=algorithm, headers={"kid": kid})

    def forge(self, claims: dict) -> str:
        """Signed by a key that is not in the set, under the current key's id."""
        _, other = _new_key()
        return jwt.encode(claims, other, algorithm="RS256", headers={"kid": self.kid})

    def unsigned(self, claims: dict) -> str:
        """`alg: none` (what an attacker sends hoping the signature is not checked)."""
        return jwt.encode(claims, None, algorithm="none", headers={"kid": self.kid})
