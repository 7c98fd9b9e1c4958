// A safe handle on one HTTP stream inside Envoy (`filter_envoy_ptr`).
//
// Thread: every method must be called on the worker that owns the stream, from inside one of that
// stream's hooks (Envoy's rule). Borrowed bytes: closures that receive `UnsafeRawBufferPointer`
// views get bytes valid only for the closure; copy what must outlive it.
internal import CEnvoyABI

/// Which header map of the stream.
public enum HeaderMap: UInt32, Sendable {
    case request = 0, requestTrailers, response, responseTrailers

    var c: envoy_dynamic_module_type_http_header_type { .init(rawValue: rawValue) }
}

/// Which body buffer: the frame delivered to the current body hook, or what Envoy has buffered.
public enum BodyBuffer: UInt32, Sendable {
    case receivedRequest = 0, bufferedRequest, receivedResponse, bufferedResponse

    var c: envoy_dynamic_module_type_http_body_type { .init(rawValue: rawValue) }
}

/// Where to read metadata from.
public enum MetadataSource: UInt32, Sendable {
    case dynamic = 0, route, cluster, host, hostLocality

    var c: envoy_dynamic_module_type_metadata_source { .init(rawValue: rawValue) }
}

/// Why a callout could not start.
public enum CalloutStartError: UInt32, Error, Sendable {
    case missingRequiredHeaders = 1, clusterNotFound, duplicateCalloutID, cannotCreateRequest, unknown = 0xFFFF
}

/// A per-stream handle. A plain value wrapping Envoy's pointer; valid until the stream's `destroy`.
public struct EnvoyHTTPStream {
    let raw: UnsafeMutableRawPointer

    init(_ raw: UnsafeMutableRawPointer) { self.raw = raw }

    // MARK: - Headers

    /// Calls `body` with value number `index` of header `name` (lower-case), or nil when absent.
    /// The view is valid only inside `body`.
    @inline(__always)
    public func withHeader<R>(
        _ name: StaticString, in map: HeaderMap = .request, index: Int = 0, _ body: (UnsafeRawBufferPointer?) -> R
    ) -> R {
        var out = envoy_dynamic_module_type_envoy_buffer.empty
        let found = envoy_dynamic_module_callback_http_get_header(raw, map.c, ModuleBuffer.of(name), &out, index, nil)
        guard found, out.ptr != nil else { return body(nil) }
        return body(out.rawBytes)
    }

    /// Calls `body` with value number `index` of header `name`, or nil when absent.
    public func withHeader<R>(
        named name: String, in map: HeaderMap = .request, index: Int = 0, _ body: (UnsafeRawBufferPointer?) -> R
    ) -> R {
        var out = envoy_dynamic_module_type_envoy_buffer.empty
        let found = ModuleBuffer.with(name) { key in
            envoy_dynamic_module_callback_http_get_header(raw, map.c, key, &out, index, nil)
        }
        guard found, out.ptr != nil else { return body(nil) }
        return body(out.rawBytes)
    }

    /// The first value of header `name` as a `String` (lossy UTF-8), or nil.
    public func header(_ name: String, in map: HeaderMap = .request) -> String? {
        withHeader(named: name, in: map) { $0.map { String(decoding: $0, as: UTF8.self) } }
    }

    /// How many values header `name` has.
    public func headerValueCount(_ name: String, in map: HeaderMap = .request) -> Int {
        var out = envoy_dynamic_module_type_envoy_buffer.empty
        var count = 0
        _ = ModuleBuffer.with(name) { key in
            envoy_dynamic_module_callback_http_get_header(raw, map.c, key, &out, 0, &count)
        }
        return count
    }

    /// Number of entries (a header with two values counts twice).
    public func headerCount(in map: HeaderMap = .request) -> Int {
        envoy_dynamic_module_callback_http_get_headers_size(raw, map.c)
    }

