"""Images and audio through the real Envoy 1.40 and the shipped default gateway, with the official `openai` SDK:
`client.images.generate` (`POST /v1/images/generations`), `client.audio.speech` (`POST /v1/audio/speech`, audio
streamed through), `client.audio.transcriptions` and `client.audio.translations` (multipart/form-data, the model read
from the form's `model` part), to OpenAI and to Azure OpenAI (deployment paths). The simulators answer
deterministically: a tiny PNG or a URL, audio in chunks about 80 ms apart, a transcript derived from the uploaded
bytes. Metering: gpt-image-1 reports tokens, dall-e images are counted, speech is metered in input characters and
whisper in audio seconds, priced per 1M of those units."""
import base64
import json
import urllib.error
import time
import urllib.request

import openai
import pytest

from default_gateway import DEMO_KEY, DefaultGateway

from sdk_fixtures import gateway, oai  # noqa: F401 (fixtures)

WAV = b"RIFF" + bytes(range(256)) * 160  # 40 KB: 1.3 s of 16 kHz 16-bit mono as the sim counts it


def log_lines(gateway, model):
    deadline = time.time() + 5
    lines = []
    while time.time() < deadline:
        lines = [l for l in gateway.envoy.logs().splitlines() if f"model={model} " in l]
        if lines:
            break
        time.sleep(0.05)
    return lines


def fields(line):
    return dict(p.split("=", 1) for p in line.split() if "=" in p and not p.startswith('"'))


def number(line, key):
    """A numeric access-log field (metadata numbers may print as 3 or 3.0); None when absent."""
    value = fields(line).get(key, "-")
    return None if value == "-" else float(value)


def wait_for_log(gateway, model, predicate):
    deadline = time.time() + 5
    while time.time() < deadline:
        matching = [l for l in log_lines(gateway, model) if predicate(l)]
        if matching:
            return matching[-1]
        time.sleep(0.05)
    raise AssertionError(f"no access-log line for {model}: {log_lines(gateway, model)[-3:]}")


# MARK: - Images


def test_image_as_b64_json_from_openai_with_token_usage(oai, gateway):
    result = oai.images.generate(model="gpt-image-1", prompt="a lighthouse at dawn", n=2, size="1024x1024",
                                 response_format="b64_json")
    assert len(result.data) == 2
    png = base64.b64decode(result.data[0].b64_json)
    assert png.startswith(b"\x89PNG\r\n\x1a\n") and b"IHDR" in png and png.endswith(b"IEND\xaeB`\x82")
    # Deterministic per prompt and index.
    again = oai.images.generate(model="gpt-image-1", prompt="a lighthouse at dawn", n=1, response_format="b64_json")
    assert again.data[0].b64_json == result.data[0].b64_json
    assert result.usage.output_tokens == 544 and result.usage.input_tokens == 4
    line = wait_for_log(gateway, "gpt-image-1", lambda l: '"POST /v1/images/generations"' in l and number(l, "tokens_out") == 544)
    assert number(line, "tokens_in") == 4
    # 4 × $5/M + 544 × $40/M
    assert number(line, "cost_usd") == pytest.approx(0.02178)


def test_image_url_from_azure_is_metered_per_image(oai, gateway):
    result = oai.images.generate(model="azure-dall-e-3", prompt="a red kite", n=3, size="1024x1024", response_format="url")
    assert [d.url.endswith(f"-{i}.png") for i, d in enumerate(result.data)] == [True] * 3
    line = wait_for_log(gateway, "azure-dall-e-3", lambda l: "/openai/deployments/dall-e-3-deployment/images/generations?api-version=" in l)
    assert number(line, "tokens_out") == 3 and fields(line)["backend"] == "azure"
    assert number(line, "cost_usd") == pytest.approx(0.12)  # 3 images × $0.04


