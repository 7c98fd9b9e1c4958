// State-based fakes behind the fake Envoy callbacks (Callbacks+*.swift): header maps, body
// buffers, metadata, filter state, stats, secrets, local replies, schedulers and callouts.
//
// Envoy hands out views into its own storage; so does this fake, through `StableBytes`, so a
// view stays valid until the entry it came from is replaced (Envoy's contract, enforced the
// same way: a test that holds a view across a mutation reads freed memory under ASan).
internal import Synchronization

/// Bytes at a fixed address for the lifetime of the object.
public final class StableBytes: @unchecked Sendable {
    public let pointer: UnsafeMutableRawPointer
    public let count: Int

    public init(_ bytes: some Collection<UInt8>) {
        count = bytes.count
        pointer = UnsafeMutableRawPointer.allocate(byteCount: max(count, 1), alignment: 1)
        pointer.copyMemory(from: Array(bytes), byteCount: count)
    }

    public convenience init(_ string: String) { self.init(Array(string.utf8)) }

    public var bytes: [UInt8] { Array(UnsafeRawBufferPointer(start: pointer, count: count)) }
    public var string: String { String(decoding: bytes, as: UTF8.self) }

    deinit { pointer.deallocate() }
}

/// One header map, in insertion order, names lower-cased like Envoy's.
public struct FakeHeaderMap {
    public var entries: [(name: StableBytes, value: StableBytes)] = []

    public init(_ pairs: [(String, String)] = []) {
        for (name, value) in pairs { add(name, value) }
    }

    public mutating func add(_ name: String, _ value: String) { add(Array(name.lowercased().utf8), Array(value.utf8)) }

    public mutating func add(_ name: [UInt8], _ value: [UInt8]) {
        entries.append((StableBytes(name.map(lowercasedASCII)), StableBytes(value)))
    }

    public mutating func set(_ name: [UInt8], _ value: [UInt8]?) {
        let key = name.map(lowercasedASCII)
        if let index = entries.firstIndex(where: { $0.name.bytes == key }) {
            entries.removeAll { $0.name.bytes == key }
            if let value { entries.insert((StableBytes(key), StableBytes(value)), at: index) }
        } else if let value {
            entries.append((StableBytes(key), StableBytes(value)))
        }
    }

    public func values(_ name: [UInt8]) -> [StableBytes] {
        let key = name.map(lowercasedASCII)
        return entries.filter { $0.name.bytes == key }.map(\.value)
    }

    /// The first value as a string, for assertions.
    public subscript(_ name: String) -> String? { values(Array(name.utf8)).first?.string }

    public var pairs: [(String, String)] { entries.map { ($0.name.string, $0.value.string) } }
}

private func lowercasedASCII(_ byte: UInt8) -> UInt8 { (65...90).contains(byte) ? byte | 0x20 : byte }

/// A metadata value as stored by the fake.
public enum FakeMetadataValue: Equatable, Sendable {
    case string(String), number(Double), bool(Bool)
    /// A nested Struct (as jwt_authn writes a JWT payload): present, but not a string, number or bool.
    case structure
}

/// A local reply the module sent.
public struct FakeLocalReply {
    public var status: UInt32
    public var headers: FakeHeaderMap
    public var body: [UInt8]
    public var details: String
    public var bodyString: String { String(decoding: body, as: UTF8.self) }
}

/// A callout or stream the module started.
public struct FakeCallout {
    public var id: UInt64
    public var cluster: String
    public var headers: FakeHeaderMap
    public var body: [UInt8]
    public var timeoutMilliseconds: UInt64
    public var streaming: Bool
}

/// The fake's view of one metric definition and its values keyed by label values.
public struct FakeMetric {
    public enum Kind: Sendable { case counter, gauge, histogram }
    public var kind: Kind
    public var name: String
    public var labelNames: [String]
    /// Counter/gauge values, or the histogram's recorded samples summed (see `samples`).
    public var values: [[String]: UInt64] = [:]
    public var samples: [[String]: [UInt64]] = [:]
}

