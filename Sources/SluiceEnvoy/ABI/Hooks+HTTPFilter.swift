// The HTTP-filter hooks Envoy 1.40 calls ("The HTTP filter hooks" in
// SluiceEnvoy.docc/EnvoyDynamicModulesABI.md): trampolines from the C ABI to
// `HTTPFilterFactory` / `HTTPFilter`. `@c @implementation` makes the compiler check each
// signature against our header.
//
// Fail-closed defaults when a module pointer is unexpectedly NULL (Envoy never does this, but a
// trap here would take down every stream of the process): request-path hooks stop iteration,
// response-path hooks continue (headers may already be on the wire), notifications do nothing.
public import CEnvoyABI

// MARK: - Object <-> handle conversions

@inline(__always)
private func factory(_ pointer: UnsafeRawPointer?) -> HTTPFilterFactory? {
    guard let pointer else { return nil }
    return Unmanaged<HTTPFilterFactory>.fromOpaque(pointer).takeUnretainedValue()
}

/// The live filter behind a stream handle, held strongly for the hook's duration (a destroy
/// during the hook cannot free it); nil, after logging, for a handle whose stream was destroyed.
@inline(__always)
private func filter(_ pointer: UnsafeRawPointer?) -> HTTPFilter? {
    guard let pointer else { return nil }
    guard let live = StreamTable.shared.filter(pointer) else {
        StaleStreamHandles.report(pointer)
        return nil
    }
    return live
}

@inline(__always)
private func stream(_ pointer: UnsafeMutableRawPointer?) -> EnvoyHTTPStream? {
    guard let pointer else { return nil }
    return EnvoyHTTPStream(pointer)
}

private func copyHeaders(
    _ headers: UnsafeMutablePointer<envoy_dynamic_module_type_envoy_http_header>?, _ count: Int
) -> [(name: String, value: String)] {
    guard let headers, count > 0 else { return [] }
    return UnsafeBufferPointer(start: headers, count: count).map { header in
        (
            envoy_dynamic_module_type_envoy_buffer(ptr: header.key_ptr, length: header.key_length).stringCopy,
            envoy_dynamic_module_type_envoy_buffer(ptr: header.value_ptr, length: header.value_length).stringCopy
        )
    }
}

private func copyBody(_ chunks: UnsafeMutablePointer<envoy_dynamic_module_type_envoy_buffer>?, _ count: Int) -> [UInt8] {
    guard let chunks, count > 0 else { return [] }
    var body: [UInt8] = []
    for chunk in UnsafeBufferPointer(start: chunks, count: count) { body.append(contentsOf: chunk.rawBytes) }
    return body
}

private func calloutResponse(
    _ result: envoy_dynamic_module_type_http_callout_result,
    _ headers: UnsafeMutablePointer<envoy_dynamic_module_type_envoy_http_header>?, _ headerCount: Int,
    _ chunks: UnsafeMutablePointer<envoy_dynamic_module_type_envoy_buffer>?, _ chunkCount: Int
) -> CalloutResponse {
    CalloutResponse(
        outcome: CalloutResponse.Outcome(rawValue: result.rawValue) ?? .reset,
        headers: copyHeaders(headers, headerCount),
        body: copyBody(chunks, chunkCount)
    )
}

// MARK: - Config lifecycle (main thread)

/// Builds the filter config named `filter_name` from `filter_config`. Returns NULL, after logging
/// the precise reason, so that Envoy rejects an invalid config instead of running without it.
@c @implementation
public func envoy_dynamic_module_on_http_filter_config_new(
    _ filter_config_envoy_ptr: envoy_dynamic_module_type_http_filter_config_envoy_ptr?,
    _ name: envoy_dynamic_module_type_envoy_buffer,
    _ config: envoy_dynamic_module_type_envoy_buffer
) -> envoy_dynamic_module_type_http_filter_config_module_ptr? {
    guard let filter_config_envoy_ptr else { return nil }
    let filterName = name.stringCopy
    switch FilterRegistry.makeFactory(
        name: filterName, config: config.bytesCopy, handle: FilterConfigHandle(filter_config_envoy_ptr))
    {
    case .success(let made):
        return UnsafeRawPointer(Unmanaged.passRetained(made).toOpaque())
    case .failure(let error):
        EnvoyLog.error("sluice: rejecting filter config '\(filterName)': \(error.message)")
        return nil
    }
}

