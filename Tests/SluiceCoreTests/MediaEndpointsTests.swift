// Images and audio: the multipart reader on well-formed and hostile forms (no input traps, each
// malformed one is a precise 400), routing on a form's model, the OpenAI and Azure plans, the
// model override as a byte edit, and what each answer is metered as.
import Testing

@testable import SluiceCore

@Suite struct MultipartFormTests {
    static let boundary = "----sluice7MA4YWxkTrZu0gW"
    static let contentType = "multipart/form-data; boundary=\(boundary)"

    /// A form as the OpenAI SDK (httpx) writes it.
    static func form(_ fields: [(String, String)], file: [UInt8] = Array("RIFF....WAVEfmt audio bytes".utf8), boundary: String = boundary)
        -> [UInt8]
    {
        var body: [UInt8] = []
        for (name, value) in fields {
            body += Array("--\(boundary)\r\nContent-Disposition: form-data; name=\"\(name)\"\r\n\r\n\(value)\r\n".utf8)
        }
        body += Array("--\(boundary)\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.wav\"\r\nContent-Type: audio/wav\r\n\r\n".utf8)
        body += file
        body += Array("\r\n--\(boundary)--\r\n".utf8)
        return body
    }

    @Test func readsTheFieldsAndSkipsTheFile() throws {
        let file = Array("not a delimiter: \r\n--other\r\n\r\n".utf8) + [0, 255, 13, 10, 45, 45]
        let body = Self.form([("model", "whisper-1"), ("response_format", "json")], file: file)
        let form = try MultipartForm.read(body, boundary: try MultipartForm.boundary(contentType: Self.contentType))
        #expect(form.parts.map(\.name) == ["model", "response_format", "file"])
        #expect(try form.textField("model", in: body) == "whisper-1")
        let upload = try #require(form.parts(named: "file").first)
        #expect(upload.filename == "a.wav")
        #expect(Array(body[upload.content]) == file)
        let summary = try MediaEndpoints.summary(multipart: body, contentType: Self.contentType)
        #expect(summary == RequestSummary(model: "whisper-1"))
    }

    @Test(arguments: [
        ("multipart/form-data; boundary=abc", "abc"), ("Multipart/Form-Data;BOUNDARY=\"a b'c\"", "a b'c"),
        ("multipart/form-data; charset=utf-8; boundary=\"q\\:x\"", "q:x"), ("multipart/form-data; boundary=ab ", "ab"),
    ])
    func boundariesFromContentTypes(_ contentType: String, _ expected: String) throws {
        #expect(try MultipartForm.boundary(contentType: contentType) == Array(expected.utf8))
    }

    @Test(arguments: [
        nil, "application/json", "multipart/form-data", "multipart/form-data; boundary=", "multipart/form-data; boundary=\"\"",
        "multipart/form-data; boundary=a\rb", "multipart/form-data; boundary=\(String(repeating: "x", count: 71))",
        "multipart/form-data; boundary=a; boundary=b", "multipart/mixed; boundary=a", "multipart/form-data; boundary=\"abc",
        "multipart/form-data; boundary=\"ab \"",
    ] as [String?])
    func badContentTypesAreRefused(_ contentType: String?) {
        let error = #expect(throws: GatewayError.self) { try MultipartForm.boundary(contentType: contentType) }
        #expect(error?.status == 400 && error?.code == "invalid_multipart")
    }

