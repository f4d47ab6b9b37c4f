"""The table of paths the benchmark measures: one entry per way a request goes through ogx.

A path is {name, ogx config fragments, the request (route and body), the model it names}, plus
the request its floor is measured with. Every path gets, in the same rounds:

- ogx, started with the base config (`BASE_CONFIG`: SQLite storage, the history on) merged with
  the path's fragments. Paths whose merged config is the same share one ogx process.
- The floor proxy (bench/floor) sent the path's *floor request*: by default the same request;
  for a path ogx translates (the Responses API), the chat completion ogx sends upstream for it,
  since the floor proxy only forwards. Paths with the same floor request share its measurement.
- The upstream directly, sent the floor request with the upstream's model id (the absolute
  floor: "added" latency is over it).

A new path (authentication or tracing on, say) is one more `BenchPath` in
`PATHS`: a fragment for what it turns on, the request a client sends, and headers if it needs
them. Config fragments are plain data; strings may hold `{upstream}` (the upstream's URL) and
`{state}` (the run's folder for this ogx), filled in when the config is written. Fragments merge
into the base: mappings key by key, lists appended (without repeats).

Standard library only."""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

# The upstream's one model (bench/upstream's MODEL_ID).
UPSTREAM_MODEL = "bench-model"

# The prompt every chat request sends.
MESSAGES = [{"role": "user", "content": "What is the answer?"}]

BASE_CONFIG: dict[str, Any] = {
    "version": 2,
    "distro_name": "ogx-bench",
    "apis": ["inference", "models"],
    "storage": {
        "backends": {
            "kv_default": {"type": "kv_sqlite", "db_path": "{state}/kvstore.db"},
            "sql_default": {"type": "sql_sqlite", "db_path": "{state}/sql_store.db"},
        },
        "stores": {
            "metadata": {"namespace": "registry", "backend": "kv_default"},
            "inference": {"table_name": "inference_store", "backend": "sql_default"},
            "prompts": {"namespace": "prompts", "backend": "kv_default"},
        },
    },
}


def provider_fragment(provider_id: str, provider_type: str, config: dict[str, Any]) -> dict:
    """An inference provider and the upstream's model registered on it (sent as
    `<provider_id>/bench-model`)."""
    return {
        "providers": {"inference": [{"provider_id": provider_id, "provider_type": provider_type,
                                     "config": config}]},
        "registered_resources": {"models": [{"model_id": UPSTREAM_MODEL,
                                             "provider_id": provider_id,
                                             "provider_model_id": UPSTREAM_MODEL,
                                             "model_type": "llm"}]},
    }


