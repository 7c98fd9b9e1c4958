// Claude on Vertex AI (`vertex_anthropic`) and on Bedrock InvokeModel (`bedrock_anthropic`): the request
// plans, the body edit, the response modes and errors, token counting, and Bedrock's event stream of base64
// Anthropic events, including garbled streams. The stream goldens are the Anthropic ones: the same Anthropic
// events, wrapped as Bedrock wraps them, must give the same OpenAI chunks and, to an Anthropic client, the
// same Anthropic events.
import Foundation
import Testing

@testable import SluiceCore

@Suite struct ClaudeOnCloudTests {
    static let token = CredentialSource.value("vertex-token")

    static func vertex() -> BackendConfig {
        var backend = BackendConfig(name: "vertex-claude", schema: .vertexAnthropic, credential: Self.token)
        backend.gcp = GCPSettings(project: "my-project", location: "us-east5")
        backend.modelOverrides = ["claude-sonnet": "claude-sonnet-4-5@20250929"]
        return backend
    }

    static func bedrock() -> BackendConfig {
        var backend = BackendConfig(name: "bedrock-claude", schema: .bedrockAnthropic)
        backend.aws = AWSSettings(region: "eu-west-3", accessKeyID: .value("AKID"), secretAccessKey: .value("secret"))
        backend.modelOverrides = ["claude-haiku": "anthropic.claude-3-5-haiku-20241022-v1:0"]
        return backend
    }

    static func exchange(
        _ backend: BackendConfig, client: ClientAPI = .anthropic, endpoint: Endpoint = .anthropicMessages,
        model: String? = nil, stream: Bool = false
    ) -> UpstreamExchange {
        UpstreamExchange(
            backend: backend, clientAPI: client, endpoint: endpoint,
            requestModel: model ?? (backend.schema == .vertexAnthropic ? "claude-sonnet" : "claude-haiku"), stream: stream,
            includeUsage: false, created: 1_700_000_000, requestID: "r")
    }

    static let directory = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Fixtures")

    static func fixture(_ path: String) throws -> [UInt8] {
        Array(try Data(contentsOf: directory.appendingPathComponent(path)))
    }

    /// Compares with `Fixtures/anthropic-cloud/<name>` as sorted JSON; `SLUICE_UPDATE_FIXTURES=1` writes it.
    static func expectJSON(_ actual: [UInt8], matches name: String, sourceLocation: SourceLocation = #_sourceLocation) throws {
        let value = try JSONParser.parse(actual)
        let url = directory.appendingPathComponent("anthropic-cloud/\(name)")
        if AnthropicFixtures.updating {
            try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
            try Data((AnthropicFixtures.pretty(value) + "\n").utf8).write(to: url)
            return
        }
        let expected = try JSONParser.parse(Array(try Data(contentsOf: url)))
        #expect(AnthropicFixtures.sorted(value) == AnthropicFixtures.sorted(expected), "\(name)", sourceLocation: sourceLocation)
    }

    // MARK: - Request plans

    @Test func vertexPlans() throws {
        let chat = try Self.exchange(Self.vertex()).requestPlan()
        #expect(chat.path == "/v1/projects/my-project/locations/us-east5/publishers/anthropic/models/claude-sonnet-4-5%4020250929:rawPredict")
        #expect(chat.setHeaders.map(\.name) == ["content-type"])
        #expect(chat.credential == .header(.bearer(Self.token)))
        #expect(chat.method == nil && chat.rewritesBody)
        let stream = try Self.exchange(Self.vertex(), client: .openAI, endpoint: .chatCompletions, stream: true).requestPlan()
        #expect(stream.path.hasSuffix("/models/claude-sonnet-4-5%4020250929:streamRawPredict"))
        let responses = try Self.exchange(Self.vertex(), client: .openAI, endpoint: .responses, model: "claude-x").requestPlan()
        #expect(responses.path.hasSuffix("/models/claude-x:rawPredict"))
        // A model name can add neither a segment nor a query.
        let hostile = try Self.exchange(Self.vertex(), model: "../x?y=1").requestPlan()
        #expect(hostile.path.hasSuffix("/models/..%2Fx%3Fy%3D1:rawPredict"))
        for endpoint in [Endpoint.embeddings, .completions] {
            #expect(throws: TranslateError.self) { try Self.exchange(Self.vertex(), client: .openAI, endpoint: endpoint).requestPlan() }
        }
        do {
            _ = try Self.exchange(Self.vertex(), client: .openAI, endpoint: .embeddings).requestPlan()
        } catch {
            #expect(error.status == 400 && error.code == "unsupported_endpoint")
        }
    }

