// Drives a module's exported hooks the way Envoy 1.40 does: program init, config new/destroy,
// one filter per stream, headers/body/trailers in order, stream complete, then destroy.
internal import CEnvoyABI

/// Buffers over Swift strings for calling hooks (Envoy-owned bytes from the module's viewpoint).
func withEnvoyBuffer<R>(_ bytes: [UInt8], _ body: (envoy_dynamic_module_type_envoy_buffer) -> R) -> R {
    let stable = StableBytes(bytes)
    return withExtendedLifetime(stable) { body(envoyBuffer(stable)) }
}

/// A loaded filter config, as Envoy holds it between `config_new` and `config_destroy`.
public final class FakeHTTPFilterChain {
    public let config: FakeFilterConfig
    /// The module's config object, or nil when the module refused the config.
    public let modulePointer: UnsafeRawPointer?
    /// The ABI version string the module returned from program init.
    public let abiVersion: String?

    /// Calls program init and `config_new(name, config)`.
    public init(filterName: String, filterConfig: String, config: FakeFilterConfig = FakeFilterConfig()) {
        self.config = config
        abiVersion = envoy_dynamic_module_on_program_init().map { String(cString: $0) }
        modulePointer = withEnvoyBuffer(Array(filterName.utf8)) { name in
            withEnvoyBuffer(Array(filterConfig.utf8)) { body in
                envoy_dynamic_module_on_http_filter_config_new(config.pointer, name, body)
            }
        }
        // Envoy freezes stat creation after config load.
        config.statsFrozen = true
    }

    public var loaded: Bool { modulePointer != nil }

    /// Delivers a config-scheduler event on the calling thread, as Envoy's main thread would
    /// after a `config_scheduler_commit` (the module's own timers commit; tests deliver at once).
    public func configScheduled(_ eventID: UInt64) {
        guard let modulePointer else { return }
        envoy_dynamic_module_on_http_filter_config_scheduled(config.pointer, UnsafeMutableRawPointer(mutating: modulePointer), eventID)
    }

    /// Starts a stream: `filter_new`. Nil when the module refused it (or the config did not load).
    public func newStream(_ requestHeaders: [(String, String)] = []) -> FakeHTTPStreamDriver? {
        guard let modulePointer else { return nil }
        let stream = FakeStream(config: config, requestHeaders: requestHeaders)
        guard let filter = envoy_dynamic_module_on_http_filter_new(modulePointer, stream.pointer) else { return nil }
        return FakeHTTPStreamDriver(stream: stream, filter: filter)
    }

    deinit {
        if let modulePointer { envoy_dynamic_module_on_http_filter_config_destroy(modulePointer) }
    }
}

/// One stream's hook sequence.
public final class FakeHTTPStreamDriver {
    public let stream: FakeStream
    let filter: UnsafeRawPointer
    /// Request body bytes that went on upstream (passed with Continue).
    public private(set) var forwardedRequestBody: [UInt8] = []
    /// Response body bytes that went on downstream.
    public private(set) var forwardedResponseBody: [UInt8] = []
    private var destroyed = false

    init(stream: FakeStream, filter: UnsafeRawPointer) {
        self.stream = stream
        self.filter = filter
    }

    /// `request_headers`; returns the raw status (0 Continue, 1 StopIteration, ...).
    @discardableResult
    public func requestHeaders(endOfStream: Bool = false) -> UInt32 {
        envoy_dynamic_module_on_http_filter_request_headers(stream.pointer, filter, endOfStream).rawValue
    }

    /// Delivers one request data frame the way Envoy does: it is the "received" body during the
    /// hook; on StopIterationAndBuffer it joins the buffered body, on Continue it goes upstream
    /// together with anything buffered before.
    @discardableResult
    public func requestBody(_ chunk: [UInt8], endOfStream: Bool) -> UInt32 {
        stream.receivedRequestBody = chunk.isEmpty ? [] : [StableBytes(chunk)]
        stream.insideRequestBodyHook = true
        let status = envoy_dynamic_module_on_http_filter_request_body(stream.pointer, filter, endOfStream).rawValue
        stream.insideRequestBodyHook = false
        let received = stream.bodyBytes(stream.receivedRequestBody)
        stream.receivedRequestBody = []
        if status == 1 {
            if !received.isEmpty { stream.bufferedRequestBody.append(StableBytes(received)) }
        } else if status == 0 {
            forwardedRequestBody += stream.bodyBytes(stream.bufferedRequestBody) + received
            stream.bufferedRequestBody = []
        }
        return status
    }

