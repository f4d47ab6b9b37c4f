"""OGX 1.5.0's own configs, command line and clients against ogx: the shipped distribution
configs (`config/distributions/`, verbatim from the OGX 1.5.0 sdist), `ogx run <distro>`,
`provider_id: all` / `provider_model_id: auto`, `/v1/models` in Anthropic's and Google's shapes
through their real SDKs, the history as OGX's client lists it (`limit=1000`, ties by id),
prompts in OGX's SQL table (written and read by SQLAlchemy, as OGX does), the inference store
switched off, the generic `<provider_id>_api_key`, and the configs OGX 1.5.0 refuses."""

from __future__ import annotations

import json
import re
import sqlite3
import subprocess
import time
from pathlib import Path

import anthropic
import pytest
import requests
import sqlalchemy as sa
from google import genai
from google.genai import types as genai_types

from mock_openai import MockOpenAI, answer_for
from ogx_harness import (DEFAULT, PLUGINS_DIR, REPO, OgxLauncher, OgxServer,
                         default_storage_yaml, error_message_of, free_port, ogx_env,
                         plugin_serving, require_binary, vllm_config)
from ogx_harness import run_ogx as run_ogx_once

DISTRIBUTIONS = REPO / "config" / "distributions"
# The inference providers each shipped config enables with no environment, in config order.
ENABLED_WITHOUT_ENV = {
    "starter": ["remote::fireworks", "remote::together", "remote::bedrock", "remote::openai",
                "remote::anthropic", "remote::gemini", "remote::groq", "remote::meta",
                "remote::sambanova", "inline::sentence-transformers"],
    "open-benchmark": ["remote::openai", "remote::anthropic", "remote::gemini", "remote::groq",
                       "remote::together"],
    "oci": ["remote::oci"],
    "watsonx": ["remote::watsonx"],
}
CLOUD_IDENTITY = {"remote::vertexai": "Vertex AI", "remote::watsonx": "IBM Cloud IAM"}
# Served, and refused by its plugin's `init` as OGX's adapter refuses it: the shipped `oci`
# config leaves the compartment empty unless OCI_COMPARTMENT_OCID is set.
REFUSED_BY_INIT = {"remote::oci": "OCI_COMPARTMENT_OCID is a required parameter"}


@pytest.fixture(scope="module")
def unserved_types(ogx_home):
    """Remote provider types of the shipped configs that no plugin here serves."""
    types = {t for ts in ENABLED_WITHOUT_ENV.values() for t in ts}
    types |= {"remote::vllm", "remote::nvidia"}
    # The first run compiles every plugin into the cache: slow in a debug build.
    listing = run_ogx_once(["plugins", "list", "--plugins-dir", PLUGINS_DIR], ogx_home,
                           plugins_dir=None, timeout=600).output
    return {t for t in types if t.startswith("remote::") and t not in CLOUD_IDENTITY
            and t not in REFUSED_BY_INIT and plugin_serving(t, listing) is None}


@pytest.fixture
def named(tmp_path, ogx_home):
    """Starts `ogx run [args] ARG` (ARG a distribution name or a path) and waits for health."""
    servers: list[OgxServer] = []

    def start(arg: str, env=None, args=()) -> OgxServer:
        port = free_port()
        cmd = [str(require_binary()), "run", "--port", str(port), *args, arg]
        log = tmp_path / f"ogx-{len(servers)}.log"
        with open(log, "wb") as out:
            proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=out,
                                    stderr=subprocess.STDOUT, cwd=tmp_path,
                                    env=ogx_env(ogx_home, DEFAULT, env), start_new_session=True)
        server = OgxServer(proc, f"http://127.0.0.1:{port}", log, Path(arg))
        servers.append(server)
        OgxLauncher._wait_healthy(server, cmd)
        return server

    yield start
    for server in servers:
        server.stop()


