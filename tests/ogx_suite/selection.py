"""Which of OGX 1.5.0's integration tests run against ogx, and why the others do not.

`GROUPS`: the pytest runs, each with the models it asks for (ids the suite's run config
registers; the recordings the upstream replays were made with these models).
`DESELECTED`: tests that are not run, each with its reason (an API, tool or setting ogx does
not serve). `KNOWN_GAPS`: tests that run and are expected to fail today, each with the ogx
feature they are waiting for; they are strict expected failures, so the day the feature
lands they pass, pytest reports XPASS(strict) as a failure, and the entry must be removed.

Keys are pytest node ids without the parameters: a folder (`.../responses/`), a file, or a
test (`file::test` or `file::Class::test`), matching every parametrization; or with the start
of the parameters (`file::test[client_with_models-`), matching those that start so.
"""
from __future__ import annotations

from dataclasses import dataclass, field

T = "tests/integration/"


@dataclass(frozen=True)
class Group:
    name: str
    paths: tuple[str, ...]
    options: tuple[str, ...] = field(default_factory=tuple)


# Models as OGX's CI records them: the `ollama` setup for the base suite and the Messages
# suite's native path, `gpt` for the Responses and Messages (translation path) suites.
OLLAMA_TEXT = "--text-model=ollama/llama3.2:3b-instruct-fp16"
OLLAMA_EMBEDDING = "--embedding-model=ollama/nomic-embed-text:v1.5"
OLLAMA_VISION = "--vision-model=ollama/qwen3-vl:2b"
GPT_TEXT = "--text-model=openai/gpt-4o"

GROUPS: tuple[Group, ...] = (
    Group("base", (T + "inference", T + "models", T + "providers", T + "inspect"),
          (OLLAMA_TEXT, OLLAMA_EMBEDDING, OLLAMA_VISION, "--embedding-dimension=768")),
    # Messages and Responses share the `gpt` setup's models, so one pytest run (one start-up
    # of OGX's conftest, which imports all of ogx) serves both.
    Group("gpt", (T + "messages", T + "responses"), (GPT_TEXT, "--vision-model=openai/gpt-4o")),
    # The Messages tests again on Ollama, which OGX (and ogx) serve on the native path: OGX's
    # recordings of them are Ollama's own `/v1/messages` answers.
    Group("ollama-messages", (T + "messages",), (OLLAMA_TEXT,)),
)

# The upstream model names the recordings are indexed for (the provider_model_id of each).
RECORDED_MODELS = ("llama3.2:3b-instruct-fp16", "nomic-embed-text:v1.5", "qwen3-vl:2b", "gpt-4o")

R = T + "responses/"
TOOLS = R + "test_tool_responses.py::"
OPENAI_RESPONSES = R + "test_openai_responses.py::TestOpenAIResponses::"
WEB_SEARCH = "needs the web_search tool: not served (server-side tools are a 400)"
FILE_SEARCH = "needs the file_search tool, the Files and Vector Stores APIs: not served"
MCP = "needs the mcp tool (an MCP server run by OGX): not served"
BACKGROUND = "needs background responses (`background: true`) and /cancel: not served"

IMAGE_URL = ("the server must fetch its image from raw.githubusercontent.com (OGX inlines image "
             "URLs for Ollama; the recordings hold the fetched bytes): needs the internet")

