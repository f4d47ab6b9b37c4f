"""Storage on PostgreSQL (`kv_postgres` + `sql_postgres`), as an operator who scales out sees it:
two `ogx` processes on one database serve the same registry, prompts, chat-completion history
and Responses API responses (a chain started on one continues on the other); everything survives a restart; a graceful shutdown under load keeps every completion a
client got an answer for (also on SQLite); a wrong port or password stops start-up with a clear
message that never shows the password."""

from __future__ import annotations

import threading
import time

import openai
import pytest

from mock_openai import answer_for
from ogx_harness import MY_MODEL, default_storage_yaml, free_port, vllm_config
from postgres_server import PASSWORD, USER, PostgresServer, PostgresUnavailable
from scripted_turns import Turn
from test_chat_history import MODEL, ask, stored
from test_responses import RESPONSES_PROVIDER, WEATHER_TOOL, chat_requests

PASSWORD_ENV = {"OGX_TEST_PG_PASSWORD": PASSWORD}


def postgres_storage_yaml(port: int, database: str, *, password: str = "${env.OGX_TEST_PG_PASSWORD}",
                          num_writers: int = 4, queue: int = 10000) -> str:
    server = f"host: 127.0.0.1, port: {port}, db: {database}, user: {USER}, password: '{password}'"
    return f"""
storage:
  backends:
    kv_default: {{type: kv_postgres, {server}, ssl_mode: disable}}
    sql_default: {{type: sql_postgres, {server}, pool_size: 4, max_overflow: 0}}
  stores:
    metadata: {{backend: kv_default, namespace: registry}}
    prompts: {{backend: kv_default, namespace: prompts}}
    inference: {{backend: sql_default, table_name: inference_store, num_writers: {num_writers}, max_write_queue_size: {queue}}}
"""


def config(upstream_url: str, storage: str) -> str:
    return vllm_config(upstream_url, distro_name="postgres-e2e", more_sections=storage)


def test_two_replicas_share_registry_prompts_and_history_and_it_survives_a_restart(
        ogx_server, mock_upstream, postgres):
    text = config(mock_upstream.base_url, postgres_storage_yaml(postgres.port, postgres.new_database()))
    first = ogx_server(text, env=PASSWORD_ENV)
    second = ogx_server(text, env=PASSWORD_ENV)

    plain = ask(first.client(), "Asked of the first replica.")
    chunks = list(ask(second.client(), "Asked of the second replica.", stream=True))
    streamed_id = chunks[0].id

    # Each replica lists, retrieves and pages the other's completions.
    got = stored(second.client(), plain.id)
    assert got.choices[0].message.content == answer_for("Asked of the first replica.")
    got_stream = stored(first.client(), streamed_id)
    assert got_stream.choices[0].message.content == answer_for("Asked of the second replica.")
    for replica in (first, second):
        assert {c.id for c in replica.client().chat.completions.list().data} == {plain.id, streamed_id}
    messages = second.client().chat.completions.messages.list(plain.id)
    # OGX 1.5.0: the input messages, then the answer.
    assert [m.content for m in messages.data] == [
        "Be brief.", "Asked of the first replica.", answer_for("Asked of the first replica.")]

    # A prompt created through one replica is served by the other.
    created = first.post("/v1/prompts", json={"prompt": "Hello {{ name }}", "variables": ["name"]})
    assert created.status_code == 200, created.text
    prompt_id = created.json()["prompt_id"]
    assert second.get(f"/v1/prompts/{prompt_id}").json()["prompt"] == "Hello {{ name }}"

    # One registry: both list the model, and its entry is a row of the kv table.
    for replica in (first, second):
        assert MODEL in [m.id for m in replica.client().models.list().data]
    database = text.split("db: ")[1].split(",")[0]
    keys = postgres.psql("SELECT key FROM ogx_kvstore WHERE namespace = 'registry' ORDER BY key",
                         database=database).split()
    assert "distributions:registry:v10::model:vllm/my-model" in keys

    for replica in (first, second):
        replica.stop()
        assert replica.proc.returncode == 0, replica.output()
        assert PASSWORD not in replica.output()

    again = ogx_server(text, env=PASSWORD_ENV)
    assert again.client().chat.completions.retrieve(plain.id).id == plain.id
    assert again.get(f"/v1/prompts/{prompt_id}").status_code == 200


