"""NO ENVOY: the Responses API goldens of SluiceCore (Tests/SluiceCoreTests/Fixtures/responses), which the
Swift tests compare the translators' output with, checked against the official `openai` SDK.

Each golden is validated strictly with the SDK's pydantic models (`Response`, the `ResponseStreamEvent`
union), and then served byte for byte by a loopback HTTP server to the SDK's own client, so that
`client.responses.create(...)` (plain and `stream=True`) parses exactly what the gateway will send. This proves
the shapes, not the gateway: the end-to-end Responses tests through Envoy are in test_responses.py."""
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import openai
import pytest
from openai.types.responses import Response, ResponseStreamEvent
from pydantic import TypeAdapter

FIXTURES = Path(__file__).resolve().parents[1] / "SluiceCoreTests" / "Fixtures" / "responses"
STREAM_EVENT = TypeAdapter(ResponseStreamEvent)


def sse_events(raw: bytes) -> list[tuple[str, dict]]:
    events = []
    for block in raw.decode().split("\n\n"):
        if not block.strip():
            continue
        lines = dict(line.split(": ", 1) for line in block.split("\n"))
        events.append((lines["event"], json.loads(lines["data"])))
    return events


@pytest.mark.parametrize("name", [
    "response-full.responses.json", "response-length.responses.json",
    # ResponsesEndpointTests: provider answers through the exchange (provider -> hub -> Responses).
    "exchange-response.anthropic.json", "exchange-response.bedrock.json", "exchange-response.gemini.json",
])
def test_response_goldens_are_sdk_responses(name):
    response = Response.model_validate_json((FIXTURES / name).read_bytes(), strict=False)
    assert response.object == "response"
    assert response.output_text  # the SDK's convenience property reads the message items
    assert response.usage is not None and response.usage.total_tokens > 0


def test_full_response_items_as_the_sdk_sees_them():
    response = Response.model_validate_json((FIXTURES / "response-full.responses.json").read_bytes())
    kinds = [item.type for item in response.output]
    assert kinds == ["reasoning", "message", "function_call"]
    call = response.output[2]
    assert call.call_id == "call_9" and json.loads(call.arguments) == {"city": "Lyon"}
    assert response.usage.input_tokens_details.cached_tokens == 100
    assert response.usage.output_tokens_details.reasoning_tokens == 8
    assert response.tools[0].name == "get_weather" and response.parallel_tool_calls is False
    assert response.text.format.type == "json_schema"


@pytest.mark.parametrize("name", [
    "stream.responses.sse", "stream-error.responses.sse", "exchange-stream.anthropic.sse", "exchange-stream.gemini.sse",
])
def test_stream_goldens_are_sdk_events(name):
    events = sse_events((FIXTURES / name).read_bytes())
    assert events
    for index, (event_name, data) in enumerate(events):
        event = STREAM_EVENT.validate_python(data)
        assert event.type == event_name and event.sequence_number == index


class _Golden(BaseHTTPRequestHandler):
    def do_POST(self):  # noqa: N802 (http.server's name)
        body = json.loads(self.rfile.read(int(self.headers["content-length"])))
        streaming = body.get("stream") is True
        payload = (FIXTURES / ("stream.responses.sse" if streaming else "response-full.responses.json")).read_bytes()
        self.send_response(200)
        self.send_header("content-type", "text/event-stream" if streaming else "application/json")
        self.send_header("content-length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, *args):
        pass


@pytest.fixture
def golden_client():
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Golden)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield openai.OpenAI(base_url=f"http://127.0.0.1:{server.server_address[1]}/v1", api_key="k", max_retries=0)
    server.shutdown()
    server.server_close()


def test_sdk_client_reads_the_golden_response(golden_client):
    response = golden_client.responses.create(model="claude-sonnet", input="Weather?")
    assert response.output_text == "It is 18 C and sunny in Paris."
    assert response.status == "completed"


def test_sdk_client_streams_the_golden_events(golden_client):
    text, arguments, final = "", {}, None
    with golden_client.responses.stream(model="claude-sonnet", input="Weather?") as stream:
        for event in stream:
            if event.type == "response.output_text.delta":
                text += event.delta
            elif event.type == "response.function_call_arguments.done":
                arguments[event.item_id] = json.loads(event.arguments)
        final = stream.get_final_response()
    assert text == "Hello, world"
    assert list(arguments.values()) == [{"city": "Paris"}, {}]
    assert final.output_text == "Hello, world"
    assert final.usage.total_tokens == 29
    calls = [item for item in final.output if item.type == "function_call"]
    assert [call.call_id for call in calls] == ["call_a", "call_b"]


def test_sdk_client_create_stream_yields_typed_events(golden_client):
    events = list(golden_client.responses.create(model="claude-sonnet", input="Weather?", stream=True))
    assert events[0].type == "response.created" and events[-1].type == "response.completed"
    assert events[-1].response.output_text == "Hello, world"
