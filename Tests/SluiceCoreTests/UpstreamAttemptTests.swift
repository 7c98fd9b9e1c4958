// The upstream filter's per-attempt policy (`UpstreamAttempt`) driven event by event, with no
// host: what it decides and which actions it asks the filter to carry out.
import Testing

@testable import SluiceCore

@Suite struct UpstreamAttemptTests {
    static let anthropicConfig =
        #"{"backend":"anthropic","schema":"anthropic","credential":{"secret":"ant-key"},"default_max_tokens":256}"#
    static let openAIConfig = #"{"backend":"compat","schema":"openai","credential":{"value":"sk-compat"}}"#

    static func shared(_ json: String) throws -> UpstreamAttempt.Shared {
        UpstreamAttempt.Shared(config: try UpstreamConfig.parse(Array(json.utf8)))
    }

    static func context(
        _ endpoint: Endpoint = .chatCompletions, model: String = "claude-haiku", stream: Bool = false, bodyBytes: Int = 42
    ) -> AttemptContext {
        AttemptContext(endpoint: endpoint, model: model, stream: stream, includeUsage: false, requestBodyBytes: bodyBytes)
    }

    /// Every credential source's text, as the filter would read it (a secret by its name).
    static func credentials(_ secrets: [String: String]) -> (CredentialSource) -> String? {
        { source in
            switch source {
            case .value(let value): value
            case .secret(let name, _): secrets[name]
            }
        }
    }

    /// The machine after its request headers (and body, when it asks for one); actions emptied.
    static func started(
        _ shared: UpstreamAttempt.Shared, context: AttemptContext, body: String = #"{"model":"claude-haiku","messages":[{"role":"user","content":"hi"}]}"#,
        secrets: [String: String] = ["ant-key": "sk-ant"]
    ) -> UpstreamAttempt {
        var machine = UpstreamAttempt(shared: shared)
        _ = machine.requestHeaders(
            context: context, hostBackend: nil, headers: TestRequestHeaders([("x-request-id", "req-1")]), endOfStream: false, nowSeconds: 1_700_000_000,
            credential: credentials(secrets))
        if machine.requestBody(endOfStream: true) == .read {
            _ = machine.requestBodyComplete(
                Array(body.utf8), header: { _ in nil }, nowSeconds: 1_700_000_000, credential: credentials(secrets))
        }
        machine.actions.removeAll()
        return machine
    }

    static func requestHeaderEdits(_ actions: [UpstreamAction]) -> [String: String?] {
        var edits: [String: String?] = [:]
        for action in actions {
            switch action {
            case .removeRequestHeader(let name): edits[name] = .some(nil)
            case .setRequestHeader(let name, let value): edits[name] = value
            default: break
            }
        }
        return edits
    }

    static func responseHeaderEdits(_ actions: [UpstreamAction]) -> [String: String?] {
        var edits: [String: String?] = [:]
        for action in actions {
            switch action {
            case .removeResponseHeader(let name): edits[name] = .some(nil)
            case .setResponseHeader(let name, let value): edits[name] = value
            default: break
            }
        }
        return edits
    }

    static func reports(_ actions: [UpstreamAction]) -> [AttemptReport] {
        actions.compactMap { if case .publishReport(let report) = $0 { report } else { nil } }
    }

    static func counts(_ actions: [UpstreamAction]) -> [(UpstreamCounter, [String])] {
        actions.compactMap { if case .count(let counter, let labels) = $0 { (counter, labels) } else { nil } }
    }

    static func localReply(_ actions: [UpstreamAction]) -> LocalReply? {
        for case .localReply(let reply) in actions { return reply }
        return nil
    }

    /// The response body as Envoy would hold and send it, for carrying out the machine's body
    /// actions: what a stop-and-buffer keeps, and what went on to the client.
    struct ResponseBody {
        var buffered: [UInt8] = []
        var sent: [UInt8] = []
        /// Reports published, in order.
        var reports: [AttemptReport] = []