def expect_refusal(output: str, types: list[str], unserved: set[str]) -> str | None:
    """The sentence start-up must stop with for a config enabling `types`, or None if it starts."""
    for t in types:
        if t in CLOUD_IDENTITY:
            return CLOUD_IDENTITY[t]
        if t in REFUSED_BY_INIT:
            return REFUSED_BY_INIT[t]
        if t in unserved:
            return f"no plugin serves provider type `{t}`"
    return None


# -- the shipped configs -------------------------------------------------------------------

@pytest.mark.parametrize("distro", sorted(ENABLED_WITHOUT_ENV))
def test_each_shipped_config_starts_unchanged_without_environment(distro, run_ogx, named,
                                                                  tmp_path, unserved_types):
    """A copy of the shipped file starts as it is, with no environment: served, or, where the
    config enables a type ogx cannot serve yet, refused naming it (and nothing else)."""
    config = tmp_path / f"{distro}.yaml"
    config.write_text((DISTRIBUTIONS / distro / "config.yaml").read_text())
    refusal = expect_refusal("", ENABLED_WITHOUT_ENV[distro], unserved_types)
    if refusal is not None:
        result = run_ogx(["run", "--port", free_port(), config])
        assert result.returncode != 0
        assert refusal in result.output, result.output
        return
    server = named(str(config))
    output = server.output()
    # OGX 1.5.0's APIs ogx does not serve yet are named, never fatal.
    assert "ogx does not serve the 'vector_io' API yet" in output, output
    assert "inline::sentence-transformers" in output or distro != "starter"
    listed = server.get("/v1/models")
    assert listed.status_code == 200
    # Nothing reached a real upstream: no provider has a key, so their listings are skipped.
    assert server.get("/v1/health").json() == {"status": "OK"}


def test_nvidia_needs_its_inference_model_as_in_ogx(run_ogx, tmp_path):
    config = tmp_path / "nvidia.yaml"
    config.write_text((DISTRIBUTIONS / "nvidia" / "config.yaml").read_text())

    result = run_ogx(["run", "--port", free_port(), config])

    assert result.returncode != 0
    assert "Environment variable 'INFERENCE_MODEL' not set or empty at " \
           "registered_resources.models[0].model_id" in result.output, result.output


def test_ogx_run_starter_resolves_the_shipped_distribution(named, run_ogx, tmp_path, ogx_home,
                                                           unserved_types):
    """`ogx run starter` with VLLM_URL and OPENAI_API_KEY serves both, and the starter's
    `provider_id: all` + `auto` aliases land on the first served provider (vLLM)."""
    with MockOpenAI() as vllm, MockOpenAI(require_key="sk-openai", models=("gpt-mock",)) as oai:
        env = {"VLLM_URL": vllm.base_url, "OPENAI_API_KEY": "sk-openai",
               "OPENAI_BASE_URL": oai.base_url}
        refusal = expect_refusal("", ENABLED_WITHOUT_ENV["starter"], unserved_types)
        if refusal is not None:
            result = run_ogx(["run", "--port", free_port(), "starter"], env=env, cwd=tmp_path)
            assert result.returncode != 0 and refusal in result.output, result.output
            assert "distributions/starter/config.yaml" in result.output
            return
        server = named("starter", env=env)
        models = wait_for_models(server, {"vllm/mock-alpha", "openai/gpt-mock"})
        alias = models["claude-haiku-4-5-20251001"]
        assert (alias["custom_metadata"]["provider_id"],
                alias["custom_metadata"]["provider_resource_id"]) == ("vllm", "mock-alpha")
        answer = server.client().chat.completions.create(
            model="claude-haiku-4-5-20251001", messages=[{"role": "user", "content": "hi"}])
        assert answer.choices[0].message.content == answer_for("hi")
        assert vllm.last_request("/v1/chat/completions").json["model"] == "mock-alpha"
        server.client().chat.completions.create(
            model="openai/gpt-mock", messages=[{"role": "user", "content": "hi"}])
        assert oai.last_request("/v1/chat/completions").headers["authorization"] == \
            "Bearer sk-openai"
        # The stores live where OGX 1.5.0 puts them: ~/.ogx/distributions/starter.
        assert (ogx_home / ".ogx" / "distributions" / "starter" / "sql_store.db").is_file()


