// Token counts from outside: every reader clamps what a buggy or hostile provider reports into
// `0...TokenUsage.maxCount`, so nothing downstream (sums, prices, metrics, Envoy metadata) traps.
import SluiceCore
import Testing

@Suite struct TokenUsageTests {
    static let max = TokenUsage.maxCount

    @Test(arguments: [
        ("12", 12), ("0", 0), ("-5", 0), ("12.0", 12), ("12.9", 12), ("1e3", 1000), ("1e300", max), ("-1e300", 0),
        ("9223372036854775807", max), ("-9223372036854775808", 0), ("18446744073709551616", max), ("1e999", max),
        ("-1e999", 0), ("100000000", max), ("99999999", 99_999_999), ("\"12\"", 0), ("\"NaN\"", 0), ("true", 0),
        ("null", 0), ("{}", 0), ("[1]", 0),
    ])
    func countsFromJSON(text: String, expected: Int) throws {
        // Through the DOM and through the scanner: both readers agree.
        let document = Array(#"{"n":\#(text)}"#.utf8)
        let parsed = try JSONParser.parse(document)
        #expect(TokenUsage.count(parsed["n"]) == expected, "DOM \(text)")
        let span = document.span
        let range = try #require(try JSONScanner.findTopLevel("n", in: span))
        #expect(TokenUsage.count(at: range, in: span) == expected, "scanner \(text)")
    }

    @Test(arguments: [
        (Double.nan, 0), (-Double.infinity, 0), (Double.infinity, max), (-1, 0), (0.5, 0), (1.5, 1),
        (1e300, max), (9.223372036854775807e18, max), (99_999_999.9, 99_999_999),
    ])
    func countsFromDoubles(value: Double, expected: Int) {
        #expect(TokenUsage.count(value) == expected)
    }

    @Test func sumsSaturateAtTheBound() {
        #expect(TokenUsage.sum(Int.max, Int.max) == Self.max)
        #expect(TokenUsage.sum(Self.max - 1, 1) == Self.max)
        #expect(TokenUsage.sum(-10, 3) == 3)
        #expect(TokenUsage(inputTokens: Int.max, outputTokens: Int.max).totalTokens == Self.max)
        #expect(TokenUsage(inputTokens: Int.min, outputTokens: 2).bounded == TokenUsage(outputTokens: 2))
    }

    /// What counts as clamped: any count that is not exactly an integer in `0...maxCount`, and
    /// any sum beyond the bound; absent and null counts are fine.
    @Test(arguments: [
        ("12", false), ("0", false), ("12.0", false), ("null", false), ("99999999", false), ("-1", true),
        ("12.5", true), ("100000001", true), ("1e300", true), ("-1e300", true), ("9223372036854775807", true),
        ("-9223372036854775808", true), ("\"NaN\"", true), ("\"12\"", true), ("true", true), ("{}", true), ("[]", true),
    ])
    func clampedMeansNotExactlyACount(text: String, clamped: Bool) throws {
        let document = Array(#"{"n":\#(text)}"#.utf8)
        var dom = TokenCountReader()
        _ = dom.count(try JSONParser.parse(document)["n"])
        #expect(dom.clamped == clamped, "DOM \(text)")
        var scanner = TokenCountReader()
        let span = document.span
        _ = scanner.count(at: try #require(try JSONScanner.findTopLevel("n", in: span)), in: span)
        #expect(scanner.clamped == clamped, "scanner \(text)")
        var absent = TokenCountReader()
        _ = absent.count(nil)
        #expect(!absent.clamped)
        var sums = TokenCountReader()
        _ = sums.sum(Self.max - 1, 1)
        #expect(!sums.clamped)
        _ = sums.sum(Self.max, 1)
        #expect(sums.clamped)
    }

    @Test func readersMarkClampedUsage() {
        let sane = OpenAICompatible.usage(fromResponse: Array(#"{"usage":{"prompt_tokens":7,"completion_tokens":3.0}}"#.utf8))
        #expect(sane == TokenUsage(inputTokens: 7, outputTokens: 3))
        let negative = OpenAICompatible.usage(fromResponse: Array(#"{"usage":{"prompt_tokens":-7,"completion_tokens":"NaN"}}"#.utf8))
        #expect(negative == TokenUsage(isClamped: true))
    }

    @Test func numbersFromJSONAreClampedToCounts() {
        #expect(TokenUsage.count(.nan) == 0)
        #expect(TokenUsage.count(-3) == 0)
        #expect(TokenUsage.count(1e300) == Self.max)
        #expect(TokenUsage.count(7) == 7)
    }

    static let context = TranslationContext(upstreamModel: "m", requestModel: "m")

    /// Each provider's usage reader, fed counts no request can have.
    @Test func everyProviderReaderClamps() throws {
        let openAI = OpenAICompatible.usage(fromResponse: Array(
            #"{"usage":{"prompt_tokens":9223372036854775807,"completion_tokens":1e300,"prompt_tokens_details":{"cached_tokens":-1}}}"#.utf8))
        #expect(openAI == TokenUsage(inputTokens: Self.max, outputTokens: Self.max, isClamped: true))

        let anthropic = try AnthropicTranslator.response(toOpenAIChat: Array(
            #"{"id":"m1","type":"message","role":"assistant","model":"m","content":[{"type":"text","text":"x"}],"stop_reason":"end_turn","usage":{"input_tokens":9223372036854775807,"cache_read_input_tokens":9223372036854775807,"output_tokens":1e300}}"#.utf8),
            context: Self.context)
        #expect(anthropic.usage.inputTokens == Self.max)
        #expect(anthropic.usage.outputTokens == Self.max)
        #expect(anthropic.usage.isClamped)
        let anthropicOut = try JSONParser.parse(anthropic.body)
        #expect(anthropicOut["usage"]?["total_tokens"]?.int64Value == Int64(Self.max))

        let gemini = try Gemini.chatCompletion(fromGeminiResponse: Array(
            #"{"candidates":[{"content":{"parts":[{"text":"x"}],"role":"model"},"finishReason":"STOP"}],"usageMetadata":{"promptTokenCount":9223372036854775807,"toolUsePromptTokenCount":9223372036854775807,"candidatesTokenCount":1e300,"thoughtsTokenCount":5}}"#.utf8),
            context: Self.context)
        #expect(gemini.usage.inputTokens == Self.max)
        #expect(gemini.usage.outputTokens == Self.max)
        #expect(gemini.usage.isClamped)

        let bedrock = try BedrockConverse.chatCompletion(fromConverse: Array(
            #"{"output":{"message":{"role":"assistant","content":[{"text":"x"}]}},"stopReason":"end_turn","usage":{"inputTokens":9223372036854775807,"cacheReadInputTokens":9223372036854775807,"cacheWriteInputTokens":1e300,"outputTokens":-4}}"#.utf8),
            context: Self.context)
        #expect(bedrock.usage.inputTokens == Self.max)
        #expect(bedrock.usage.outputTokens == 0)
        #expect(bedrock.usage.isClamped)
    }
}