    @Test func bedrockPlans() throws {
        let plan = try Self.exchange(Self.bedrock()).requestPlan()
        #expect(plan.path == "/model/anthropic.claude-3-5-haiku-20241022-v1%3A0/invoke")
        #expect(plan.setHeaders.map(\.name) == ["content-type"])
        guard case .signature(.sigV4(let signing)) = plan.credential else {
            Issue.record("not SigV4: \(plan.credential)")
            return
        }
        #expect(signing.region == "eu-west-3" && signing.service == "bedrock")
        #expect(plan.needsBody && plan.rewritesBody)
        let stream = try Self.exchange(Self.bedrock(), client: .openAI, endpoint: .chatCompletions, stream: true).requestPlan()
        #expect(stream.path == "/model/anthropic.claude-3-5-haiku-20241022-v1%3A0/invoke-with-response-stream")
        #expect(throws: TranslateError.self) { try Self.exchange(Self.bedrock(), client: .openAI, endpoint: .embeddings).requestPlan() }
        // Signed like the Converse backend: the headers the filter sets are SigV4's.
        let exchange = Self.exchange(Self.bedrock())
        let headers = try exchange.signatureHeaders(
            .sigV4(signing), request: SignableRequest(method: "POST", host: "bedrock-runtime.eu-west-3.amazonaws.com", path: plan.path, body: [1]),
            credentials: [Array("AKID".utf8), Array("secret".utf8), nil], unixSeconds: 1_700_000_000)
        #expect(headers.map(\.name).sorted() == ["authorization", "x-amz-content-sha256", "x-amz-date"])
        #expect(headers.first { $0.name == "authorization" }?.value.contains("/eu-west-3/bedrock/aws4_request") == true)
    }

    // MARK: - Body edits

