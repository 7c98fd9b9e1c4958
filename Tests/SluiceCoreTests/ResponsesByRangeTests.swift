// The Responses answer written by range (`ResponsesTranslator.responsesResponse(fromOpenAIChat:)`) against the
// tree-based translation it replaced, kept here as the reference: on the fixtures, on hand-made edge cases and
// on thousands of mutated hub answers, both give the same bytes or the same error. The one documented
// difference: a body with a repeated member name is refused by the tree's parser, while the range reader takes
// the last occurrence (as for every upstream answer), so such bodies are left out of the comparison.

import Testing

@testable import SluiceCore

@Suite struct ResponsesByRangeTests {
    static let context = TranslationContext(
        upstreamModel: "m", requestModel: "model-x", stream: false, includeUsage: true, created: 1_700_000_000,
        fallbackResponseID: "chatcmpl-fallback")

    /// The tree-based translation as it was before it read by range.
    static func treeTranslation(_ body: [UInt8], echo: ResponsesEcho, context: TranslationContext)
        throws(TranslateError) -> [UInt8]
    {
        typealias OutputItem = ResponsesTranslator.OutputItem
        guard let root = try? JSONParser.parse(body), root.objectValue != nil else {
            throw .badUpstreamResponse("The upstream response is not a JSON object.")
        }
        guard let choice = root["choices"]?.arrayValue?.first, let message = choice["message"],
            message.objectValue != nil
        else {
            throw .badUpstreamResponse("The upstream response has no 'choices[0].message'.")
        }
        let base = treeItemBase(root["id"]?.stringValue ?? context.fallbackResponseID)
        var items: [OutputItem] = []
        if let reasoning = message["reasoning_content"]?.stringValue, !reasoning.isEmpty {
            items.append(.reasoning(id: "rs_\(base)", text: reasoning))
        }
        var text = AnthropicTranslator.plainText(message["content"]) ?? ""
        if let refusal = message["refusal"]?.stringValue { text += refusal }
        let calls = message["tool_calls"]?.arrayValue ?? []
        if !text.isEmpty || calls.isEmpty { items.append(.message(id: "msg_\(base)", text: text)) }
        for (index, call) in calls.enumerated() {
            let callID = call["id"]?.stringValue ?? "call_\(base)_\(index)"
            items.append(
                .functionCall(
                    id: "fc_\(base)_\(index)", callID: callID, name: call["function"]?["name"]?.stringValue ?? "",
                    arguments: call["function"]?["arguments"]?.stringValue ?? ""))
        }
        let created =
            root["created"]?.int64Value.flatMap { (0...ResponsesTranslator.maxCreated).contains($0) ? $0 : nil }
            ?? context.created
        var writer = JSONWriter(reservingCapacity: body.count + echo.members.count + 512)
        ResponsesTranslator.writeResponse(
            ResponsesTranslator.ResponseHead(
                id: "resp_\(base)", createdAt: created, model: context.requestModel,
                status: ResponsesTranslator.Status(finishReason: choice["finish_reason"]?.stringValue)),
            echo: echo, items: items, usage: AnthropicTranslator.usage(fromOpenAI: root["usage"]), to: &writer)
        return writer.bytes
    }

    static func treeItemBase(_ hubID: String) -> String {
        var base = ""
        for scalar in hubID.unicodeScalars.prefix(96) {
            switch scalar {
            case "a"..."z", "A"..."Z", "0"..."9", "-", "_": base.unicodeScalars.append(scalar)
            default: base.unicodeScalars.append("_")
            }
        }
        return base.isEmpty ? "sluice" : base
    }