/// Envoy's per-filter-config object.
public final class FakeFilterConfig: @unchecked Sendable {
    // @unchecked: the fake is driven from one test thread at a time per object (like Envoy's main thread).
    public var metrics: [FakeMetric] = []
    /// Static secrets by name (what `static_resources.secrets` would hold); mutate to "rotate".
    public var secrets: [String: StableBytes] = [:]
    public var subscribedSecrets: [String] = []
    public var statsFrozen = false
    /// Config-scheduler commits, in order. Locked: unlike everything else here, Envoy allows a
    /// commit from any thread, and the module commits from a timer thread of its own.
    public var schedulerCommits: [UInt64] {
        get { commits.withLock { $0 } }
        set { commits.withLock { $0 = newValue } }
    }
    private let commits = Mutex<[UInt64]>([])
    public var callouts: [FakeCallout] = []
    var nextCalloutID: UInt64 = 1

    public init() {}

    /// The opaque pointer handed to the module as `filter_config_envoy_ptr`.
    public var pointer: UnsafeMutableRawPointer { Unmanaged.passUnretained(self).toOpaque() }

    static func from(_ pointer: UnsafeMutableRawPointer?) -> FakeFilterConfig? {
        guard let pointer else { return nil }
        return Unmanaged<FakeFilterConfig>.fromOpaque(pointer).takeUnretainedValue()
    }

    /// The value of a counter or gauge for `labels`, or nil when never touched.
    public func value(_ name: String, labels: [String] = []) -> UInt64? {
        metrics.first { $0.name == name }?.values[labels]
    }

    public func rotateSecret(_ name: String, to value: String) { secrets[name] = StableBytes(value) }
}

/// A module object in filter state: the pointer and the destructor the module gave with it.
public struct FakeFilterStateObject: @unchecked Sendable {
    public let object: UnsafeMutableRawPointer
    public let destructor: @convention(c) (UnsafeMutableRawPointer?) -> Void

    public init(object: UnsafeMutableRawPointer, destructor: @convention(c) (UnsafeMutableRawPointer?) -> Void) {
        self.object = object
        self.destructor = destructor
    }

    func release() { destructor(object) }
}

/// Envoy's per-stream filter object.
public final class FakeStream: @unchecked Sendable {
    public let config: FakeFilterConfig
    public var requestHeaders = FakeHeaderMap()
    public var requestTrailers = FakeHeaderMap()
    public var responseHeaders = FakeHeaderMap()
    public var responseTrailers = FakeHeaderMap()
    /// Body frames: the frame delivered to the current body hook, and what Envoy buffered.
    public var receivedRequestBody: [StableBytes] = []
    public var bufferedRequestBody: [StableBytes] = []
    public var receivedResponseBody: [StableBytes] = []
    public var bufferedResponseBody: [StableBytes] = []
    public var receivedBufferedRequest = false
    public var receivedBufferedResponse = false
    public var bufferLimit: UInt64 = 1 << 20
    public var localReply: FakeLocalReply?
    public var streamedResponse: [UInt8] = []
    public var streamedResponseHeaders: FakeHeaderMap?
    public var streamedResponseEnded = false
    public var dynamicMetadata: [String: [String: FakeMetadataValue]] = [:]
    /// Route/cluster/host metadata the test wants the module to read.
    public var otherMetadata: [UInt32: [String: [String: FakeMetadataValue]]] = [:]
    public var filterState: [String: StableBytes] = [:]
    /// Module-owned filter-state objects and their destructors, as Envoy holds them; the
    /// destructors run when the stream's filter state goes (the stream's deinit here).
    public var filterStateObjects: [String: FakeFilterStateObject] = [:]
    /// Keys another filter holds read-only: storing an object under them fails, as in Envoy.
    public var readOnlyFilterStateKeys: Set<String> = []
    /// `set_dynamic_metadata_string_batch` calls made on this stream.
    public var metadataBatches = 0
    public var routeCacheClears = 0
    public var clusterCacheClears = 0
    public var upstreamOverrideHost: (host: String, strict: Bool)?
    public var clusterName: String? = "upstream"
    public var perRouteConfig: UnsafeRawPointer?
    public var workerIndex: UInt32 = 0
    public var continueDecodingCalls = 0
    public var continueEncodingCalls = 0
    public var resetDetails: String?
    public var attributes: [UInt32: String] = [:]
    public var intAttributes: [UInt32: UInt64] = [:]
    public var callouts: [FakeCallout] = []
    public var streamData: [UInt64: [UInt8]] = [:]
    public var resetCallouts: [UInt64] = []
    public var schedulerCommits: [UInt64] = []
    var nextCalloutID: UInt64 = 1
    /// Set by the hooks' test driver: no callback may be made once the stream is destroyed.
    public var destroyed = false
    public var callbacksAfterDestroy = 0