    @Test func anthropicBodiesAreEditedByteForByte() throws {
        let body = Array(#"{"model":"claude-sonnet","max_tokens":64, "stream":true,"anthropic_version":"2023-06-01","messages":[{"role":"user","content":"Hi \"model\""}],"metadata":{"model":"kept"}}"#.utf8)
        var vertex = Self.exchange(Self.vertex(), stream: true)
        #expect(String(decoding: try vertex.translateRequest(body), as: UTF8.self)
            == #"{"max_tokens":64,"stream":true,"messages":[{"role":"user","content":"Hi \"model\""}],"metadata":{"model":"kept"},"anthropic_version":"vertex-2023-10-16"}"#)
        var bedrock = Self.exchange(Self.bedrock(), stream: true)
        #expect(String(decoding: try bedrock.translateRequest(body), as: UTF8.self)
            == #"{"max_tokens":64,"messages":[{"role":"user","content":"Hi \"model\""}],"metadata":{"model":"kept"},"anthropic_version":"bedrock-2023-05-31"}"#)
        // A name spelled with an escape is the same name.
        let escaped = Array(#"{"mod\u0065l":"x","max_tokens":1,"messages":[]}"#.utf8)
        #expect(String(decoding: try AnthropicOnCloud.cloudBody(escaped, anthropicVersion: "v", keepStream: true), as: UTF8.self)
            == #"{"max_tokens":1,"messages":[],"anthropic_version":"v"}"#)
        #expect(String(decoding: try AnthropicOnCloud.cloudBody(Array("{}".utf8), anthropicVersion: "v", keepStream: false), as: UTF8.self)
            == #"{"anthropic_version":"v"}"#)
        for bad in ["[1]", "\"x\"", "{\"a\":", "", "{\"a\":1}}"] {
            #expect(throws: TranslateError.self, "\(bad)") {
                try AnthropicOnCloud.cloudBody(Array(bad.utf8), anthropicVersion: "v", keepStream: true)
            }
        }
    }

    /// Golden: an OpenAI client's request through the Anthropic translator, then the cloud's edit; an
    /// Anthropic client's request edited only.
    @Test func translatedAndEditedRequestsMatchGoldens() throws {
        let openAI = try Self.fixture("anthropic/request-full.openai.json")
        let anthropic = try Self.fixture("anthropic/in-full.anthropic.json")
        for (backend, name) in [(Self.vertex(), "vertex"), (Self.bedrock(), "bedrock")] {
            var fromOpenAI = Self.exchange(backend, client: .openAI, endpoint: .chatCompletions)
            let translated = try fromOpenAI.translateRequest(openAI)
            try Self.expectJSON(translated, matches: "request-full.\(name).json")
            let tree = try JSONParser.parse(translated)
            #expect(tree["model"] == nil && tree["anthropic_version"]?.stringValue != nil)
            var fromAnthropic = Self.exchange(backend)
            let edited = try fromAnthropic.translateRequest(anthropic)
            try Self.expectJSON(edited, matches: "in-full.\(name).json")
            // Only model (and Bedrock's stream) go; everything else is the client's.
            let original = try JSONParser.parse(anthropic).objectValue?.members.filter {
                $0.key != "model" && !(name == "bedrock" && $0.key == "stream")
            }.map(\.key)
            #expect(try JSONParser.parse(edited).objectValue?.members.map(\.key) == (original ?? []) + ["anthropic_version"])
        }
    }

    // MARK: - Response modes and errors

    @Test func anthropicClientsGetAnswersAsTheyAreAndErrorsReshaped() {
        for backend in [Self.vertex(), Self.bedrock()] {
            let plain = Self.exchange(backend)
            #expect(plain.sameSchema)
            #expect(plain.responseMode(status: 200) == .passthroughMetered)
            #expect(plain.responseMode(status: 429) == .translateError)
            #expect(Self.exchange(backend, stream: true).responseMode(status: 200) == .translateStream)
            let openAI = Self.exchange(backend, client: .openAI, endpoint: .chatCompletions)
            #expect(!openAI.sameSchema && openAI.responseMode(status: 200) == .translateBody)
        }
        // Anthropic itself still passes its own errors through.
        let anthropic = UpstreamExchange(
            backend: BackendConfig(name: "a", schema: .anthropic, credential: Self.token), clientAPI: .anthropic,
            endpoint: .anthropicMessages, requestModel: "m", stream: false, includeUsage: false, created: 1, requestID: "r")
        #expect(anthropic.responseMode(status: 429) == .passthrough)
    }

    @Test func vertexErrorsInEitherShape() throws {
        let exchange = Self.exchange(Self.vertex())
        let google = exchange.translateError(
            status: 429, body: Array(#"{"error":{"code":429,"message":"Quota exceeded","status":"RESOURCE_EXHAUSTED"}}"#.utf8))
        #expect(google.status == 429)
        let googleBody = try JSONParser.parse(google.body)
        #expect(googleBody["type"]?.stringValue == "error")
        #expect(googleBody["error"]?["type"]?.stringValue == "rate_limit_error")
        #expect(googleBody["error"]?["message"]?.stringValue == "Quota exceeded")
        let model = Self.exchange(Self.vertex(), client: .openAI, endpoint: .chatCompletions).translateError(
            status: 400, body: Array(#"{"type":"error","error":{"type":"invalid_request_error","message":"max_tokens: Field required"}}"#.utf8))
        let modelBody = try JSONParser.parse(model.body)
        #expect(model.status == 400 && modelBody["error"]?["message"]?.stringValue == "max_tokens: Field required")
        #expect(modelBody["error"]?["type"]?.stringValue == "invalid_request_error")
        let html = exchange.translateError(status: 502, body: Array("<html>bad gateway</html>".utf8))
        #expect(html.status == 502 && String(decoding: html.body, as: UTF8.self).contains("bad gateway"))
        let authentication = exchange.translateError(
            status: 401, body: Array(#"{"error":{"code":401,"message":"Request had invalid authentication credentials.","status":"UNAUTHENTICATED"}}"#.utf8))
        #expect(try JSONParser.parse(authentication.body)["error"]?["type"]?.stringValue == "authentication_error")
    }

    @Test func bedrockErrorsWithTheirTypeHeader() throws {
        var exchange = Self.exchange(Self.bedrock())
        exchange.noteResponseHeader(name: "x-amzn-errortype", value: "ValidationException:http://internal.amazon.com/coral/com.amazon.bedrock/")
        let error = exchange.translateError(status: 400, body: Array(#"{"message":"Malformed input request"}"#.utf8))
        let body = try JSONParser.parse(error.body)
        #expect(error.status == 400)
        #expect(body["type"]?.stringValue == "error")
        #expect(body["error"]?["type"]?.stringValue == "invalid_request_error")
        #expect(body["error"]?["message"]?.stringValue == "Malformed input request")
        var openAI = Self.exchange(Self.bedrock(), client: .openAI, endpoint: .chatCompletions)
        openAI.noteResponseHeader(name: "x-amzn-errortype", value: "ThrottlingException")
        let throttled = openAI.translateError(status: 429, body: Array(#"{"message":"Too many requests"}"#.utf8))
        #expect(throttled.status == 429)
        #expect(try JSONParser.parse(throttled.body)["error"]?["code"]?.stringValue == "throttling_exception")
    }

    @Test func nonStreamedAnswersTranslateForOpenAIClientsAndMeterForAnthropicOnes() throws {
        let message = try Self.fixture("anthropic/response-full.anthropic.json")
        for backend in [Self.vertex(), Self.bedrock()] {
            let anthropic = Self.exchange(backend)
            let usage = anthropic.usage(ofPassthrough: message)
            #expect(usage == AnthropicTranslator.usage(ofResponse: message))
            #expect(usage.inputTokens > 0 && usage.outputTokens > 0)
            let openAI = Self.exchange(backend, client: .openAI, endpoint: .chatCompletions)
            let translated = try openAI.translateResponse(message)
            #expect(translated.usage == usage)
            #expect(try JSONParser.parse(translated.body)["object"]?.stringValue == "chat.completion")
            let responses = Self.exchange(backend, client: .openAI, endpoint: .responses)
            #expect(try JSONParser.parse(try responses.translateResponse(message).body)["object"]?.stringValue == "response")
        }
    }

    // MARK: - Token counting

    @Test func countsGoToEachCloudsCounter() throws {
        let count = Array(#"{"model":"claude-sonnet","messages":[{"role":"user","content":"Hi"}]}"#.utf8)
        var vertex = Self.exchange(Self.vertex(), endpoint: .anthropicCountTokens)
        #expect(vertex.sameSchema)
        let vertexPlan = try vertex.requestPlan()
        #expect(vertexPlan.path == "/v1/projects/my-project/locations/us-east5/publishers/anthropic/models/count-tokens:rawPredict")
        #expect(vertexPlan.credential == .header(.bearer(Self.token)))
        // The count body names the model; the override applies.
        #expect(try JSONParser.parse(try vertex.translateRequest(count))["model"]?.stringValue == "claude-sonnet-4-5@20250929")
        #expect(vertex.responseMode(status: 200) == .passthroughMetered)
        var vertexOpenAI = Self.exchange(Self.vertex(), client: .openAI, endpoint: .responsesInputTokens)
        let vertexFromResponses = try JSONParser.parse(try vertexOpenAI.translateRequest(Array(#"{"model":"claude-sonnet","input":"Hi"}"#.utf8)))
        #expect(vertexFromResponses["model"]?.stringValue == "claude-sonnet-4-5@20250929" && vertexFromResponses["max_tokens"] == nil)
        #expect(String(decoding: try vertexOpenAI.translateResponse(Array(#"{"input_tokens":12}"#.utf8)).body, as: UTF8.self)
            == #"{"object":"response.input_tokens","input_tokens":12}"#)

        // Bedrock counts Claude with CountTokens, whose answer is not Anthropic's: translated both ways.
        var bedrock = Self.exchange(Self.bedrock(), endpoint: .anthropicCountTokens)
        #expect(!bedrock.sameSchema)
        let bedrockPlan = try bedrock.requestPlan()
        #expect(bedrockPlan.path == "/model/anthropic.claude-3-5-haiku-20241022-v1%3A0/count-tokens" && bedrockPlan.rewritesBody)
        let converse = try JSONParser.parse(try bedrock.translateRequest(count))
        #expect(converse["input"]?["converse"]?["messages"]?.arrayValue?.count == 1)
        #expect(bedrock.responseMode(status: 200) == .translateBody)
        let answer = try bedrock.translateResponse(Array(#"{"inputTokens":7}"#.utf8))
        #expect(String(decoding: answer.body, as: UTF8.self) == #"{"input_tokens":7}"#)
        #expect(answer.usage == TokenUsage())
        #expect(throws: TranslateError.self) { try bedrock.translateResponse(Array(#"{"inputTokens":-1}"#.utf8)) }
    }

    // MARK: - Bedrock's event stream

    /// An Anthropic SSE fixture as Bedrock InvokeModel streams it: each event's JSON, base64 (standard
    /// alphabet, padded), in a `chunk` event.
    static func invokeStream(ofSSE sse: [UInt8]) throws -> [UInt8] {
        var out: [UInt8] = []
        for event in AnthropicFixtures.events(sse) {
            out += try chunk(event.data)
        }
        return out
    }

    static func chunk(_ json: [UInt8]) throws -> [UInt8] {
        try AWSEventStreamEncoder.event("chunk", payload: Array(#"{"bytes":"#.utf8) + Gemini.base64JSONString(json) + [0x7D])
    }

    static func run(_ input: [UInt8], cuts: [Int], anthropicClient: Bool) -> ([UInt8], BedrockInvokeStream) {
        AnthropicFixtures.run(
            { BedrockInvokeStream(context: AnthropicStreamTests.context, emitsAnthropicEvents: anthropicClient) }, input,
            cuts: cuts, feed: { $0.feed($1) }, finish: { $0.finish() })
    }

    @Test(arguments: AnthropicStreamTests.cases)
    func invokeStreamsMatchTheAnthropicGoldensAtEverySplit(testCase: AnthropicStreamTests.Case) throws {
        let sse = try Self.fixture("anthropic/\(testCase.name).anthropic.sse")
        let input = try Self.invokeStream(ofSSE: sse)
        // OpenAI clients: the very chunks Anthropic's own stream gives.
        let (hub, hubStage) = Self.run(input, cuts: [], anthropicClient: false)
        #expect(String(decoding: hub, as: UTF8.self) == String(decoding: try Self.fixture("anthropic/\(testCase.name).openai.sse"), as: UTF8.self))
        #expect(hubStage.usage == testCase.usage)
        // Anthropic clients: the very events, framed as Anthropic frames them.
        let (events, eventStage) = Self.run(input, cuts: [], anthropicClient: true)
        let got = AnthropicFixtures.events(events)
        // Nothing follows an error event (Anthropic's own stream may go on; the client's does not).
        let all = AnthropicFixtures.events(sse)
        let want = Array(all.prefix(through: all.firstIndex { $0.name == "error" } ?? all.count - 1))
        #expect(got.map(\.name) == want.map { $0.name })
        #expect(got.map(\.data) == want.map(\.data))
        #expect(eventStage.usage == testCase.usage)
        #expect(eventStage.failure == nil)
        for split in stride(from: 0, through: input.count, by: 7) {
            #expect(Self.run(input, cuts: [split], anthropicClient: false).0 == hub, "split at \(split)")
            #expect(Self.run(input, cuts: [split], anthropicClient: true).0 == events, "split at \(split)")
        }
        #expect(Self.run(input, cuts: Array(0...input.count), anthropicClient: true).0 == events, "byte by byte")
    }

    static let start = #"{"type":"message_start","message":{"id":"msg_1","type":"message","role":"assistant","model":"claude","content":[],"stop_reason":null,"stop_sequence":null,"usage":{"input_tokens":10,"output_tokens":1}}}"#
    static let text = #"{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"Hi"}}"#

    /// The stream so far reaches the client, then one error in its shape, then nothing.
    static func expectEndsWithOneError(
        _ input: [UInt8], code: String? = nil, type: String, sourceLocation: SourceLocation = #_sourceLocation
    ) {
        let (events, stage) = run(input, cuts: [], anthropicClient: true)
        let parsed = AnthropicFixtures.events(events)
        #expect(parsed.first?.name == "message_start", sourceLocation: sourceLocation)
        #expect(parsed.last?.name == "error", sourceLocation: sourceLocation)
        #expect(parsed.filter { $0.name == "error" }.count == 1, sourceLocation: sourceLocation)
        let error = try? JSONParser.parse(parsed.last?.data ?? [])
        #expect(error?["error"]?["type"]?.stringValue == type, sourceLocation: sourceLocation)
        if let code { #expect(stage.failure?.code == code, sourceLocation: sourceLocation) }
        #expect(stage.usage.inputTokens == 10, sourceLocation: sourceLocation)
        let (hub, _) = run(input, cuts: [], anthropicClient: false)
        let text = String(decoding: hub, as: UTF8.self)
        #expect(text.contains(#""error":"#) && text.hasSuffix("data: [DONE]\n\n"), sourceLocation: sourceLocation)
        // Whatever the cuts, the same.
        for split in 0...input.count {
            #expect(run(input, cuts: [split], anthropicClient: true).0 == events, "split at \(split)", sourceLocation: sourceLocation)
        }
    }

    @Test func badBase64EndsTheStreamCleanly() throws {
        var input = try Self.chunk(Array(Self.start.utf8))
        input += try AWSEventStreamEncoder.event("chunk", payload: Array(#"{"bytes":"!!not base64!!"}"#.utf8))
        input += try Self.chunk(Array(Self.text.utf8))
        Self.expectEndsWithOneError(input, code: "bad_upstream_response", type: "api_error")
    }

    @Test func garbledChunksEndTheStreamCleanly() throws {
        let garbled: [[UInt8]] = [
            Array(#"{"bytes":42}"#.utf8),  // not a string
            Array(#"{"nobytes":"eyJ9"}"#.utf8),  // no bytes
            Array("not json".utf8),
            Array(#"{"bytes":""#.utf8) + Array(Base64URL.encode(Array("[1,2]".utf8)).utf8) + Array(#""}"#.utf8),  // not an object
            Array(#"{"bytes":""#.utf8) + Array(Base64URL.encode(Array(#"{"type":"x\ny"}"#.utf8)).utf8) + Array(#""}"#.utf8),  // type not a name
            Array(#"{"bytes":""#.utf8) + Array(Base64URL.encode(Array(#"{"type":"message_delta""#.utf8)).utf8) + Array(#""}"#.utf8),  // cut JSON
            Array(#"{"bytes":"eyJ0eXBlIjoi"}"#.utf8),  // base64 of a cut object
            Array(#"{"bytes":"A"}"#.utf8),  // impossible length
        ]
        for payload in garbled {
            var input = try Self.chunk(Array(Self.start.utf8))
            input += try AWSEventStreamEncoder.event("chunk", payload: payload)
            Self.expectEndsWithOneError(input, code: "bad_upstream_response", type: "api_error")
        }
    }

    @Test func truncatedAndCorruptFramesEndTheStreamCleanly() throws {
        let first = try Self.chunk(Array(Self.start.utf8))
        let second = try Self.chunk(Array(Self.text.utf8))
        // Cut inside the second frame, at every byte.
        for cut in 1..<second.count {
            Self.expectEndsWithOneError(first + Array(second.prefix(cut)), code: "bad_upstream_response", type: "api_error")
        }
        // A flipped payload byte fails the message CRC.
        var corrupt = second
        corrupt[corrupt.count - 6] ^= 0x01
        Self.expectEndsWithOneError(first + corrupt + second, code: "bad_upstream_response", type: "api_error")
        // A hostile length in the prelude is refused before anything is buffered for it.
        var huge = second
        huge[0] = 0x7F
        Self.expectEndsWithOneError(first + huge, code: "bad_upstream_response", type: "api_error")
        // Cut cleanly between events, before message_stop: truncated.
        Self.expectEndsWithOneError(first + second, code: "upstream_stream_truncated", type: "api_error")
    }

    @Test func exceptionsMidStreamKeepTheirStatus() throws {
        var input = try Self.chunk(Array(Self.start.utf8))
        input += try AWSEventStreamEncoder.exception("throttlingException", payload: Array(#"{"message":"Too many tokens"}"#.utf8))
        input += try Self.chunk(Array(Self.text.utf8))
        Self.expectEndsWithOneError(input, code: "throttling_exception", type: "rate_limit_error")
        let (events, _) = Self.run(input, cuts: [], anthropicClient: true)
        #expect(String(decoding: events, as: UTF8.self).contains("Too many tokens"))
    }

    @Test func otherEventTypesArePassedOver() throws {
        var input = try Self.chunk(Array(Self.start.utf8))
        input += try AWSEventStreamEncoder.event("initial-response", payload: Array("{}".utf8))
        input += try Self.chunk(Array(#"{"type":"message_stop"}"#.utf8))
        let (events, stage) = Self.run(input, cuts: [], anthropicClient: true)
        #expect(AnthropicFixtures.events(events).map(\.name) == ["message_start", "message_stop"])
        #expect(stage.failure == nil)
    }

    @Test func escapedBase64AndEscapedTypesAreReadAsJSONMeansThem() throws {
        // `{"type":"message_stop"}` in base64 is eyJ0eXBlIjoibWVzc2FnZV9zdG9wIn0=; its '=' written as an escape.
        var input = try Self.chunk(Array(Self.start.utf8))
        input += try AWSEventStreamEncoder.event("chunk", payload: Array(#"{"bytes":"eyJ0eXBlIjoibWVzc2FnZV9zdG9wIn0\u003d"}"#.utf8))
        let (events, stage) = Self.run(input, cuts: [], anthropicClient: true)
        #expect(AnthropicFixtures.events(events).map(\.name) == ["message_start", "message_stop"])
        #expect(stage.failure == nil)
        // A type name written with an escape cannot go on an `event:` line as it is: refused.
        let escapedType = Array(#"{"type":"message\u005fstop"}"#.utf8)
        #expect(BedrockInvokeStream.anthropicEvent(inChunk: Array(#"{"bytes":""#.utf8) + Array(Base64URL.encode(escapedType).utf8) + Array(#""}"#.utf8)) == nil)
    }

    @Test func prettyPrintedEventsStayOneDataLine() throws {
        let pretty = "{\n  \"type\": \"message_start\",\n  \"message\": {\"id\": \"m\", \"usage\": {\"input_tokens\": 3, \"output_tokens\": 1}}\r\n}"
        let input = try Self.chunk(Array(pretty.utf8))
        let (events, stage) = Self.run(input, cuts: [], anthropicClient: true)
        let text = String(decoding: events, as: UTF8.self)
        #expect(text.hasPrefix("event: message_start\ndata: {   \"type\""))
        #expect(text.split(separator: "\n", omittingEmptySubsequences: false).count == 2 + 2 + 3)  // event, data, blank; then the error's
        #expect(stage.usage.inputTokens == 3)
    }

    @Test func theExchangeBuildsTheRightStage() throws {
        var anthropic = try Self.exchange(Self.bedrock(), stream: true).makeStreamTranslator()
        var openAI = try Self.exchange(Self.bedrock(), client: .openAI, endpoint: .chatCompletions, stream: true).makeStreamTranslator()
        var responses = try Self.exchange(Self.bedrock(), client: .openAI, endpoint: .responses, stream: true).makeStreamTranslator()
        let input = try Self.invokeStream(ofSSE: try Self.fixture("anthropic/stream-text.anthropic.sse"))
        let anthropicOut = anthropic.feed(input) + anthropic.finish()
        #expect(String(decoding: anthropicOut, as: UTF8.self).hasPrefix("event: message_start\ndata: "))
        let openAIOut = String(decoding: openAI.feed(input) + openAI.finish(), as: UTF8.self)
        #expect(openAIOut.contains("chat.completion.chunk") && openAIOut.hasSuffix("data: [DONE]\n\n"))
        let responsesOut = String(decoding: responses.feed(input) + responses.finish(), as: UTF8.self)
        #expect(responsesOut.contains("response.output_text.delta") && responsesOut.contains("response.completed"))
        #expect(anthropic.usage == openAI.usage && anthropic.usage.outputTokens > 0)
        // Vertex streams Anthropic SSE itself: passed on to Anthropic clients.
        var vertex = try Self.exchange(Self.vertex(), stream: true).makeStreamTranslator()
        let sse = try Self.fixture("anthropic/stream-text.anthropic.sse")
        #expect(vertex.feed(sse) + vertex.finish() == sse)
        #expect(vertex.usage == anthropic.usage)
    }
}

@Suite struct ClaudeOnCloudConfigTests {
    @Test(arguments: [
        (#"{"backend":"x","schema":"vertex_anthropic","credential":{"value":"t"}}"#, "gcp: is required for schema vertex_anthropic (project and location)"),
        (#"{"backend":"x","schema":"vertex_anthropic","gcp":{"project":"p","location":"us-east5"}}"#, "credential: is required for schema vertex_anthropic"),
        (#"{"backend":"x","schema":"vertex_anthropic","credential":{"value":"t"},"gcp":{"project":"p","location":"US East"}}"#, "gcp.location: must be a region name of lower-case letters, digits and '-', e.g. us-east-1"),
        (#"{"backend":"x","schema":"bedrock_anthropic"}"#, "aws: is required for schema bedrock_anthropic (region and keys)"),
        (#"{"backend":"x","schema":"bedrock_anthropic","aws":{"region":"us-east-1","access_key_id":{"value":"a"}}}"#, "aws.secret_access_key: is required"),
    ])
    func missingSettingsAreNamed(json: String, message: String) {
        do {
            _ = try BackendConfig.parse(Array(json.utf8))
            Issue.record("expected an error")
        } catch {
            #expect(error.message == message)
        }
    }

    @Test func completeConfigsParse() throws {
        let vertex = try BackendConfig.parse(Array(#"{"backend":"v","schema":"vertex_anthropic","credential":{"secret":"t","sds":"ads"},"gcp":{"project":"p","location":"us-east5"}}"#.utf8))
        #expect(vertex.schema == .vertexAnthropic && vertex.gcp == GCPSettings(project: "p", location: "us-east5"))
        let bedrock = try BackendConfig.parse(Array(#"{"backend":"b","schema":"bedrock_anthropic","aws":{"region":"us-west-2","access_key_id":{"value":"a"},"secret_access_key":{"secret":"s","sds":"ads"}}}"#.utf8))
        #expect(bedrock.schema == .bedrockAnthropic && bedrock.aws?.region == "us-west-2")
        #expect(bedrock.configuredCredentialSources == [.value("a"), .secret(name: "s", sds: .ads)])
    }
}