def wait_for_models(server: OgxServer, wanted: set[str], timeout: float = 30) -> dict:
    """`/v1/models` by id once every id of `wanted` is listed (listings run in the background)."""
    deadline = time.monotonic() + timeout
    while True:
        models = {m["id"]: m for m in server.get("/v1/models").json()["data"]}
        if wanted <= set(models) or time.monotonic() > deadline:
            assert wanted <= set(models), sorted(models)
            return models
        time.sleep(0.1)


def test_postgres_configs_start_on_postgresql(named, run_ogx, postgres, tmp_path,
                                               unserved_types):
    """postgres-demo (host/port fields) and starter's connection-string variant, on a private
    PostgreSQL cluster; prompts land in OGX's `prompts` table there."""
    from postgres_server import PASSWORD, USER
    with MockOpenAI() as vllm:
        database = postgres.new_database()
        env = {"POSTGRES_HOST": "127.0.0.1", "POSTGRES_PORT": str(postgres.port),
               "POSTGRES_DB": database, "POSTGRES_USER": USER, "POSTGRES_PASSWORD": PASSWORD,
               "VLLM_URL": vllm.base_url, "INFERENCE_MODEL": "mock-alpha"}
        server = named("postgres-demo", env=env)
        assert "sentence-transformers" in server.output()
        answer = server.client().chat.completions.create(
            model="vllm-inference/mock-alpha", messages=[{"role": "user", "content": "hi"}])
        assert answer.choices[0].message.content == answer_for("hi")
        created = server.post("/v1/prompts", json={"prompt": "pg"}).json()
        rows = postgres.psql("SELECT id, is_default FROM prompts", database=database).split()
        assert rows == [f"{created['prompt_id']}:1|t"]
        assert PASSWORD not in server.output()

        uri = f"postgresql://{USER}:{PASSWORD}@127.0.0.1:{postgres.port}/{postgres.new_database()}"
        arg = "starter::run-with-postgres-uri-store.yaml"
        refusal = expect_refusal("", ENABLED_WITHOUT_ENV["starter"], unserved_types)
        if refusal is not None:
            result = run_ogx(["run", "--port", free_port(), arg],
                             env={"POSTGRES_CONNECTION_STRING": uri}, cwd=tmp_path)
            assert result.returncode != 0 and refusal in result.output, result.output
        else:
            started = named(arg, env={"POSTGRES_CONNECTION_STRING": uri})
            assert started.get("/v1/models").status_code == 200
            assert PASSWORD not in started.output()


# -- aliases -------------------------------------------------------------------------------

def alias_config(first_url: str, second_url: str, models_yaml: str) -> str:
    return f"""
version: 2
distro_name: aliases
providers:
  inference:
  - provider_id: ${{env.FIRST_ON:+first}}
    provider_type: remote::vllm
    config: {{base_url: "{first_url}"}}
  - provider_id: second
    provider_type: remote::vllm
    config: {{base_url: "{second_url}"}}
  - provider_id: sentence-transformers
    provider_type: inline::sentence-transformers
registered_resources:
  models:
{models_yaml}
"""


ALIAS = """  - model_id: my-alias
    provider_id: all
    provider_model_id: auto
    model_type: llm
"""


