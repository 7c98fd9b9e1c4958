// The two filters' metadata contract (`FilterMetadata` in SluiceCore) on a stream: both filters
// write and read the `sluice` namespace only through these, so a key cannot be spelt two ways and
// every number read back is clamped before anything converts it.
internal import SluiceCore

extension EnvoyHTTPStream {
    func setMetadata(_ key: FilterMetadataKey, _ value: String) {
        setMetadata(namespace: FilterMetadata.namespace, key: key.name, value)
    }

    func setMetadata(_ key: FilterMetadataKey, _ value: Bool) {
        setMetadata(namespace: FilterMetadata.namespace, key: key.name, value)
    }

    /// A string this request's dynamic metadata holds under `key`, if any.
    func metadataString(_ key: FilterMetadataKey) -> String? {
        metadataString(.dynamic, namespace: FilterMetadata.namespace, key: key.name)
    }

    /// A bool this request's dynamic metadata holds under `key`, if any.
    func metadataBool(_ key: FilterMetadataKey) -> Bool? {
        metadataBool(.dynamic, namespace: FilterMetadata.namespace, key: key.name)
    }

    func setMetadata(_ key: FilterMetadataKey, _ value: Double) {
        setMetadata(namespace: FilterMetadata.namespace, key: key.name, value)
    }

    /// The client's request body length the downstream filter recorded, if sane.
    func requestBodyBytes() -> Int? {
        FilterMetadata.bodyBytes(metadataNumber(.dynamic, namespace: FilterMetadata.namespace, key: FilterMetadataKey.requestBodyBytes.name))
    }

    /// Publishes an attempt's token usage (each count within `TokenUsage.maxCount`).
    func publishUsage(_ usage: TokenUsage) {
        let usage = usage.bounded
        let ns = FilterMetadata.namespace
        setMetadata(namespace: ns, key: FilterMetadataKey.inputTokens.name, Double(usage.inputTokens))
        setMetadata(namespace: ns, key: FilterMetadataKey.outputTokens.name, Double(usage.outputTokens))
        setMetadata(namespace: ns, key: FilterMetadataKey.cachedInputTokens.name, Double(usage.cachedInputTokens))
        setMetadata(namespace: ns, key: FilterMetadataKey.totalTokens.name, Double(usage.totalTokens))
    }

    /// The token usage published for this request, clamped: whatever number a filter wrote under
    /// these keys (NaN, negative, 1e300) reads as a count in `0...TokenUsage.maxCount`.
    func publishedUsage() -> TokenUsage {
        let ns = FilterMetadata.namespace
        return FilterMetadata.usage(
            inputTokens: metadataNumber(.dynamic, namespace: ns, key: FilterMetadataKey.inputTokens.name),
            outputTokens: metadataNumber(.dynamic, namespace: ns, key: FilterMetadataKey.outputTokens.name),
            cachedInputTokens: metadataNumber(.dynamic, namespace: ns, key: FilterMetadataKey.cachedInputTokens.name))
    }
}