    /// Hostile bodies: each is a 400 naming what is wrong, none traps.
    @Test(arguments: [
        ("", "invalid_multipart"),
        ("garbage without delimiters", "invalid_multipart"),
        ("--B", "invalid_multipart"),
        ("--B\r\n", "invalid_multipart"),
        ("--B\r\nContent-Disposition: form-data; name=\"model\"\r\n", "invalid_multipart"),
        ("--B\r\nContent-Disposition: form-data; name=\"model\"\r\n\r\nwhisper-1", "invalid_multipart"),
        ("--B\r\nContent-Disposition: form-data; name=\"model\"\r\n\r\nwhisper-1\r\n--B", "invalid_multipart"),
        ("--Bxyz\r\n", "invalid_multipart"),
        ("--B\r\n\r\nno headers\r\n--B--", "invalid_multipart"),
        ("--B\r\nContent-Type: text/plain\r\n\r\nx\r\n--B--", "invalid_multipart"),
        ("--B\r\nContent-Disposition: attachment; name=\"model\"\r\n\r\nx\r\n--B--", "invalid_multipart"),
        ("--B\r\nContent-Disposition: form-data\r\n\r\nx\r\n--B--", "invalid_multipart"),
        ("--B\r\nContent-Disposition: form-data; name=\"model\r\n\r\nx\r\n--B--", "invalid_multipart"),
        ("--B\r\nno colon here\r\n\r\nx\r\n--B--", "invalid_multipart"),
        ("--B\nContent-Disposition: form-data; name=\"model\"\n\nx\n--B--", "invalid_multipart"),
        ("--B\r\nContent-Disposition: form-data; name=\"model\"\r\n\r\nx\r\n--B\r\nContent-Disposition: form-data; name=\"model\"\r\n\r\ny\r\n--B--", "invalid_multipart"),
        ("--B\r\nContent-Disposition: form-data; name=\"model\"; filename=\"m\"\r\n\r\nx\r\n--B--", "invalid_multipart"),
        ("--B\r\nContent-Disposition: form-data; name=\"file\"\r\n\r\nx\r\n--B--", "missing_model"),
        ("--B\r\nContent-Disposition: form-data; name=\"model\"\r\n\r\n\r\n--B--", "invalid_type"),
        ("--B\r\nContent-Disposition: form-data; name=\"model\"\r\n\r\nm\r\n--B\r\nContent-Disposition: form-data; name=\"stream\"\r\n\r\nyes\r\n--B--", "invalid_type"),
    ])
    func malformedFormsArePrecise400s(_ text: String, _ code: String) {
        let error = #expect(throws: GatewayError.self) {
            try MediaEndpoints.summary(multipart: Array(text.utf8), contentType: "multipart/form-data; boundary=B")
        }
        #expect(error?.status == 400)
        #expect(error?.code == code)
    }

    @Test func boundsOnPartsHeadersAndValues() {
        var many: [(String, String)] = [("model", "m")]
        for index in 0..<MultipartForm.maxParts { many.append(("f\(index)", "v")) }
        let tooMany = #expect(throws: GatewayError.self) {
            try MediaEndpoints.summary(multipart: Self.form(many), contentType: Self.contentType)
        }
        #expect(tooMany?.code == "too_many_parts")

        let longHeader = Array(
            "--B\r\nContent-Disposition: form-data; name=\"model\"\r\nX-Pad: \(String(repeating: "p", count: 5000))\r\n\r\nm\r\n--B--".utf8)
        let header = #expect(throws: GatewayError.self) {
            try MediaEndpoints.summary(multipart: longHeader, contentType: "multipart/form-data; boundary=B")
        }
        #expect(header?.code == "part_header_too_large")

        let longModel = Self.form([("model", String(repeating: "m", count: MultipartForm.maxFieldValueBytes + 1))])
        let value = #expect(throws: GatewayError.self) {
            try MediaEndpoints.summary(multipart: longModel, contentType: Self.contentType)
        }
        #expect(value?.code == "invalid_multipart" && value?.param == "model")
    }

    @Test func aPreambleAndPaddingAreAllowed() throws {
        let body = Array("preamble text\r\n--B  \r\nContent-Disposition: form-data; name=model\r\n\r\nm1\r\n--B--\r\nepilogue".utf8)
        #expect(try MediaEndpoints.summary(multipart: body, contentType: "multipart/form-data; boundary=B").model == "m1")
    }

    @Test func delimiterSearchIsExactOnNearMisses() {
        let needle = Array("\r\n--abc".utf8)
        let hay = Array("\r\n-\r\n--ab\r\n--abd\r\r\n--abc".utf8)
        #expect(MultipartForm.find(needle, in: hay, from: 0) == hay.count - needle.count)
        #expect(MultipartForm.find(Array("\r\n\r\n".utf8), in: Array("\r\n\r\r\n\r\n".utf8), from: 0) == 3)
        #expect(MultipartForm.find(needle, in: hay, from: hay.count) == nil)
        #expect(MultipartForm.find(needle, in: [], from: 5) == nil)
    }

    /// A seeded loop over truncations and byte flips of a valid form: errors only, never a trap.
    @Test func truncationsAndFlipsNeverTrap() {
        let body = Self.form([("model", "whisper-1"), ("language", "en")])
        var generator = SplitMix(seed: 7)
        for cut in 0...body.count {
            _ = try? MediaEndpoints.summary(multipart: Array(body[0..<cut]), contentType: Self.contentType)
        }
        for _ in 0..<2000 {
            var mutated = body
            for _ in 0..<3 {
                mutated[Int(generator.next() % UInt64(mutated.count))] = UInt8(truncatingIfNeeded: generator.next())
            }
            _ = try? MediaEndpoints.summary(multipart: mutated, contentType: Self.contentType)
        }
    }

    struct SplitMix {
        var state: UInt64
        init(seed: UInt64) { state = seed }
        mutating func next() -> UInt64 {
            state &+= 0x9E37_79B9_7F4A_7C15
            var z = state
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
    }
}

