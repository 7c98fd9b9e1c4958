// The two filters' metadata contract (`FilterMetadataKey`, `AttemptContext`, `AttemptReport` in
// SluiceCore) on a stream: both filters write and read the `sluice` namespace only through these,
// so a key cannot be spelt two ways and everything read back is decoded strictly.
internal import SluiceCore

extension EnvoyHTTPStream {
    /// Writes `entries` (key, value) under the `sluice` namespace in one call into Envoy.
    func setMetadata(_ entries: KeyValueBatch) {
        setMetadataStrings(namespace: FilterMetadata.namespace, entries.list)
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

/// String values for one metadata batch, keyed by the contract's keys.
struct KeyValueBatch {
    fileprivate(set) var list = ModuleHeaderList()

    init() {}

    /// Room for `count` more entries of `bytes` key and value bytes in all (one allocation each
    /// for the bytes and the entry list, instead of regrowing them entry by entry).
    mutating func reserveCapacity(entries count: Int, bytes: Int) {
        list.reserveCapacity(entries: count, bytes: bytes)
    }

    mutating func add(_ key: FilterMetadataKey, _ value: String) {
        list.append(name: key.name, value: value)
    }

    var isEmpty: Bool { list.count == 0 }
}