DESELECTED: dict[str, str] = {
    T + "inference/test_vision_inference.py::test_image_chat_completion_non_streaming": IMAGE_URL,
    T + "inference/test_vision_inference.py::test_image_chat_completion_streaming": IMAGE_URL,
    T + "inference/test_openai_vision_inference.py::test_openai_chat_completion_image_url": IMAGE_URL,
    T + "messages/test_message_batches.py": "needs the Message Batches API: not served",
    R + "test_file_search.py": FILE_SEARCH,
    R + "test_compact_responses.py": "needs POST /v1/responses/compact (compaction): not served",
    R + "test_conversation_responses.py": "needs the Conversations API: not served",
    R + "test_mcp_authentication.py": MCP,
    R + "test_prompt_templates.py": "needs `prompt` templates in /v1/responses: not served",
    R + "test_basic_responses.py::test_include_logprobs_with_web_search": WEB_SEARCH,
    TOOLS + "test_response_non_streaming_web_search": WEB_SEARCH,
    TOOLS + "test_response_streaming_web_search": WEB_SEARCH,
    TOOLS + "test_response_multi_turn_streaming_web_search": WEB_SEARCH,
    TOOLS + "test_response_non_streaming_file_search": FILE_SEARCH,
    TOOLS + "test_response_non_streaming_file_search_empty_vector_store": FILE_SEARCH,
    TOOLS + "test_response_sequential_file_search": FILE_SEARCH,
    TOOLS + "test_response_non_streaming_mcp_tool": MCP,
    TOOLS + "test_response_sequential_mcp_tool": MCP,
    TOOLS + "test_response_connector_resolution_mcp_tool": MCP + " (connectors too)",
    TOOLS + "test_response_mcp_tool_approval": MCP,
    TOOLS + "test_max_tool_calls_with_mcp_tools": MCP,
    TOOLS + "test_parallel_tool_calls_with_mcp_tools": MCP,
    OPENAI_RESPONSES + "test_openai_response_background_returns_queued": BACKGROUND,
    OPENAI_RESPONSES + "test_openai_response_background_completes": BACKGROUND,
    OPENAI_RESPONSES + "test_openai_response_background_and_stream_mutually_exclusive": BACKGROUND,
    OPENAI_RESPONSES + "test_openai_response_background_false_is_synchronous": BACKGROUND,
    OPENAI_RESPONSES + "test_cancel_queued_or_in_progress_response": BACKGROUND,
    OPENAI_RESPONSES + "test_cancel_already_cancelled_is_idempotent": BACKGROUND,
    OPENAI_RESPONSES + "test_cancel_completed_response_fails": BACKGROUND,
    OPENAI_RESPONSES + "test_cancel_nonexistent_response_fails": BACKGROUND,
    OPENAI_RESPONSES + "test_cancel_prevents_completion": BACKGROUND,
    OPENAI_RESPONSES + "test_openai_response_incomplete_details_max_iterations_exceeded": WEB_SEARCH,
    OPENAI_RESPONSES + "test_openai_response_incomplete_details_max_iterations_exceeded_streaming": WEB_SEARCH,
    TOOLS + "test_response_non_streaming_multi_turn_tool_execution": MCP,
    TOOLS + "test_response_streaming_multi_turn_tool_execution": MCP,
    TOOLS + "test_function_call_output_list_file": "needs the Files API (uploads a file): not served",
    R + "test_basic_responses.py::test_response_streaming_basic":
        "asserts wall-clock gaps between stream events (< 0.2 s): timed tests are not run on a "
        "shared CI machine",
    R + "test_responses_errors.py::TestConversationsAPIErrors": "needs the Conversations API: not served",
    R + "test_responses_errors.py::TestResponsesAPIErrors::"
        "test_conflicting_previous_response_and_conversation_raises_bad_request":
        "needs the Conversations API: not served",
    R + "test_responses_errors.py::TestResponsesAPIErrors::"
        "test_guardrails_without_moderation_endpoint_raises_service_unavailable":
        "needs guardrails (the Safety/Moderations API): not served",
}

EVENT_RESPONSE_ID = ("streamed Responses events carry no `response_id` (OGX adds it to "
                     "content_part and delta events; the test reads it)")
UNTYPED_EVENT = "the OGX client reads one of ogx's Responses stream events as an untyped dict"