    /// Calls `body` for every header entry in order. Views are valid only inside `body`, which must
    /// not mutate this header map.
    public func forEachHeader(in map: HeaderMap = .request, _ body: (UnsafeRawBufferPointer, UnsafeRawBufferPointer) -> Void) {
        let count = headerCount(in: map)
        guard count > 0 else { return }
        withUnsafeTemporaryAllocation(of: envoy_dynamic_module_type_envoy_http_header.self, capacity: count) { out in
            guard let base = out.baseAddress else { return }
            base.initialize(repeating: .init(key_ptr: nil, key_length: 0, value_ptr: nil, value_length: 0), count: count)
            guard envoy_dynamic_module_callback_http_get_headers(raw, map.c, base) else { return }
            for header in out {
                let name = envoy_dynamic_module_type_envoy_buffer(ptr: header.key_ptr, length: header.key_length)
                let value = envoy_dynamic_module_type_envoy_buffer(ptr: header.value_ptr, length: header.value_length)
                body(name.rawBytes, value.rawBytes)
            }
        }
    }

    /// All header entries as owned strings (test and cold-path convenience).
    public func headers(in map: HeaderMap = .request) -> [(name: String, value: String)] {
        var result: [(name: String, value: String)] = []
        forEachHeader(in: map) { name, value in
            result.append((String(decoding: name, as: UTF8.self), String(decoding: value, as: UTF8.self)))
        }
        return result
    }

    /// Replaces every value of `name` with `value`.
    @discardableResult
    public func setHeader(_ name: String, _ value: String, in map: HeaderMap = .request) -> Bool {
        ModuleBuffer.with(name) { key in
            ModuleBuffer.with(value) { envoy_dynamic_module_callback_http_set_header(raw, map.c, key, $0) }
        }
    }

    /// Replaces every value of `name` with `value`.
    @discardableResult
    public func setHeader(_ name: StaticString, _ value: String, in map: HeaderMap = .request) -> Bool {
        ModuleBuffer.with(value) { envoy_dynamic_module_callback_http_set_header(raw, map.c, ModuleBuffer.of(name), $0) }
    }

    /// Replaces every value of `name` with `value` bytes.
    @discardableResult
    public func setHeader(_ name: StaticString, bytes value: [UInt8], in map: HeaderMap = .request) -> Bool {
        ModuleBuffer.with(value) { envoy_dynamic_module_callback_http_set_header(raw, map.c, ModuleBuffer.of(name), $0) }
    }

    /// Appends a value to `name`.
    @discardableResult
    public func addHeader(_ name: String, _ value: String, in map: HeaderMap = .request) -> Bool {
        ModuleBuffer.with(name) { key in
            ModuleBuffer.with(value) { envoy_dynamic_module_callback_http_add_header(raw, map.c, key, $0) }
        }
    }

    /// Removes every value of `name` (the ABI's "set to NULL").
    @discardableResult
    public func removeHeader(_ name: StaticString, in map: HeaderMap = .request) -> Bool {
        envoy_dynamic_module_callback_http_set_header(raw, map.c, ModuleBuffer.of(name), ModuleBuffer.absent)
    }

    /// Removes every value of `name`.
    @discardableResult
    public func removeHeader(named name: String, in map: HeaderMap = .request) -> Bool {
        ModuleBuffer.with(name) { envoy_dynamic_module_callback_http_set_header(raw, map.c, $0, ModuleBuffer.absent) }
    }

    // MARK: - Body

    /// Bytes in `buffer`.
    public func bodySize(_ buffer: BodyBuffer) -> Int {
        envoy_dynamic_module_callback_http_get_body_size(raw, buffer.c)
    }

