// An Anthropic client's request written as the hub by range (`OpenAIChat+FromAnthropicMessages.swift`) against
// the tree-based translation it replaced (`AnthropicRequestTree`, kept as the reference): on the fixtures, on
// hand-made edge cases and on thousands of mutated requests, each entry gives the same bytes or the same error as
// the path it replaced:
// - the hub the one-pass translators read (`chatRequest`): parse, tree, serialise, validate again;
// - an OpenAI-compatible backend's body (`openAIBody`): parse, tree, `OpenAIHub.serialize`;
// - a count request's conversation (`countedChatRequest`): parse, `max_tokens` 1, tree, serialise;
// - the public bytes entry (`openAIRequest(fromAnthropic: [UInt8])`): parse, tree, serialise.
// Repeated member names need no exception here: the request validator refuses them exactly as the parser does.

import Testing

@testable import SluiceCore

@Suite struct AnthropicRequestByRangeTests {
    // MARK: The paths replaced

    static func parsed(_ body: [UInt8]) throws(TranslateError) -> JSONValue {
        do {
            return try JSONParser.parse(body)
        } catch {
            throw .invalidBody("We could not parse the JSON body of your request: \(error.description).")
        }
    }

    /// The tree translation of a client's body: the parse and the hub tree every replaced path began with.
    static func treeHub(_ body: [UInt8]) -> Result<JSONValue, TranslateError> {
        Result { () throws(TranslateError) in try AnthropicRequestTree.openAIRequest(fromAnthropic: parsed(body)) }
    }

    /// `openAIChatRequest` for an Anthropic client, as it was: the hub serialised and validated again.
    static func treeChatRequest(_ hub: JSONValue) throws(TranslateError) -> [UInt8] {
        do {
            return try OpenAIChatRequest(body: hub.serialized()).document.bytes
        } catch {
            throw .invalidBody("The request body is not valid JSON: \(error.description)")
        }
    }

    /// `OpenAIAdapter.translateRequest` for an Anthropic client, as it was.
    static func treeOpenAIBody(_ hub: JSONValue, model: String, forceStreamUsage: Bool) -> [UInt8] {
        AnthropicRequestTree.serialize(hub, model: model, forceStreamUsage: forceStreamUsage)
    }

    /// `countedChatRequest` for an Anthropic client, as it was.
    static func treeCountedRequest(_ body: [UInt8]) throws(TranslateError) -> [UInt8] {
        guard case .object(let object)? = try? JSONParser.parse(body) else {
            throw .invalidBody("The request body must be a JSON object.")
        }
        var members = object.members.filter { $0.key != "max_tokens" && $0.key != "stream" }
        members.append(("max_tokens", .number(JSONNumber(Int64(1)))))
        return try AnthropicRequestTree.openAIRequest(fromAnthropic: .object(JSONObject(members))).serialized()
    }

    // MARK: Comparing

    static func text(_ result: Result<[UInt8], TranslateError>) -> String {
        switch result {
        case .success(let bytes): String(decoding: bytes, as: UTF8.self)
        case .failure(let error): "error \(error.status) \(error.code) \(error.param ?? "-"): \(error.message)"
        }
    }

    static func compare(
        _ name: String, _ body: [UInt8], tree: Result<[UInt8], TranslateError>, range: Result<[UInt8], TranslateError>
    ) -> String? {
        switch (tree, range) {
        case (.success(let a), .success(let b)) where a == b: return nil
        case (.failure(let a), .failure(let b)) where a == b: return nil
        default:
            return "\(name): \(String(decoding: body.prefix(2_000), as: UTF8.self))\n tree:  \(text(tree).prefix(2_000))"
                + "\n range: \(text(range).prefix(2_000))"
        }
    }