    /// `request_trailers`: they end the request, so on Continue what is buffered goes upstream.
    @discardableResult
    public func requestTrailers() -> UInt32 {
        let status = envoy_dynamic_module_on_http_filter_request_trailers(stream.pointer, filter).rawValue
        if status == 0 {
            forwardedRequestBody += stream.bodyBytes(stream.bufferedRequestBody)
            stream.bufferedRequestBody = []
        }
        return status
    }

    @discardableResult
    public func responseHeaders(_ headers: [(String, String)], endOfStream: Bool = false) -> UInt32 {
        stream.responseHeaders = FakeHeaderMap(headers)
        return envoy_dynamic_module_on_http_filter_response_headers(stream.pointer, filter, endOfStream).rawValue
    }

    /// Delivers one response data frame (same buffering rules as `requestBody`).
    @discardableResult
    public func responseBody(_ chunk: [UInt8], endOfStream: Bool) -> UInt32 {
        stream.receivedResponseBody = chunk.isEmpty ? [] : [StableBytes(chunk)]
        stream.insideResponseBodyHook = true
        let status = envoy_dynamic_module_on_http_filter_response_body(stream.pointer, filter, endOfStream).rawValue
        stream.insideResponseBodyHook = false
        let received = stream.bodyBytes(stream.receivedResponseBody)
        stream.receivedResponseBody = []
        if status == 1 {
            if !received.isEmpty { stream.bufferedResponseBody.append(StableBytes(received)) }
        } else if status == 0 {
            forwardedResponseBody += stream.bodyBytes(stream.bufferedResponseBody) + received
            stream.bufferedResponseBody = []
        }
        return status
    }

    /// `response_trailers`: they end the response, so on Continue what is buffered goes downstream.
    @discardableResult
    public func responseTrailers() -> UInt32 {
        let status = envoy_dynamic_module_on_http_filter_response_trailers(stream.pointer, filter).rawValue
        if status == 0 {
            forwardedResponseBody += stream.bodyBytes(stream.bufferedResponseBody)
            stream.bufferedResponseBody = []
        }
        return status
    }

    /// Delivers pending scheduler commits as `on_http_filter_scheduled`.
    public func runScheduled() {
        let pending = stream.schedulerCommits
        stream.schedulerCommits = []
        for event in pending { envoy_dynamic_module_on_http_filter_scheduled(stream.pointer, filter, event) }
    }

    /// Completes a callout started by the module.
    public func completeCallout(_ id: UInt64, status: Int = 200, headers: [(String, String)] = [], body: [UInt8] = [], success: Bool = true) {
        let all = [(":status", String(status))] + headers
        let stable = all.flatMap { [StableBytes($0.0), StableBytes($0.1)] }
        var cHeaders = stride(from: 0, to: stable.count, by: 2).map { index in
            envoy_dynamic_module_type_envoy_http_header(
                key_ptr: stable[index].pointer.assumingMemoryBound(to: CChar.self), key_length: stable[index].count,
                value_ptr: stable[index + 1].pointer.assumingMemoryBound(to: CChar.self), value_length: stable[index + 1].count)
        }
        let bodyStable = StableBytes(body)
        var chunks = [envoyBuffer(bodyStable)]
        let result = success ? envoy_dynamic_module_type_http_callout_result_Success : envoy_dynamic_module_type_http_callout_result_Reset
        withExtendedLifetime((stable, bodyStable)) {
            cHeaders.withUnsafeMutableBufferPointer { headerBuffer in
                chunks.withUnsafeMutableBufferPointer { chunkBuffer in
                    envoy_dynamic_module_on_http_filter_http_callout_done(
                        stream.pointer, filter, id, result, headerBuffer.baseAddress, headerBuffer.count,
                        chunkBuffer.baseAddress, body.isEmpty ? 0 : 1)
                }
            }
        }
    }

    /// `local_reply` notification; returns true when the module asked for a reset.
    public func localReply(status: UInt32, details: String) -> Bool {
        withEnvoyBuffer(Array(details.utf8)) {
            envoy_dynamic_module_on_http_filter_local_reply(stream.pointer, filter, status, $0, false).rawValue == 1
        }
    }

    public func streamComplete() { envoy_dynamic_module_on_http_filter_stream_complete(stream.pointer, filter) }

    /// `destroy`; afterwards the module must not call back into this stream.
    public func destroy() {
        guard !destroyed else { return }
        destroyed = true
        envoy_dynamic_module_on_http_filter_destroy(filter)
        stream.destroyed = true
    }

    /// `destroy` once more, as a buggy host would: the module must refuse it, not free twice.
    public func destroyAgain() {
        envoy_dynamic_module_on_http_filter_destroy(filter)
    }

    deinit { destroy() }
}