    /// Calls `body` for each chunk of `buffer`, zero-copy. Views are valid only inside `body`.
    public func forEachBodyChunk(_ buffer: BodyBuffer, _ body: (UnsafeRawBufferPointer) -> Void) {
        let count = envoy_dynamic_module_callback_http_get_body_chunks_size(raw, buffer.c)
        guard count > 0 else { return }
        withUnsafeTemporaryAllocation(of: envoy_dynamic_module_type_envoy_buffer.self, capacity: count) { out in
            guard let base = out.baseAddress else { return }
            base.initialize(repeating: .empty, count: count)
            guard envoy_dynamic_module_callback_http_get_body_chunks(raw, buffer.c, base) else { return }
            for chunk in out { body(chunk.rawBytes) }
        }
    }

    /// Appends the bytes of `buffer` to `output` (one copy, no intermediate arrays).
    public func appendBody(of buffer: BodyBuffer, to output: inout [UInt8]) {
        forEachBodyChunk(buffer) { output.append(contentsOf: $0) }
    }

    /// Appends `data` to the end of `buffer`.
    @discardableResult
    public func appendToBody(_ buffer: BodyBuffer, _ data: [UInt8]) -> Bool {
        ModuleBuffer.with(data) { envoy_dynamic_module_callback_http_append_body(raw, buffer.c, $0) }
    }

    /// Drains `count` bytes from the front of `buffer` (all when `count` exceeds its size).
    @discardableResult
    public func drainBody(_ buffer: BodyBuffer, _ count: Int) -> Bool {
        envoy_dynamic_module_callback_http_drain_body(raw, buffer.c, max(0, count))
    }

    /// Whether the request data now delivered is what an earlier filter buffered.
    public var receivedBufferedRequestBody: Bool {
        envoy_dynamic_module_callback_http_received_buffered_request_body(raw)
    }

    /// Whether the response data now delivered is what an earlier filter buffered.
    public var receivedBufferedResponseBody: Bool {
        envoy_dynamic_module_callback_http_received_buffered_response_body(raw)
    }

    /// The stream's buffer limit in bytes (0 = unlimited).
    public var bufferLimit: UInt64 {
        get { envoy_dynamic_module_callback_http_get_buffer_limit(raw) }
        nonmutating set { envoy_dynamic_module_callback_http_set_buffer_limit(raw, newValue) }
    }

    // MARK: - Local replies

    /// Sends a complete local reply; the caller then returns `StopIteration` from its hook.
    public func sendLocalReply(status: UInt32, headers: ModuleHeaderList, body: [UInt8], details: StaticString) {
        headers.withUnsafeHeaders { list, count in
            ModuleBuffer.with(body) { bodyBuffer in
                envoy_dynamic_module_callback_http_send_response(raw, status, list, count, bodyBuffer, ModuleBuffer.of(details))
            }
        }
    }

    /// Starts a streamed local response: `headers` must include `:status`.
    public func sendResponseHeaders(_ headers: ModuleHeaderList, endStream: Bool) {
        headers.withUnsafeHeaders { list, count in
            envoy_dynamic_module_callback_http_send_response_headers(raw, list, count, endStream)
        }
    }

    /// Sends a chunk of a streamed local response.
    public func sendResponseData(_ data: [UInt8], endStream: Bool) {
        ModuleBuffer.with(data) { envoy_dynamic_module_callback_http_send_response_data(raw, $0, endStream) }
    }

    /// Ends a streamed local response with trailers.
    public func sendResponseTrailers(_ trailers: ModuleHeaderList) {
        trailers.withUnsafeHeaders { list, count in
            envoy_dynamic_module_callback_http_send_response_trailers(raw, list, count)
        }
    }

    // MARK: - Dynamic metadata and filter state

    public func setMetadata(namespace: StaticString, key: StaticString, _ value: String) {
        ModuleBuffer.with(value) {
            envoy_dynamic_module_callback_http_set_dynamic_metadata_string(raw, ModuleBuffer.of(namespace), ModuleBuffer.of(key), $0)
        }
    }

