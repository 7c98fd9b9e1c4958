"""`POST /v1/responses` to an OpenAI-compatible server that does not serve the Responses API (SGLang,
TGI, llama.cpp), through the real Envoy 1.40: the backend says `responses_api: false`, so the gateway
sends the server chat completions (the Responses translation the translated providers use) and turns
its answers and streams into Responses objects and typed events for the official `openai` SDK.

The server here answers only `/v1/chat/completions` (404 for anything else, as those servers do) and
records what it was sent."""
from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import openai
import pytest

from harness import Envoy, free_port, gateway_bootstrap, header_route, static_cluster

DEMO_KEY = "sk-sluice-demo"


class ChatOnlyServer:
    """A chat-completions-only server: a canned answer (a tool call when tools are offered and the
    conversation has no tool result yet), streamed when asked, with usage."""

    def __init__(self) -> None:
        self.requests: list[tuple[str, dict]] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (http.server's name)
                body = json.loads(self.rfile.read(int(self.headers.get("content-length", "0"))) or b"{}")
                server.requests.append((self.path, body))
                if self.path != "/v1/chat/completions":
                    self.send_response(404)
                    self.send_header("content-type", "application/json")
                    payload = json.dumps({"object": "error", "message": f"Not Found: {self.path}", "code": 404}).encode()
                    self.send_header("content-length", str(len(payload)))
                    self.end_headers()
                    self.wfile.write(payload)
                    return
                wants_tool = bool(body.get("tools")) and not any(m.get("role") == "tool" for m in body["messages"])
                message = ({"role": "assistant", "content": None, "tool_calls": [{
                    "id": "call_7", "type": "function",
                    "function": {"name": "get_weather", "arguments": json.dumps({"city": "Paris"})}}]}
                    if wants_tool else {"role": "assistant", "content": "Hello from a chat-only server."})
                finish = "tool_calls" if wants_tool else "stop"
                usage = {"prompt_tokens": 17, "completion_tokens": 6, "total_tokens": 23}
                if not body.get("stream"):
                    payload = json.dumps({"id": "chatcmpl-9", "object": "chat.completion", "created": 1764979200,
                                          "model": body["model"], "choices": [{"index": 0, "message": message,
                                                                               "finish_reason": finish}],
                                          "usage": usage}).encode()
                    self.send_response(200)
                    self.send_header("content-type", "application/json")
                    self.send_header("content-length", str(len(payload)))
                    self.end_headers()
                    self.wfile.write(payload)
                    return
                self.send_response(200)
                self.send_header("content-type", "text/event-stream")
                self.end_headers()
                head = {"id": "chatcmpl-9", "object": "chat.completion.chunk", "created": 1764979200, "model": body["model"]}
                chunks = []
                if wants_tool:
                    call = message["tool_calls"][0]
                    chunks.append({"index": 0, "delta": {"role": "assistant", "tool_calls": [{
                        "index": 0, "id": call["id"], "type": "function",
                        "function": {"name": "get_weather", "arguments": ""}}]}, "finish_reason": None})
                    chunks.append({"index": 0, "delta": {"tool_calls": [{
                        "index": 0, "function": {"arguments": call["function"]["arguments"]}}]}, "finish_reason": None})
                else:
                    for piece in ["Hello ", "from a ", "chat-only server."]:
                        chunks.append({"index": 0, "delta": {"content": piece}, "finish_reason": None})
                chunks.append({"index": 0, "delta": {}, "finish_reason": finish})
                for choice in chunks:
                    self.wfile.write(b"data: " + json.dumps({**head, "choices": [choice]}).encode() + b"\n\n")
                if (body.get("stream_options") or {}).get("include_usage"):
                    self.wfile.write(b"data: " + json.dumps({**head, "choices": [], "usage": usage}).encode() + b"\n\n")
                self.wfile.write(b"data: [DONE]\n\n")

            def log_message(self, *args) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.httpd.server_address[1]
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture(scope="module")
def setup():
    server = ChatOnlyServer()
    port = free_port()
    backend = {"backend": "sglang", "schema": "openai", "responses_api": False,
               "model_overrides": {"qwen": "Qwen/Qwen2.5-7B-Instruct"}}
    config = {"api_keys": [{"name": "demo", "key": DEMO_KEY}],
              "models": [{"id": "qwen", "owned_by": "self-hosted", "route": "sglang"}]}
    bootstrap = gateway_bootstrap(
        gateway_port=port, admin_port=free_port(), upstream_port=server.port, filter_config=config,
        routes=[header_route("sglang", "sglang"), {"match": {"prefix": "/"}, "route": {"cluster": "sglang"}}],
        clusters=[static_cluster("sglang", server.port, backend)])
    with Envoy(bootstrap) as envoy:
        client = openai.OpenAI(base_url=f"http://127.0.0.1:{port}/v1", api_key=DEMO_KEY, max_retries=0)
        yield client, server
    server.close()


def test_a_responses_request_reaches_the_chat_completions_of_a_server_without_responses(setup):
    client, server = setup
    server.requests.clear()
    r = client.responses.create(model="qwen", instructions="Be brief.", input="Say hello", max_output_tokens=64)
    assert r.object == "response" and r.status == "completed"
    assert r.output_text == "Hello from a chat-only server."
    assert r.usage.input_tokens == 17 and r.usage.output_tokens == 6 and r.usage.total_tokens == 23
    assert r.max_output_tokens == 64 and r.instructions == "Be brief."
    [(path, body)] = server.requests
    assert path == "/v1/chat/completions"
    assert body["model"] == "Qwen/Qwen2.5-7B-Instruct"  # the backend's model override
    assert body["messages"] == [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Say hello"}]
    assert body["max_completion_tokens"] == 64 and "input" not in body


def test_a_streamed_responses_request_gets_typed_events_from_a_chat_stream(setup):
    client, server = setup
    server.requests.clear()
    events = list(client.responses.create(model="qwen", input="Say hello", stream=True))
    types = [e.type for e in events]
    assert types[0] == "response.created" and types[-1] == "response.completed"
    assert "".join(e.delta for e in events if e.type == "response.output_text.delta") == "Hello from a chat-only server."
    assert events[-1].response.usage.output_tokens == 6
    [(path, body)] = server.requests
    assert path == "/v1/chat/completions" and body["stream"] is True
    assert body["stream_options"] == {"include_usage": True}


def test_a_function_tool_round_trip_through_chat(setup):
    client, server = setup
    tool = {"type": "function", "name": "get_weather", "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}
    first = client.responses.create(model="qwen", input="Weather in Paris?", tools=[tool])
    [call] = [item for item in first.output if item.type == "function_call"]
    assert call.name == "get_weather" and json.loads(call.arguments) == {"city": "Paris"} and call.call_id == "call_7"
    second = client.responses.create(model="qwen", tools=[tool], input=[
        {"role": "user", "content": "Weather in Paris?"},
        {"type": "function_call", "call_id": call.call_id, "name": call.name, "arguments": call.arguments},
        {"type": "function_call_output", "call_id": call.call_id, "output": "18 C"}])
    assert second.output_text == "Hello from a chat-only server."
    messages = server.requests[-1][1]["messages"]
    assert messages[1]["tool_calls"][0]["id"] == "call_7"
    assert messages[2] == {"role": "tool", "tool_call_id": "call_7", "content": "18 C"}


def test_what_needs_openai_state_is_refused_and_counting_is_unsupported(setup):
    client, server = setup
    server.requests.clear()
    with pytest.raises(openai.BadRequestError) as refused:
        client.responses.create(model="qwen", input="x", previous_response_id="resp_1")
    assert refused.value.body["param"] == "previous_response_id"
    with pytest.raises(openai.BadRequestError) as counting:
        client.responses.input_tokens.count(model="qwen", input="x")
    assert counting.value.body["code"] == "unsupported_endpoint"
    assert server.requests == []