    /// The top-level members `OpenAIChatRequest` finds, in `keys` order.
    static func members(_ request: OpenAIChatRequest) -> [Range<Int>?] {
        [
            request.n, request.messages, request.maxCompletionTokens, request.maxTokens, request.temperature,
            request.topP, request.topK, request.stop, request.tools, request.toolChoice, request.parallelToolCalls,
            request.responseFormat, request.reasoningEffort, request.thinking, request.user, request.stream,
            request.serviceTier, request.seed, request.presencePenalty, request.frequencyPenalty,
            request.safetySettingsSnake, request.safetySettings, request.cachedContentSnake, request.cachedContent,
        ]
    }

    /// Nil when every entry agrees with the path it replaced on `body`; otherwise what differs. `thorough` adds
    /// the count path (a second tree translation), the public bytes entry and a check of the members the
    /// translators find in the written hub.
    static func disagreement(
        _ body: [UInt8], model: String = "up-model", forceStreamUsage: Bool = true, thorough: Bool = true
    ) -> String? {
        let tree = treeHub(body)
        let written = Result { () throws(TranslateError) in try AnthropicTranslator.chatRequest(fromAnthropic: body) }
        if let failure = compare(
            "hub", body, tree: tree.flatMap { hub in Result { () throws(TranslateError) in try treeChatRequest(hub) } },
            range: written.map { $0.document.bytes })
        {
            return failure
        }
        // The translators must find the same members in the written hub as in the same bytes validated.
        if thorough, case .success(let request) = written {
            guard let validated = try? OpenAIChatRequest(body: request.document.bytes),
                members(validated) == members(request)
            else {
                return "hub members: \(String(decoding: body, as: UTF8.self))"
            }
        }
        if let failure = compare(
            "openAI", body, tree: tree.map { treeOpenAIBody($0, model: model, forceStreamUsage: forceStreamUsage) },
            range: Result { () throws(TranslateError) in
                try AnthropicTranslator.openAIBody(fromAnthropic: body, model: model, forceStreamUsage: forceStreamUsage)
            })
        {
            return failure
        }
        guard thorough else { return nil }
        if let failure = compare(
            "bytes", body, tree: tree.map { $0.serialized() },
            range: Result { () throws(TranslateError) in try AnthropicTranslator.openAIRequest(fromAnthropic: body) })
        {
            return failure
        }
        return compare(
            "counted", body, tree: Result { () throws(TranslateError) in try treeCountedRequest(body) },
            range: Result { () throws(TranslateError) in
                try AnthropicTranslator.countedChatRequest(fromAnthropic: body).document.bytes
            })
    }

    // MARK: Inputs