    static let handMade: [String] = [
        #"{"id":"chatcmpl-\u00e9t\u00e9 \ud83d\ude00/x","created":-5,"choices":[{"message":{"content":[{"type":"text","text":"a\"b\u0001"},{"type":"refusal","refusal":"\/no"}],"refusal":"!"},"finish_reason":"content_filter"}],"usage":{"prompt_tokens":1.5,"completion_tokens":-3,"prompt_tokens_details":{"cached_tokens":null},"cache_creation_tokens":7}}"#,
        #"{"id":"","choices":[{"message":{"content":[{"type":"text","text":"x"},{"type":"image_url"}],"tool_calls":[1,{"id":7,"function":{"name":"f","arguments":"{}"}},{"function":"x"}]},"finish_reason":"length"}]}"#,
        #"{"id":42,"created":253402300800,"choices":[{"message":{"content":null,"reasoning_content":"","tool_calls":{}}}],"usage":[]}"#,
        #"{"id":"\u0000\u001f\t","choices":[{"message":{"content":{"text":"x"},"refusal":5,"reasoning_content":"r\n"},"finish_reason":7},2]}"#,
        "{\"id\":\"" + String(repeating: "é", count: 120) + "\",\"choices\":[{\"message\":{\"content\":\"\"}}]}",
        #"  {"choices":[{"message":{"content":[{"type":"te\u0078t","text":""}],"tool_calls":[]}}]}  "#,
        #"{"choices":[{"message":{}}],"usage":{"completion_tokens_details":{"reasoning_tokens":99999999999999999999}}}"#,
        #"{"choices":[]}"#, #"{"choices":[{"message":"x"}]}"#, "[]", "", #"{"choices":[{"message":{}}]"#,
    ]

    static func seeds() throws -> [[UInt8]] {
        try [ResponsesFixtures.bytes("hub-response.openai.json"), ResponsesFixtures.bytes("hub-response-length.openai.json")]
            + handMade.map { Array($0.utf8) }
    }

    /// Nil when both translations agree on `body`; otherwise what differs.
    static func disagreement(_ body: [UInt8], echo: ResponsesEcho) -> String? {
        if case .failure(let error) = Result(catching: { () throws(JSONParseError) in try JSONParser.parse(body) }),
            case .duplicateKey = error.kind
        {
            return nil
        }
        let tree = Result { () throws(TranslateError) in try treeTranslation(body, echo: echo, context: context) }
        let range = Result { () throws(TranslateError) in
            try ResponsesTranslator.responsesResponse(fromOpenAIChat: body, echo: echo, context: context)
        }
        switch (tree, range) {
        case (.success(let a), .success(let b)) where a == b: return nil
        case (.failure(let a), .failure(let b)) where a == b: return nil
        default:
            return "\(String(decoding: body, as: UTF8.self))\n tree:  \(tree.map { String(decoding: $0, as: UTF8.self) })"
                + "\n range: \(range.map { String(decoding: $0, as: UTF8.self) })"
        }
    }

    @Test func seedsTranslateAsTheTreeDid() throws {
        let echo = try ResponsesTranslator.openAIRequest(fromResponses: ResponsesFixtures.json("request-full.responses.json")).echo
        for seed in try Self.seeds() {
            #expect(Self.disagreement(seed, echo: ResponsesEcho()) == nil)
            #expect(Self.disagreement(seed, echo: echo) == nil)
        }
    }

    /// Small edits that mostly keep the JSON valid (inside strings and between tokens), so the outputs compared
    /// are mostly answers rather than errors.
    static func mildMutate(_ input: [UInt8], _ random: inout SplitMix64) -> [UInt8] {
        let snippets: [[UInt8]] = ["a", "\\n", "\\u00e9", "é", "\\\"", "0", " ", "\\ud83d\\ude00", "-", "\\/", "𝄞"]
            .map { Array($0.utf8) }
        var bytes = input
        for _ in 0..<Int.random(in: 1...3, using: &random) {
            guard !bytes.isEmpty else { break }
            let at = Int.random(in: 0..<bytes.count, using: &random)
            bytes.insert(contentsOf: snippets[Int.random(in: 0..<snippets.count, using: &random)], at: at)
        }
        return bytes
    }

    @Test func mutatedAnswersTranslateAsTheTreeDid() throws {
        let seeds = try Self.seeds()
        var random = SplitMix64(seed: 0x5e5_0b1e)
        var failures: [String] = []
        var translated = 0
        for iteration in 0..<6_000 where failures.count < 3 {
            let seed = seeds[iteration % seeds.count]
            let body = iteration % 2 == 0 ? AnthropicFuzzTests.mutate(seed, &random) : Self.mildMutate(seed, &random)
            if let failure = Self.disagreement(body, echo: ResponsesEcho()) { failures.append(failure) }
            if (try? ResponsesTranslator.responsesResponse(fromOpenAIChat: body, echo: ResponsesEcho(), context: Self.context))
                != nil
            {
                translated += 1
            }
        }
        #expect(failures.isEmpty, "\(failures.joined(separator: "\n\n"))")
        // Enough mutants are still answers for the comparison to be about output, not only errors.
        #expect(translated > 500, "only \(translated) mutants translated")
    }
}