@Suite struct MediaEndpointsTests {
    static let key = CredentialSource.value("provider-key")
    static let openAI = BackendConfig(name: "openai", schema: .openAI, credential: key)
    static func azure() -> BackendConfig {
        var backend = BackendConfig(name: "azure", schema: .azureOpenAI, credential: key)
        backend.azureAPIVersion = "2024-10-21"
        return backend
    }

    static func exchange(_ backend: BackendConfig, _ endpoint: Endpoint, model: String = "m", upstream: String? = nil)
        -> UpstreamExchange
    {
        var backend = backend
        if let upstream { backend.modelOverrides[model] = upstream }
        return UpstreamExchange(
            backend: backend, clientAPI: .openAI, endpoint: endpoint, requestModel: model, stream: false, includeUsage: false,
            created: 1_700_000_000, requestID: "req-1")
    }

    @Test func thePathsAreTheirOwnEndpoints() {
        let paths: [(String, Endpoint)] = [
            ("/v1/images/generations", .imagesGenerations), ("/v1/audio/speech", .audioSpeech),
            ("/v1/audio/transcriptions/", .audioTranscriptions), ("/v1/audio/translations?x=1", .audioTranslations),
        ]
        for (path, endpoint) in paths {
            #expect(Endpoint.classify(method: Array("POST".utf8), path: Array(path.utf8)) == endpoint)
            #expect(endpoint.routesOnBody && endpoint.isMedia && endpoint.clientAPI == .openAI)
            #expect(Endpoint(name: endpoint.name) == endpoint)
        }
        #expect(Endpoint.classify(method: Array("GET".utf8), path: Array("/v1/audio/speech".utf8)) == .other)
        #expect(Endpoint.allCases.filter(\.readsMultipart) == [.audioTranscriptions, .audioTranslations])
        #expect(Endpoint.allCases.filter(\.isMedia).map(\.operationName) == ["image_generation", "text_to_speech", "transcription", "translation"])
    }