        /// One response-body event delivering `chunk`; returns the machine's status.
        mutating func deliver(_ chunk: [UInt8], endOfStream: Bool, to machine: inout UpstreamAttempt) -> GatewayStatus {
            var received = chunk
            let buffered = self.buffered
            let status = machine.responseBody(
                endOfStream: endOfStream, bodySize: { $0 == .buffered ? buffered.count : chunk.count },
                read: { part, out in out += part == .buffered ? buffered : chunk })
            for action in machine.actions {
                switch action {
                case .replaceResponseBody(let bytes):
                    self.buffered = []
                    received = bytes
                case .replaceReceivedResponseBody(let bytes):
                    received = bytes
                case .publishReport(let report):
                    reports.append(report)
                default:
                    break
                }
            }
            machine.actions.removeAll()
            if status == .stopAndBuffer {
                self.buffered += received
            } else {
                sent += self.buffered + received
                self.buffered = []
            }
            return status
        }
    }

    // MARK: - Request

    @Test func aSameSchemaAttemptPassesTheBodyWithTheClientsLength() throws {
        var machine = UpstreamAttempt(shared: try Self.shared(Self.openAIConfig))
        // An earlier attempt that rewrote the body left its own length in the shared headers.
        // What an earlier attempt left: another backend's credential headers and its length.
        let leftovers = UpstreamRequestPlan.credentialHeaders.map { (name: $0, value: "leftover") }
        let status = machine.requestHeaders(
            context: Self.context(model: "m", bodyBytes: 1234), hostBackend: nil,
            headers: TestRequestHeaders(
                [(":method", "POST"), (":path", "/v1/chat/completions"), ("content-length", "85"), ("x-sluice-route", "r")]
                    + leftovers),
            endOfStream: false, nowSeconds: 0, credential: Self.credentials([:]))
        #expect(status == .continue)
        #expect(!machine.awaitingBody)
        let edits = Self.requestHeaderEdits(machine.actions)
        #expect(edits["content-length"] == "1234")
        #expect(edits[":path"] == nil)  // already the backend's path: no call into Envoy
        #expect(edits["authorization"] == "Bearer sk-compat")
        #expect(edits["x-sluice-route"] == .some(nil))
        // Every other credential header present is removed; this backend's own is set.
        for name in UpstreamRequestPlan.credentialHeaders where name != "authorization" {
            #expect(edits[name] == .some(nil), "\(name)")
        }
        #expect(!machine.actions.contains { if case .removeRequestHeader("authorization") = $0 { true } else { false } })
        // A first attempt finds nothing to remove and the path in place: two edits.
        var first = UpstreamAttempt(shared: try Self.shared(Self.openAIConfig))
        _ = first.requestHeaders(
            context: Self.context(model: "m", bodyBytes: 85), hostBackend: nil,
            headers: TestRequestHeaders([
                (":method", "POST"), (":path", "/v1/chat/completions"), ("content-type", "application/json"),
                ("content-length", "85"), ("x-sluice-route", "r"),
            ]),
            endOfStream: false, nowSeconds: 0, credential: Self.credentials([:]))
        let firstEdits: [String: String?] = ["x-sluice-route": String?.none, "authorization": "Bearer sk-compat"]
        #expect(Self.requestHeaderEdits(first.actions) == firstEdits)
        #expect(!machine.actions.contains { if case .replaceRequestBody = $0 { true } else { false } })
        #expect(Self.counts(machine.actions).isEmpty)
        #expect(machine.requestBody(endOfStream: true) == .pass)
    }

    @Test func aTranslatedRequestWaitsForItsBodyAndSendsTheTranslationsLength() throws {
        var machine = UpstreamAttempt(shared: try Self.shared(Self.anthropicConfig))
        var asked: [CredentialSource] = []
        let status = machine.requestHeaders(
            context: Self.context(), hostBackend: nil, headers: TestRequestHeaders([("x-request-id", "req-1")]), endOfStream: false, nowSeconds: 0,
            credential: { source in
                asked.append(source)
                return "sk-ant"
            })
        #expect(status == .stop)
        #expect(machine.awaitingBody)
        #expect(asked == [.secret(name: "ant-key", sds: .bootstrap)])
        let edits = Self.requestHeaderEdits(machine.actions)
        #expect(edits["x-api-key"] == "sk-ant")
        #expect(edits[":path"] == "/v1/messages")
        #expect(edits["anthropic-version"] == "2023-06-01")
        #expect(edits["content-length"] == nil)
        machine.actions.removeAll()

        #expect(machine.requestBody(endOfStream: false) == .buffer)
        #expect(machine.requestBody(endOfStream: true) == .read)
        let body = #"{"model":"claude-haiku","messages":[{"role":"system","content":"be brief"},{"role":"user","content":"hi"}]}"#
        let done = machine.requestBodyComplete(
            Array(body.utf8), header: { _ in nil }, nowSeconds: 0, credential: Self.credentials([:]))
        #expect(done == .continue)
        #expect(!machine.awaitingBody)
        guard case .replaceRequestBody(let sent)? = machine.actions.first else {
            Issue.record("the translated body must replace the client's")
            return
        }
        let parsed = try JSONParser.parse(sent)
        #expect(parsed["system"] != nil)
        #expect(parsed["max_tokens"]?.int64Value == 256)
        #expect(Self.requestHeaderEdits(machine.actions)["content-length"] == String(sent.count))
        #expect(machine.requestBody(endOfStream: true) == .pass)
    }