    /// Sets `count` strings under `namespace` in one call into Envoy: entry `i` is `key(i)`,
    /// `value(i)`. The values are handed over from their own storage (`ModuleBufferArray`).
    public func setMetadataStrings(
        namespace: StaticString, count: Int, key: (Int) -> StaticString, value: (Int) -> String
    ) {
        guard count > 0 else { return }
        ModuleBufferArray.withKeyValuePairs(count: count, key: key, value: value) { pairs, count in
            envoy_dynamic_module_callback_http_set_dynamic_metadata_string_batch(raw, ModuleBuffer.of(namespace), pairs, count)
        }
    }

    public func setMetadata(namespace: StaticString, key: StaticString, _ value: Double) {
        envoy_dynamic_module_callback_http_set_dynamic_metadata_number(raw, ModuleBuffer.of(namespace), ModuleBuffer.of(key), value)
    }

    public func setMetadata(namespace: StaticString, key: StaticString, _ value: Bool) {
        envoy_dynamic_module_callback_http_set_dynamic_metadata_bool(raw, ModuleBuffer.of(namespace), ModuleBuffer.of(key), value)
    }

    /// A string from `source` metadata, copied, or nil when absent or not a string.
    public func metadataString(_ source: MetadataSource, namespace: String, key: String) -> String? {
        var out = envoy_dynamic_module_type_envoy_buffer.empty
        let found = ModuleBuffer.with(namespace) { ns in
            ModuleBuffer.with(key) { envoy_dynamic_module_callback_http_get_metadata_string(raw, source.c, ns, $0, &out) }
        }
        return found ? out.stringCopy : nil
    }

    /// A string from `source` metadata under static names (nothing copied to ask), or nil.
    public func metadataString(_ source: MetadataSource, namespace: StaticString, key: StaticString) -> String? {
        var out = envoy_dynamic_module_type_envoy_buffer.empty
        let found = envoy_dynamic_module_callback_http_get_metadata_string(
            raw, source.c, ModuleBuffer.of(namespace), ModuleBuffer.of(key), &out)
        return found ? out.stringCopy : nil
    }

    /// A number from `source` metadata under static names, or nil. Any double can come back
    /// (another filter may have written it): callers range-check before converting.
    public func metadataNumber(_ source: MetadataSource, namespace: StaticString, key: StaticString) -> Double? {
        var out = 0.0
        let found = envoy_dynamic_module_callback_http_get_metadata_number(
            raw, source.c, ModuleBuffer.of(namespace), ModuleBuffer.of(key), &out)
        return found ? out : nil
    }

    /// A bool from `source` metadata under static names, or nil.
    public func metadataBool(_ source: MetadataSource, namespace: StaticString, key: StaticString) -> Bool? {
        var out = false
        let found = envoy_dynamic_module_callback_http_get_metadata_bool(
            raw, source.c, ModuleBuffer.of(namespace), ModuleBuffer.of(key), &out)
        return found ? out : nil
    }

    /// True when namespace `namespace` of `source` metadata has `key`, whatever its value type
    /// (a nested struct, such as jwt_authn's payload, cannot be read but can be found).
    public func hasMetadataKey(_ source: MetadataSource, namespace: String, key: String) -> Bool {
        ModuleBuffer.with(namespace) { ns in
            let count = envoy_dynamic_module_callback_http_get_metadata_keys_count(raw, source.c, ns)
            guard count > 0, count <= 4096 else { return false }
            return withUnsafeTemporaryAllocation(of: envoy_dynamic_module_type_envoy_buffer.self, capacity: count) { keys in
                keys.initialize(repeating: .empty)
                guard envoy_dynamic_module_callback_http_get_metadata_keys(raw, source.c, ns, keys.baseAddress) else {
                    return false
                }
                return keys.contains { $0.rawBytes.elementsEqual(key.utf8) }
            }
        }
    }

    public func metadataNumber(_ source: MetadataSource, namespace: String, key: String) -> Double? {
        var out = 0.0
        let found = ModuleBuffer.with(namespace) { ns in
            ModuleBuffer.with(key) { envoy_dynamic_module_callback_http_get_metadata_number(raw, source.c, ns, $0, &out) }
        }
        return found ? out : nil
    }