@c @implementation
public func envoy_dynamic_module_on_http_filter_config_destroy(
    _ filter_config_ptr: envoy_dynamic_module_type_http_filter_config_module_ptr?
) {
    guard let filter_config_ptr else { return }
    let made = Unmanaged<HTTPFilterFactory>.fromOpaque(filter_config_ptr)
    made.takeUnretainedValue().onDestroy()
    made.release()
}

@c @implementation
public func envoy_dynamic_module_on_http_filter_per_route_config_new(
    _ name: envoy_dynamic_module_type_envoy_buffer,
    _ config: envoy_dynamic_module_type_envoy_buffer
) -> envoy_dynamic_module_type_http_filter_per_route_config_module_ptr? {
    let routeConfigName = name.stringCopy
    switch FilterRegistry.makePerRouteConfig(name: routeConfigName, config: config.bytesCopy) {
    case .success(let made):
        return UnsafeRawPointer(Unmanaged.passRetained(made).toOpaque())
    case .failure(let error):
        EnvoyLog.error("sluice: rejecting per-route config '\(routeConfigName)': \(error.message)")
        return nil
    }
}

@c @implementation
public func envoy_dynamic_module_on_http_filter_per_route_config_destroy(
    _ filter_config_ptr: envoy_dynamic_module_type_http_filter_per_route_config_module_ptr?
) {
    guard let filter_config_ptr else { return }
    Unmanaged<PerRouteConfig>.fromOpaque(filter_config_ptr).release()
}

@c @implementation
public func envoy_dynamic_module_on_http_filter_config_scheduled(
    _ filter_config_envoy_ptr: envoy_dynamic_module_type_http_filter_config_envoy_ptr?,
    _ filter_config_ptr: envoy_dynamic_module_type_http_filter_config_module_ptr?,
    _ event_id: UInt64
) {
    guard let handle = filter_config_envoy_ptr, let made = factory(filter_config_ptr) else { return }
    made.onConfigScheduled(FilterConfigHandle(handle), eventID: event_id)
}

@c @implementation
public func envoy_dynamic_module_on_http_filter_config_http_callout_done(
    _ filter_config_envoy_ptr: envoy_dynamic_module_type_http_filter_config_envoy_ptr?,
    _ filter_config_ptr: envoy_dynamic_module_type_http_filter_config_module_ptr?,
    _ callout_id: UInt64,
    _ result: envoy_dynamic_module_type_http_callout_result,
    _ headers: UnsafeMutablePointer<envoy_dynamic_module_type_envoy_http_header>?,
    _ headers_size: Int,
    _ body_chunks: UnsafeMutablePointer<envoy_dynamic_module_type_envoy_buffer>?,
    _ body_chunks_size: Int
) {
    guard let handle = filter_config_envoy_ptr, let made = factory(filter_config_ptr) else { return }
    made.onConfigCalloutDone(
        FilterConfigHandle(handle), calloutID: callout_id,
        response: calloutResponse(result, headers, headers_size, body_chunks, body_chunks_size))
}

// MARK: - Stream lifecycle (worker thread)

@c @implementation
public func envoy_dynamic_module_on_http_filter_new(
    _ filter_config_ptr: envoy_dynamic_module_type_http_filter_config_module_ptr?,
    _ filter_envoy_ptr: envoy_dynamic_module_type_http_filter_envoy_ptr?
) -> envoy_dynamic_module_type_http_filter_module_ptr? {
    guard let made = factory(filter_config_ptr), let envoyStream = stream(filter_envoy_ptr),
        let newFilter = made.makeFilter(envoyStream)
    else { return nil }
    guard let handle = StreamTable.shared.insert(newFilter) else {
        EnvoyLog.error("sluice: more than \(StreamTable.maxChunks * StreamTable.chunkSize) concurrent streams; not filtering this one")
        return nil
    }
    return handle
}

