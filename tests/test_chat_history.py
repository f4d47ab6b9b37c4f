"""The chat-completion history, as a user of the OpenAI SDK reads it back: `chat.completions.list`,
`.retrieve` and `.messages.list` after plain and streamed requests, kept in the SQLite file of
`storage.stores.inference` across restarts and graceful shutdowns."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import openai
import pytest

from mock_openai import answer_for
from ogx_harness import default_storage_yaml, free_port, vllm_config

MODEL = "vllm/my-model"


def config_with_store(upstream_url: str, store_dir) -> str:
    """A config whose SQLite stores live in `store_dir`, so that a second server shares them."""
    return vllm_config(upstream_url, distro_name="history-e2e",
                       more_sections=default_storage_yaml(store_dir))


def ask(client, text: str, stream: bool = False):
    return client.chat.completions.create(
        model=MODEL, messages=[{"role": "system", "content": "Be brief."},
                               {"role": "user", "content": text}], stream=stream)


def stored(client, completion_id: str, timeout: float = 10.0):
    """The stored completion, once the write queue has written it."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return client.chat.completions.retrieve(completion_id)
        except openai.NotFoundError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def test_plain_and_streamed_answers_are_listed_retrieved_and_their_messages_listed(
        ogx_server, mock_upstream):
    server = ogx_server(vllm_config(mock_upstream.base_url, distro_name="history-e2e"))
    client = server.client()

    plain = ask(client, "What is the capital of France?")
    chunks = list(ask(client, "Name a prime number.", stream=True))
    streamed_id = chunks[0].id

    got = stored(client, plain.id)
    assert got.model == MODEL
    assert got.choices[0].message.content == answer_for("What is the capital of France?")
    # OGX's extra field; the SDK keeps it as plain JSON.
    assert got.input_messages[1]["content"] == "What is the capital of France?"
    got_stream = stored(client, streamed_id)
    assert got_stream.object == "chat.completion"
    assert got_stream.created == chunks[0].created
    assert got_stream.choices[0].message.role == "assistant"
    assert got_stream.choices[0].message.content == answer_for("Name a prime number.")
    assert got_stream.choices[0].finish_reason == "stop"

    # OGX 1.5.0's order: newest second first, ties by id ascending.
    both = [(plain.created, plain.id), (got_stream.created, streamed_id)]
    newest_first = [i for _, i in sorted(both, key=lambda c: (-c[0], c[1]))]
    oldest_first = [i for _, i in sorted(both)]
    listed = client.chat.completions.list()
    assert [c.id for c in listed.data] == newest_first
    assert [c.id for c in client.chat.completions.list(order="asc").data] == oldest_first
    assert client.chat.completions.list(model="vllm/other").data == []

    # OGX 1.5.0: the input messages, then the answer's.
    messages = client.chat.completions.messages.list(plain.id)
    assert [(m.id, m.role, m.content) for m in messages.data] == [
        (f"{plain.id}-0", "system", "Be brief."),
        (f"{plain.id}-1", "user", "What is the capital of France?"),
        (f"{plain.id}-2", "assistant", answer_for("What is the capital of France?"))]
    page = client.chat.completions.messages.list(plain.id, limit=1)
    assert [m.id for m in page.data] == [f"{plain.id}-0"] and page.has_more
    later = client.chat.completions.messages.list(plain.id, after=f"{plain.id}-0")
    assert [m.id for m in later.data] == [f"{plain.id}-1", f"{plain.id}-2"]


def test_an_unknown_id_is_a_404_and_bad_paging_a_400(ogx_server, mock_upstream):
    server = ogx_server(vllm_config(mock_upstream.base_url, distro_name="history-e2e"))
    client = server.client()

    with pytest.raises(openai.NotFoundError) as error:
        client.chat.completions.retrieve("chatcmpl-nope")
    assert "No chat completion found with id 'chatcmpl-nope'" in str(error.value)
    with pytest.raises(openai.NotFoundError):
        client.chat.completions.messages.list("chatcmpl-nope")
    with pytest.raises(openai.BadRequestError) as error:
        client.chat.completions.list(after="chatcmpl-nope")
    assert "chatcmpl-nope" in str(error.value)
    assert server.get("/v1/chat/completions?limit=0").status_code == 400
    assert server.get("/v1/chat/completions?order=up").status_code == 400


