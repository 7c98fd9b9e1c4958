// Rerank through the exchange: where each backend reranks, the bodies each client shape sends each
// backend kind and the answers each client reads back (goldens in Fixtures/rerank/), usage and
// search units, errors in each client's shape, and hostile answers (indices out of range or
// repeated, scores that are not finite or absurd, missing members) failing cleanly with a 502.
// `SLUICE_UPDATE_FIXTURES=1 swift test --filter RerankTests` rewrites the expected files.
import Foundation
import Testing

@testable import SluiceCore

@Suite struct RerankTests {
    static let key = CredentialSource.value("provider-key")
    static let directory = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Fixtures/rerank")

    static func fixture(_ name: String) throws -> [UInt8] {
        guard let data = FileManager.default.contents(atPath: directory.appendingPathComponent(name).path) else {
            throw AnthropicFixtures.FixtureMissing(name: name)
        }
        return [UInt8](data)
    }

    static func expectJSON(_ actual: [UInt8], matches name: String, sourceLocation: SourceLocation = #_sourceLocation) throws {
        let value = try JSONParser.parse(actual)
        if AnthropicFixtures.updating {
            try Data(AnthropicFixtures.pretty(value).utf8).write(to: directory.appendingPathComponent(name))
            return
        }
        let expected = try JSONParser.parse(try fixture(name))
        #expect(
            AnthropicFixtures.sorted(value) == AnthropicFixtures.sorted(expected), "\(name):\n\(AnthropicFixtures.pretty(value))",
            sourceLocation: sourceLocation)
    }

    static let cohere = BackendConfig(name: "cohere", schema: .cohere, credential: key)
    static let vllm = BackendConfig(name: "vllm", schema: .openAI)

    static func exchange(_ backend: BackendConfig, endpoint: Endpoint, model: String = "rerank-model") -> UpstreamExchange {
        UpstreamExchange(
            backend: backend, clientAPI: endpoint.clientAPI, endpoint: endpoint, requestModel: model, stream: false,
            includeUsage: false, created: 1_700_000_000, requestID: "req-1")
    }

    /// An exchange that has read `request` (as the upstream filter does before any answer).
    static func readExchange(_ backend: BackendConfig, endpoint: Endpoint, request: [UInt8]) throws -> UpstreamExchange {
        var exchange = exchange(backend, endpoint: endpoint)
        _ = try exchange.translateRequest(request)
        return exchange
    }

    static let fourDocuments = Array(#"{"model":"m","query":"q","documents":["a","b","c","d"]}"#.utf8)

    // MARK: - Endpoints and plans

    @Test func theRerankPathsAreTheirOwnEndpoints() throws {
        let post = Array("POST".utf8)
        #expect(Endpoint.classify(method: post, path: Array("/v1/rerank".utf8)) == .rerank)
        #expect(Endpoint.classify(method: post, path: Array("/cohere/v2/rerank/".utf8)) == .cohereRerank)
        #expect(Endpoint.classify(method: Array("GET".utf8), path: Array("/v1/rerank".utf8)) == .other)
        #expect(Endpoint.rerank.clientAPI == .openAI && Endpoint.cohereRerank.clientAPI == .cohere)
        #expect(Endpoint.allCases.filter(\.reranks) == [.rerank, .cohereRerank])
        #expect(Endpoint.rerank.operationName == "rerank" && Endpoint.cohereRerank.operationName == "rerank")
        #expect(Endpoint.rerank.routesOnBody && Endpoint.cohereRerank.routesOnBody)
        for endpoint in Endpoint.allCases { #expect(Endpoint(name: endpoint.name) == endpoint) }
        let summary = try RequestSummary.read(Array(#"{"model":"m","query":"q","stream":true}"#.utf8), endpoint: .rerank)
        // Never a stream; nothing generated, so admission reserves no output tokens.
        #expect(!summary.stream && summary.maxTokens == 0)
    }

    @Test func eachBackendKindRerankksWhereItReranks() throws {
        var prefixed = Self.vllm
        prefixed.pathPrefix = "/serve"
        for endpoint in [Endpoint.rerank, .cohereRerank] {
            let toCohere = try Self.exchange(Self.cohere, endpoint: endpoint).requestPlan()
            #expect(toCohere.path == "/v2/rerank" && toCohere.rewritesBody)
            #expect(toCohere.credential == .header(HeaderCredential(name: "authorization", prefix: "Bearer ", source: Self.key)))
            let toVLLM = try Self.exchange(prefixed, endpoint: endpoint).requestPlan()
            #expect(toVLLM.path == "/serve/v1/rerank" && toVLLM.rewritesBody && toVLLM.credential == .none)
            // Never passed through: every answer is read and written by the gateway.
            #expect(!Self.exchange(Self.vllm, endpoint: endpoint).sameSchema)
            #expect(!Self.exchange(Self.cohere, endpoint: endpoint).sameSchema)
            #expect(Self.exchange(Self.cohere, endpoint: endpoint).responseMode(status: 200) == .translateBody)
            #expect(Self.exchange(Self.vllm, endpoint: endpoint).responseMode(status: 400) == .translateError)
        }
    }

    @Test func backendsWithoutRerankRefuseItPrecisely() throws {
        var azure = BackendConfig(name: "azure", schema: .azureOpenAI, credential: Self.key)
        azure.azureAPIVersion = "2024-10-21"
        var vertex = BackendConfig(name: "vertex", schema: .vertexGemini, credential: Self.key)
        vertex.gcp = GCPSettings(project: "p", location: "us-central1")
        let backends = [
            azure, BackendConfig(name: "anthropic", schema: .anthropic, credential: Self.key), ProviderAdapterTests.bedrock(),
            BackendConfig(name: "gemini", schema: .gemini, credential: Self.key), vertex,
        ]
        for backend in backends {
            for endpoint in [Endpoint.rerank, .cohereRerank] {
                #expect(throws: TranslateError.self) { try Self.exchange(backend, endpoint: endpoint).requestPlan() }
                do {
                    _ = try Self.exchange(backend, endpoint: endpoint).requestPlan()
                } catch {
                    #expect(error.status == 400 && error.code == "unsupported_endpoint")
                    #expect(error.message == "The \(endpoint.name) endpoint is not available on the \(backend.schema.rawValue) backend '\(backend.name)'.")
                    // Cohere's clients read only `message`.
                    let body = try JSONParser.parse(error.gatewayError.body(for: endpoint.clientAPI))
                    if endpoint == .cohereRerank { #expect(body.objectValue?.keys == ["message"]) }
                }
            }
        }
    }

    @Test func theModuleReadsACohereBackendWithItsKey() throws {
        let backend = try BackendConfig.parse(Array(#"{"backend":"c","schema":"cohere","credential":{"value":"k"},"host":"api.cohere.com"}"#.utf8))
        #expect(backend.schema == .cohere && backend.credential == .value("k") && backend.host == "api.cohere.com")
        do {
            _ = try BackendConfig.parse(Array(#"{"backend":"c","schema":"cohere"}"#.utf8))
            Issue.record("a cohere backend without a key was accepted")
        } catch {
            #expect(error.description == "credential: is required for schema cohere")
        }
    }

    @Test func cohereBackendsServeOnlyRerank() {
        for endpoint in [Endpoint.chatCompletions, .embeddings, .responses, .completions, .responsesInputTokens] {
            #expect(throws: TranslateError.self) { try Self.exchange(Self.cohere, endpoint: endpoint).requestPlan() }
        }
        #expect(throws: TranslateError.self) {
            try Self.exchange(Self.cohere, endpoint: .anthropicMessages).requestPlan()
        }
    }

    // MARK: - Golden translations, both ways

    @Test func requestsToEachBackendKind() throws {
        for (name, endpoint) in [("v1-request", Endpoint.rerank), ("cohere-request", .cohereRerank)] {
            let body = try Self.fixture("\(name).json")
            for (suffix, backend) in [("cohere", Self.cohere), ("vllm", Self.vllm)] {
                var exchange = Self.exchange(backend, endpoint: endpoint)
                try Self.expectJSON(try exchange.translateRequest(body), matches: "\(name).to-\(suffix).json")
            }
        }
    }

    @Test func answersToEachClientShape() throws {
        for (answer, backend) in [("cohere-answer", Self.cohere), ("vllm-answer", Self.vllm)] {
            let body = try Self.fixture("\(answer).json")
            for (client, endpoint) in [("v1", Endpoint.rerank), ("cohere", .cohereRerank)] {
                let request = try Self.fixture("\(client == "v1" ? "v1" : "cohere")-request.json")
                let exchange = try Self.readExchange(backend, endpoint: endpoint, request: request)
                let translated = try exchange.translateResponse(body)
                try Self.expectJSON(translated.body, matches: "\(answer).for-\(client).json")
                if backend.schema == .cohere {
                    #expect(translated.usage == TokenUsage(searchUnits: 1))
                } else {
                    #expect(translated.usage == TokenUsage(inputTokens: 61))
                }
            }
        }
    }

    @Test func aCheckedAnswerInTheClientsOwnShapeGoesOnAsItCame() throws {
        // Cohere to a Cohere client, within top_n: byte for byte, Cohere's extra meta included.
        let twoOfFour = Array(#"{"model":"m","query":"q","documents":["a","b","c","d"],"top_n":2}"#.utf8)
        let cohere = try Self.readExchange(Self.cohere, endpoint: .cohereRerank, request: twoOfFour)
        let cohereAnswer = Array(
            #"{"id":"c1","results":[{"index":3,"relevance_score":0.9},{"index":0,"relevance_score":0.1}],"meta":{"api_version":{"version":"2"},"billed_units":{"search_units":1},"warnings":["w"]}}"#.utf8)
        let passed = try cohere.translateResponse(cohereAnswer)
        #expect(passed.body == cohereAnswer && passed.usage == TokenUsage(searchUnits: 1))
        // vLLM to a /v1/rerank client that wants documents (the default).
        let vllm = try Self.readExchange(Self.vllm, endpoint: .rerank, request: Self.fourDocuments)
        let vllmAnswer = Array(
            #"{"id":"r1","model":"BAAI/bge","usage":{"total_tokens":9},"results":[{"index":1,"document":{"text":"b"},"relevance_score":0.5}]}"#.utf8)
        #expect(try vllm.translateResponse(vllmAnswer).body == vllmAnswer)
        // Written again when something must change: more results than top_n, documents not wanted,
        // or another shape.
        let tooMany = Array(
            #"{"id":"c2","results":[{"index":3,"relevance_score":0.9},{"index":0,"relevance_score":0.1},{"index":1,"relevance_score":0.0}]}"#.utf8)
        let cut = try JSONParser.parse(try cohere.translateResponse(tooMany).body)
        #expect(cut["results"]?.arrayValue?.count == 2)
        let noDocuments = Array(#"{"model":"m","query":"q","documents":["a","b"],"return_documents":false}"#.utf8)
        let bare = try Self.readExchange(Self.vllm, endpoint: .rerank, request: noDocuments)
        #expect(try bare.translateResponse(vllmAnswer).body != vllmAnswer)
        let crossed = try Self.readExchange(Self.vllm, endpoint: .cohereRerank, request: Self.fourDocuments)
        #expect(try crossed.translateResponse(vllmAnswer).body != vllmAnswer)
        // A vLLM-like server that left the documents out: the gateway adds them from the request.
        let withoutTexts = Array(#"{"results":[{"index":1,"relevance_score":0.5}],"usage":{"total_tokens":9}}"#.utf8)
        let added = try JSONParser.parse(try vllm.translateResponse(withoutTexts).body)
        #expect(added["results"]?.arrayValue?.first?["document"]?["text"]?.stringValue == "b")
    }

    @Test func aPassedThroughCohereAnswerIsMeteredFromItsMeta() {
        let exchange = Self.exchange(Self.cohere, endpoint: .cohereRerank)
        func usage(_ body: String) -> TokenUsage { exchange.usage(ofPassthrough: Array(body.utf8)) }
        #expect(
            usage(#" {"results":[],"meta":{"billed_units":{"search_units":2,"input_tokens":7},"tokens":{"input_tokens":9}}} "#)
                == TokenUsage(inputTokens: 9, searchUnits: 2))
        // Without `meta.tokens`, the billed input tokens.
        #expect(usage(#"{"meta":{"billed_units":{"input_tokens":7}}}"#) == TokenUsage(inputTokens: 7))
        // Counts beyond `TokenUsage.maxCount` are clamped and flagged; negative or fractional ones are not counts.
        let huge = usage(#"{"meta":{"billed_units":{"search_units":1e300}}}"#)
        #expect(huge.searchUnits == TokenUsage.maxCount && huge.isClamped)
        #expect(usage(#"{"meta":{"billed_units":{"search_units":-3,"input_tokens":1.5}}}"#).searchUnits == 0)
        // Not a JSON object (or not JSON): nothing metered, nothing thrown.
        for body in [#"[1,2]"#, #"{"meta":"#, "", #"{"meta":{"billed_units":{"search_units":2}}}x"#] {
            #expect(usage(body) == TokenUsage(), "\(body)")
        }
    }

    @Test func returnDocumentsFalseLeavesTheTextsOut() throws {
        let request = Array(#"{"model":"m","query":"q","documents":["a",{"text":"b"}],"return_documents":false}"#.utf8)
        let exchange = try Self.readExchange(Self.vllm, endpoint: .rerank, request: request)
        let answer = Array(#"{"results":[{"index":1,"relevance_score":0.5,"document":{"text":"forged"}},{"index":0,"relevance_score":0.25}]}"#.utf8)
        let body = try JSONParser.parse(try exchange.translateResponse(answer).body)
        let results = body["results"]?.arrayValue ?? []
        #expect(results.count == 2 && results.allSatisfy { $0["document"] == nil })
        // No upstream id: the gateway's own, from the request id.
        #expect(body["id"]?.stringValue == "rerank-req-1")
        #expect(body["usage"]?["total_tokens"]?.int64Value == 0)
    }

    @Test func translatedDocumentTextsComeFromTheRequestNotTheUpstream() throws {
        // Cohere returns no texts: a /v1/rerank client's come from its own request.
        let exchange = try Self.readExchange(Self.cohere, endpoint: .rerank, request: Self.fourDocuments)
        let answer = Array(#"{"results":[{"index":2,"relevance_score":0.5,"document":{"text":"forged"}}]}"#.utf8)
        let body = try JSONParser.parse(try exchange.translateResponse(answer).body)
        #expect(body["results"]?.arrayValue?.first?["document"]?["text"]?.stringValue == "c")
    }

    // MARK: - Usage

    @Test func usageIsRangeChecked() throws {
        let cohere = try Self.readExchange(Self.cohere, endpoint: .cohereRerank, request: Self.fourDocuments)
        let huge = Array(#"{"results":[],"meta":{"billed_units":{"search_units":1e300},"tokens":{"input_tokens":-7}}}"#.utf8)
        let usage = try cohere.translateResponse(huge).usage
        #expect(usage.searchUnits == TokenUsage.maxCount && usage.inputTokens == 0 && usage.isClamped)
        let vllm = try Self.readExchange(Self.vllm, endpoint: .rerank, request: Self.fourDocuments)
        let fractional = Array(#"{"results":[],"usage":{"total_tokens":"12","prompt_tokens":3.5}}"#.utf8)
        let read = try vllm.translateResponse(fractional).usage
        #expect(read.inputTokens == 0 && read.isClamped)
        let promptOnly = Array(#"{"results":[],"usage":{"prompt_tokens":9}}"#.utf8)
        #expect(try vllm.translateResponse(promptOnly).usage == TokenUsage(inputTokens: 9))
    }

    @Test func searchUnitsArePriced() throws {
        let price = ModelPrice(inputMicrosPerMillion: 0, outputMicrosPerMillion: 0, searchUnitMicros: 2_000)
        #expect(price.cost(TokenUsage(searchUnits: 3)) == 6_000)
        #expect(price.cost(TokenUsage(inputTokens: 1_000_000, searchUnits: 1)) == 2_000)
        // The most units a count may carry at the highest unit price: no overflow.
        let dearest = ModelPrice(inputMicrosPerMillion: 0, outputMicrosPerMillion: 0, searchUnitMicros: Int64.max)
        #expect(dearest.searchUnitMicros == ModelPrice.maxSearchUnitMicros)
        #expect(dearest.cost(TokenUsage(searchUnits: Int.max)) == Int64(TokenUsage.maxCount) * ModelPrice.maxSearchUnitMicros)
        let table = try GatewayConfig.parse(
            Array(#"{"prices":{"rerank-v3.5":{"input":0,"output":0,"search_unit":0.002}}}"#.utf8))
        #expect(table.prices.price(for: "rerank-v3.5")?.searchUnitMicros == 2_000)
        #expect(throws: ConfigError.self) {
            try GatewayConfig.parse(Array(#"{"prices":{"r":{"input":0,"output":0,"search_unit":1001}}}"#.utf8))
        }
    }

    // MARK: - Hostile answers

    @Test(arguments: [
        #"[]"#,
        #"not json"#,
        #"{"id":"x"}"#,
        #"{"results":{"index":0}}"#,
        #"{"results":[7]}"#,
        #"{"results":[{"relevance_score":0.5}]}"#,
        #"{"results":[{"index":4,"relevance_score":0.5}]}"#,
        #"{"results":[{"index":-1,"relevance_score":0.5}]}"#,
        #"{"results":[{"index":1.5,"relevance_score":0.5}]}"#,
        #"{"results":[{"index":"1","relevance_score":0.5}]}"#,
        #"{"results":[{"index":99999999999999999999999,"relevance_score":0.5}]}"#,
        #"{"results":[{"index":0,"relevance_score":0.5},{"index":0,"relevance_score":0.4}]}"#,
        #"{"results":[{"index":0}]}"#,
        #"{"results":[{"index":0,"relevance_score":"0.5"}]}"#,
        #"{"results":[{"index":0,"relevance_score":null}]}"#,
        #"{"results":[{"index":0,"relevance_score":1e999}]}"#,
        #"{"results":[{"index":0,"relevance_score":-1e300}]}"#,
        #"{"results":[{"index":0,"relevance_score":1e7}]}"#,
        #"{"results":[{"index":0,"relevance_score":0.1},{"index":1,"relevance_score":0.1},{"index":2,"relevance_score":0.1},{"index":3,"relevance_score":0.1},{"index":4,"relevance_score":0.1}]}"#,
    ])
    func hostileAnswersAreA502(_ answer: String) throws {
        for backend in [Self.cohere, Self.vllm] {
            for endpoint in [Endpoint.rerank, .cohereRerank] {
                let exchange = try Self.readExchange(backend, endpoint: endpoint, request: Self.fourDocuments)
                #expect(throws: TranslateError.self) { try exchange.translateResponse(Array(answer.utf8)) }
                do {
                    _ = try exchange.translateResponse(Array(answer.utf8))
                } catch {
                    #expect(error.status == 502 && error.code == "bad_upstream_response", "\(answer): \(error)")
                }
            }
        }
    }

    @Test func scoresAtTheEdgesAreKeptAndWrittenAsNumbers() throws {
        let exchange = try Self.readExchange(Self.vllm, endpoint: .cohereRerank, request: Self.fourDocuments)
        let answer = Array(#"{"results":[{"index":3,"relevance_score":1e6},{"index":0,"relevance_score":-12.5},{"index":1,"relevance_score":1e-400}]}"#.utf8)
        let body = try JSONParser.parse(try exchange.translateResponse(answer).body)
        let scores = body["results"]?.arrayValue?.compactMap { $0["relevance_score"]?.doubleValue }
        #expect(scores == [1e6, -12.5, 0])
    }

    @Test func anOverlongUpstreamIDIsReplacedInATranslation() throws {
        let exchange = try Self.readExchange(Self.cohere, endpoint: .rerank, request: Self.fourDocuments)
        let answer = Array((#"{"id":""# + String(repeating: "x", count: 300) + #"","results":[]}"#).utf8)
        let body = try JSONParser.parse(try exchange.translateResponse(answer).body)
        #expect(body["id"]?.stringValue == "rerank-req-1")
    }

    // MARK: - Client requests

    @Test(arguments: [
        (#"{"model":"m","documents":["a"]}"#, "query"),
        (#"{"model":"m","query":7,"documents":["a"]}"#, "query"),
        (#"{"model":"m","query":" \n","documents":["a"]}"#, "query"),
        (#"{"model":"m","query":"q"}"#, "documents"),
        (#"{"model":"m","query":"q","documents":[]}"#, "documents"),
        (#"{"model":"m","query":"q","documents":"a"}"#, "documents"),
        (#"{"model":"m","query":"q","documents":["a",{"title":"b"}]}"#, "documents[1]"),
        (#"{"model":"m","query":"q","documents":["a"],"top_n":-1}"#, "top_n"),
        (#"{"model":"m","query":"q","documents":["a"],"top_n":1.5}"#, "top_n"),
        (#"{"model":"m","query":"q","documents":["a"],"rank_fields":["t"]}"#, "rank_fields"),
    ])
    func badRequestsAre400NamingTheMember(_ body: String, _ param: String) {
        for endpoint in [Endpoint.rerank, .cohereRerank] {
            var exchange = Self.exchange(Self.cohere, endpoint: endpoint)
            do {
                _ = try exchange.translateRequest(Array(body.utf8))
                Issue.record("accepted \(body)")
            } catch {
                #expect(error.status == 400 && error.param == param, "\(body): \(error)")
            }
        }
    }

    @Test func eachShapeTakesItsOwnMembers() throws {
        // Cohere wants top_n ≥ 1 and has no return_documents; /v1/rerank reads top_n 0 as "all" (vLLM).
        let zero = Array(#"{"model":"m","query":"q","documents":["a"],"top_n":0}"#.utf8)
        #expect(try RerankRequest.read(zero, api: .openAI).topN == nil)
        #expect(throws: TranslateError.self) { try RerankRequest.read(zero, api: .cohere) }
        let withFlag = Array(#"{"model":"m","query":"q","documents":["a"],"return_documents":false}"#.utf8)
        #expect(try RerankRequest.read(withFlag, api: .openAI).returnDocuments == false)
        #expect(throws: TranslateError.self) { try RerankRequest.read(withFlag, api: .cohere) }
        let perDoc = Array(#"{"model":"m","query":"q","documents":["a"],"max_tokens_per_doc":0}"#.utf8)
        #expect(throws: TranslateError.self) { try RerankRequest.read(perDoc, api: .cohere) }
        #expect(throws: TranslateError.self) { try RerankRequest.read(perDoc, api: .openAI) }
        let many = Array(
            (#"{"model":"m","query":"q","documents":["# + Array(repeating: #""d""#, count: RerankRequest.maxDocuments + 1)
                .joined(separator: ",") + "]}").utf8)
        #expect(throws: TranslateError.self) { try RerankRequest.read(many, api: .openAI) }
        // A huge top_n is all of them.
        let huge = Array(#"{"model":"m","query":"q","documents":["a"],"top_n":9223372036854775807}"#.utf8)
        #expect(try RerankRequest.read(huge, api: .cohere).topN == RerankRequest.maxDocuments)
    }

    // MARK: - Errors

    @Test func upstreamErrorsInEachClientShape() throws {
        let cohereError = Array(#"{"id":"e1","message":"invalid request: list of documents must not be empty"}"#.utf8)
        let vllmError = Array(#"{"error":{"message":"The model does not support Rerank (Score) API","type":"BadRequestError","param":null,"code":400}}"#.utf8)
        let oldVLLMError = Array(#"{"object":"error","message":"top_n too large","type":"BadRequestError","code":400}"#.utf8)
        for (body, message) in [
            (cohereError, "invalid request: list of documents must not be empty"),
            (vllmError, "The model does not support Rerank (Score) API"), (oldVLLMError, "top_n too large"),
        ] {
            let toCohere = Self.exchange(Self.cohere, endpoint: .cohereRerank).translateError(status: 400, body: body)
            #expect(toCohere.status == 400)
            #expect(try JSONParser.parse(toCohere.body) == .object(JSONObject([("message", .string(message))])))
            let toOpenAI = Self.exchange(Self.vllm, endpoint: .rerank).translateError(status: 400, body: body)
            #expect(try JSONParser.parse(toOpenAI.body)["error"]?["message"]?.stringValue == message)
        }
        let limited = Self.exchange(Self.cohere, endpoint: .rerank).translateError(status: 429, body: cohereError)
        #expect(limited.status == 429)
        #expect(try JSONParser.parse(limited.body)["error"]?["type"]?.stringValue == "rate_limit_error")
        // A proxy's HTML page still reads as an error.
        let html = Self.exchange(Self.cohere, endpoint: .cohereRerank).translateError(status: 502, body: Array("<html>bad gateway</html>".utf8))
        #expect(html.status == 502)
        #expect(try JSONParser.parse(html.body)["message"]?.stringValue?.contains("bad gateway") == true)
    }

    @Test func theGatewaysOwnErrorsInCohereShape() throws {
        let body = try JSONParser.parse(GatewayError.invalidKey().body(for: .cohere))
        #expect(body == .object(JSONObject([("message", .string(GatewayError.invalidKey().message))])))
    }
}

/// A rerank through the downstream filter's policy: routed like every endpoint, answered in the
/// client's error shape, metered under the `rerank` operation, and its search units charged to
/// budgets through the model's `search_unit` price.
@Suite struct RerankGatewayStreamTests {
    static let config = #"""
        {"api_keys":[{"name":"demo","key":"sk-demo","limits":{"budget_usd_per_day":0.005}}],
         "models":[{"id":"rerank-v3.5","owned_by":"cohere","route":"cohere"},{"id":"bge","owned_by":"self","route":"local"}],
         "prices":{"rerank-v3.5":{"input":0,"output":0,"search_unit":0.002}}}
        """#

    static func request(_ gateway: Gateway, path: String, body: String, key: String = "sk-demo") -> (GatewayStream, Bool) {
        var machine = GatewayStream(gateway: gateway)
        let head = RequestHead(method: Array("POST".utf8), path: Array(path.utf8), authorization: Array("Bearer \(key)".utf8))
        _ = machine.requestHeaders(head, contentLength: nil, endOfStream: false, nowSeconds: 0, nowMillis: 1_000)
        // An unauthorised request was answered at its headers; only a forwarded one waits for its body.
        guard machine.awaitingBody else { return (machine, false) }
        let routed = machine.route(body: Array(body.utf8), header: { _ in nil }, nowMillis: 1_000, nowMicros: 1_000_000)
        return (machine, routed)
    }

    static func reply(_ actions: [GatewayAction]) -> LocalReply? {
        for case .localReply(let reply, _) in actions { return reply }
        return nil
    }

    @Test func searchUnitsAreChargedToBudgetsAndMeteredAsRerank() throws {
        let gateway = Gateway(config: try GatewayConfig.parse(Array(Self.config.utf8)))
        let body = #"{"model":"rerank-v3.5","query":"q","documents":["a"]}"#
        for attempt in 0..<3 {
            let (answered, routed) = Self.request(gateway, path: "/cohere/v2/rerank", body: body)
            var machine = answered
            if attempt == 2 {
                // Two answers of two search units each ($0.004 apiece) spent the $0.005 budget: refused.
                #expect(!routed)
                let denial = try #require(Self.reply(machine.actions))
                #expect(denial.status == 429)
                #expect(try JSONParser.parse(denial.body).objectValue?.keys == ["message"])
                return
            }
            #expect(routed)
            machine.actions.removeAll()
            _ = machine.responseHeaders(status: 200, contentLength: 10, bufferLimit: 1 << 20, endOfStream: false, report: { nil })
            let report = AttemptReport(usage: TokenUsage(searchUnits: 2), backend: "cohere", provider: "cohere", responseModel: "rerank-v3.5")
            machine.streamComplete(report: report, nowMillis: 2_000, nowMicros: 1_100_000)
            var cost: String?
            for case .writeMetadata(let entries) in machine.actions {
                for (key, value) in entries where key == .costUSD { cost = value }
            }
            #expect(cost == Dollars.format(micros: 4_000))
        }
    }

    @Test func tokensAreMeteredUnderTheRerankOperation() throws {
        let gateway = Gateway(config: try GatewayConfig.parse(Array(Self.config.utf8)))
        let (answered, routed) = Self.request(gateway, path: "/v1/rerank", body: #"{"model":"bge","query":"q","documents":["a"]}"#)
        var machine = answered
        #expect(routed)
        machine.actions.removeAll()
        _ = machine.responseHeaders(status: 200, contentLength: 10, bufferLimit: 1 << 20, endOfStream: false, report: { nil })
        let report = AttemptReport(usage: TokenUsage(inputTokens: 7), backend: "local", provider: "openai", responseModel: "bge")
        machine.streamComplete(report: report, nowMillis: 2_000, nowMicros: 1_100_000)
        let counts = machine.actions.compactMap { if case .count(let counter, let labels, let value) = $0 { (counter, labels, value) } else { nil } }
        #expect(counts.contains { $0.0 == .tokens && $0.1 == ["rerank", "openai", "bge", "bge", "demo", "input"] && $0.2 == 7 })
    }

    @Test func aCohereClientsGatewayErrorsAreCohereShaped() throws {
        let gateway = Gateway(config: try GatewayConfig.parse(Array(Self.config.utf8)))
        let (unknownKey, _) = Self.request(gateway, path: "/cohere/v2/rerank", body: "{}", key: "sk-wrong")
        let unauthorized = try #require(Self.reply(unknownKey.actions))
        #expect(unauthorized.status == 401)
        #expect(try JSONParser.parse(unauthorized.body).objectValue?.keys == ["message"])
        let (noModel, routed) = Self.request(gateway, path: "/cohere/v2/rerank", body: #"{"query":"q"}"#)
        #expect(!routed)
        let missing = try #require(Self.reply(noModel.actions))
        let message = try JSONParser.parse(missing.body)["message"]?.stringValue
        #expect(missing.status == 400 && message == "you must provide a model parameter")
    }
}