KNOWN_GAPS: dict[str, str] = {
    **{OPENAI_RESPONSES + name: EVENT_RESPONSE_ID for name in (
        "test_openai_response_streaming_includes_usage",
        "test_openai_response_with_prompt_cache_key_streaming",
        "test_openai_response_with_service_tier_auto_streaming",
        "test_openai_response_with_service_tier_streaming",
        "test_openai_response_with_stream_options_and_previous_response",
        "test_openai_response_with_stream_options_includes_usage",
        "test_openai_response_with_top_logprobs_streaming",
        "test_openai_response_with_top_p_streaming",
        "test_openai_response_with_truncation_disabled_streaming")},
    R + "test_basic_responses.py::test_include_logprobs_streaming": UNTYPED_EVENT,
    R + "test_basic_responses.py::test_response_streaming_incremental_content[client_with_models-":
        UNTYPED_EVENT,
    OPENAI_RESPONSES + "test_openai_response_incomplete_details_length":
        "incomplete_details.reason is OpenAI's `max_output_tokens` (OGX: `length`), a deliberate difference",
    OPENAI_RESPONSES + "test_openai_response_incomplete_details_length_streaming":
        "incomplete_details.reason is OpenAI's `max_output_tokens` (OGX: `length`), a deliberate difference",
    OPENAI_RESPONSES + "test_openai_response_with_prompt_cache_key":
        "prompt_cache_key is not echoed on the Response object",
    OPENAI_RESPONSES + "test_openai_response_with_prompt_cache_key_and_previous_response":
        "prompt_cache_key is not echoed on the Response object",
    OPENAI_RESPONSES + "test_openai_response_with_truncation_auto": "truncation is not echoed as OGX does",
    OPENAI_RESPONSES + "test_openai_response_with_service_tier[txt=openai/gpt-4o-priority]":
        "service_tier: OGX answers `default` for `priority`; ogx echoes what the upstream says",
    OPENAI_RESPONSES + "test_openai_response_with_service_tier_and_previous_response[txt=openai/gpt-4o-priority]":
        "service_tier: OGX answers `default` for `priority`; ogx echoes what the upstream says",
    OPENAI_RESPONSES + "test_openai_response_with_service_tier_flex_streaming":
        "service_tier flex is passed upstream, which refuses it (400); OGX does not send it",
    OPENAI_RESPONSES + "test_openai_response_streaming_invalid_base64_image_failure_code_is_spec_compliant":
        "an upstream 400 before the stream starts is an HTTP error; OGX streams response.failed",
    OPENAI_RESPONSES + "test_openai_response_streaming_failed_error_code_is_spec_compliant":
        "ogx's chat request for it has no OGX recording (the runner lists the unmatched request)",
    R + "test_responses_errors.py::TestResponsesAPIErrors::test_invalid_max_tool_calls_raises_bad_request":
        "max_tool_calls is not validated: ogx refuses the request's web_search tool first",
    TOOLS + "test_max_tool_calls_invalid":
        "max_tool_calls is not validated: ogx refuses the request's web_search tool first",
    TOOLS + "test_max_tool_calls_with_function_tools": "max_tool_calls is not applied or echoed",
    TOOLS + "test_response_function_call_ordering_1":
        "function_call_output after an intervening message is not moved next to its call as "
        "OGX does (the upstream request differs from OGX's recording)",
    TOOLS + "test_response_function_call_ordering_2":
        "function_call_output after an intervening message is not moved next to its call as "
        "OGX does (the upstream request differs from OGX's recording)",
    TOOLS + "test_function_call_output_list_image":
        "function_call_output with an image: OGX sends `[image]` and the image as a user "
        "message; ogx sends the tool result empty",
    R + "test_langgraph_responses.py::test_langgraph_multi_turn":
        "the recorded upstream answers this test's first turn with another test's recording, "
        "whose second turn is not recorded (a limit of matching without the test's id)",
}


def entry_for(nodeid: str, table: dict[str, str]) -> str | None:
    """The table's entry for a test: the longest key that is the node id or a prefix of it
    ending at a folder, file, class or test boundary, or inside the parameters."""
    best = None
    for key, reason in table.items():
        if nodeid == key or (nodeid.startswith(key) and (
                key.endswith("/") or "[" in key or nodeid[len(key)] in ("[", ":"))):
            if best is None or len(key) > len(best[0]):
                best = (key, reason)
    return best[1] if best else None