    static let handMade: [String] = [
        // System as a string, escapes everywhere, unknown members.
        #"{"mod\u0065l":"m\u00e9","messages":[{"role":"user","content":"hi\/there \ud83d\ude00 \u0001"}],"system":"Be \"brief\"\n","anthropic_version":"x","foo":{"a":[1,2]}}"#,
        // System as blocks (cache_control null and set), an empty system, wrong systems.
        #"{"model":"m","messages":[],"system":[{"type":"text","text":"a","cache_control":null},{"type":"te\u0078t","text":"b","cache_control":{"type":"ephemeral","ttl":"1h"}}]}"#,
        #"{"model":"m","messages":[],"system":[]}"#, #"{"model":"m","messages":[],"system":null}"#,
        #"{"model":"m","messages":[],"system":5}"#, #"{"model":"m","messages":[],"system":[{"type":"image"}]}"#,
        #"{"model":"m","messages":[],"system":[{"type":"text","text":5}]}"#, #"{"model":"m","messages":[],"system":["x"]}"#,
        // Messages that are wrong in each way.
        #"{"model":"m","messages":[5]}"#, #"{"model":"m","messages":[{"content":"x"}]}"#,
        #"{"model":"m","messages":[{"role":"system","content":"x"}]}"#,
        #"{"model":"m","messages":[{"role":"user","content":null}]}"#,
        #"{"model":"m","messages":[{"role":"user","content":{"type":"text"}}]}"#,
        #"{"model":"m","messages":[{"role":"user","content":[]},{"role":"assistant","content":[]}]}"#,
        // Tool results in every shape, with the turn's other parts after them.
        #"{"model":"m","messages":[{"role":"user","content":[{"type":"text","text":"before","cache_control":{"type":"ephemeral"}},{"type":"tool_result","tool_use_id":"t1"},{"type":"tool_result","tool_use_id":"t2","content":null,"is_error":false},{"type":"tool_result","tool_use_id":"t\u00e93","content":"x\ty","is_error":true},{"type":"tool_result","tool_use_id":"t4","content":[{"type":"text","text":"a","cache_control":{"type":"ephemeral"}},{"type":"text","text":"b"}],"is_error":"true"},{"type":"text","text":"after"}]}]}"#,
        #"{"model":"m","messages":[{"role":"user","content":[{"type":"tool_result","tool_use_id":"t1","content":"only"}]}]}"#,
        #"{"model":"m","messages":[{"role":"user","content":[{"type":"tool_result","tool_use_id":"t1","content":[{"type":"image","source":{}}]}]}]}"#,
        #"{"model":"m","messages":[{"role":"user","content":[{"type":"tool_result","tool_use_id":"t1","content":{}}]}]}"#,
        #"{"model":"m","messages":[{"role":"user","content":[{"type":"tool_result","content":"x"}]}]}"#,
        #"{"model":"m","messages":[{"role":"user","content":[{"type":"bad"},{"type":"tool_result","tool_use_id":5}]}]}"#,
        #"{"model":"m","messages":[{"role":"user","content":[{"type":"tool_result","tool_use_id":"a"},{"type":"text"}]}]}"#,
        // Media: every source, right and wrong.
        #"{"model":"m","messages":[{"role":"user","content":[{"type":"image","source":{"type":"base64","media_type":"image/png","data":"iVBO\/w=="},"cache_control":{"type":"ephemeral"}},{"type":"image","source":{"type":"url","url":"https://x.test/a b.png"}},{"type":"document","source":{"type":"url","url":"https://x.test/d.pdf"},"title":"t"},{"type":"document","source":{"type":"text","media_type":"text/plain","data":"plain \"text\""},"title":5},{"type":"document","source":{"type":"base64","media_type":"application/pdf","data":"JVBE"},"title":"r\u00e9sum\u00e9.pdf"},{"type":"document","source":{"type":"base64","media_type":"application/pdf","data":"JVBE"},"title":null}]}]}"#,
        #"{"model":"m","messages":[{"role":"user","content":[{"type":"image","source":{"type":"base64","media_type":"image/png"}}]}]}"#,
        #"{"model":"m","messages":[{"role":"user","content":[{"type":"image","source":{"type":"url"}}]}]}"#,
        #"{"model":"m","messages":[{"role":"user","content":[{"type":"image","source":{"type":"text","data":"x"}}]}]}"#,
        #"{"model":"m","messages":[{"role":"user","content":[{"type":"document","source":{"type":"text"}}]}]}"#,
        #"{"model":"m","messages":[{"role":"user","content":[{"type":"image","source":"x"}]}]}"#,
        #"{"model":"m","messages":[{"role":"user","content":[{"type":"image"}]}]}"#,
        #"{"model":"m","messages":[{"role":"user","content":[{"type":"\u0073erver_tool_use","id":"x"}]}]}"#,
        #"{"model":"m","messages":[{"role":"user","content":[{"type":5}]}]}"#,
        #"{"model":"m","messages":[{"role":"user","content":[7]}]}"#,
        // Assistant turns: text only, calls only, thinking, every input shape.
        #"{"model":"m","messages":[{"role":"assistant","content":[{"type":"text","text":"a"},{"type":"text","text":""},{"type":"text","text":"\u00e9\n"}]}]}"#,
        #"{"model":"m","messages":[{"role":"assistant","content":[{"type":"tool_use","id":"c1","name":"f"},{"type":"tool_use","id":"c2","name":"g","input":null},{"type":"tool_use","id":"c3","name":"h","input":"s\"q\u0001\\"},{"type":"tool_use","id":"c4","name":"i","input":{"a":[1,2.50,{"b":"\u00e9\"\/"}],"n":null,"t":true}}]}]}"#,
        #"{"model":"m","messages":[{"role":"assistant","content":[{"type":"text","text":""},{"type":"tool_use","id":"c1","name":"f","input":{}}]}]}"#,
        #"{"model":"m","messages":[{"role":"assistant","content":[{"type":"thinking","thinking":"t1","signature":"s"},{"type":"thinking","thinking":5},{"type":"thinking"},{"type":"redacted_thinking","data":"E"},{"type":"thinking","thinking":"\u00e9t2"},{"type":"text","text":"x"}]}]}"#,
        #"{"model":"m","messages":[{"role":"assistant","content":[{"type":"redacted_thinking","data":"E"}]}]}"#,
        #"{"model":"m","messages":[{"role":"assistant","content":[{"type":"thinking","thinking":""}]}]}"#,
        #"{"model":"m","messages":[{"role":"assistant","content":[{"type":"tool_use","id":"c1"}]}]}"#,
        #"{"model":"m","messages":[{"role":"assistant","content":[{"type":"text"}]}]}"#,
        #"{"model":"m","messages":[{"role":"assistant","content":[{"type":"image","source":{}}]}]}"#,
        #"{"model":"m","messages":[{"role":"assistant","content":[{}]}]}"#,
        #"{"model":"m","messages":[{"role":"assistant","content":"plain"},{"role":"user","content":"u"}]}"#,
        // Scalars right and wrong.
        #"{"model":"m","messages":[],"max_tokens":-0,"temperature":1e999,"top_p":0.90,"top_k":-3}"#,
        #"{"model":"m","messages":[],"max_tokens":1.0}"#, #"{"model":"m","messages":[],"max_tokens":99999999999999999999}"#,
        #"{"model":"m","messages":[],"max_tokens":"5"}"#, #"{"model":"m","messages":[],"max_tokens":null,"temperature":null}"#,
        #"{"model":"m","messages":[],"temperature":"0.2"}"#, #"{"model":"m","messages":[],"top_k":true}"#,
        #"{"model":"m","messages":[],"stop_sequences":[]}"#, #"{"model":"m","messages":[],"stop_sequences":["a","\u00e9\n"]}"#,
        #"{"model":"m","messages":[],"stop_sequences":["a",1]}"#, #"{"model":"m","messages":[],"stop_sequences":"x"}"#,
        #"{"model":"m","messages":[],"stream":false}"#, #"{"model":"m","messages":[],"stream":"true"}"#,
        #"{"model":"m","messages":[],"stream":null,"metadata":{"user_id":"u\u0000\u00e9"}}"#,
        #"{"model":"m","messages":[],"metadata":{"user_id":5}}"#, #"{"model":"m","messages":[],"metadata":[]}"#,
        #"{"model":"m","messages":[],"metadata":"x"}"#,
        // Tools and tool choices.
        #"{"model":"m","messages":[],"tools":[]}"#, #"{"model":"m","messages":[],"tools":{}}"#,
        #"{"model":"m","messages":[],"tools":null,"tool_choice":null,"output_config":null,"thinking":null}"#,
        #"{"model":"m","messages":[],"tools":[{"type":"web_search_20250305","name":"web_search"}]}"#,
        #"{"model":"m","messages":[],"tools":[{"type":5,"name":"x","description":5,"input_schema":null,"strict":"yes"}]}"#,
        #"{"model":"m","messages":[],"tools":[{"name":"x","strict":false,"cache_control":null},{"type":"custom","name":"y","description":"d\u00e9","input_schema":{"type":"object","properties":{"q":{"type":"string","description":"\"q\""}}},"cache_control":{"type":"ephemeral"},"strict":true}]}"#,
        #"{"model":"m","messages":[],"tools":[{"name":5}]}"#, #"{"model":"m","messages":[],"tools":["x"]}"#,
        #"{"model":"m","messages":[],"tool_choice":{"type":"auto","disable_parallel_tool_use":false}}"#,
        #"{"model":"m","messages":[],"tool_choice":{"type":"any","disable_parallel_tool_use":true}}"#,
        #"{"model":"m","messages":[],"tool_choice":{"type":"none","disable_parallel_tool_use":"true"}}"#,
        #"{"model":"m","messages":[],"tool_choice":{"type":"tool","name":"f\u00e9"}}"#,
        #"{"model":"m","messages":[],"tool_choice":{"type":"tool"}}"#, #"{"model":"m","messages":[],"tool_choice":{"type":"x"}}"#,
        #"{"model":"m","messages":[],"tool_choice":"auto"}"#,
        // Output config and thinking.
        #"{"model":"m","messages":[],"output_config":{"format":null,"effort":"low"}}"#,
        #"{"model":"m","messages":[],"output_config":{"format":{"type":"json_schema","schema":null},"effort":5}}"#,
        #"{"model":"m","messages":[],"output_config":{"format":{"type":"json_schema"}}}"#,
        #"{"model":"m","messages":[],"output_config":{"format":{"type":"text"}}}"#,
        #"{"model":"m","messages":[],"output_config":5,"thinking":"x"}"#,
        #"{"model":"m","messages":[],"thinking":{"type":"enabled","budget_tokens":1024}}"#,
        // Top-level shapes.
        #"{"messages":[]}"#, #"{"model":5,"messages":[]}"#, #"{"model":"m"}"#, #"{"model":"m","messages":{}}"#,
        "[]", "null", "", "{", #"  {"model" : "m" , "messages" : [ { "role" : "user" , "content" : [ { "type" : "text" , "text" : "x" } ] } ] }  "#,
        // Repeated names: refused as the parser refuses them, at the top and inside a block.
        #"{"model":"a","model":"b","messages":[]}"#,
        #"{"model":"m","messages":[{"role":"user","content":[{"type":"text","text":"a","text":"b"}]}]}"#,
        #"{"model":"m","messages":[],"m\u006fdel":"b"}"#,
    ]

