// What the other filter of the pair leaves in the `sluice` metadata namespace, for tests that
// drive one filter alone: the downstream filter's `AttemptContext`, an upstream attempt's
// `AttemptReport`, as the real filters encode them.
import SluiceCore
import SluiceEnvoy
import SluiceTestHost

extension FakeStream {
    /// The routed request's facts, as the downstream `sluice` filter writes them.
    func setAttemptContext(
        endpoint: String = "chat_completions", model: String, stream: Bool = false, includeUsage: Bool = false,
        requestBodyBytes: Int = 0
    ) {
        let context = AttemptContext(
            endpoint: Endpoint(name: endpoint) ?? .chatCompletions, model: model, stream: stream, includeUsage: includeUsage,
            requestBodyBytes: requestBodyBytes)
        dynamicMetadata["sluice", default: [:]]["attempt_context"] = .string(context.encoded)
    }

    /// An upstream attempt's report, as `sluice_upstream` writes it.
    func setAttemptReport(
        inputTokens: Int, outputTokens: Int, provider: String = "openai", responseModel: String = "gpt-4o-mini"
    ) {
        let report = AttemptReport(
            usage: TokenUsage(inputTokens: inputTokens, outputTokens: outputTokens), provider: provider,
            responseModel: responseModel)
        dynamicMetadata["sluice", default: [:]]["attempt_report"] = .string(report.encoded)
    }

    /// The report the upstream filter published, decoded; nil when none (or not decodable).
    var publishedReport: AttemptReport? {
        guard case .string(let text)? = dynamicMetadata["sluice"]?["attempt_report"] else { return nil }
        return AttemptReport(decoding: text)
    }
}

extension FakeHTTPFilterChain {
    /// Labelled counters are summed in the module and flushed on a timer: flush them now.
    func flushCounters() { configScheduled(CounterFlush.eventID) }
}