def test_a_response_made_on_one_replica_is_continued_on_the_other(
        ogx_server, mock_upstream, postgres):
    database = postgres.new_database()
    text = vllm_config(mock_upstream.base_url, distro_name="postgres-responses",
                       apis=("inference", "models", "responses"), models=(MY_MODEL,),
                       more_providers=RESPONSES_PROVIDER,
                       more_sections=postgres_storage_yaml(postgres.port, database))
    first = ogx_server(text, env=PASSWORD_ENV)
    second = ogx_server(text, env=PASSWORD_ENV)
    assert "table responses on backend sql_default" in first.output()

    mock_upstream.script(Turn(tool_calls=[("get_weather", {"city": "Paris"})]),
                         Turn(content="It is sunny in Paris."))
    call = first.client().responses.create(model=MODEL, input="What is the weather in Paris?",
                                           tools=[WEATHER_TOOL])
    [function_call] = call.output
    assert function_call.type == "function_call"

    # The second replica finds the first one's response and continues its chain, streamed.
    assert second.client().responses.retrieve(call.id).output[0].call_id == function_call.call_id
    with second.client().responses.stream(
            model=MODEL, previous_response_id=call.id, tools=[WEATHER_TOOL],
            input=[{"type": "function_call_output", "call_id": function_call.call_id,
                    "output": "sunny"}]) as stream:
        answer = stream.get_final_response()
    assert answer.output_text == "It is sunny in Paris."
    assert answer.previous_response_id == call.id
    assert chat_requests(mock_upstream)[-1]["messages"] == [
        {"role": "user", "content": [{"type": "text", "text": "What is the weather in Paris?"}]},
        {"role": "assistant", "content": None, "tool_calls": [
            {"id": function_call.call_id, "type": "function",
             "function": {"name": "get_weather", "arguments": function_call.arguments}}]},
        {"role": "tool", "tool_call_id": function_call.call_id, "content": "sunny"},
    ]

    # Both replicas list the chain; the rows are in PostgreSQL; a delete on one is seen by both.
    for replica in (first, second):
        listed = replica.client().get("/responses", cast_to=object)
        assert [r["id"] for r in listed["data"]] == [answer.id, call.id]
    rows = postgres.psql("SELECT id FROM responses ORDER BY seq", database=database).split()
    assert rows == [call.id, answer.id]
    first.client().responses.delete(answer.id)
    for replica in (first, second):
        with pytest.raises(openai.NotFoundError):
            replica.client().responses.retrieve(answer.id)

    for replica in (first, second):
        replica.stop()
        assert replica.proc.returncode == 0, replica.output()
        assert PASSWORD not in replica.output()


