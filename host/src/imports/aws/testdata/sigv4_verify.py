"""Independent SigV4 check with botocore, for the host's tests.

Reads one JSON object on stdin: {"method", "url", "headers": [[name, value], ...],
"body_hex", "secret_access_key", "service", "region"} — a request as the host signed it.
Rebuilds the request with exactly the headers named in Authorization's SignedHeaders, takes the
time from x-amz-date, recomputes the signature with botocore's SigV4Auth and prints one JSON
object: {"valid": bool, "scope": "...", "signed_headers": "...", "reason": "..."}.

With "mode": "sign" instead, it signs the request (headers as given, x-amz-date and an optional
"session_token" added) and prints {"authorization": "..."}: how testdata/botocore_vectors.json
was produced.
"""
import json
import sys

from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials


def recompute(method, url, headers, body, access_key, secret, token, service, region, amz_date):
    request = AWSRequest(method=method, url=url, data=body, headers=headers)
    request.context["timestamp"] = amz_date
    auth = SigV4Auth(Credentials(access_key, secret, token), service, region)
    canonical = auth.canonical_request(request)
    string_to_sign = auth.string_to_sign(request, canonical)
    return auth.signature(string_to_sign, request), auth.signed_headers(auth.headers_to_sign(request))


def verify(req):
    headers = {name.lower(): value for name, value in req["headers"]}
    authz = headers.get("authorization", "")
    prefix = "AWS4-HMAC-SHA256 "
    if not authz.startswith(prefix):
        return {"valid": False, "reason": "no SigV4 authorization"}
    parts = dict(p.strip().split("=", 1) for p in authz[len(prefix):].split(","))
    access_key, date, region, service, terminator = parts["Credential"].split("/")
    signed = parts["SignedHeaders"].split(";")
    missing = [h for h in signed if h not in headers]
    if missing:
        return {"valid": False, "reason": "signed header not sent: " + ",".join(missing)}
    kept = {h: headers[h] for h in signed}
    token = headers.get("x-amz-security-token")
    body = bytes.fromhex(req["body_hex"])
    signature, signed_headers = recompute(
        req["method"], req["url"], kept, body, access_key, req["secret_access_key"], token,
        service, region, headers["x-amz-date"])
    valid = (
        signature == parts["Signature"]
        and signed_headers == parts["SignedHeaders"]
        and service == req["service"]
        and region == req["region"]
        and date == headers["x-amz-date"][:8]
        and terminator == "aws4_request"
    )
    return {
        "valid": valid,
        "scope": "/".join([date, region, service, terminator]),
        "signed_headers": parts["SignedHeaders"],
        "reason": "" if valid else "signature mismatch",
    }


def sign(req):
    headers = dict(req["headers"])
    headers["X-Amz-Date"] = req["amz_date"]
    token = req.get("session_token")
    if token:
        headers["X-Amz-Security-Token"] = token
    body = bytes.fromhex(req["body_hex"])
    signature, signed_headers = recompute(
        req["method"], req["url"], headers, body, req["access_key_id"], req["secret_access_key"],
        token, req["service"], req["region"], req["amz_date"])
    scope = "/".join([req["amz_date"][:8], req["region"], req["service"], "aws4_request"])
    return {
        "authorization": "AWS4-HMAC-SHA256 Credential=%s/%s, SignedHeaders=%s, Signature=%s"
        % (req["access_key_id"], scope, signed_headers, signature)
    }


if __name__ == "__main__":
    request = json.load(sys.stdin)
    result = sign(request) if request.get("mode") == "sign" else verify(request)
    print(json.dumps(result))