    @Test func openAIAndAzurePaths() throws {
        let expected: [(Endpoint, String, String)] = [
            (.imagesGenerations, "/v1/images/generations", "/openai/deployments/dep/images/generations?api-version=2024-10-21"),
            (.audioSpeech, "/v1/audio/speech", "/openai/deployments/dep/audio/speech?api-version=2024-10-21"),
            (.audioTranscriptions, "/v1/audio/transcriptions", "/openai/deployments/dep/audio/transcriptions?api-version=2024-10-21"),
            (.audioTranslations, "/v1/audio/translations", "/openai/deployments/dep/audio/translations?api-version=2024-10-21"),
        ]
        for (endpoint, openAIPath, azurePath) in expected {
            let openAI = try Self.exchange(Self.openAI, endpoint).requestPlan()
            #expect(openAI.path == openAIPath && openAI.credentialHeader?.name == "authorization")
            let azure = try Self.exchange(Self.azure(), endpoint, upstream: "dep").requestPlan()
            #expect(azure.path == azurePath && azure.credentialHeader?.name == "api-key")
            // A form keeps the client's content-type, with its boundary.
            #expect(openAI.setHeaders.contains { $0.name == "content-type" } == !endpoint.readsMultipart)
            // Only speech reads its body (to count characters) when the model is not overridden.
            #expect(openAI.rewritesBody == (endpoint == .audioSpeech) && azure.rewritesBody == (endpoint == .audioSpeech))
        }
    }