def test_many_completions_in_one_second_page_exactly_once_on_postgres(
        ogx_server, mock_upstream, postgres):
    text = config(mock_upstream.base_url, postgres_storage_yaml(postgres.port, postgres.new_database()))
    client = ogx_server(text, env=PASSWORD_ENV).client()
    ids = [ask(client, f"question {i}").id for i in range(40)]
    for completion_id in ids:
        stored(client, completion_id)

    for order in ("asc", "desc"):
        seen, after = [], None
        while True:
            page = client.chat.completions.list(limit=7, order=order, **({"after": after} if after else {}))
            seen += [c.id for c in page.data]
            if not page.has_more:
                break
            after = page.last_id
        assert len(seen) == len(set(seen)) == 40, order
        assert set(seen) == set(ids)


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
def test_a_graceful_shutdown_under_load_keeps_every_answered_completion(
        ogx_server, mock_upstream, request, tmp_path, backend):
    if backend == "postgres":
        pg = request.getfixturevalue("postgres")
        storage = postgres_storage_yaml(pg.port, pg.new_database(), queue=2)
    else:
        storage = default_storage_yaml(tmp_path / "store").replace(
            "table_name: inference_store", "table_name: inference_store\n      max_write_queue_size: 2")
    text = config(mock_upstream.base_url, storage)
    server = ogx_server(text, env=PASSWORD_ENV)
    answered, lock, stop = [], threading.Lock(), threading.Event()

    def client_loop(worker: int):
        client = server.client(max_retries=0)
        for i in range(1000):
            if stop.is_set():
                return
            try:
                completion = ask(client, f"load {worker}-{i}")
            except (openai.APIConnectionError, openai.APIStatusError):
                return  # the server is going away: this request was not answered
            with lock:
                answered.append(completion.id)

    workers = [threading.Thread(target=client_loop, args=(w,)) for w in range(8)]
    for worker in workers:
        worker.start()
    # Requests keep coming (the queue of 2 is full most of the time) until the load has got
    # going, however slow the machine; then SIGTERM while requests are in flight.
    deadline = time.monotonic() + 60
    while len(answered) <= 20 and time.monotonic() < deadline:
        time.sleep(0.05)
    server.stop()
    stop.set()
    for worker in workers:
        worker.join(timeout=30)

    assert server.proc.returncode == 0, server.output()
    assert len(answered) > 20, "the load did not get going"
    again = ogx_server(text, env=PASSWORD_ENV).client()
    listed = {c.id for c in again.chat.completions.list(limit=100, order="asc")}
    missing = set(answered) - listed
    assert not missing, f"{len(missing)} of {len(answered)} answered completions were not stored"


@pytest.mark.parametrize("mistake", ["port", "password"])
def test_a_wrong_port_or_password_stops_start_up_clearly_without_the_password(
        run_ogx, mock_upstream, postgres, tmp_path, mistake):
    wrong_password = "not-the-password-7d2e"
    if mistake == "port":
        storage = postgres_storage_yaml(int(free_port()), "ogx", password=PASSWORD)
    else:
        storage = postgres_storage_yaml(postgres.port, "ogx", password=wrong_password)
    path = tmp_path / "config.yaml"
    path.write_text(config(mock_upstream.base_url, storage))

    result = run_ogx(["run", "--port", free_port(), path])

    assert result.returncode != 0
    output = result.output
    assert "storage.backends.kv_default" in output, output
    assert "Check that PostgreSQL is running" in output, output
    if mistake == "port":
        assert "cannot connect to PostgreSQL at 127.0.0.1" in output, output
    else:
        assert "password authentication failed" in output, output
    assert PASSWORD not in output and wrong_password not in output, output


@pytest.fixture
def own_postgres():
    """A cluster of this test's own, which the test may stop and start."""
    try:
        server = PostgresServer()
    except PostgresUnavailable as error:
        pytest.skip(str(error))
    with server:
        yield server


def test_a_completion_answered_while_postgres_is_down_is_written_when_it_is_back(
        ogx_server, mock_upstream, own_postgres):
    text = config(mock_upstream.base_url, postgres_storage_yaml(own_postgres.port, "ogx"))
    server = ogx_server(text, env=PASSWORD_ENV)
    client = server.client(max_retries=0)
    before = ask(client, "Before the outage.")
    stored(client, before.id)

    own_postgres.pause()
    during = ask(client, "During the outage.")  # answered: recording never holds up an answer
    time.sleep(1.0)  # a few failed tries
    own_postgres.resume()

    assert stored(client, during.id, timeout=30).id == during.id
    assert "could not be stored yet" in server.output()


def test_shutdown_while_postgres_is_down_reports_what_could_not_be_written(
        ogx_server, mock_upstream, own_postgres):
    text = config(mock_upstream.base_url, postgres_storage_yaml(own_postgres.port, "ogx"))
    server = ogx_server(text, env=PASSWORD_ENV)
    own_postgres.pause()
    lost = ask(server.client(max_retries=0), "Nobody will store this.")

    server.stop()

    output = server.output()
    assert "1 accepted completion(s) could not be written before exit" in output, output
    assert lost.id in output, output