/// Retires the stream's handle, so any later hook for it is refused, then lets the filter go.
/// A second destroy of the same handle is logged and ignored.
@c @implementation
public func envoy_dynamic_module_on_http_filter_destroy(_ filter_module_ptr: envoy_dynamic_module_type_http_filter_module_ptr?) {
    guard let filter_module_ptr else { return }
    guard let owned = StreamTable.shared.remove(filter_module_ptr) else {
        StaleStreamHandles.report(filter_module_ptr)
        return
    }
    owned.takeUnretainedValue().onDestroy()
    owned.release()
}

@c @implementation
public func envoy_dynamic_module_on_http_filter_request_headers(
    _ filter_envoy_ptr: envoy_dynamic_module_type_http_filter_envoy_ptr?,
    _ filter_module_ptr: envoy_dynamic_module_type_http_filter_module_ptr?,
    _ end_of_stream: Bool
) -> envoy_dynamic_module_type_on_http_filter_request_headers_status {
    guard let current = filter(filter_module_ptr), let envoyStream = stream(filter_envoy_ptr) else {
        return envoy_dynamic_module_type_on_http_filter_request_headers_status_StopIteration
    }
    return .init(rawValue: current.onRequestHeaders(envoyStream, endOfStream: end_of_stream).rawValue)
}

@c @implementation
public func envoy_dynamic_module_on_http_filter_request_body(
    _ filter_envoy_ptr: envoy_dynamic_module_type_http_filter_envoy_ptr?,
    _ filter_module_ptr: envoy_dynamic_module_type_http_filter_module_ptr?,
    _ end_of_stream: Bool
) -> envoy_dynamic_module_type_on_http_filter_request_body_status {
    guard let current = filter(filter_module_ptr), let envoyStream = stream(filter_envoy_ptr) else {
        return envoy_dynamic_module_type_on_http_filter_request_body_status_StopIterationNoBuffer
    }
    return .init(rawValue: current.onRequestBody(envoyStream, endOfStream: end_of_stream).rawValue)
}

@c @implementation
public func envoy_dynamic_module_on_http_filter_request_trailers(
    _ filter_envoy_ptr: envoy_dynamic_module_type_http_filter_envoy_ptr?,
    _ filter_module_ptr: envoy_dynamic_module_type_http_filter_module_ptr?
) -> envoy_dynamic_module_type_on_http_filter_request_trailers_status {
    guard let current = filter(filter_module_ptr), let envoyStream = stream(filter_envoy_ptr) else {
        return envoy_dynamic_module_type_on_http_filter_request_trailers_status_StopIteration
    }
    return .init(rawValue: current.onRequestTrailers(envoyStream).rawValue)
}

@c @implementation
public func envoy_dynamic_module_on_http_filter_response_headers(
    _ filter_envoy_ptr: envoy_dynamic_module_type_http_filter_envoy_ptr?,
    _ filter_module_ptr: envoy_dynamic_module_type_http_filter_module_ptr?,
    _ end_of_stream: Bool
) -> envoy_dynamic_module_type_on_http_filter_response_headers_status {
    guard let current = filter(filter_module_ptr), let envoyStream = stream(filter_envoy_ptr) else {
        return envoy_dynamic_module_type_on_http_filter_response_headers_status_Continue
    }
    return .init(rawValue: current.onResponseHeaders(envoyStream, endOfStream: end_of_stream).rawValue)
}

@c @implementation
public func envoy_dynamic_module_on_http_filter_response_body(
    _ filter_envoy_ptr: envoy_dynamic_module_type_http_filter_envoy_ptr?,
    _ filter_module_ptr: envoy_dynamic_module_type_http_filter_module_ptr?,
    _ end_of_stream: Bool
) -> envoy_dynamic_module_type_on_http_filter_response_body_status {
    guard let current = filter(filter_module_ptr), let envoyStream = stream(filter_envoy_ptr) else {
        return envoy_dynamic_module_type_on_http_filter_response_body_status_Continue
    }
    return .init(rawValue: current.onResponseBody(envoyStream, endOfStream: end_of_stream).rawValue)
}