    public func metadataBool(_ source: MetadataSource, namespace: String, key: String) -> Bool? {
        var out = false
        let found = ModuleBuffer.with(namespace) { ns in
            ModuleBuffer.with(key) { envoy_dynamic_module_callback_http_get_metadata_bool(raw, source.c, ns, $0, &out) }
        }
        return found ? out : nil
    }

    @discardableResult
    public func setFilterState(_ key: String, _ value: [UInt8]) -> Bool {
        ModuleBuffer.with(key) { k in
            ModuleBuffer.with(value) { envoy_dynamic_module_callback_http_set_filter_state_bytes(raw, k, $0) }
        }
    }

    public func filterState(_ key: String) -> [UInt8]? {
        var out = envoy_dynamic_module_type_envoy_buffer.empty
        let found = ModuleBuffer.with(key) { envoy_dynamic_module_callback_http_get_filter_state_bytes(raw, $0, &out) }
        return found ? out.bytesCopy : nil
    }

    /// Stores `object` in the request's filter state under `key` (one strong reference, which
    /// Envoy gives back on the worker when the request's filter state goes), replacing what this
    /// module stored there before. Both filters of a request see the same filter state, so this
    /// is how the downstream filter hands an object to upstream attempts without copying it.
    @discardableResult
    public func setFilterStateObject(_ key: StaticString, _ object: AnyObject) -> Bool {
        let retained = Unmanaged.passRetained(object).toOpaque()
        let stored = envoy_dynamic_module_callback_http_set_filter_state_object(
            raw, ModuleBuffer.of(key), retained, releaseFilterStateObject,
            envoy_dynamic_module_type_filter_state_life_span_Request)
        if !stored { Unmanaged<AnyObject>.fromOpaque(retained).release() }
        return stored
    }

    /// The object this module stored under `key` with `setFilterStateObject`, if any.
    ///
    /// Envoy returns only module objects (it checks the C++ type), so another filter's bytes or
    /// typed value under the key read as nil. A module object under the key is trusted to be a
    /// `T`: only native code loaded into this Envoy can store one, and it would be the operator's
    /// to name its keys apart from `sluice.`.
    public func filterStateObject<T: AnyObject>(_ key: StaticString, as type: T.Type) -> T? {
        guard let pointer = envoy_dynamic_module_callback_http_get_filter_state_object(raw, ModuleBuffer.of(key)) else {
            return nil
        }
        return Unmanaged<T>.fromOpaque(pointer).takeUnretainedValue()
    }

    // MARK: - Metrics (ids come from `FilterConfigHandle.define*`)

    @inline(__always)
    public func increment(_ counter: CounterID, by value: UInt64 = 1) {
        _ = envoy_dynamic_module_callback_http_filter_increment_counter(raw, counter.raw, nil, 0, value)
    }

    /// Increments a labelled counter; `labels` must match the defined label names in count.
    public func increment(_ counter: CounterID, labels: [String], by value: UInt64 = 1) {
        withLabelBuffers(labels) { ptr, count in
            _ = envoy_dynamic_module_callback_http_filter_increment_counter(raw, counter.raw, ptr, count, value)
        }
    }

    public func record(_ histogram: HistogramID, _ value: UInt64, labels: [String] = []) {
        withLabelBuffers(labels) { ptr, count in
            _ = envoy_dynamic_module_callback_http_filter_record_histogram_value(raw, histogram.raw, ptr, count, value)
        }
    }

    public func add(_ gauge: GaugeID, _ value: UInt64, labels: [String] = []) {
        withLabelBuffers(labels) { ptr, count in
            _ = envoy_dynamic_module_callback_http_filter_increment_gauge(raw, gauge.raw, ptr, count, value)
        }
    }

