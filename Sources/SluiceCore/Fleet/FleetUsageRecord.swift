// One finished LLM request, as the module's background worker sends it to sluiced
// (`POST /v1/fleet/usage`; the protocol is in SluiceAdmin.docc/FleetUsage.md, the worker in
// SluiceEnvoy.docc/BackgroundWorker.md). The one type of the record on both sides: the module builds
// and encodes it here; sluiced reads and validates it (`FleetProtocol.readBatch`), stores it and
// serves it back with this same type.
//
// Built on the worker thread when a downstream stream completes (or the gateway refuses an
// authorised request), pushed onto the process's `ProcessUsageQueue`, encoded in batches on the
// main thread. Every number is clamped into the
// protocol's range when the record is made, so a batch the worker sends never carries a value
// sluiced must reject; the text fields are made protocol-safe the same way.

import Synchronization

/// A finished request's usage, in the protocol's terms.
public struct FleetUsageRecord: Sendable, Equatable {
    /// The protocol's bounds (sluiced rejects a record outside them).
    public enum Bounds {
        public static let maxIDBytes = 128
        public static let maxTimeMillis: Int64 = 1 << 53
        public static let maxTokens = 1_000_000_000
        public static let maxCostMicros: Int64 = 1_000_000_000_000_000
        public static let maxDurationMillis: Int64 = 1_000_000_000
        /// The longest key, team, model, backend or provider sluiced stores (UTF-8 bytes).
        public static let maxNameBytes = 256
    }

    /// The request's `x-request-id` (1...128 printable ASCII bytes).
    public var id: String
    /// Unix milliseconds when the request arrived.
    public var timeMillis: Int64
    /// The consumer (virtual key or JWT subject) name; may be empty.
    public var key: String
    public var team: String
    /// The model the client asked for.
    public var model: String
    /// The backend the last upstream attempt reached (empty when none did).
    public var backend: String
    /// The backend's schema (`gen_ai.provider.name`), empty when no attempt reported.
    public var provider: String
    /// The HTTP status sent to the client (100...599).
    public var status: Int
    /// What `inputTokens` and `outputTokens` count: tokens, or a media model's billing unit
    /// (speech characters and audio seconds in `inputTokens`, images in `outputTokens`).
    public var unit: UsageUnit
    public var inputTokens: Int
    public var cachedInputTokens: Int
    public var outputTokens: Int
    /// Search units a rerank backend billed (Cohere), besides any tokens.
    public var searchUnits: Int
    public var costMicros: Int64
    public var durationMillis: Int64
    /// Time to first token of a stream; nil for non-streamed answers.
    public var ttftMillis: Int64?
    public var stream: Bool

    /// A record with every value brought into the protocol's range (see the file comment); a
    /// record sluiced read and validated passes through unchanged.
    public init(
        id: String, timeMillis: Int64, key: String = "", team: String = "", model: String = "", backend: String = "",
        provider: String = "", status: Int = 200, unit: UsageUnit = .tokens, inputTokens: Int = 0,
        cachedInputTokens: Int = 0, outputTokens: Int = 0, searchUnits: Int = 0, costMicros: Int64 = 0,
        durationMillis: Int64 = 0, ttftMillis: Int64? = nil, stream: Bool = false
    ) {
        self.id = FleetUsageRecord.protocolID(id)
        self.timeMillis = min(max(0, timeMillis), Bounds.maxTimeMillis)
        self.key = FleetUsageRecord.protocolName(key)
        self.team = FleetUsageRecord.protocolName(team)
        self.model = FleetUsageRecord.protocolName(model)
        self.backend = FleetUsageRecord.protocolName(backend)
        self.provider = FleetUsageRecord.protocolName(provider)
        self.status = FleetUsageRecord.protocolStatus(status)
        self.unit = unit
        self.inputTokens = min(max(0, inputTokens), Bounds.maxTokens)
        self.cachedInputTokens = min(max(0, cachedInputTokens), Bounds.maxTokens)
        self.outputTokens = min(max(0, outputTokens), Bounds.maxTokens)
        self.searchUnits = min(max(0, searchUnits), Bounds.maxTokens)
        self.costMicros = min(max(0, costMicros), Bounds.maxCostMicros)
        self.durationMillis = min(max(0, durationMillis), Bounds.maxDurationMillis)
        self.ttftMillis = ttftMillis.map { min(max(0, $0), Bounds.maxDurationMillis) }
        self.stream = stream
    }