# The OpenAI-compatible plugin in front of the upstream.
VLLM = provider_fragment("vllm", "remote::vllm", {"base_url": "{upstream}/v1"})
# The Bedrock plugin: SigV4 with static keys (the upstream does not check them), the upstream
# reached through AWS_ENDPOINT_URL_BEDROCK_RUNTIME (set by bench/run.py).
BEDROCK = provider_fragment("bedrock", "remote::bedrock", {
    "region_name": "us-west-2",
    "aws_access_key_id": "AKIAOGXBENCHMARK0001",
    "aws_secret_access_key": "bench/secret/key/not/checked",
    # `bench-model` is not `openai.gpt-oss-*`: without this it would go to Converse.
    "model_overrides": {UPSTREAM_MODEL: {"api": "openai"}},
})
# The same plugin with the model on Converse (the upstream answers /model/{id}/converse and
# /converse-stream with real event-stream frames).
CONVERSE_MODEL = "anthropic.claude-bench-v1:0"
CONVERSE = {
    "registered_resources": {"models": [{"model_id": CONVERSE_MODEL, "provider_id": "bedrock",
                                         "provider_model_id": CONVERSE_MODEL,
                                         "model_type": "llm"}]},
}
# The Responses API, its responses stored in SQLite.
RESPONSES = {
    "apis": ["responses"],
    "providers": {"responses": [{"provider_id": "builtin", "provider_type": "inline::builtin",
                                 "config": {"persistence": {"responses": {
                                     "table_name": "responses", "backend": "sql_default"}}}}]},
}
# No chat-completion history. A build of ogx that does not know the key warns
# "unknown key ... (ignored)" at start; bench/run.py reports that under the tables.
HISTORY_OFF = {"storage": {"stores": {"inference": {"enabled": False}}}}
# Prometheus metrics recorded on every request (`GET /metrics` on the API port).
METRICS_ON = {"server": {"metrics": {"enabled": True}}}
# OpenTelemetry traces on, sampled at 1 % and at 100 %. The bench has no collector: the
# endpoint is a local port where nothing listens (the discard port), so every export fails,
# off the request path, once per batch interval, and is counted. What a request pays is the
# same as with a collector: its spans made, attributed and queued (or dropped when full).
TRACES_NOWHERE = "http://127.0.0.1:9/v1/traces"
TRACING_1PCT = {"server": {"tracing": {"endpoint": TRACES_NOWHERE, "sample_ratio": 0.01}}}
TRACING_100PCT = {"server": {"tracing": {"endpoint": TRACES_NOWHERE, "sample_ratio": 1.0}}}
# Gateway keys with limits on: one key declared in the config (by its secret's SHA-256), sent
# as a bearer token, with request and token limits and a budget far above what a run uses, so
# that every request is authenticated, checked against its limits and metered in SQLite.
GATEWAY_KEY = "sk-ogx-" + "b" * 64
GATEWAY_KEYS = {
    "gateway_keys": {
        "store": {"backend": "kv_default"},
        "prices": {"vllm/*": {"input": 0.5, "output": 1.5}},
        "keys": [{"id": "gk_bench", "secret_sha256": hashlib.sha256(GATEWAY_KEY.encode()).hexdigest(),
                  "owner": "bench", "models": ["vllm/*"],
                  "limits": {"requests_per_minute": 10**9, "requests_per_day": 10**12,
                             "tokens_per_minute": 10**12, "tokens_per_day": 10**15},
                  "budget": {"amount": 10**9, "period": "month"}}],
    },
}
# Routing (README, "Routing and failover"): a second OpenAI-compatible provider at the same
# upstream, and a routed model that falls back from `vllm` to it. With it in the config, a
# request for `vllm/bench-model` still takes the one-target path (after missing the routed
# models); a request for `bench-fallback` takes the two-target path, answered by its healthy
# first target.
FALLBACK_MODEL = "bench-fallback"
ROUTING = {
    "providers": {"inference": [{"provider_id": "vllm-b", "provider_type": "remote::vllm",
                                 "config": {"base_url": "{upstream}/v1"}}]},
    "routing": {"models": {FALLBACK_MODEL: {"strategy": "fallback", "targets": [
        {"provider_id": "vllm", "provider_model_id": UPSTREAM_MODEL},
        {"provider_id": "vllm-b", "provider_model_id": UPSTREAM_MODEL},
    ]}}},
}
# The Messages API (README, "The Messages API"). `remote::vllm` serves it natively: the
# client's body, its `model` replaced, goes to the upstream's /v1/messages and the upstream's
# answer comes back untouched. A second `remote::vllm` provider at the same upstream with
# `native_messages: false` serves it by translation: one chat completion upstream, its answer
# turned into Anthropic's (requested as `vllm-translated/bench-model`, a provider-prefixed id).
MESSAGES_API = {
    "apis": ["messages"],
    "providers": {"messages": [{"provider_id": "builtin", "provider_type": "inline::builtin",
                                "config": {"kvstore": {"backend": "kv_default",
                                                       "namespace": "message_batches"}}}]},
}
TRANSLATED_PROVIDER = "vllm-translated"
MESSAGES_TRANSLATED = {
    "providers": {"inference": [{"provider_id": TRANSLATED_PROVIDER, "provider_type": "remote::vllm",
                                 "config": {"base_url": "{upstream}/v1",
                                            "native_messages": False}}]},
}


