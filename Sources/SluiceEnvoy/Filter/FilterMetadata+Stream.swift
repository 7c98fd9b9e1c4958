// The two filters' metadata contract (`FilterMetadataKey`, `AttemptContext`, `AttemptReport` in
// SluiceCore) on a stream: both filters write and read the `sluice` namespace only through these,
// so a key cannot be spelt two ways and everything read back is decoded strictly.
internal import SluiceCore

extension EnvoyHTTPStream {
    /// Writes `entries` (key, value) under the `sluice` namespace in one call into Envoy.
    func setMetadata(_ entries: [(FilterMetadataKey, String)]) {
        setMetadataStrings(
            namespace: FilterMetadata.namespace, count: entries.count, key: { entries[$0].0.name }, value: { entries[$0].1 })
    }

    /// Writes an upstream attempt's batch (who answered, and the report) in one call into Envoy.
    func setMetadata(_ metadata: AttemptMetadata) {
        setMetadataStrings(
            namespace: FilterMetadata.namespace, count: AttemptMetadata.entryCount, key: { metadata.entry($0).key.name },
            value: { metadata.entry($0).value })
    }

    func setMetadata(_ key: FilterMetadataKey, _ value: Double) {
        setMetadata(namespace: FilterMetadata.namespace, key: key.name, value)
    }

    /// A string this request's dynamic metadata holds under `key`, if any.
    func metadataString(_ key: FilterMetadataKey) -> String? {
        metadataString(.dynamic, namespace: FilterMetadata.namespace, key: key.name)
    }

    /// The routed request's facts the downstream filter left for upstream attempts; nil when the
    /// request was not routed by `sluice` (or another filter wrote something else there).
    func attemptContext() -> AttemptContext? {
        metadataString(.attemptContext).flatMap(AttemptContext.init(decoding:))
    }

    /// The last upstream attempt's report; nil when no attempt reported (or the value is not one
    /// `AttemptReport` wrote).
    func attemptReport() -> AttemptReport? {
        metadataString(.attemptReport).flatMap(AttemptReport.init(decoding:))
    }

    /// The user-facing token counts (`input_tokens` …) as metadata numbers, for access logs.
    func setTokenMetadata(_ usage: TokenUsage) {
        let usage = usage.bounded
        setMetadata(.inputTokens, Double(usage.inputTokens))
        setMetadata(.outputTokens, Double(usage.outputTokens))
        setMetadata(.cachedInputTokens, Double(usage.cachedInputTokens))
        setMetadata(.totalTokens, Double(usage.totalTokens))
    }
}