@c @implementation
public func envoy_dynamic_module_on_http_filter_response_trailers(
    _ filter_envoy_ptr: envoy_dynamic_module_type_http_filter_envoy_ptr?,
    _ filter_module_ptr: envoy_dynamic_module_type_http_filter_module_ptr?
) -> envoy_dynamic_module_type_on_http_filter_response_trailers_status {
    guard let current = filter(filter_module_ptr), let envoyStream = stream(filter_envoy_ptr) else {
        return envoy_dynamic_module_type_on_http_filter_response_trailers_status_Continue
    }
    return .init(rawValue: current.onResponseTrailers(envoyStream).rawValue)
}

@c @implementation
public func envoy_dynamic_module_on_http_filter_stream_complete(
    _ filter_envoy_ptr: envoy_dynamic_module_type_http_filter_envoy_ptr?,
    _ filter_module_ptr: envoy_dynamic_module_type_http_filter_module_ptr?
) {
    guard let current = filter(filter_module_ptr), let envoyStream = stream(filter_envoy_ptr) else { return }
    current.onStreamComplete(envoyStream)
}

@c @implementation
public func envoy_dynamic_module_on_http_filter_local_reply(
    _ filter_envoy_ptr: envoy_dynamic_module_type_http_filter_envoy_ptr?,
    _ filter_module_ptr: envoy_dynamic_module_type_http_filter_module_ptr?,
    _ response_code: UInt32,
    _ details: envoy_dynamic_module_type_envoy_buffer,
    _ reset_imminent: Bool
) -> envoy_dynamic_module_type_on_http_filter_local_reply_status {
    guard let current = filter(filter_module_ptr), let envoyStream = stream(filter_envoy_ptr) else {
        return envoy_dynamic_module_type_on_http_filter_local_reply_status_Continue
    }
    let reset = current.onLocalReply(
        envoyStream, status: response_code, details: details.stringCopy, resetImminent: reset_imminent)
    return reset
        ? envoy_dynamic_module_type_on_http_filter_local_reply_status_ContinueAndResetStream
        : envoy_dynamic_module_type_on_http_filter_local_reply_status_Continue
}

@c @implementation
public func envoy_dynamic_module_on_http_filter_scheduled(
    _ filter_envoy_ptr: envoy_dynamic_module_type_http_filter_envoy_ptr?,
    _ filter_module_ptr: envoy_dynamic_module_type_http_filter_module_ptr?,
    _ event_id: UInt64
) {
    guard let current = filter(filter_module_ptr), let envoyStream = stream(filter_envoy_ptr) else { return }
    current.onScheduled(envoyStream, eventID: event_id)
}

// MARK: - Callouts and streams started by a stream (worker thread)

@c @implementation
public func envoy_dynamic_module_on_http_filter_http_callout_done(
    _ filter_envoy_ptr: envoy_dynamic_module_type_http_filter_envoy_ptr?,
    _ filter_module_ptr: envoy_dynamic_module_type_http_filter_module_ptr?,
    _ callout_id: UInt64,
    _ result: envoy_dynamic_module_type_http_callout_result,
    _ headers: UnsafeMutablePointer<envoy_dynamic_module_type_envoy_http_header>?,
    _ headers_size: Int,
    _ body_chunks: UnsafeMutablePointer<envoy_dynamic_module_type_envoy_buffer>?,
    _ body_chunks_size: Int
) {
    guard let current = filter(filter_module_ptr), let envoyStream = stream(filter_envoy_ptr) else { return }
    current.onCalloutDone(
        envoyStream, calloutID: callout_id,
        response: calloutResponse(result, headers, headers_size, body_chunks, body_chunks_size))
}

@c @implementation
public func envoy_dynamic_module_on_http_filter_http_stream_headers(
    _ filter_envoy_ptr: envoy_dynamic_module_type_http_filter_envoy_ptr?,
    _ filter_module_ptr: envoy_dynamic_module_type_http_filter_module_ptr?,
    _ stream_id: UInt64,
    _ headers: UnsafeMutablePointer<envoy_dynamic_module_type_envoy_http_header>?,
    _ headers_size: Int,
    _ end_stream: Bool
) {
    guard let current = filter(filter_module_ptr), let envoyStream = stream(filter_envoy_ptr) else { return }
    current.onStreamHeaders(envoyStream, streamID: stream_id, headers: copyHeaders(headers, headers_size), endStream: end_stream)
}