    public func subtract(_ gauge: GaugeID, _ value: UInt64, labels: [String] = []) {
        withLabelBuffers(labels) { ptr, count in
            _ = envoy_dynamic_module_callback_http_filter_decrement_gauge(raw, gauge.raw, ptr, count, value)
        }
    }

    public func set(_ gauge: GaugeID, _ value: UInt64, labels: [String] = []) {
        withLabelBuffers(labels) { ptr, count in
            _ = envoy_dynamic_module_callback_http_filter_set_gauge(raw, gauge.raw, ptr, count, value)
        }
    }

    // MARK: - Secrets

    /// The current value of a generic secret subscribed at config time (follows SDS rotation).
    /// Calls `body` with the bytes, valid only inside it; never log them.
    public func withGenericSecret<R>(_ handle: SecretHandle, _ body: (UnsafeRawBufferPointer?) -> R) -> R {
        var out = envoy_dynamic_module_type_envoy_buffer.empty
        guard envoy_dynamic_module_callback_http_filter_get_generic_secret(raw, handle.raw, &out) else { return body(nil) }
        return body(out.rawBytes)
    }

    // MARK: - Stream control, routing, upstream

    public func continueDecoding() { envoy_dynamic_module_callback_http_filter_continue_decoding(raw) }
    public func continueEncoding() { envoy_dynamic_module_callback_http_filter_continue_encoding(raw) }

    /// Re-runs route matching after request-header edits.
    public func clearRouteCache() { envoy_dynamic_module_callback_http_clear_route_cache(raw) }

    /// Re-picks only the cluster of the current route.
    public func clearRouteClusterCache() { envoy_dynamic_module_callback_http_clear_route_cluster_cache(raw) }

    /// Sends the request to `host` ("ip:port"). `strict` fails the request if the host is not in the cluster.
    @discardableResult
    public func setUpstreamOverrideHost(_ host: String, strict: Bool) -> Bool {
        ModuleBuffer.with(host) { envoy_dynamic_module_callback_http_set_upstream_override_host(raw, $0, strict) }
    }

    /// The name of the cluster the current route points at.
    public var clusterName: String? {
        var out = envoy_dynamic_module_type_envoy_buffer.empty
        guard envoy_dynamic_module_callback_http_get_cluster_name(raw, &out) else { return nil }
        return out.stringCopy
    }

    /// The module's per-route object of the matched route, or nil.
    public var perRouteConfig: UnsafeRawPointer? {
        envoy_dynamic_module_callback_get_most_specific_route_config(raw)
    }

    /// 0 ..< concurrency.
    public var workerIndex: UInt32 { envoy_dynamic_module_callback_http_filter_get_worker_index(raw) }

    /// Resets the downstream stream (used when a reply can no longer be sent cleanly).
    public func resetStream(details: StaticString) {
        envoy_dynamic_module_callback_http_filter_reset_stream(
            raw, envoy_dynamic_module_type_http_filter_stream_reset_reason_LocalReset, ModuleBuffer.of(details))
    }

    /// A string attribute (`Attribute` numbering is Envoy's), copied.
    public func attributeString(_ id: Attribute) -> String? {
        var out = envoy_dynamic_module_type_envoy_buffer.empty
        guard envoy_dynamic_module_callback_http_filter_get_attribute_string(raw, .init(rawValue: id.rawValue), &out) else {
            return nil
        }
        return out.stringCopy
    }

    public func attributeInt(_ id: Attribute) -> UInt64? {
        var out: UInt64 = 0
        guard envoy_dynamic_module_callback_http_filter_get_attribute_int(raw, .init(rawValue: id.rawValue), &out) else {
            return nil
        }
        return out
    }

    // MARK: - Scheduler and callouts

    /// A scheduler whose `commit` (any thread) delivers `onScheduled` on this stream's worker.
    public func makeScheduler() -> StreamScheduler? {
        guard let pointer = envoy_dynamic_module_callback_http_filter_scheduler_new(raw) else { return nil }
        return StreamScheduler(pointer)
    }