@dataclass(frozen=True)
class Request:
    """What a client sends: the route, the body without `model`, extra headers."""
    route: str
    body: dict[str, Any]
    headers: tuple[tuple[str, str], ...] = ()

    @property
    def stream(self) -> bool:
        return bool(self.body.get("stream"))

    def json(self, model: str) -> str:
        return json.dumps({"model": model, **self.body})

    @property
    def label(self) -> str:
        """`chat`, `chat stream`, or the route."""
        what = {"/v1/chat/completions": "chat", "/v1/messages": "messages"}.get(self.route,
                                                                                self.route)
        return what + (" stream" if self.stream else "")

    @property
    def key(self) -> str:
        """Identifies the request (paths with equal floor requests share their floor)."""
        return json.dumps([self.route, self.body, self.headers], sort_keys=True)


CHAT = Request("/v1/chat/completions", {"messages": MESSAGES, "max_tokens": 16})
CHAT_STREAM = Request("/v1/chat/completions",
                      {"messages": MESSAGES, "max_tokens": 16, "stream": True})
RESPONSE = Request("/v1/responses", {"input": MESSAGES[0]["content"], "max_output_tokens": 16})
ANTHROPIC_VERSION = (("anthropic-version", "2023-06-01"),)
MESSAGE = Request("/v1/messages", {"messages": MESSAGES, "max_tokens": 16},
                  headers=ANTHROPIC_VERSION)
MESSAGE_STREAM = Request("/v1/messages", {"messages": MESSAGES, "max_tokens": 16, "stream": True},
                         headers=ANTHROPIC_VERSION)
CHAT_WITH_KEY = Request("/v1/chat/completions", {"messages": MESSAGES, "max_tokens": 16},
                        headers=(("Authorization", f"Bearer {GATEWAY_KEY}"),))


@dataclass(frozen=True)
class BenchPath:
    """One row set of the tables. `floor` defaults to `request` (see the module's doc)."""
    name: str
    fragments: tuple[dict[str, Any], ...]
    request: Request
    model: str
    floor: Request | None = None
    # Whether the peers (OGX, LiteLLM, Portkey) are measured on this path too.
    peers: bool = False

    @property
    def floor_request(self) -> Request:
        return self.floor or self.request


PATHS: tuple[BenchPath, ...] = (
    BenchPath("vllm", (VLLM,), CHAT, "vllm/bench-model", peers=True),
    BenchPath("bedrock", (BEDROCK,), CHAT, "bedrock/bench-model"),
    BenchPath("vllm-stream", (VLLM,), CHAT_STREAM, "vllm/bench-model"),
    BenchPath("bedrock-stream", (BEDROCK,), CHAT_STREAM, "bedrock/bench-model"),
    # One Responses request is one chat completion, streamed from the provider (README, "The
    # Responses API"), and the response is stored before the answer goes out.
    BenchPath("responses", (VLLM, RESPONSES), RESPONSE, "vllm/bench-model",
              floor=CHAT_STREAM),
    BenchPath("vllm-history-off", (VLLM, HISTORY_OFF), CHAT, "vllm/bench-model"),
    BenchPath("vllm-metrics", (VLLM, METRICS_ON), CHAT, "vllm/bench-model"),
    # Metrics and traces at 1 % together: what an operator runs (issue goal: within 0.21 ms of
    # added p50 and 5 % of saturation of the `vllm` row).
    BenchPath("vllm-metrics-tracing-1pct", (VLLM, METRICS_ON, TRACING_1PCT), CHAT,
              "vllm/bench-model"),
    BenchPath("vllm-tracing-100pct", (VLLM, TRACING_100PCT), CHAT, "vllm/bench-model"),
    # Gateway key + limits: the key looked up (cached), its limits read and counted, the
    # answer's usage counted, on the base config's SQLite; the floor is the same chat request.
    BenchPath("vllm-gateway-key", (VLLM, GATEWAY_KEYS), CHAT_WITH_KEY, "vllm/bench-model",
              floor=CHAT),
    # ogx translates these to Converse; the floor proxy forwards the chat completion as sent,
    # so their floor is what a minimal proxy costs for the same client request.
    BenchPath("bedrock-converse", (BEDROCK, CONVERSE), CHAT, f"bedrock/{CONVERSE_MODEL}",
              floor=CHAT),
    BenchPath("bedrock-converse-stream", (BEDROCK, CONVERSE), CHAT_STREAM,
              f"bedrock/{CONVERSE_MODEL}", floor=CHAT_STREAM),
    # The one-target path with routed models configured (compare with `vllm`), and a
    # two-target fallback whose first target is healthy.
    BenchPath("vllm-routing-present", (VLLM, ROUTING), CHAT, "vllm/bench-model"),
    BenchPath("vllm-fallback", (VLLM, ROUTING), CHAT, FALLBACK_MODEL),
    # Anthropic's Messages API, native (the floor proxy forwards the same Messages request to
    # the upstream's /v1/messages) and translated (the floor is the chat completion ogx makes).
    BenchPath("messages", (VLLM, MESSAGES_API), MESSAGE, "vllm/bench-model"),
    BenchPath("messages-stream", (VLLM, MESSAGES_API), MESSAGE_STREAM, "vllm/bench-model"),
    BenchPath("messages-translated", (VLLM, MESSAGES_API, MESSAGES_TRANSLATED), MESSAGE,
              f"{TRANSLATED_PROVIDER}/bench-model", floor=CHAT),
)

