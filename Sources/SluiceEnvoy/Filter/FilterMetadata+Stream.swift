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
}