    /// Bodies nested close to the parser's 64 levels: the hub nests `system` blocks two levels deeper than the
    /// request and tool schemas one, and the hub read by the translators was validated again.
    static func deepBodies() -> [String] {
        var bodies: [String] = []
        for depth in 58...64 {
            // `depth` levels in the request: the top object, `system`, the block, then `cache_control` nesting.
            let inner = depth - 3
            let nested = String(repeating: #"{"a":"#, count: inner) + "1" + String(repeating: "}", count: inner)
            bodies.append(#"{"model":"m","messages":[],"system":[{"type":"text","text":"x","cache_control":"# + nested + "}]}")
            // The top object, `tools`, the tool, then the schema's nesting.
            let schema = String(repeating: #"{"a":"#, count: depth - 2) + "1" + String(repeating: "}", count: depth - 2)
            bodies.append(#"{"model":"m","messages":[],"tools":[{"name":"f","input_schema":"# + schema + "}]}")
            // Deep inside a message (the hub is no deeper there): nothing changes.
            let input = String(repeating: "[", count: depth - 5) + String(repeating: "]", count: depth - 5)
            bodies.append(#"{"model":"m","messages":[{"role":"assistant","content":[{"type":"tool_use","id":"c","name":"f","input":"# + input + "}]}]}")
        }
        return bodies
    }

    /// The benchmarks' 1 KiB request (`Translate.request.anthropicClient.*`), shortened.
    static let benchmarkRequest =
        #"{"model":"model-x","max_tokens":256,"stream":true,"system":"You are a concise assistant. Answer in plain English.","#
        + #""messages":[{"role":"user","content":"Summarise the trade-offs. Summarise the trade-offs."}]}"#

    static func seeds() throws -> [[UInt8]] {
        // The whole requests compact (and the first as it is, pretty-printed, for the seeds' own comparison).
        var seeds = try ["in-full.anthropic.json", "request-full.anthropic.json"].map {
            try AnthropicFixtures.json($0).serialized()
        }
        seeds.append(Array(benchmarkRequest.utf8))
        seeds.append(try AnthropicFixtures.bytes("in-full.anthropic.json"))
        seeds += handMade.map { Array($0.utf8) }
        return seeds
    }

    // MARK: Tests

    @Test func fixturesAndEdgeCasesTranslateAsTheTreeDid() throws {
        for seed in try Self.seeds() {
            for (model, force) in [("up-model", true), ("m\u{e9}\"x", false)] {
                #expect(Self.disagreement(seed, model: model, forceStreamUsage: force) == nil)
            }
        }
    }

    /// The upstream filter's request step for an Anthropic client (what the benchmarks measure): an
    /// OpenAI-compatible backend gets the tree path's body, Bedrock Converse the Converse body the tree's hub gave.
    @Test func theExchangeSendsWhatTheTreePathSent() throws {
        let body = Array(Self.benchmarkRequest.utf8)
        let tree = try Self.treeHub(body).get()
        var openAI = UpstreamExchange(
            backend: BackendConfig(name: "vllm", schema: .openAI), clientAPI: .anthropic, endpoint: .anthropicMessages,
            requestModel: "model-x", stream: true, includeUsage: false, created: 1, requestID: "r")
        #expect(
            try openAI.translateRequest(body)
                == Self.treeOpenAIBody(tree, model: openAI.context.upstreamModel, forceStreamUsage: true))
        var bedrock = UpstreamExchange(
            backend: BackendConfig(name: "bedrock", schema: .bedrockConverse), clientAPI: .anthropic,
            endpoint: .anthropicMessages, requestModel: "model-x", stream: true, includeUsage: false, created: 1,
            requestID: "r")
        let converse = try BedrockConverse.request(
            fromOpenAIChat: OpenAIChatRequest(body: tree.serialized()), context: bedrock.context)
        #expect(try bedrock.translateRequest(body) == converse.body)
    }

    @Test func bodiesNearTheDepthLimitTranslateAsTheTreeDid() {
        var refusedHubs = 0
        for body in Self.deepBodies() {
            let bytes = Array(body.utf8)
            #expect(Self.disagreement(bytes) == nil)
            if (try? JSONParser.parse(bytes)) != nil,
                (try? AnthropicTranslator.chatRequest(fromAnthropic: bytes)) == nil
            {
                refusedHubs += 1
            }
        }
        // Some bodies the parser takes have a hub too deep to read again: the cases the check exists for.
        #expect(refusedHubs > 0)
    }

    @Test func aHubBeyondTheSizeLimitIsRefusedAsBefore() throws {
        // Tool input quotes are escaped twice in the hub's arguments string: a 9 MB body makes an 18 MB hub. (The
        // tree path takes seconds on this in a debug build: its refusal, the validator's on the same hub bytes,
        // is written out instead.)
        let quotes = String(repeating: #"\""#, count: 4_500_000)
        let body = Array(
            (#"{"model":"m","messages":[{"role":"assistant","content":[{"type":"tool_use","id":"c","name":"f","input":""#
                + quotes + #""}]}]}"#).utf8)
        let limits = JSONLimits()
        let tooLarge = JSONParseError(.tooLarge, at: limits.maxBytes)
        #expect(throws: TranslateError.invalidBody("The request body is not valid JSON: \(tooLarge.description)")) {
            try AnthropicTranslator.chatRequest(fromAnthropic: body)
        }
        // The OpenAI backend's body was never read again: it goes out.
        let openAI = try AnthropicTranslator.openAIBody(fromAnthropic: body, model: "m", forceStreamUsage: false)
        #expect(openAI.count > limits.maxBytes)
    }

    /// Small edits that mostly keep the JSON valid (inside strings and between tokens), so the outputs compared
    /// are mostly requests rather than errors.
    static func mildMutate(_ input: [UInt8], _ random: inout SplitMix64) -> [UInt8] {
        let snippets: [[UInt8]] = [
            "a", "\\n", "\\u00e9", "é", "\\\"", "0", " ", "\\ud83d\\ude00", "-", "\\/", "𝄞", "null", "true", "[]", "{}",
            "\"x\"", "5",
        ].map { Array($0.utf8) }
        var bytes = input
        for _ in 0..<Int.random(in: 1...3, using: &random) {
            guard !bytes.isEmpty else { break }
            let at = Int.random(in: 0..<bytes.count, using: &random)
            bytes.insert(contentsOf: snippets[Int.random(in: 0..<snippets.count, using: &random)], at: at)
        }
        return bytes
    }

    /// Replaces one value after a `:` with another valid value, so a member changes kind and the JSON stays valid.
    static func swapValue(_ input: [UInt8], _ random: inout SplitMix64) -> [UInt8] {
        let values: [[UInt8]] = [
            "null", "true", "false", "0", "1.5", "\"\"", "\"text\"", "\"tool_result\"", "\"tool_use\"", "\"thinking\"",
            "\"base64\"", "\"url\"", "\"user\"", "\"assistant\"", "[]", "{}", "[\"a\"]", #"{"type":"text","text":"t"}"#,
            #"[{"type":"text","text":"t"}]"#, #"{"type":"tool"}"#,
        ].map { Array($0.utf8) }
        let colons = input.indices.filter { input[$0] == UInt8(ascii: ":") }
        guard !colons.isEmpty else { return input }
        // A colon inside a string makes a broken document: a mutant as good as another.
        let colon = colons[Int.random(in: 0..<colons.count, using: &random)]
        let span = input.span
        let start = JSONNavigation.skipWhitespace(from: colon + 1, before: input.count, in: span)
        let end = JSONNavigation.valueEnd(from: start, before: input.count, in: span).end
        guard start < end else { return input }
        var bytes = input
        bytes.replaceSubrange(start..<end, with: values[Int.random(in: 0..<values.count, using: &random)])
        return bytes
    }

    @Test func mutatedRequestsTranslateAsTheTreeDid() throws {
        let seeds = try Self.seeds()
        var random = SplitMix64(seed: 0xA17_4E0)
        var failures: [String] = []
        var translated = 0
        for iteration in 0..<3_000 where failures.count < 3 {
            // Half the mutants come from the three whole requests, so most of those still translate.
            let seed = iteration % 2 == 0 ? seeds[iteration / 2 % 3] : seeds[iteration / 2 % seeds.count]
            let body =
                switch iteration % 3 {
                case 0: AnthropicFuzzTests.mutate(seed, &random)
                case 1: Self.mildMutate(seed, &random)
                default: Self.swapValue(seed, &random)
                }
            let force = iteration % 4 != 0
            if let failure = Self.disagreement(body, forceStreamUsage: force, thorough: iteration % 4 == 1) {
                failures.append(failure)
            }
            if (try? AnthropicTranslator.openAIRequest(fromAnthropic: body)) != nil { translated += 1 }
        }
        #expect(failures.isEmpty, "\(failures.joined(separator: "\n\n"))")
        // Enough mutants are still requests for the comparison to be about output, not only errors.
        #expect(translated > 500, "only \(translated) mutants translated")
    }
}