    /// The status sent to the client, within the protocol's 100...599. A stream that ended before
    /// any response went out (the client went away) is recorded as 499, nginx's "client closed
    /// request"; anything else out of range (Envoy never sends it) as 500.
    static func protocolStatus(_ status: Int) -> Int {
        if status == 0 { return 499 }
        return (100...599).contains(status) ? status : 500
    }

    /// A name cut to `Bounds.maxNameBytes` at a character boundary: a client may ask for a model
    /// with a name of any length (a catch-all route forwards it), and its usage must still be
    /// stored rather than the whole record refused.
    public static func protocolName(_ name: String) -> String {
        guard name.utf8.count > Bounds.maxNameBytes else { return name }
        var end = name.unicodeScalars.startIndex
        var bytes = 0
        for index in name.unicodeScalars.indices {
            let width = UTF8.width(name.unicodeScalars[index])
            if bytes + width > Bounds.maxNameBytes { break }
            bytes += width
            end = name.unicodeScalars.index(after: index)
        }
        return String(name.unicodeScalars[..<end])
    }

    /// `id` as the protocol allows it: printable ASCII, 1...128 bytes. Envoy's own x-request-id
    /// (a UUID) passes unchanged; a client-supplied one with other bytes has them replaced by
    /// `_` and is cut at 128 bytes; an empty one is replaced by a generated id.
    static func protocolID(_ id: String) -> String {
        let utf8 = id.utf8
        if !utf8.isEmpty, utf8.count <= Bounds.maxIDBytes, utf8.allSatisfy(isPrintableASCII) { return id }
        var bytes: [UInt8] = []
        bytes.reserveCapacity(min(utf8.count, Bounds.maxIDBytes))
        for byte in utf8.prefix(Bounds.maxIDBytes) { bytes.append(isPrintableASCII(byte) ? byte : UInt8(ascii: "_")) }
        if bytes.isEmpty { return UsageRecordID.generate() }
        return String(decoding: bytes, as: UTF8.self)
    }

    @inline(__always)
    static func isPrintableASCII(_ byte: UInt8) -> Bool { byte >= 0x20 && byte < 0x7F }

    /// Appends this record as one JSON object of the protocol's `records` array.
    public func write(to writer: inout JSONWriter) {
        writer.beginObject()
        writer.key("id")
        writer.string(id)
        writer.key("time_ms")
        writer.int(timeMillis)
        writer.key("key")
        writer.string(key)
        writer.key("team")
        writer.string(team)
        writer.key("model")
        writer.string(model)
        writer.key("backend")
        writer.string(backend)
        writer.key("provider")
        writer.string(provider)
        writer.key("status")
        writer.int(status)
        writer.key("unit")
        writer.string(unit.rawValue)
        writer.key("input_tokens")
        writer.int(inputTokens)
        writer.key("cached_input_tokens")
        writer.int(cachedInputTokens)
        writer.key("output_tokens")
        writer.int(outputTokens)
        writer.key("search_units")
        writer.int(searchUnits)
        writer.key("cost_micro_usd")
        writer.int(costMicros)
        writer.key("duration_ms")
        writer.int(durationMillis)
        writer.key("ttft_ms")
        if let ttftMillis { writer.int(ttftMillis) } else { writer.null() }
        writer.key("stream")
        writer.bool(stream)
        writer.endObject()
    }

    /// The request body of `POST /v1/fleet/usage` for `records` sent by Envoy `envoy`.
    public static func batchBody(envoy: String, records: some Collection<FleetUsageRecord>) -> [UInt8] {
        var writer = JSONWriter(reservingCapacity: 64 + records.count * 360)
        writer.beginObject()
        writer.key("envoy")
        writer.string(envoy)
        writer.key("records")
        writer.beginArray()
        for record in records { record.write(to: &writer) }
        writer.endArray()
        writer.endObject()
        return writer.bytes
    }
}

/// Ids for requests that arrive without an `x-request-id` (Envoy sets one unless told not to):
/// `sluice-<process nonce>-<sequence>`, unique within the process and, by the nonce, across
/// restarts and Envoys.
public enum UsageRecordID {
    private static let nonce: UInt64 = {
        var generator = SystemRandomNumberGenerator()
        return generator.next()
    }()
    private static let sequence = Atomic<UInt64>(0)

    public static func generate() -> String {
        "sluice-\(String(nonce, radix: 16))-\(sequence.add(1, ordering: .relaxed).newValue)"
    }
}