def test_provider_all_and_auto_resolve_on_the_first_served_provider(ogx_server):
    with MockOpenAI(models=("one-a", "one-b")) as first, MockOpenAI(models=("two-a",)) as second:
        config = alias_config(first.base_url, second.base_url, ALIAS + """  - model_id: pinned
    provider_id: second
    provider_model_id: auto
""")
        # `first` is disabled by its switch: the alias goes to `second`, unprefixed.
        server = ogx_server(config)
        models = wait_for_models(server, {"my-alias", "second/pinned"})
        meta = models["my-alias"]["custom_metadata"]
        assert (meta["provider_id"], meta["provider_resource_id"]) == ("second", "two-a")
        assert models["second/pinned"]["custom_metadata"]["provider_resource_id"] == "two-a"
        assert "second/my-alias" not in models, "an `all` alias is registered unprefixed"
        # The in-process provider is named and ignored.
        assert "inline::sentence-transformers" in server.output()

        server2 = ogx_server(config.replace("aliases", "aliases-2"), env={"FIRST_ON": "1"})
        models = wait_for_models(server2, {"my-alias"})
        assert models["my-alias"]["custom_metadata"]["provider_id"] == "first"
        assert models["my-alias"]["custom_metadata"]["provider_resource_id"] == "one-a"
        answer = server2.client().chat.completions.create(
            model="my-alias", messages=[{"role": "user", "content": "hello"}])
        assert answer.model == "my-alias"
        assert first.last_request("/v1/chat/completions").json["model"] == "one-a"


def test_an_alias_whose_provider_lists_nothing_is_a_warning_not_a_failure(ogx_server, run_ogx,
                                                                         tmp_path):
    with MockOpenAI(models=()) as empty:
        server = ogx_server(alias_config(empty.base_url, empty.base_url, ALIAS))
        assert "my-alias" not in [m["id"] for m in server.get("/v1/models").json()["data"]]
        assert "Provider 'second' returned no models for auto resolution" in server.output()

        # With its provider named explicitly, OGX 1.5.0 stops start-up: so does ogx.
        pinned = tmp_path / "pinned.yaml"
        pinned.write_text(alias_config(empty.base_url, empty.base_url, """  - model_id: pinned
    provider_id: second
    provider_model_id: auto
""") + default_storage_yaml(tmp_path))
        result = run_ogx(["run", "--port", free_port(), pinned])
        assert result.returncode != 0
        assert "model second/pinned: provider_model_id auto: Provider 'second' returned no " \
               "models for auto resolution" in result.output, result.output


# -- /v1/models for other SDKs -------------------------------------------------------------

@pytest.fixture
def models_server(ogx_server, mock_upstream):
    server = ogx_server(vllm_config(mock_upstream.base_url, distro_name="shapes"))
    wait_for_models(server, {"vllm/my-model", "vllm/mock-alpha", "vllm/mock-beta"})
    return server


def test_models_through_the_anthropic_sdk(models_server):
    client = anthropic.Anthropic(api_key="fake", base_url=models_server.url, max_retries=0,
                                 timeout=30)
    page = client.models.list(limit=100)
    ids = [m.id for m in page.data]
    assert ids == sorted(ids) and "vllm/my-model" in ids
    mine = next(m for m in page.data if m.id == "vllm/my-model")
    assert (mine.type, mine.display_name) == ("model", "vllm/my-model")
    assert mine.created_at is not None
    assert (page.first_id, page.last_id) == (ids[0], ids[-1])
    # The SDK's auto-paging follows `has_more` / `last_id` through pages of one.
    assert [m.id for m in client.models.list(limit=1)] == ids
    assert client.models.retrieve("vllm/my-model").id == "vllm/my-model"
    with pytest.raises(anthropic.NotFoundError):
        client.models.retrieve("vllm-nope/x")

    raw = models_server.get("/v1/models", headers={"anthropic-version": "2023-06-01"},
                            params={"after_id": "nope"})
    assert raw.status_code == 400
    assert error_message_of(raw) == "Failed to list models: after_id was not found."
    ok = models_server.get("/v1/models", headers={"anthropic-version": "2023-06-01"})
    assert ok.headers["anthropic-version"] == "2023-06-01"
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", ok.json()["data"][0]["created_at"])


