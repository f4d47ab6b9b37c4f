"""The seed post's user session ("Use Amazon Bedrock with OGX Without Managing Bearer Tokens"),
as helpers for the Bedrock end-to-end tests: its config.yaml word for word (step 2), and its
steps 4-6 (first model from /v1/models, a curl chat request, the OpenAI client)."""

from __future__ import annotations

import json
from typing import Any, Mapping

import requests
from openai import OpenAI

from ogx_harness import REPO, sse_events, wait_until

QUESTION = "Which planet do humans live on?"
SEED_CONFIG_PATH = REPO / "config" / "seed-bedrock-sigv4.yaml"

# Step 2 of the post, verbatim (relative storage paths land in the server's work directory).
POST_CONFIG = """\
version: 2
distro_name: bedrock-sigv4-demo
apis:
- inference
- models
providers:
  inference:
  - provider_id: bedrock-inference
    provider_type: remote::bedrock
    config:
      # aws_bedrock_bearer_token intentionally omitted so OGX uses the AWS credential chain
      region_name: ${env.AWS_DEFAULT_REGION:=us-west-2}
      aws_role_arn: ${env.AWS_ROLE_ARN:=}
      aws_web_identity_token_file: ${env.AWS_WEB_IDENTITY_TOKEN_FILE:=}
      aws_role_session_name: ${env.AWS_ROLE_SESSION_NAME:=ogx-bedrock-demo}
      session_ttl: ${env.AWS_SESSION_TTL:=3600}

storage:
  backends:
    kv_default:
      type: kv_sqlite
      db_path: ./.ogx/kvstore.db
    sql_default:
      type: sql_sqlite
      db_path: ./.ogx/sql_store.db
  stores:
    metadata:
      namespace: registry
      backend: kv_default
    inference:
      table_name: inference_store
      backend: sql_default
      max_write_queue_size: 10000
      num_writers: 4
    prompts:
      namespace: prompts
      backend: kv_default

registered_resources:
  models:
  - metadata: {}
    model_id: openai.gpt-oss-20b-1:0
    provider_id: bedrock-inference
    provider_model_id: openai.gpt-oss-20b-1:0
    model_type: llm
"""


def config_with(provider_config: Mapping[str, Any], extra_models: str = "") -> str:
    """A config like the post's, with `provider_config` as the provider's `config:` block
    (values are written as JSON, which is YAML) and more `registered_resources.models`."""
    lines = "\n".join(f"      {key}: {json.dumps(value)}" for key, value in provider_config.items())
    return f"""\
version: 2
distro_name: bedrock-e2e
apis: [inference, models]
providers:
  inference:
  - provider_id: bedrock-inference
    provider_type: remote::bedrock
    config:
{lines or "      {}"}
registered_resources:
  models:
  - metadata: {{}}
    model_id: openai.gpt-oss-20b-1:0
    provider_id: bedrock-inference
    provider_model_id: openai.gpt-oss-20b-1:0
    model_type: llm
{extra_models}"""


def first_model_id(base_url: str) -> str:
    """Step 4: `curl -s $BASE/v1/models | jq -r '.data[0].id // empty'`."""
    return requests.get(f"{base_url}/v1/models", timeout=10).json()["data"][0]["id"]


def curl_chat(base_url: str, model_id: str, content: str = QUESTION, stream: bool = False,
              provider_data: Any = None) -> requests.Response:
    """Step 5: `curl -s -X POST $BASE/v1/chat/completions -H 'Content-Type: application/json'
    -d '{"model": ..., "messages": [...], "stream": false}'` (plus, when given, the
    `x-ogx-provider-data` header, as JSON text if it is not a string already)."""
    headers = {"Content-Type": "application/json"}
    if provider_data is not None:
        headers["x-ogx-provider-data"] = (provider_data if isinstance(provider_data, str)
                                          else json.dumps(provider_data))
    body = {"model": model_id, "messages": [{"role": "user", "content": content}],
            "stream": stream}
    return requests.post(f"{base_url}/v1/chat/completions", headers=headers,
                         data=json.dumps(body), timeout=60, stream=stream)


def content_of(response: requests.Response) -> str:
    """`| jq -r '.choices[0].message.content'`."""
    assert response.status_code == 200, f"{response.status_code}: {response.text}"
    return response.json()["choices"][0]["message"]["content"]


def streamed_chunks(response: requests.Response) -> list[dict]:
    assert response.status_code == 200, f"{response.status_code}: {response.text}"
    return [json.loads(e) for e in sse_events(response) if e != "[DONE]"]


def openai_session(base_url: str, content: str = QUESTION) -> str:
    """Step 6, the OpenAI Python client, non-streaming."""
    model_id = requests.get(f"{base_url}/v1/models", timeout=10).json()["data"][0]["id"]
    client = OpenAI(base_url=f"{base_url}/v1", api_key="ogx", max_retries=0, timeout=60)
    response = client.chat.completions.create(
        model=model_id,
        messages=[{"role": "user", "content": content}],
        stream=False,
    )
    return response.choices[0].message.content


def listed_ids_once_refreshed(server) -> list[str]:
    """/v1/models once the background listing added the upstream's models."""
    def listed():
        ids = [m["id"] for m in server.get("/v1/models").json()["data"]]
        return ids if any(i.endswith("openai.gpt-oss-120b-1:0") for i in ids) else None
    return wait_until(listed, 20, "the listed Bedrock models on /v1/models")