# What start-up and idle RSS are measured with: both plugins, each with its model.
STARTUP_FRAGMENTS = (VLLM, BEDROCK)

# The model names the floor proxy accepts (each rewritten to the upstream's id), so that it is
# sent what ogx is sent.
FLOOR_MODELS = sorted({p.model for p in PATHS})


def merge(base: Any, fragment: Any) -> Any:
    """`fragment` merged into a copy of `base`: mappings key by key, lists appended without
    repeats, anything else replaced."""
    if isinstance(base, dict) and isinstance(fragment, dict):
        merged = dict(base)
        for key, value in fragment.items():
            merged[key] = merge(base[key], value) if key in base else value
        return merged
    if isinstance(base, list) and isinstance(fragment, list):
        return base + [item for item in fragment if item not in base]
    return fragment


def fill(value: Any, **names: str) -> Any:
    """`value` with `{upstream}` / `{state}` in its strings replaced."""
    if isinstance(value, dict):
        return {k: fill(v, **names) for k, v in value.items()}
    if isinstance(value, list):
        return [fill(v, **names) for v in value]
    if isinstance(value, str):
        for name, replacement in names.items():
            value = value.replace("{" + name + "}", replacement)
    return value


def ogx_config(fragments: tuple[dict[str, Any], ...], base: dict[str, Any] = BASE_CONFIG) -> dict:
    """The config ogx runs a path with (placeholders not yet filled)."""
    config = base
    for fragment in fragments:
        config = merge(config, fragment)
    return config


def config_key(config: dict[str, Any]) -> str:
    """Equal for equal configs: paths with the same config share one ogx process."""
    return json.dumps(config, sort_keys=True)


def write_config(config: dict[str, Any], path, upstream: str, state: str) -> None:
    """Writes the config as JSON (which YAML readers, ogx's and OGX's, take as it is)."""
    path.write_text(json.dumps(fill(config, upstream=upstream, state=state), indent=2) + "\n")


def select(names: str | None) -> tuple[BenchPath, ...]:
    """The paths named (comma-separated), in the table's order; all when `names` is empty."""
    if not names:
        return PATHS
    wanted = [n.strip() for n in names.split(",") if n.strip()]
    known = {p.name: p for p in PATHS}
    unknown = [n for n in wanted if n not in known]
    if unknown:
        raise ValueError(f"unknown path(s) {', '.join(map(repr, unknown))}; the paths: "
                         + ", ".join(repr(p.name) for p in PATHS))
    return tuple(p for p in PATHS if p.name in wanted)