def test_models_through_the_google_genai_sdk(models_server):
    client = genai.Client(api_key="no-key-required", http_options=genai_types.HttpOptions(
        base_url=models_server.url, api_version="v1", timeout=30000))
    names = [m.name for m in client.models.list()]
    assert "models/vllm/my-model" in names and all(n.startswith("models/") for n in names)
    got = client.models.get(model="models/vllm/my-model")
    assert got.name == "models/vllm/my-model"
    # OGX 1.5.0 answers snake_case `display_name`, which the SDK (camelCase) leaves as None;
    # OGX's own test accepts None or the id. The wire has it:
    raw = models_server.get("/v1/models/models/vllm/my-model", headers={"x-goog-api-key": "k"})
    assert raw.json() == {"name": "models/vllm/my-model", "display_name": "vllm/my-model",
                          "description": ""}
    assert got.display_name in (None, "vllm/my-model")
    # OGX 1.5.0 also matches the upstream id.
    by_upstream = client.models.get(model="models/upstream-model")
    assert by_upstream.name == "models/vllm/my-model"
    # The OpenAI shape is unchanged without those headers.
    assert models_server.get("/v1/models").json()["object"] == "list"


# -- the history as OGX 1.5.0's client lists it --------------------------------------------

def test_history_accepts_limit_1000_and_breaks_ties_on_id(ogx_server, mock_upstream):
    server = ogx_server(vllm_config(mock_upstream.base_url, distro_name="history"))
    client = server.client()
    answers = [client.chat.completions.create(
        model="vllm/my-model", messages=[{"role": "user", "content": f"q{i}"}]) for i in range(6)]
    deadline = time.monotonic() + 10
    while True:
        listed = client.chat.completions.list(limit=1000)
        if len(listed.data) == 6 or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    expected = [a.id for a in sorted(answers, key=lambda a: (-a.created, a.id))]
    assert [c.id for c in listed.data] == expected
    assert not listed.has_more
    assert server.get("/v1/chat/completions", params={"limit": 100000}).status_code == 200
    zero = server.get("/v1/chat/completions", params={"limit": 0})
    assert zero.status_code == 400 and "limit" in error_message_of(zero)


def test_history_off_answers_501_and_chat_still_works(ogx_server, mock_upstream, tmp_path):
    storage = default_storage_yaml(tmp_path).replace(
        "      table_name: inference_store\n",
        "      table_name: inference_store\n      enabled: false\n")
    server = ogx_server(vllm_config(mock_upstream.base_url, distro_name="off",
                                    more_sections=storage))
    answer = server.client().chat.completions.create(
        model="vllm/my-model", messages=[{"role": "user", "content": "hi"}])
    assert answer.choices[0].message.content == answer_for("hi")
    for path, operation in [("/v1/chat/completions", "List chat completions"),
                            (f"/v1/chat/completions/{answer.id}", "Get chat completion"),
                            (f"/v1/chat/completions/{answer.id}/messages",
                             "List chat completion messages")]:
        response = server.get(path)
        assert response.status_code == 501
        assert error_message_of(response) == \
            f"{operation} is not supported: inference store is not configured."
    assert not sqlite3.connect(tmp_path / "sql_store.db").execute(
        "SELECT name FROM sqlite_master WHERE name = 'inference_store'").fetchall()


# -- prompts in OGX's table ----------------------------------------------------------------

def ogx_prompts_table(metadata: sa.MetaData) -> sa.Table:
    """The table as OGX 1.5.0 declares it (`PromptServiceImpl.initialize` plus the owner columns
    its authorized store adds), through SQLAlchemy as OGX creates it."""
    return sa.Table(
        "prompts", metadata,
        sa.Column("id", sa.String, primary_key=True),
        sa.Column("prompt_id", sa.String),
        sa.Column("version", sa.Integer),
        sa.Column("is_default", sa.Boolean),
        sa.Column("created_at", sa.Integer),
        sa.Column("prompt_data", sa.JSON),
        sa.Column("owner_principal", sa.String),
        sa.Column("access_attributes", sa.JSON),
    )


