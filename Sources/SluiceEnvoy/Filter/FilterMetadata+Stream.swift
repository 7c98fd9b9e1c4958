// The `sluice` metadata namespace (`FilterMetadataKey` in SluiceCore) on a stream: the filters
// write and read it only through these, so a key cannot be spelt two ways.
internal import SluiceCore

extension EnvoyHTTPStream {
    /// Writes `entries` (key, value) under the `sluice` namespace in one call into Envoy.
    func setMetadata(_ entries: [(FilterMetadataKey, String)]) {
        setMetadataStrings(
            namespace: FilterMetadata.namespace, count: entries.count, key: { entries[$0].0.name }, value: { entries[$0].1 })
    }

    func setMetadata(_ key: FilterMetadataKey, _ value: Double) {
        setMetadata(namespace: FilterMetadata.namespace, key: key.name, value)
    }

    /// The user-facing token counts (`input_tokens` …) as metadata numbers, for access logs, and
    /// `search_units` when a rerank backend billed any (a chat request pays no call for it).
    func setTokenMetadata(_ usage: TokenUsage) {
        let usage = usage.bounded
        setMetadata(.inputTokens, Double(usage.inputTokens))
        setMetadata(.outputTokens, Double(usage.outputTokens))
        setMetadata(.cachedInputTokens, Double(usage.cachedInputTokens))
        setMetadata(.totalTokens, Double(usage.totalTokens))
        if usage.searchUnits > 0 { setMetadata(.searchUnits, Double(usage.searchUnits)) }
    }
}