    /// Starts a one-shot HTTP callout to `cluster`; the response arrives in `onCalloutDone`.
    /// `headers` must include `:method`, `:path` and `host`.
    public func startCallout(
        cluster: String, headers: ModuleHeaderList, body: [UInt8], timeoutMilliseconds: UInt64
    ) -> Result<UInt64, CalloutStartError> {
        var id: UInt64 = 0
        let result = withCalloutArguments(cluster, headers, body) { clusterBuffer, list, count, bodyBuffer in
            envoy_dynamic_module_callback_http_filter_http_callout(
                raw, &id, clusterBuffer, list, count, bodyBuffer, timeoutMilliseconds)
        }
        return calloutResult(result, id)
    }

    /// Starts a streamed HTTP callout; events arrive in `onStreamHeaders/Data/Trailers/Complete/Reset`.
    public func startStream(
        cluster: String, headers: ModuleHeaderList, body: [UInt8], endStream: Bool, timeoutMilliseconds: UInt64
    ) -> Result<UInt64, CalloutStartError> {
        var id: UInt64 = 0
        let result = withCalloutArguments(cluster, headers, body) { clusterBuffer, list, count, bodyBuffer in
            envoy_dynamic_module_callback_http_filter_start_http_stream(
                raw, &id, clusterBuffer, list, count, bodyBuffer, endStream, timeoutMilliseconds)
        }
        return calloutResult(result, id)
    }

    @discardableResult
    public func sendStreamData(_ streamID: UInt64, _ data: [UInt8], endStream: Bool) -> Bool {
        ModuleBuffer.with(data) { envoy_dynamic_module_callback_http_stream_send_data(raw, streamID, $0, endStream) }
    }

    public func resetStream(_ streamID: UInt64) {
        envoy_dynamic_module_callback_http_filter_reset_http_stream(raw, streamID)
    }
}

/// Envoy attribute ids (the low, stable part of Envoy's append-only enum).
public enum Attribute: UInt32, Sendable {
    case requestPath = 0, requestURLPath, requestHost, requestScheme, requestMethod
    case requestID = 9, requestProtocol = 10, requestQuery = 11, requestDuration = 12
    case responseCode = 15, sourceAddress = 24, sourcePort = 25, connectionID = 28
}

/// Calls `body` with the module buffers and header array a callout takes, valid for the call.
func withCalloutArguments<R>(
    _ cluster: String, _ headers: ModuleHeaderList, _ body: [UInt8],
    _ call: (
        envoy_dynamic_module_type_module_buffer, UnsafeMutablePointer<envoy_dynamic_module_type_module_http_header>?, Int,
        envoy_dynamic_module_type_module_buffer
    ) -> R
) -> R {
    ModuleBuffer.with(cluster) { clusterBuffer in
        headers.withUnsafeHeaders { list, count in
            ModuleBuffer.with(body) { call(clusterBuffer, list, count, $0) }
        }
    }
}

func calloutResult(_ result: envoy_dynamic_module_type_http_callout_init_result, _ id: UInt64) -> Result<UInt64, CalloutStartError> {
    if result == envoy_dynamic_module_type_http_callout_init_result_Success { return .success(id) }
    return .failure(CalloutStartError(rawValue: result.rawValue) ?? .unknown)
}

/// Calls `body` with module buffers over `labels` (no allocation: see `ModuleBufferArray`).
func withLabelBuffers<R>(_ labels: [String], _ body: (UnsafeMutablePointer<envoy_dynamic_module_type_module_buffer>?, Int) -> R) -> R {
    ModuleBufferArray.with(count: labels.count, { labels[$0] }, body)
}

/// Gives back the reference `setFilterStateObject` handed to Envoy.
private func releaseFilterStateObject(_ object: UnsafeMutableRawPointer?) {
    guard let object else { return }
    Unmanaged<AnyObject>.fromOpaque(object).release()
}