def test_prompts_share_ogx_15_sql_table_both_ways(ogx_server, mock_upstream, tmp_path):
    db = tmp_path / "sql_store.db"
    engine = sa.create_engine(f"sqlite:///{db}")
    metadata = sa.MetaData()
    table = ogx_prompts_table(metadata)
    metadata.create_all(engine)
    theirs = "pmpt_" + "ab" * 24
    with engine.begin() as conn:
        conn.execute(table.insert(), [
            {"id": f"{theirs}:1", "prompt_id": theirs, "version": 1, "is_default": False,
             "created_at": 1, "prompt_data": {"prompt": "Hi {{ name }}", "variables": ["name"]},
             "owner_principal": "", "access_attributes": None},
            {"id": f"{theirs}:2", "prompt_id": theirs, "version": 2, "is_default": True,
             "created_at": 2, "prompt_data": {"prompt": "Hello {{ name }}",
                                              "variables": ["name"]},
             "owner_principal": "", "access_attributes": None},
        ])
    storage = default_storage_yaml(tmp_path) + \
        "    prompts:\n      backend: sql_default\n      table_name: prompts\n"
    server = ogx_server(vllm_config(mock_upstream.base_url, distro_name="prompts-sql",
                                    more_sections=storage))

    # OGX's rows, read by ogx.
    got = server.get(f"/v1/prompts/{theirs}").json()
    assert (got["version"], got["prompt"], got["is_default"]) == (2, "Hello {{ name }}", True)
    versions = server.get(f"/v1/prompts/{theirs}/versions").json()["data"]
    assert [(v["version"], v["is_default"]) for v in versions] == [(1, False), (2, True)]

    # ogx's rows, read as OGX reads them.
    mine = server.post("/v1/prompts", json={"prompt": "Bye {{ who }}", "variables": ["who"]})
    mine_id = mine.json()["prompt_id"]
    updated = requests.put(f"{server.url}/v1/prompts/{mine_id}", timeout=30, json={
        "prompt": "Bye now", "version": 1, "variables": [], "set_as_default": True})
    assert updated.status_code == 200, updated.text
    assert requests.put(f"{server.url}/v1/prompts/{theirs}/set-default-version", timeout=30,
                        json={"version": 1}).status_code == 200
    with engine.connect() as conn:
        rows = conn.execute(sa.select(table).order_by(table.c.id)).mappings().all()
    by_id = {r["id"]: r for r in rows}
    assert by_id[f"{mine_id}:1"]["prompt_data"] == {"prompt": "Bye {{ who }}", "variables": ["who"]}
    assert (by_id[f"{mine_id}:1"]["is_default"], by_id[f"{mine_id}:2"]["is_default"]) == \
        (False, True)
    assert by_id[f"{mine_id}:2"]["version"] == 2 and by_id[f"{mine_id}:2"]["prompt_id"] == mine_id
    assert by_id[f"{mine_id}:1"]["owner_principal"] == ""
    assert (by_id[f"{theirs}:1"]["is_default"], by_id[f"{theirs}:2"]["is_default"]) == (True, False)
    # OGX's listing query (`is_default` rows by prompt_id desc) sees both prompts.
    with engine.connect() as conn:
        listed = conn.execute(sa.select(table.c.prompt_id).where(table.c.is_default.is_(True))
                              .order_by(table.c.prompt_id.desc())).scalars().all()
    assert listed == sorted([theirs, mine_id], reverse=True)
    assert [p["prompt_id"] for p in server.get("/v1/prompts").json()["data"]] == listed


# -- provider data -------------------------------------------------------------------------