@c @implementation
public func envoy_dynamic_module_on_http_filter_http_stream_data(
    _ filter_envoy_ptr: envoy_dynamic_module_type_http_filter_envoy_ptr?,
    _ filter_module_ptr: envoy_dynamic_module_type_http_filter_module_ptr?,
    _ stream_id: UInt64,
    _ data: UnsafePointer<envoy_dynamic_module_type_envoy_buffer>?,
    _ data_count: Int,
    _ end_stream: Bool
) {
    guard let current = filter(filter_module_ptr), let envoyStream = stream(filter_envoy_ptr) else { return }
    var chunks: [UnsafeRawBufferPointer] = []
    if let data, data_count > 0 {
        chunks = UnsafeBufferPointer(start: data, count: data_count).map(\.rawBytes)
    }
    current.onStreamData(envoyStream, streamID: stream_id, chunks: chunks, endStream: end_stream)
}

@c @implementation
public func envoy_dynamic_module_on_http_filter_http_stream_trailers(
    _ filter_envoy_ptr: envoy_dynamic_module_type_http_filter_envoy_ptr?,
    _ filter_module_ptr: envoy_dynamic_module_type_http_filter_module_ptr?,
    _ stream_id: UInt64,
    _ trailers: UnsafeMutablePointer<envoy_dynamic_module_type_envoy_http_header>?,
    _ trailers_size: Int
) {
    guard let current = filter(filter_module_ptr), let envoyStream = stream(filter_envoy_ptr) else { return }
    current.onStreamTrailers(envoyStream, streamID: stream_id, trailers: copyHeaders(trailers, trailers_size))
}

@c @implementation
public func envoy_dynamic_module_on_http_filter_http_stream_complete(
    _ filter_envoy_ptr: envoy_dynamic_module_type_http_filter_envoy_ptr?,
    _ filter_module_ptr: envoy_dynamic_module_type_http_filter_module_ptr?,
    _ stream_id: UInt64
) {
    guard let current = filter(filter_module_ptr), let envoyStream = stream(filter_envoy_ptr) else { return }
    current.onStreamComplete(envoyStream, streamID: stream_id)
}

@c @implementation
public func envoy_dynamic_module_on_http_filter_http_stream_reset(
    _ filter_envoy_ptr: envoy_dynamic_module_type_http_filter_envoy_ptr?,
    _ filter_module_ptr: envoy_dynamic_module_type_http_filter_module_ptr?,
    _ stream_id: UInt64,
    _ reason: envoy_dynamic_module_type_http_stream_reset_reason
) {
    guard let current = filter(filter_module_ptr), let envoyStream = stream(filter_envoy_ptr) else { return }
    current.onStreamReset(envoyStream, streamID: stream_id, reason: reason.rawValue)
}

// MARK: - Flow control (worker thread)

@c @implementation
public func envoy_dynamic_module_on_http_filter_downstream_above_write_buffer_high_watermark(
    _ filter_envoy_ptr: envoy_dynamic_module_type_http_filter_envoy_ptr?,
    _ filter_module_ptr: envoy_dynamic_module_type_http_filter_module_ptr?
) {
    guard let current = filter(filter_module_ptr), let envoyStream = stream(filter_envoy_ptr) else { return }
    current.onDownstreamAboveWriteBufferHighWatermark(envoyStream)
}

@c @implementation
public func envoy_dynamic_module_on_http_filter_downstream_below_write_buffer_low_watermark(
    _ filter_envoy_ptr: envoy_dynamic_module_type_http_filter_envoy_ptr?,
    _ filter_module_ptr: envoy_dynamic_module_type_http_filter_module_ptr?
) {
    guard let current = filter(filter_module_ptr), let envoyStream = stream(filter_envoy_ptr) else { return }
    current.onDownstreamBelowWriteBufferLowWatermark(envoyStream)
}