def test_thirty_completions_page_by_seven_each_exactly_once(ogx_server, mock_upstream):
    server = ogx_server(vllm_config(mock_upstream.base_url, distro_name="history-e2e"))
    client = server.client()
    answers = [ask(client, f"question {i}") for i in range(30)]
    stored(client, answers[-1].id)  # one writer, in order: the last one written means all are
    # OGX 1.5.0's order: by second, ties by id ascending in both directions.
    ids = [a.id for a in sorted(answers, key=lambda a: (a.created, a.id))]
    newest_first = [a.id for a in sorted(answers, key=lambda a: (-a.created, a.id))]

    for order in ("asc", "desc"):
        seen, pages, after = [], 0, None
        while True:
            extra = {"after": after} if after else {}
            page = client.chat.completions.list(limit=7, order=order, **extra)
            pages += 1
            seen += [c.id for c in page.data]
            if not page.has_more:
                break
            after = page.last_id
        assert seen == (ids if order == "asc" else newest_first), order
        assert pages == 5
    # The SDK's own pagination follows `after` and `has_more` the same way.
    assert [c.id for c in client.chat.completions.list(limit=7, order="asc")] == ids


def test_the_history_survives_a_restart(ogx_server, mock_upstream, tmp_path):
    config = config_with_store(mock_upstream.base_url, tmp_path / "store")
    first = ogx_server(config)
    answer = ask(first.client(), "Remember me.")
    stored(first.client(), answer.id)
    first.stop()

    second = ogx_server(config)
    assert second.client().chat.completions.retrieve(answer.id).id == answer.id


def test_a_stream_in_flight_at_sigterm_finishes_and_is_stored(ogx_server, mock_upstream, tmp_path):
    config = config_with_store(mock_upstream.base_url, tmp_path / "store")
    server = ogx_server(config)
    chunks, failures = [], []

    def read_stream():
        try:
            chunks.extend(ask(server.client(), "Tell me slowly. [mock:slow=0.3]", stream=True))
        except Exception as error:  # noqa: BLE001 (reported by the assertion below)
            failures.append(error)

    reader = threading.Thread(target=read_stream)
    reader.start()
    time.sleep(0.5)  # the stream has started
    server.stop()  # SIGTERM, then waits for the exit
    reader.join(timeout=30)

    assert not failures, failures
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == answer_for("Tell me slowly. [mock:slow=0.3]")
    assert server.proc.returncode == 0, server.output()
    assert "1 completion(s) written" in server.output()

    again = ogx_server(config)
    assert [c.id for c in again.client().chat.completions.list().data] == [chunks[0].id]


def _config_with_sql_db(tmp_path: Path, upstream_url: str, sql_db: Path) -> Path:
    config = tmp_path / "config.yaml"
    config.write_text(vllm_config(upstream_url, distro_name="history-e2e",
                                  more_sections=f"""
storage:
  backends:
    kv_default: {{type: kv_sqlite, db_path: {tmp_path / "kvstore.db"}}}
    sql_default: {{type: sql_sqlite, db_path: {sql_db}}}
  stores:
    metadata: {{backend: kv_default, namespace: registry}}
    inference: {{backend: sql_default, table_name: inference_store}}
"""))
    return config


def test_a_db_path_that_cannot_be_created_stops_start_up_naming_the_key(
        run_ogx, mock_upstream, tmp_path):
    a_file = tmp_path / "plain-file"
    a_file.write_text("not a folder")
    config = _config_with_sql_db(tmp_path, mock_upstream.base_url, a_file / "sql_store.db")

    result = run_ogx(["run", "--port", free_port(), config])

    assert result.returncode != 0
    assert "storage.backends.sql_default.db_path" in result.output
    assert str(a_file / "sql_store.db") in result.output


def test_a_corrupt_db_file_stops_start_up_naming_the_key_and_is_left_as_it_was(
        run_ogx, mock_upstream, tmp_path):
    corrupt = tmp_path / "sql_store.db"
    garbage = b"this is not an SQLite database, " * 512
    corrupt.write_bytes(garbage)
    config = _config_with_sql_db(tmp_path, mock_upstream.base_url, corrupt)

    result = run_ogx(["run", "--port", free_port(), config])

    assert result.returncode != 0
    assert "storage.backends.sql_default.db_path" in result.output
    assert str(corrupt) in result.output
    assert "not a database" in result.output
    assert corrupt.read_bytes() == garbage