def test_the_generic_provider_id_api_key_reaches_any_provider(ogx_server):
    with MockOpenAI(require_key="per-request-key") as upstream:
        config = vllm_config(upstream.base_url, distro_name="pd", api_token=None).replace(
            "provider_id: vllm\n    provider_type", "provider_id: GPU\n    provider_type").replace(
            "    provider_id: vllm\n", "    provider_id: GPU\n")
        server = ogx_server(config)
        response = server.post("/v1/chat/completions", headers={
            "x-ogx-provider-data": json.dumps({"gpu_API_KEY": "per-request-key"})},
            json={"model": "GPU/my-model", "messages": [{"role": "user", "content": "hi"}]})
        assert response.status_code == 200, response.text
        assert upstream.last_request("/v1/chat/completions").headers["authorization"] == \
            "Bearer per-request-key"
        refused = server.post("/v1/chat/completions", json={
            "model": "GPU/my-model", "messages": [{"role": "user", "content": "hi"}]})
        assert refused.status_code == 401


# -- command line --------------------------------------------------------------------------

def test_insecure_flag_server_insecure_and_the_deprecated_stack_run(ogx_server, mock_upstream,
                                                                  run_ogx, tmp_path):
    config = vllm_config(mock_upstream.base_url, distro_name="cli",
                         more_sections="server:\n  insecure: true\n")
    server = ogx_server(config, args=["--insecure", "--enable-ui"])
    assert server.get("/v1/health").status_code == 200
    assert "--enable-ui is ignored" in server.output()

    path = tmp_path / "cli.yaml"
    path.write_text(vllm_config(mock_upstream.base_url, distro_name="cli",
                                api_token="super-secret-token") + default_storage_yaml(tmp_path))
    result = run_ogx(["stack", "run", "--dry-run", path])
    assert result.returncode == 0, result.output
    assert "FutureWarning: 'ogx stack run' is deprecated and will be removed in a future " \
           "release. Use 'ogx run' instead." in result.stderr
    assert "--dry-run: not serving" in result.stdout
    assert "api_token: '********'" in result.stdout or "api_token: ********" in result.stdout
    assert "super-secret-token" not in result.output
    assert not (tmp_path / "sql_store.db").exists(), "a dry run opens no store"
    plain = run_ogx(["run", "--dry-run", path])
    assert plain.returncode == 0 and "deprecated" not in plain.output


def test_unknown_names_are_refused_like_ogx_with_the_fix(run_ogx, tmp_path):
    cases = {
        "distro_name: t\napis: [inference, telemetry]\nproviders: {}\n":
            ["key 'apis[1]': API 'telemetry' does not exist.", "Use one of: providers, inference"],
        "distro_name: t\napis: [safety]\nproviders: {}\n":
            ["API 'safety' does not exist.", "remove 'safety' from this config"],
        "distro_name: t\nproviders:\n  inference:\n  - {provider_id: v, provider_type: "
        "remote::vertexai, config: {project: p}}\n":
            ["provider `v` (remote::vertexai)", "Google Cloud application-default credentials",
             "__disabled__"],
        "distro_name: t\nproviders: {}\nstorage:\n  stores:\n    prompts: {backend: sql_default}\n":
            ["key 'storage.stores.prompts.table_name': is required but missing",
             "Add `table_name: prompts`"],
        "distro_name: t\nproviders: {}\nstorage:\n  stores:\n    prompts: {backend: kv_default, "
        "table_name: prompts}\n":
            ["storage.stores.prompts references backend 'kv_default' of type 'kv_sqlite', but a "
             "backend of type sql_* is required"],
    }
    for text, parts in cases.items():
        path = tmp_path / "broken.yaml"
        path.write_text(text)
        result = run_ogx(["run", "--port", free_port(), path])
        assert result.returncode != 0, text
        for part in parts:
            assert part in result.output, f"{text}\n{result.output}"


def test_an_unknown_distribution_name_lists_the_shipped_ones(run_ogx, tmp_path):
    result = run_ogx(["run", "startr"], cwd=tmp_path)
    assert result.returncode != 0
    assert "could not resolve config or distribution 'startr'" in result.output
    assert "nvidia, oci, open-benchmark, postgres-demo, starter, watsonx" in result.output