    @Test(arguments: [BackendSchema.anthropic, .bedrockConverse, .gemini, .vertexGemini])
    func otherBackendsRefuseWith400(_ schema: BackendSchema) {
        for endpoint in Endpoint.allCases where endpoint.isMedia {
            let error = #expect(throws: TranslateError.self) {
                try Self.exchange(BackendConfig(name: "other", schema: schema, credential: Self.key), endpoint).requestPlan()
            }
            #expect(error?.status == 400 && error?.code == "unsupported_endpoint")
            #expect(error?.message.contains(endpoint.name) == true)
        }
    }

    @Test func aModelOverrideRewritesTheModelPartByByteEdit() throws {
        let body = MultipartFormTests.form([("model", "alias"), ("response_format", "json")])
        var exchange = Self.exchange(Self.openAI, .audioTranscriptions, model: "alias", upstream: "whisper-1")
        exchange.noteRequestContentType(MultipartFormTests.contentType)
        #expect(try exchange.requestPlan().rewritesBody)
        let sent = try exchange.translateRequest(body)
        let aliasText = "name=\"model\"\r\n\r\nalias\r\n"
        let expected = String(decoding: body, as: UTF8.self).replacingFirst(aliasText, with: "name=\"model\"\r\n\r\nwhisper-1\r\n")
        #expect(String(decoding: sent, as: UTF8.self) == expected)
        #expect(sent.count == body.count + 4)
        #expect(try MediaEndpoints.summary(multipart: sent, contentType: MultipartFormTests.contentType).model == "whisper-1")
        // Azure reads the deployment from the path: the body goes as it is.
        var azure = Self.exchange(Self.azure(), .audioTranscriptions, model: "alias", upstream: "dep")
        #expect(try !azure.requestPlan().rewritesBody)
        #expect(try azure.translateRequest(body) == body)
        // JSON endpoints rewrite the member.
        var images = Self.exchange(Self.openAI, .imagesGenerations, model: "alias", upstream: "gpt-image-1")
        let json = try images.translateRequest(Array(#"{"model":"alias","prompt":"a cat","n":2}"#.utf8))
        #expect(String(decoding: json, as: UTF8.self) == #"{"model":"gpt-image-1","prompt":"a cat","n":2}"#)
        // A replacement that could end the part early is refused.
        let form = try MultipartForm.read(body, boundary: Array(MultipartFormTests.boundary.utf8))
        let model = try #require(form.parts(named: "model").first)
        #expect(throws: TranslateError.self) { try MultipartForm.replacing(model, in: body, with: "a\r\n--x") }
    }

    @Test func speechCountsItsInputCharactersAndStreamsThrough() throws {
        var exchange = Self.exchange(Self.openAI, .audioSpeech)
        _ = try exchange.translateRequest(Array(#"{"model":"m","input":"Héllo, wörld","voice":"alloy"}"#.utf8))
        #expect(exchange.responseMode(status: 200) == .passthroughReported)
        #expect(exchange.responseMode(status: 500) == .passthrough)
        let read = exchange.mediaUsage(ofAnswer: [])
        #expect(read.usage == TokenUsage(inputTokens: 12) && read.unit == .characters)
        var bad = Self.exchange(Self.openAI, .audioSpeech)
        #expect(throws: TranslateError.self) { try bad.translateRequest(Array(#"{"model":"m","input":3}"#.utf8)) }
        #expect(throws: TranslateError.self) { try bad.translateRequest(Array(#"[1]"#.utf8)) }
    }

    @Test func answersAreMeteredInTheirUnits() {
        func read(_ endpoint: Endpoint, _ answer: String) -> (TokenUsage, UsageUnit) {
            let read = MediaEndpoints.usage(ofAnswer: Array(answer.utf8), endpoint: endpoint)
            return (read.usage, read.unit)
        }
        // gpt-image-1 reports tokens; dall-e reports nothing but its images.
        let tokens = read(.imagesGenerations, #"{"created":1,"data":[{"b64_json":"x"}],"usage":{"input_tokens":10,"output_tokens":272,"total_tokens":282}}"#)
        #expect(tokens.0 == TokenUsage(inputTokens: 10, outputTokens: 272) && tokens.1 == .tokens)
        let images = read(.imagesGenerations, #"{"created":1,"data":[{"url":"u"},{"url":"v"},{"url":"w"}]}"#)
        #expect(images.0 == TokenUsage(outputTokens: 3) && images.1 == .images)
        // Transcriptions: tokens, duration in seconds (rounded up), verbose_json's duration, or nothing.
        let transcribed = read(.audioTranscriptions, #"{"text":"hi","usage":{"type":"tokens","input_tokens":14,"output_tokens":3,"total_tokens":17}}"#)
        #expect(transcribed.0 == TokenUsage(inputTokens: 14, outputTokens: 3) && transcribed.1 == .tokens)
        let duration = read(.audioTranscriptions, #"{"text":"hi","usage":{"type":"duration","seconds":2.2}}"#)
        #expect(duration.0.inputTokens == 3 && duration.1 == .seconds)
        let verbose = read(.audioTranslations, #"{"task":"translate","duration":7.0,"text":"hi","segments":[]}"#)
        #expect(verbose.0.inputTokens == 7 && verbose.1 == .seconds)
        #expect(read(.audioTranscriptions, "hello there").0 == TokenUsage())
        // A stream: the last event with usage.
        let stream = "data: {\"type\":\"transcript.text.delta\",\"delta\":\"hi\"}\r\n\r\ndata: {\"type\":\"transcript.text.done\",\"text\":\"hi\",\"usage\":{\"type\":\"tokens\",\"input_tokens\":5,\"output_tokens\":2}}\n\n"
        #expect(read(.audioTranscriptions, stream).0 == TokenUsage(inputTokens: 5, outputTokens: 2))
    }

    @Test(arguments: [
        #"{"usage":{"type":"duration","seconds":-4}}"#, #"{"usage":{"type":"duration","seconds":1e300}}"#,
        #"{"usage":{"type":"duration","seconds":"9"}}"#, #"{"duration":null}"#, #"{"usage":{"input_tokens":1e20}}"#,
    ])
    func hostileUsageIsClampedAndNoted(_ answer: String) {
        let read = MediaEndpoints.usage(ofAnswer: Array(answer.utf8), endpoint: .audioTranscriptions)
        #expect(read.usage.isClamped || read.usage == TokenUsage())
        #expect((0...TokenUsage.maxCount).contains(read.usage.inputTokens))
    }

    @Test func aFormIsNotEstimatedAsPromptAndSpeechCostIsNotHeld() throws {
        let gateway = try GatewayStreamTests.gateway(#"""
            {"api_keys":[{"name":"demo","key":"sk-demo","limits":{"tokens_per_minute":100000}}],
             "models":[{"id":"whisper-1","route":"openai"},{"id":"tts-1","route":"openai"}],
             "prices":{"tts-1":{"input":15,"output":0}},
             "response_cost_header":"x-cost"}
            """#)
        var stream = GatewayStream(gateway: gateway)
        #expect(
            stream.requestHeaders(
                GatewayStreamTests.head("POST", "/v1/audio/transcriptions"), contentLength: nil, endOfStream: false,
                nowSeconds: 0, nowMillis: 0) == .stop)
        // 1 MB of audio: as prompt bytes (a token per 4) it would exceed 100,000 tokens a minute.
        let body = MultipartFormTests.form([("model", "whisper-1")], file: Array(repeating: 7, count: 1_000_000))
        let routed = stream.route(
            body: body, header: { $0 == "content-type" ? MultipartFormTests.contentType : nil }, nowMillis: 0, nowMicros: 0)
        #expect(routed)
        #expect(stream.routed?.summary.model == "whisper-1" && stream.routed?.summary.maxTokens == 0)
        // Images are estimated as `n` images of output.
        #expect(MediaEndpoints.outputEstimate(.imagesGenerations, body: Array(#"{"model":"m","prompt":"p","n":3}"#.utf8)) == 3)
        #expect(MediaEndpoints.outputEstimate(.imagesGenerations, body: Array(#"{"model":"m","n":1e9}"#.utf8)) == 1)
        // Without the form's content-type it is a precise 400.
        var noType = GatewayStream(gateway: gateway)
        _ = noType.requestHeaders(
            GatewayStreamTests.head("POST", "/v1/audio/translations"), contentLength: nil, endOfStream: false, nowSeconds: 0,
            nowMillis: 0)
        let refused = !noType.route(body: body, header: { _ in nil }, nowMillis: 0, nowMicros: 0)
        #expect(refused)
        #expect(noType.actions.contains { if case .localReply(let reply, _) = $0 { reply.status == 400 } else { false } })

        // Speech: the cost header goes with the response headers, which are not held for the audio.
        var speech = GatewayStream(gateway: gateway)
        _ = speech.requestHeaders(
            GatewayStreamTests.head("POST", "/v1/audio/speech"), contentLength: nil, endOfStream: false, nowSeconds: 0,
            nowMillis: 0)
        let speechRouted = speech.route(
            body: Array(#"{"model":"tts-1","input":"hi","voice":"alloy"}"#.utf8), header: { _ in nil }, nowMillis: 0, nowMicros: 0)
        #expect(speechRouted)
        speech.actions.removeAll()
        let report = AttemptReport(
            usage: TokenUsage(inputTokens: 100_000), backend: "openai", provider: "openai", responseModel: "tts-1", unit: .characters)
        let status = speech.responseHeaders(status: 200, contentLength: nil, bufferLimit: 1 << 20, endOfStream: false, report: { report })
        #expect(status == .continue)
        #expect(speech.actions.contains { if case .setResponseHeader("x-cost", "1.5") = $0 { true } else { false } })
        // Characters are not tokens: no token metrics.
        speech.actions.removeAll()
        speech.streamComplete(report: report, nowMillis: 0, nowMicros: 0)
        #expect(!speech.actions.contains { if case .count(.tokens, _, _) = $0 { true } else { false } })
    }
}

extension String {
    /// The string with the first occurrence of `target` replaced (no Foundation in this target).
    fileprivate func replacingFirst(_ target: String, with replacement: String) -> String {
        let bytes = Array(utf8)
        let needle = Array(target.utf8)
        guard needle.count <= bytes.count,
            let start = (0...(bytes.count - needle.count)).first(where: { bytes[$0..<($0 + needle.count)].elementsEqual(needle) })
        else { return self }
        return String(decoding: bytes[..<start] + Array(replacement.utf8) + bytes[(start + needle.count)...], as: UTF8.self)
    }
}