def test_image_errors_from_upstream_reach_the_client_in_its_shape(oai, gateway):
    with pytest.raises(openai.RateLimitError) as info:
        oai.images.generate(model="gpt-image-1", prompt="a storm [sim-error:429]")
    assert info.value.body["code"] == "rate_limit_exceeded"
    with pytest.raises(openai.BadRequestError) as info:
        oai.images.generate(model="azure-dall-e-3", prompt="too many", n=11)
    assert info.value.body["param"] == "n"


# MARK: - Speech


@pytest.mark.parametrize("model,backend_path", [("tts-1", "/v1/audio/speech"),
                                                ("azure-tts", "/openai/deployments/tts-deployment/audio/speech?")])
def test_speech_streams_through_in_chunks(oai, gateway, model, backend_path):
    text = "Streaming speech through the gateway, chunk by chunk."
    arrivals = []
    audio = b""
    started = time.monotonic()
    with oai.audio.speech.with_streaming_response.create(model=model, voice="alloy", input=text,
                                                         response_format="wav") as response:
        assert response.headers["content-type"] == "audio/wav"
        for chunk in response.iter_bytes(chunk_size=None):
            arrivals.append(time.monotonic() - started)
            audio += chunk
    # A WAV of 60 ms per character: the whole answer, byte for byte.
    assert audio.startswith(b"RIFF") and audio[8:12] == b"WAVE"
    assert len(audio) == 44 + len(text) * 1440 * 2
    # The sim sends 6 chunks 80 ms apart: the first reaches the client long before the last (not buffered whole).
    assert len(arrivals) >= 3, arrivals
    assert arrivals[-1] - arrivals[0] >= 0.25, arrivals
    line = wait_for_log(gateway, model, lambda l: backend_path in l and number(l, "tokens_in") == len(text))
    assert number(line, "cost_usd") == pytest.approx(len(text) * 15 / 1e6)


def test_speech_errors_and_bad_requests(oai):
    with pytest.raises(openai.BadRequestError) as info:
        oai.audio.speech.create(model="tts-1", voice="nobody", input="hi")
    assert info.value.body["param"] == "voice"
    with pytest.raises(openai.InternalServerError):
        oai.audio.speech.create(model="azure-tts", voice="alloy", input="[sim-error:500] hi")


# MARK: - Transcriptions and translations


def test_transcription_with_a_model_override_rewrites_the_form(oai, gateway):
    result = oai.audio.transcriptions.create(model="whisper", file=("speech.wav", WAV, "audio/wav"))
    assert result.text and result.text[0].isupper() and result.text.endswith(".")
    # The same upload gives the same transcript.
    assert oai.audio.transcriptions.create(model="whisper", file=("speech.wav", WAV, "audio/wav")).text == result.text
    received = gateway.sims.last("openai")
    assert received["path"] == "/v1/audio/transcriptions"
    body = received["body"]
    # The form's model part says whisper-1 (the client said whisper); the file went through as sent.
    assert 'name="model"\r\n\r\nwhisper-1\r\n' in body and 'name="model"\r\n\r\nwhisper\r\n' not in body
    assert received["headers"]["content-type"].startswith("multipart/form-data; boundary=")
    line = wait_for_log(gateway, "whisper", lambda l: '"POST /v1/audio/transcriptions"' in l and number(l, "tokens_in") == 2)
    assert number(line, "cost_usd") == pytest.approx(2 * 100 / 1e6)  # 1.3 s → 2 s at $0.006 a minute


def test_a_large_upload_with_a_model_override(oai, gateway):
    """3 MB through the rewrite: the upstream filter buffers the form, edits the model part and sends the new
    length; the sim reads the whole file (its duration is the file's size at 32 KB a second)."""
    result = oai.audio.transcriptions.create(model="whisper", file=("long.wav", b"\1" * 3_000_000),
                                             response_format="verbose_json")
    assert result.duration == pytest.approx(93.8)
    assert gateway.sims.last("openai")["headers"]["content-type"].startswith("multipart/form-data; boundary=")