    @Test func aMissingCredentialIsA500LocalReplyCountedAsRejected() throws {
        var machine = UpstreamAttempt(shared: try Self.shared(Self.anthropicConfig))
        let status = machine.requestHeaders(
            context: Self.context(.anthropicMessages), hostBackend: nil, headers: TestRequestHeaders(), endOfStream: false, nowSeconds: 0,
            credential: { _ in "" })
        #expect(status == .stop)
        #expect(!machine.awaitingBody)
        let reply = try #require(Self.localReply(machine.actions))
        #expect(reply.status == 500)
        // In the client's shape: an Anthropic client gets an Anthropic error.
        let error = try JSONParser.parse(reply.body)
        #expect(error["type"] == "error")
        #expect(error["error"]?["message"] == "The gateway has no credential for backend 'anthropic'.")
        #expect(reply.details.description == "sluice_upstream_rejected")
        #expect(Self.counts(machine.actions).map(\.1) == [["anthropic", "rejected"]])
        guard case .localReply? = machine.actions.last else {
            Issue.record("the reply comes last")
            return
        }
    }

    @Test func aHostOfNoKnownBackendIsRefusedNotGuessed() throws {
        let shared = try Self.shared(
            #"{"backends":[{"backend":"a","schema":"openai","credential":{"value":"key-a"}},{"backend":"b","schema":"openai","credential":{"value":"key-b"}}]}"#)
        var named = UpstreamAttempt(shared: shared)
        #expect(
            named.requestHeaders(
                context: Self.context(model: "m"), hostBackend: "b", headers: TestRequestHeaders(), endOfStream: false, nowSeconds: 0,
                credential: Self.credentials([:])) == .continue)
        #expect(Self.requestHeaderEdits(named.actions)["authorization"] == "Bearer key-b")
        var unnamed = UpstreamAttempt(shared: shared)
        #expect(
            unnamed.requestHeaders(
                context: Self.context(model: "m"), hostBackend: nil, headers: TestRequestHeaders(), endOfStream: false, nowSeconds: 0,
                credential: Self.credentials([:])) == .stop)
        #expect(Self.localReply(unnamed.actions)?.status == 500)
        #expect(Self.counts(unnamed.actions).map(\.1) == [["unknown", "rejected"]])
    }

    @Test func aSignedRequestIsSignedOverTheFinalRequestWithTheSourcesItNames() throws {
        let shared = try Self.shared(
            #"{"backend":"bedrock","schema":"bedrock_converse","aws":{"region":"eu-west-3","access_key_id":{"value":"AKIDEXAMPLE"},"secret_access_key":{"secret":"aws-secret"}}}"#)
        var machine = UpstreamAttempt(shared: shared)
        let credentials = Self.credentials(["aws-secret": "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"])
        #expect(
            machine.requestHeaders(
                context: Self.context(model: "anthropic.claude-3-haiku"), hostBackend: nil, headers: TestRequestHeaders(),
                endOfStream: false, nowSeconds: 0, credential: credentials) == .stop)
        let path = try #require(Self.requestHeaderEdits(machine.actions)[":path"] ?? nil)
        machine.actions.removeAll()
        var read: [String] = []
        let status = machine.requestBodyComplete(
            Array(#"{"model":"anthropic.claude-3-haiku","messages":[{"role":"user","content":"hi"}]}"#.utf8),
            header: { name in
                read.append(name)
                return name == ":path" ? path : name == ":authority" ? "bedrock-runtime.eu-west-3.amazonaws.com" : nil
            }, nowSeconds: 1_700_000_000, credential: credentials)
        #expect(status == .continue)
        #expect(Set(read) == [":method", ":authority", ":path"])
        let edits = Self.requestHeaderEdits(machine.actions)
        let authorization = try #require(edits["authorization"] ?? nil)
        #expect(authorization.hasPrefix("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20231114/eu-west-3/bedrock/aws4_request"))
        #expect(edits["x-amz-date"] == "20231114T221320Z")

        // Without the secret the attempt fails with 500, not a signature over an empty key.
        var unsigned = UpstreamAttempt(shared: shared)
        _ = unsigned.requestHeaders(
            context: Self.context(model: "anthropic.claude-3-haiku"), hostBackend: nil, headers: TestRequestHeaders(), endOfStream: false,
            nowSeconds: 0, credential: Self.credentials([:]))
        unsigned.actions.removeAll()
        let refused = unsigned.requestBodyComplete(
            Array(#"{"model":"m","messages":[{"role":"user","content":"hi"}]}"#.utf8), header: { _ in nil }, nowSeconds: 0,
            credential: Self.credentials([:]))
        #expect(refused == .stopNoBuffer)
        #expect(Self.localReply(unsigned.actions)?.status == 500)
    }

    @Test func aBodylessRequestToATranslatingBackendIsRefused() throws {
        var machine = UpstreamAttempt(shared: try Self.shared(Self.anthropicConfig))
        let status = machine.requestHeaders(
            context: Self.context(), hostBackend: nil, headers: TestRequestHeaders(), endOfStream: true, nowSeconds: 0,
            credential: Self.credentials(["ant-key": "k"]))
        #expect(status == .stop)
        #expect(Self.localReply(machine.actions)?.status == 400)
        #expect(!machine.awaitingBody)
    }

    @Test func requestsNotRoutedBySluicePassUntouched() throws {
        var machine = UpstreamAttempt(shared: try Self.shared(Self.anthropicConfig))
        let status = machine.requestHeaders(
            context: nil, hostBackend: { Issue.record("host metadata read"); return nil }(), headers: TestRequestHeaders(),
            endOfStream: false, nowSeconds: 0, credential: { _ in
                Issue.record("credential read")
                return nil
            })
        #expect(status == .continue)
        #expect(machine.actions.isEmpty)
        #expect(machine.requestBody(endOfStream: true) == .pass)
        let headers = machine.responseHeaders(
            status: 200, header: { _ in
                Issue.record("response header read")
                return nil
            }, endOfStream: false)
        #expect(headers == .continue)
        let body = machine.responseBody(
            endOfStream: true, bodySize: { _ in 0 }, read: { _, _ in Issue.record("response body read") })
        #expect(body == .continue)
        #expect(machine.actions.isEmpty)
    }

    // MARK: - Response

    @Test func aSameSchemaAnswerPassesThroughAndIsMeteredOnceAtItsEnd() throws {
        var machine = Self.started(try Self.shared(Self.openAIConfig), context: Self.context(model: "m"))
        let status = machine.responseHeaders(
            status: 200, header: { _ in nil }, endOfStream: false)
        #expect(status == .continue)
        #expect(machine.responseMode == .passthroughMetered)
        #expect(Self.counts(machine.actions).map(\.1) == [["compat", "ok"]])
        #expect(Self.responseHeaderEdits(machine.actions).isEmpty)
        machine.actions.removeAll()
        let answer = Array(
            #"{"id":"c1","object":"chat.completion","model":"m","choices":[],"usage":{"prompt_tokens":7,"completion_tokens":3}}"#.utf8)
        var response = ResponseBody()
        #expect(response.deliver(Array(answer[..<20]), endOfStream: false, to: &machine) == .continue)
        #expect(response.reports.isEmpty)
        #expect(response.deliver(Array(answer[20...]), endOfStream: true, to: &machine) == .continue)
        #expect(response.sent == answer)
        #expect(response.reports.count == 1)
        #expect(response.reports.first?.backend == "compat")
        #expect(response.reports.first == AttemptReport(
            usage: TokenUsage(inputTokens: 7, outputTokens: 3), backend: "compat", provider: "openai", responseModel: "m"))
    }

    @Test func anErrorOfTheClientsOwnAPIPassesUnmetered() throws {
        var machine = Self.started(try Self.shared(Self.openAIConfig), context: Self.context(model: "m"))
        #expect(machine.responseHeaders(status: 429, header: { _ in nil }, endOfStream: false) == .continue)
        #expect(machine.responseMode == .passthrough)
        #expect(Self.counts(machine.actions).map(\.1) == [["compat", "error"]])
        machine.actions.removeAll()
        var response = ResponseBody()
        _ = response.deliver(Array(#"{"error":{"message":"slow down"}}"#.utf8), endOfStream: true, to: &machine)
        #expect(response.reports.isEmpty)
        #expect(response.sent == Array(#"{"error":{"message":"slow down"}}"#.utf8))
    }

    @Test func aTranslatedAnswerHoldsItsHeadersAndReplacesThem() throws {
        var machine = Self.started(try Self.shared(Self.anthropicConfig), context: Self.context())
        let status = machine.responseHeaders(
            status: 200, header: { _ in nil }, endOfStream: false)
        #expect(status == .stop)
        #expect(Self.responseHeaderEdits(machine.actions).isEmpty)
        machine.actions.removeAll()
        let answer = Array(
            #"{"id":"msg_1","type":"message","role":"assistant","model":"claude-haiku","content":[{"type":"text","text":"Hello"},{"type":"text","text":" there"}],"stop_reason":"end_turn","usage":{"input_tokens":10,"output_tokens":2}}"#
                .utf8)
        var response = ResponseBody()
        #expect(response.deliver(Array(answer[..<50]), endOfStream: false, to: &machine) == .stopAndBuffer)
        #expect(response.sent.isEmpty)
        let buffered = response.buffered
        var replaced: [UInt8]?
        var edits: [String: String?] = [:]
        let end = machine.responseBody(
            endOfStream: true, bodySize: { $0 == .buffered ? buffered.count : answer.count - 50 },
            read: { part, out in out += part == .buffered ? buffered : Array(answer[50...]) })
        #expect(end == .continue)
        for case .replaceResponseBody(let bytes) in machine.actions { replaced = bytes }
        edits = Self.responseHeaderEdits(machine.actions)
        let body = try #require(replaced)
        let out = try JSONParser.parse(body)
        #expect(out["object"] == "chat.completion")
        #expect(out["choices"]?.arrayValue?.first?["message"]?["content"] == "Hello there")
        #expect(edits[":status"] == "200")
        #expect(edits["content-type"] == "application/json")
        #expect(edits["content-length"] == String(body.count))
        #expect(Self.reports(machine.actions).map(\.usage) == [TokenUsage(inputTokens: 10, outputTokens: 2)])
    }

    @Test func aBackendErrorIsReshapedForTheClientWithItsStatus() throws {
        var machine = Self.started(try Self.shared(Self.anthropicConfig), context: Self.context())
        #expect(machine.responseHeaders(status: 529, header: { _ in nil }, endOfStream: false) == .stop)
        #expect(machine.responseMode == .translateError)
        #expect(Self.counts(machine.actions).map(\.1) == [["anthropic", "error"]])
        machine.actions.removeAll()
        var response = ResponseBody()
        let error = #"{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}"#
        let replacedHeaders = response.deliver(Array(error.utf8), endOfStream: true, to: &machine)
        #expect(replacedHeaders == .continue)
        let out = try JSONParser.parse(response.sent)
        #expect(out["error"]?["message"] == "Overloaded")
        #expect(response.reports.map(\.usage) == [TokenUsage()])
    }

    @Test func aBodylessSuccessIsABrokenAnswer() throws {
        var machine = Self.started(try Self.shared(Self.anthropicConfig), context: Self.context())
        let status = machine.responseHeaders(status: 200, header: { _ in nil }, endOfStream: true)
        #expect(status == .continue)
        let edits = Self.responseHeaderEdits(machine.actions)
        #expect(edits[":status"] == "502")
        var appended: [UInt8]?
        for case .appendBufferedResponseBody(let bytes) in machine.actions { appended = bytes }
        let body = try #require(appended)
        #expect(edits["content-length"] == String(body.count))
        #expect(String(decoding: body, as: UTF8.self).contains("bad_upstream_response"))
        #expect(Self.reports(machine.actions).count == 1)
    }

    @Test func theAdaptersListedResponseHeadersAreReadAndNoOthers() throws {
        let shared = try Self.shared(
            #"{"backend":"bedrock","schema":"bedrock_converse","aws":{"region":"eu-west-3","access_key_id":{"value":"A"},"secret_access_key":{"value":"S"}}}"#)
        var machine = Self.started(shared, context: Self.context(model: "m"), body: #"{"model":"m","messages":[{"role":"user","content":"x"}]}"#)
        var asked: [String] = []
        _ = machine.responseHeaders(
            status: 400, header: { name in
                asked.append(name)
                return name == "x-amzn-errortype" ? "ValidationException:http://internal.amazon.com/" : nil
            }, endOfStream: false)
        #expect(asked == BackendSchema.bedrockConverse.adapter.responseHeaderNames)
        machine.actions.removeAll()
        var response = ResponseBody()
        _ = response.deliver(Array(#"{"message":"bad input"}"#.utf8), endOfStream: true, to: &machine)
        let out = try JSONParser.parse(response.sent)
        #expect(out["error"]?["message"] == "bad input")
    }

    static let anthropicStream = Array(
        """
        event: message_start
        data: {"type":"message_start","message":{"id":"msg_1","type":"message","role":"assistant","model":"claude-haiku","content":[],"usage":{"input_tokens":5,"output_tokens":1}}}

        event: content_block_start
        data: {"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}

        event: content_block_delta
        data: {"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"Hi"}}

        event: content_block_stop
        data: {"type":"content_block_stop","index":0}

        event: message_delta
        data: {"type":"message_delta","delta":{"stop_reason":"end_turn"},"usage":{"output_tokens":3}}

        event: message_stop
        data: {"type":"message_stop"}


        """.utf8)

    @Test func aStreamIsTranslatedAtAnySplitAndItsReportWrittenOnlyWhenUsageChanges() throws {
        let shared = try Self.shared(Self.anthropicConfig)
        let context = Self.context(stream: true)
        let body = #"{"model":"claude-haiku","stream":true,"messages":[{"role":"user","content":"x"}]}"#
        // The reference: the exchange's own translator fed the whole stream at once.
        let reference: [UInt8] = try {
            let machine = Self.started(shared, context: context, body: body)
            var translator = try #require(machine.exchange).makeStreamTranslator()
            return translator.feed(Self.anthropicStream) + translator.finish()
        }()
        #expect(String(decoding: reference, as: UTF8.self).hasSuffix("data: [DONE]\n\n"))
        for size in [1, 7, 37, 200, Self.anthropicStream.count] {
            var machine = Self.started(shared, context: context, body: body)
            #expect(machine.responseHeaders(status: 200, header: { _ in nil }, endOfStream: false) == .continue)
            let edits = Self.responseHeaderEdits(machine.actions)
            #expect(edits["content-type"] == "text/event-stream")
            #expect(edits["content-length"] == .some(nil))
            machine.actions.removeAll()
            var response = ResponseBody()
            var start = 0
            repeat {
                let end = min(start + size, Self.anthropicStream.count)
                let status = response.deliver(
                    Array(Self.anthropicStream[start..<end]), endOfStream: end == Self.anthropicStream.count, to: &machine)
                #expect(status == .continue)
                start = end
            } while start < Self.anthropicStream.count
            #expect(response.sent == reference, "chunks of \(size)")
            // The first chunk reports what is known (nothing before message_start), then each
            // change: message_start (5, 1), message_delta (5, 3); never the same usage twice.
            let changes = [TokenUsage(), TokenUsage(inputTokens: 5, outputTokens: 1), TokenUsage(inputTokens: 5, outputTokens: 3)]
            let published = response.reports.map(\.usage)
            #expect(!published.isEmpty && changes.suffix(published.count).elementsEqual(published), "chunks of \(size): \(published)")
            #expect(response.reports.allSatisfy { $0.backend == "anthropic" && $0.provider == "anthropic" })
        }
    }

    @Test func aStreamReportsOnItsFirstChunkAndNotAgainWhileUsageIsUnchanged() throws {
        var machine = Self.started(
            try Self.shared(Self.openAIConfig), context: Self.context(model: "m", stream: true),
            body: #"{"model":"m","stream":true,"messages":[]}"#)
        _ = machine.responseHeaders(status: 200, header: { _ in nil }, endOfStream: false)
        machine.actions.removeAll()
        var response = ResponseBody()
        let chunk = #"data: {"id":"c1","object":"chat.completion.chunk","model":"m","choices":[{"index":0,"delta":{"content":"hi"}}]}"#
        _ = response.deliver(Array("\(chunk)\n\n".utf8), endOfStream: false, to: &machine)
        // Published at once: a client that hangs up early still leaves who answered.
        #expect(response.reports.map(\.usage) == [TokenUsage()])
        _ = response.deliver(Array("data: [DONE]\n\n".utf8), endOfStream: true, to: &machine)
        #expect(response.reports.map(\.usage) == [TokenUsage()])
        #expect(response.sent == Array("\(chunk)\n\ndata: [DONE]\n\n".utf8))
    }

    @Test func clampedUsageIsCountedOncePerAttemptAndItsWarningRateLimited() throws {
        let shared = try Self.shared(Self.openAIConfig)
        let chunk = #"{"id":"c1","object":"chat.completion.chunk","model":"m","choices":[],"usage":{"prompt_tokens":-1,"completion_tokens":18446744073709551616}}"#
        var warnings = 0
        for attempt in 1...12 {
            var machine = Self.started(
                shared, context: Self.context(model: "m", stream: true), body: #"{"model":"m","stream":true,"messages":[]}"#)
            _ = machine.responseHeaders(status: 200, header: { _ in nil }, endOfStream: false)
            var clamped = 0
            var reports: [AttemptReport] = []
            for (index, piece) in ["data: \(chunk)\n\n", "data: \(chunk)\n\n", "data: [DONE]\n\n"].enumerated() {
                _ = machine.responseBody(
                    endOfStream: index == 2, bodySize: { _ in piece.utf8.count },
                    read: { _, out in out += Array(piece.utf8) })
                clamped += Self.counts(machine.actions).filter { $0.0 == .usageClamped }.count
                warnings += machine.actions.filter { if case .logWarning = $0 { true } else { false } }.count
                reports += Self.reports(machine.actions)
                machine.actions.removeAll()
            }
            #expect(clamped == 1, "attempt \(attempt)")
            #expect(reports.count == 1, "the same usage twice is one report")
            #expect(reports.first?.usage.outputTokens == TokenUsage.maxCount)
            #expect(reports.first?.usage.isClamped == true)
        }
        // The first ten such answers warn; then one in a thousand.
        #expect(warnings == 10)
    }

    @Test func anOversizedSameSchemaAnswerIsPassedButNotMetered() throws {
        var machine = Self.started(try Self.shared(Self.openAIConfig), context: Self.context(model: "m"))
        _ = machine.responseHeaders(status: 200, header: { _ in nil }, endOfStream: false)
        machine.actions.removeAll()
        var read = 0
        _ = machine.responseBody(
            endOfStream: false, bodySize: { _ in UpstreamAttempt.maxMeteredBodyBytes + 1 }, read: { _, _ in read += 1 })
        let usage = Array(#"{"usage":{"prompt_tokens":7,"completion_tokens":3}}"#.utf8)
        _ = machine.responseBody(endOfStream: true, bodySize: { _ in usage.count }, read: { _, out in
            read += 1
            out += usage
        })
        #expect(read == 0)
        #expect(Self.reports(machine.actions).map(\.usage) == [TokenUsage()])
    }
}

/// Request headers for the machine, as the filter's one read of Envoy's header map gives them.
struct TestRequestHeaders: CurrentRequestHeaders {
    var fields: [(name: String, value: String)]

    init(_ fields: [(name: String, value: String)] = []) { self.fields = fields }

    func contains(_ name: String) -> Bool { fields.contains { $0.name == name } }

    func holds(_ name: String, only value: String) -> Bool {
        let values = fields.filter { $0.name == name }.map(\.value)
        return values == [value]
    }

    func value(_ name: String) -> String? {
        let values = fields.filter { $0.name == name }.map(\.value)
        return values.count == 1 ? values[0] : nil
    }

    func values(_ name: String) -> [String] { fields.filter { $0.name == name }.map(\.value) }
}
