// The per-config and per-stream objects behind the opaque `*_module_ptr` handles Envoy keeps.
//
// Ownership: `config_new` returns a retained `HTTPFilterFactory` (released in `config_destroy`);
// `filter_new` returns a retained `HTTPFilter` (released in `filter_destroy`). Every hook takes a
// strong local reference for its duration, so a stream completing inline during a hook cannot
// free the object under it.

/// What a request-headers or response-headers hook tells Envoy.
public enum HeadersStatus: UInt32, Sendable {
    case `continue` = 0, stopIteration, continueAndDontEndStream, stopAllIterationAndBuffer, stopAllIterationAndWatermark
}

/// What a body hook tells Envoy.
public enum BodyStatus: UInt32, Sendable {
    case `continue` = 0, stopIterationAndBuffer, stopIterationAndWatermark, stopIterationNoBuffer
}

/// What a trailers hook tells Envoy.
public enum TrailersStatus: UInt32, Sendable {
    case `continue` = 0, stopIteration
}

/// The response of a finished one-shot callout, copied out of Envoy's buffers.
public struct CalloutResponse: Sendable {
    public enum Outcome: UInt32, Sendable { case success = 0, reset, exceededResponseBufferLimit }
    public var outcome: Outcome
    public var headers: [(name: String, value: String)]
    public var body: [UInt8]

    /// The `:status` pseudo-header as a number, if present.
    public var status: Int? { headers.first { $0.name == ":status" }.flatMap { Int($0.value) } }
}

/// One HTTP stream's filter. Subclasses override what they handle; every default lets the stream
/// continue unchanged (no default traps).
///
/// Thread: all methods run on the stream's worker thread.
open class HTTPFilter {
    /// The Envoy worker this stream runs on, read once (it never changes).
    private var cachedWorkerIndex: UInt32?

    public init() {}

    /// The index of the worker this stream runs on (what per-worker state is keyed by), asked of
    /// Envoy on first use only.
    public final func workerIndex(_ stream: EnvoyHTTPStream) -> UInt32 {
        if let cachedWorkerIndex { return cachedWorkerIndex }
        let index = stream.workerIndex
        cachedWorkerIndex = index
        return index
    }

    open func onRequestHeaders(_ stream: EnvoyHTTPStream, endOfStream: Bool) -> HeadersStatus { .continue }
    open func onRequestBody(_ stream: EnvoyHTTPStream, endOfStream: Bool) -> BodyStatus { .continue }
    open func onRequestTrailers(_ stream: EnvoyHTTPStream) -> TrailersStatus { .continue }
    open func onResponseHeaders(_ stream: EnvoyHTTPStream, endOfStream: Bool) -> HeadersStatus { .continue }
    open func onResponseBody(_ stream: EnvoyHTTPStream, endOfStream: Bool) -> BodyStatus { .continue }
    open func onResponseTrailers(_ stream: EnvoyHTTPStream) -> TrailersStatus { .continue }
    /// The stream finished (also after local replies and resets); runs before access logging.
    open func onStreamComplete(_ stream: EnvoyHTTPStream) {}
    /// A local reply is being sent by some filter of this stream. Return true to reset instead.
    open func onLocalReply(_ stream: EnvoyHTTPStream, status: UInt32, details: String, resetImminent: Bool) -> Bool { false }
    open func onScheduled(_ stream: EnvoyHTTPStream, eventID: UInt64) {}
    open func onCalloutDone(_ stream: EnvoyHTTPStream, calloutID: UInt64, response: CalloutResponse) {}
    open func onStreamHeaders(_ stream: EnvoyHTTPStream, streamID: UInt64, headers: [(name: String, value: String)], endStream: Bool) {}
    /// A streamed callout delivered data; views valid only during the call.
    open func onStreamData(_ stream: EnvoyHTTPStream, streamID: UInt64, chunks: [UnsafeRawBufferPointer], endStream: Bool) {}
    open func onStreamTrailers(_ stream: EnvoyHTTPStream, streamID: UInt64, trailers: [(name: String, value: String)]) {}
    open func onStreamComplete(_ stream: EnvoyHTTPStream, streamID: UInt64) {}
    open func onStreamReset(_ stream: EnvoyHTTPStream, streamID: UInt64, reason: UInt32) {}
    open func onDownstreamAboveWriteBufferHighWatermark(_ stream: EnvoyHTTPStream) {}
    open func onDownstreamBelowWriteBufferLowWatermark(_ stream: EnvoyHTTPStream) {}
    /// Envoy is done with the stream; free per-stream resources. No callbacks may be made here.
    open func onDestroy() {}
}

/// A filter config: built once on the main thread, shared read-only by every worker.
/// Subclasses must be immutable after `init` (or synchronise their own state).
open class HTTPFilterFactory: @unchecked Sendable {
    public init() {}

    /// Creates the filter for one new stream, or nil to close the stream.
    open func makeFilter(_ stream: EnvoyHTTPStream) -> HTTPFilter? { HTTPFilter() }
    /// Main thread: a config-level scheduler fired.
    open func onConfigScheduled(_ config: FilterConfigHandle, eventID: UInt64) {}
    /// Main thread: a config-level callout finished.
    open func onConfigCalloutDone(_ config: FilterConfigHandle, calloutID: UInt64, response: CalloutResponse) {}
    /// Main thread: the config is going away.
    open func onDestroy() {}
}

/// A per-route config object (`typed_per_filter_config`), immutable.
open class PerRouteConfig: @unchecked Sendable {
    public init() {}
}