def test_transcription_formats(oai):
    text = oai.audio.transcriptions.create(model="whisper", file=("a.wav", WAV), response_format="text")
    assert isinstance(text, str) and text.strip().endswith(".")
    verbose = oai.audio.transcriptions.create(model="azure-whisper", file=("a.wav", WAV), response_format="verbose_json",
                                              language="de")
    assert verbose.language == "german" and verbose.duration == pytest.approx(1.3)
    srt = oai.audio.transcriptions.create(model="whisper", file=("a.wav", WAV), response_format="srt")
    assert srt.startswith("1\n00:00:00,000 --> 00:00:01,300\n")


def test_translation_to_openai_and_azure(oai, gateway):
    openai_result = oai.audio.translations.create(model="whisper", file=("a.wav", WAV))
    azure_result = oai.audio.translations.create(model="azure-whisper", file=("a.wav", WAV))
    assert openai_result.text == azure_result.text
    line = wait_for_log(gateway, "azure-whisper",
                        lambda l: "/openai/deployments/whisper-deployment/audio/translations?api-version=" in l)
    assert number(line, "tokens_in") == 2 and fields(line)["backend"] == "azure"
    received = gateway.sims.last("azure")
    # Azure reads the deployment from the path: its form goes as the client sent it.
    assert 'name="model"\r\n\r\nazure-whisper\r\n' in received["body"]
    # An Azure error reaches the client in the OpenAI SDK's shape.
    with pytest.raises(openai.RateLimitError):
        oai.audio.translations.create(model="azure-whisper", file=("a.wav", WAV), prompt="[sim-error:429]")


def raw_post(gateway, path, body, content_type, headers=None):
    request = urllib.request.Request(
        f"{gateway.base}{path}", data=body, method="POST",
        headers={"authorization": f"Bearer {DEMO_KEY}", "content-type": content_type, **(headers or {})})
    try:
        with urllib.request.urlopen(request, timeout=10) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


@pytest.mark.parametrize("body,content_type,code", [
    (b"--B\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a\"\r\n\r\nx\r\n--B--\r\n",
     "multipart/form-data; boundary=B", "missing_model"),
    (b"--B\r\nContent-Disposition: form-data; name=\"model\"\r\n\r\nwhisper\r\n--B", "multipart/form-data; boundary=B",
     "invalid_multipart"),
    (b"--B\r\nContent-Disposition: form-data; name=\"model\"\r\n\r\nwhisper\r\n--B--", "multipart/form-data",
     "invalid_multipart"),
    (b'{"model":"whisper"}', "application/json", "invalid_multipart"),
])
def test_malformed_forms_are_precise_400s(gateway, body, content_type, code):
    status, answer = raw_post(gateway, "/v1/audio/transcriptions", body, content_type)
    assert status == 400, answer
    error = json.loads(answer)["error"]
    assert error["code"] == code and error["type"] == "invalid_request_error"


def test_a_form_over_the_limit_is_413(oai):
    with pytest.raises(openai.APIStatusError) as info:
        oai.audio.transcriptions.create(model="whisper", file=("big.wav", b"\0" * (8 * 1024 * 1024 + 1)))
    assert info.value.status_code == 413
    assert info.value.body["code"] == "request_too_large"


# MARK: - Unsupported backends, metrics


@pytest.mark.parametrize("call", ["image", "speech", "transcription"])
def test_other_backends_refuse_with_unsupported_endpoint(oai, call):
    with pytest.raises(openai.BadRequestError) as info:
        if call == "image":
            oai.images.generate(model="claude-sonnet-4-6", prompt="x")
        elif call == "speech":
            oai.audio.speech.create(model="gemini-2.5-flash", voice="alloy", input="x")
        else:
            oai.audio.transcriptions.create(model="bedrock-claude-haiku", file=("a.wav", WAV))
    assert info.value.body["code"] == "unsupported_endpoint"
    assert "endpoint is not available on the" in info.value.body["message"]