    public init(config: FakeFilterConfig, requestHeaders: [(String, String)] = []) {
        self.config = config
        self.requestHeaders = FakeHeaderMap(requestHeaders)
    }

    deinit {
        for object in filterStateObjects.values { object.release() }
    }

    /// The opaque pointer handed to the module as `filter_envoy_ptr`.
    public var pointer: UnsafeMutableRawPointer { Unmanaged.passUnretained(self).toOpaque() }

    static func from(_ pointer: UnsafeMutableRawPointer?) -> FakeStream? {
        guard let pointer else { return nil }
        let stream = Unmanaged<FakeStream>.fromOpaque(pointer).takeUnretainedValue()
        if stream.destroyed { stream.callbacksAfterDestroy += 1 }
        return stream
    }

    func headerMap(_ type: UInt32) -> FakeHeaderMap {
        switch type {
        case 0: requestHeaders
        case 1: requestTrailers
        case 2: responseHeaders
        default: responseTrailers
        }
    }

    func updateHeaderMap(_ type: UInt32, _ update: (inout FakeHeaderMap) -> Void) {
        switch type {
        case 0: update(&requestHeaders)
        case 1: update(&requestTrailers)
        case 2: update(&responseHeaders)
        default: update(&responseTrailers)
        }
    }

    func body(_ type: UInt32) -> [StableBytes] {
        switch type {
        case 0: receivedRequestBody
        case 1: bufferedRequestBody
        case 2: receivedResponseBody
        default: bufferedResponseBody
        }
    }

    /// Whether a body hook is running: Envoy has a *received* body only then (its append and
    /// drain return false anywhere else, trailers hooks included).
    public var insideRequestBodyHook = false
    public var insideResponseBodyHook = false

    /// Whether a body of `type` exists right now (the received ones only inside their hook).
    func hasBody(_ type: UInt32) -> Bool {
        switch type {
        case 0: insideRequestBodyHook
        case 2: insideResponseBodyHook
        default: true
        }
    }

    func updateBody(_ type: UInt32, _ update: (inout [StableBytes]) -> Void) {
        switch type {
        case 0: update(&receivedRequestBody)
        case 1: update(&bufferedRequestBody)
        case 2: update(&receivedResponseBody)
        default: update(&bufferedResponseBody)
        }
    }

    /// The whole buffered request body as bytes.
    public func bodyBytes(_ chunks: [StableBytes]) -> [UInt8] { chunks.flatMap(\.bytes) }
}

/// Log lines the module wrote, process-wide (tests filter by content).
public enum FakeLog {
    private static let state = Mutex<(minimum: UInt32, lines: [(level: UInt32, message: String)])>((0, []))

    /// Levels below this are reported as disabled by `log_enabled`.
    public static var minimumLevel: UInt32 {
        get { state.withLock { $0.minimum } }
        set { state.withLock { $0.minimum = newValue } }
    }

    static func append(_ level: UInt32, _ message: String) { state.withLock { $0.lines.append((level, message)) } }

    public static var lines: [(level: UInt32, message: String)] { state.withLock { $0.lines } }

    /// Lines containing `needle`.
    public static func lines(containing needle: String) -> [String] {
        lines.map(\.message).filter { $0.contains(needle) }
    }
}
