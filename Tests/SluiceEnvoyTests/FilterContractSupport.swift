// What the other filter of the pair leaves for tests that drive one filter alone: the downstream
// filter's `FilterLink` (the routed request's `AttemptContext`) and an upstream attempt's
// `AttemptReport` in it, stored in the request's filter state as the real filters store them.
import SluiceCore
import SluiceEnvoy
import SluiceTestHost
import Testing

extension FakeStream {
    /// The routed request's facts, as the downstream `sluice` filter links them.
    func setAttemptContext(
        endpoint: String = "chat_completions", model: String, stream: Bool = false, includeUsage: Bool = false,
        requestBodyBytes: Int = 0
    ) {
        let context = AttemptContext(
            endpoint: Endpoint(name: endpoint) ?? .chatCompletions, model: model, stream: stream, includeUsage: includeUsage,
            requestBodyBytes: requestBodyBytes)
        FilterLink.store(FilterLink(context: context), onStream: pointer)
    }

    /// An upstream attempt's report, as `sluice_upstream` leaves it in the link the downstream
    /// filter made when it routed.
    func setAttemptReport(
        inputTokens: Int, outputTokens: Int, searchUnits: Int = 0, backend: String = "openai", provider: String = "openai",
        responseModel: String = "gpt-4o-mini"
    ) {
        guard let link = FilterLink.stored(onStream: pointer) else {
            Issue.record("the request was not routed: no link to report into")
            return
        }
        link.report = AttemptReport(
            usage: TokenUsage(inputTokens: inputTokens, outputTokens: outputTokens, searchUnits: searchUnits),
            backend: backend, provider: provider,
            responseModel: responseModel)
    }

    /// The routed request's facts the downstream filter linked; nil when it did not route.
    var linkedContext: AttemptContext? { FilterLink.stored(onStream: pointer)?.context }

    /// The report the upstream filter published; nil when none.
    var publishedReport: AttemptReport? { FilterLink.stored(onStream: pointer)?.report }
}

extension FakeHTTPFilterChain {
    /// Labelled counters are summed in the module and flushed on a timer: flush them now.
    func flushCounters() { configScheduled(CounterFlush.eventID) }
}