def test_operations_are_named_in_the_genai_metrics(oai, gateway):
    oai.images.generate(model="gpt-image-1", prompt="metrics", response_format="b64_json")
    with oai.audio.speech.with_streaming_response.create(model="tts-1", voice="alloy", input="metrics") as speech:
        speech.read()
    oai.audio.transcriptions.create(model="whisper", file=("a.wav", WAV))
    oai.audio.translations.create(model="whisper", file=("a.wav", WAV))
    deadline = time.time() + 5
    names = ("image_generation", "text_to_speech", "transcription", "translation")
    while time.time() < deadline:
        text = gateway.envoy.prometheus()
        if all(f'gen_ai_operation_name="{name}"' in text for name in names):
            break
        time.sleep(0.2)
    for name in names:
        assert f'gen_ai_operation_name="{name}"' in text, name
    # Tokens are recorded only where the answer reports tokens (gpt-image-1), not characters or seconds.
    token_lines = [l for l in text.splitlines() if l.startswith("envoy_sluice_gen_ai_client_token_usage_count")]
    assert any('gen_ai_request_model="gpt-image-1"' in l for l in token_lines)
    assert not any('gen_ai_request_model="tts-1"' in l or 'gen_ai_request_model="whisper"' in l for l in token_lines)


def test_streamed_transcription_is_metered_from_its_final_event():
    """A gpt-4o transcribe model streams `transcript.text.delta` events and reports token usage in
    `transcript.text.done`: the events pass through, the usage is metered and priced."""
    def add_model(config):
        config["models"].append({"id": "gpt-4o-mini-transcribe", "owned_by": "openai", "created": 1742256000,
                                 "route": "openai"})
        config["prices"]["gpt-4o-mini-transcribe"] = {"input": 3.0, "output": 5.0}

    with DefaultGateway(adjust_config=add_model) as gw:
        client = openai.OpenAI(base_url=f"{gw.base}/v1", api_key=DEMO_KEY, max_retries=0, timeout=30)
        events = list(client.audio.transcriptions.create(model="gpt-4o-mini-transcribe", file=("a.wav", WAV),
                                                         stream=True))
        assert [e.type for e in events[:-1]] == ["transcript.text.delta"] * (len(events) - 1) and len(events) > 3
        done = events[-1]
        assert done.type == "transcript.text.done"
        assert "".join(e.delta for e in events[:-1]).strip() == done.text
        assert done.usage.input_tokens == 13 and done.usage.output_tokens == len(done.text.split())
        line = wait_for_log(gw, "gpt-4o-mini-transcribe", lambda l: number(l, "tokens_in") == 13)
        assert number(line, "tokens_out") == done.usage.output_tokens
        assert number(line, "cost_usd") == pytest.approx((13 * 3 + done.usage.output_tokens * 5) / 1e6)
        # A plain answer reports the same usage.
        plain = client.audio.transcriptions.create(model="gpt-4o-mini-transcribe", file=("a.wav", WAV))
        assert plain.text == done.text and plain.usage.input_tokens == 13


def test_speech_with_the_cost_header_still_streams():
    """With `response_cost_header` set, a non-streamed answer's headers wait for its body (the usage is in
    it); speech's cost is known from the request, so its headers carry the cost and the audio is not held."""
    def cost_header(config):
        config["response_cost_header"] = "x-sluice-cost-usd"

    with DefaultGateway(adjust_config=cost_header) as gw:
        client = openai.OpenAI(base_url=f"{gw.base}/v1", api_key=DEMO_KEY, max_retries=0, timeout=30)
        text = "Costed and streamed."
        arrivals = []
        started = time.monotonic()
        with client.audio.speech.with_streaming_response.create(model="tts-1", voice="nova", input=text) as response:
            assert float(response.headers["x-sluice-cost-usd"]) == pytest.approx(len(text) * 15 / 1e6)
            assert response.headers["content-type"] == "audio/mpeg"
            for _ in response.iter_bytes(chunk_size=None):
                arrivals.append(time.monotonic() - started)
        assert len(arrivals) >= 3 and arrivals[-1] - arrivals[0] >= 0.25, arrivals
        # A JSON answer's cost still comes with its headers.
        image = client.images.with_raw_response.generate(model="azure-dall-e-3", prompt="x", n=2)
        assert float(image.headers["x-sluice-cost-usd"]) == pytest.approx(0.08)
