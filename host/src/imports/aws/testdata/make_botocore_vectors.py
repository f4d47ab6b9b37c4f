"""Writes botocore_vectors.json: SigV4 known answers computed by botocore (python3 -m pip
botocore; 1.43.11 when generated) for requests shaped like the host signs them (host and
content-type only). Run from this folder: python3 make_botocore_vectors.py > botocore_vectors.json
"""
import json

from sigv4_verify import sign

AKID = "AKIDEXAMPLE"
SECRET = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
TOKEN = "IQoJb3JpZ2luX2VjEXAMPLETOKENvalue/+=="
BODY = b'{"model":"openai.gpt-oss-20b-1:0","messages":[{"role":"user","content":"hi"}]}'

CASES = [
    ("bedrock-chat", "POST", "https://bedrock-runtime.us-west-2.amazonaws.com/openai/v1/chat/completions",
     "application/json", BODY, None, "bedrock", "us-west-2"),
    ("bedrock-chat-session-token", "POST", "https://bedrock-runtime.us-west-2.amazonaws.com/openai/v1/chat/completions",
     "application/json", BODY, TOKEN, "bedrock", "us-west-2"),
    ("host-with-port", "POST", "https://localhost:8443/openai/v1/chat/completions",
     "application/json", BODY, TOKEN, "bedrock", "us-east-1"),
    ("http-loopback-port", "POST", "http://127.0.0.1:8080/openai/v1/chat/completions",
     "application/json; charset=utf-8", BODY, None, "bedrock", "eu-west-1"),
    ("get-query-no-content-type", "GET", "https://bedrock.us-east-1.amazonaws.com/foundation-models?byOutputModality=TEXT&byInferenceType=ON_DEMAND",
     None, b"", None, "bedrock", "us-east-1"),
    ("encoded-path", "POST", "https://bedrock-runtime.us-east-2.amazonaws.com/model/openai.gpt-oss-20b-1%3A0/converse",
     "application/json", BODY, TOKEN, "bedrock", "us-east-2"),
]

vectors = []
for name, method, url, content_type, body, token, service, region in CASES:
    host = url.split("/")[2]
    if (url.startswith("https://") and host.endswith(":443")) or (url.startswith("http://") and host.endswith(":80")):
        host = host.rsplit(":", 1)[0]
    headers = [["host", host]]
    if content_type:
        headers.append(["content-type", content_type])
    request = {
        "method": method, "url": url, "headers": headers, "body_hex": body.hex(),
        "access_key_id": AKID, "secret_access_key": SECRET, "session_token": token,
        "service": service, "region": region, "amz_date": "20260115T103000Z",
    }
    vectors.append({
        "name": name, "method": method, "url": url, "content_type": content_type,
        "body_hex": body.hex(), "session_token": token, "service": service, "region": region,
        "amz_date": "20260115T103000Z", "authorization": sign(request)["authorization"],
    })
print(json.dumps({"access_key_id": AKID, "secret_access_key": SECRET, "vectors": vectors}, indent=2))
