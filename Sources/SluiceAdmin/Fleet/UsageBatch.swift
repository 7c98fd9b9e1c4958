// The usage records every Envoy's background worker sends to sluiced (`POST /v1/fleet/usage`),
// and their validation: the envelope (`envoy`, `records`) must be well formed or the whole batch
// is refused with 400; each record is then checked on its own, so one bad record is rejected
// with a message naming its field and range while the rest of the batch is stored. (A batch the
// sender can never get accepted would be retried forever.) The record itself is SluiceCore's
// `FleetUsageRecord`, the type the module sends.
public import SluiceCore

/// A stored record with where and when sluiced received it.
public struct StoredUsageRecord: Sendable, Equatable {
    public var record: FleetUsageRecord
    /// The node id of the Envoy that sent it.
    public var envoy: String
    /// Unix milliseconds when sluiced stored it.
    public var receivedAtMillis: Int64

    public init(record: FleetUsageRecord, envoy: String, receivedAtMillis: Int64) {
        self.record = record
        self.envoy = envoy
        self.receivedAtMillis = receivedAtMillis
    }
}

/// A `POST /v1/fleet/usage` body, read: the valid records, and the others with why.
public struct UsageBatch: Sendable, Equatable {
    public struct Rejection: Sendable, Equatable {
        /// The record's index in the batch's `records`.
        public var index: Int
        /// `status: must be an integer between 100 and 599, got 600`.
        public var error: String
    }

    public var envoy: String
    /// The valid records with their index in the batch.
    public var records: [(index: Int, record: FleetUsageRecord)]
    public var rejected: [Rejection]
    /// Member names this sluiced does not know, envelope's and records' (sorted, at most
    /// `FleetProtocol.maxIgnoredFieldNames`): ignored, so a newer sender loses no record.
    public var ignoredFields: [String] = []

    public static func == (lhs: UsageBatch, rhs: UsageBatch) -> Bool {
        lhs.envoy == rhs.envoy && lhs.rejected == rhs.rejected && lhs.ignoredFields == rhs.ignoredFields
            && lhs.records.map(\.index) == rhs.records.map(\.index)
            && lhs.records.map(\.record) == rhs.records.map(\.record)
    }
}

/// The fleet protocol's limits, and the reader of a usage batch.
public enum FleetProtocol {
    /// Largest body accepted under `/v1/fleet/` (413 beyond).
    public static let maxBodyBytes = 4 << 20
    /// Records in one batch.
    public static let batchRecords = 1...1_000
    /// Unknown member names an answer lists at most.
    public static let maxIgnoredFieldNames = 16
    /// Length of `envoy` and of a record's `id`, in printable ASCII characters.
    public static let identifierLength = 1...128
    /// Longest `key`, `team`, `model`, `backend` or `provider`, in UTF-8 bytes.
    public static let maxNameBytes = 256
    /// `time_ms`: 0...2^53 (the integers a JSON number holds exactly everywhere).
    public static let timeRange: ClosedRange<Int64> = 0...(1 << 53)
    public static let statusRange: ClosedRange<Int64> = 100...599
    /// Token (or unit) counts, `search_units`, `duration_ms` and `ttft_ms`.
    public static let countRange: ClosedRange<Int64> = 0...1_000_000_000
    /// `cost_micro_usd`: up to a billion dollars for one request.
    public static let costRange: ClosedRange<Int64> = 0...1_000_000_000_000_000

    /// The members a record has, in the protocol's order.
    static let recordFields = [
        "id", "time_ms", "key", "team", "model", "backend", "provider", "status", "unit", "input_tokens",
        "cached_input_tokens", "output_tokens", "search_units", "cost_micro_usd", "duration_ms", "ttft_ms", "stream",
    ]
    /// The `unit` names a record may carry, for the error that refuses another.
    static let unitNames = UsageUnit.allCases.map { "'\($0.rawValue)'" }
        .joined(separator: ", ")

    /// Reads a usage batch.
    /// - Throws: `AdminError.invalidRequest` (HTTP 400) when the envelope is malformed: not JSON, not
    ///   an object, `envoy` missing or invalid, `records` not an array of 1 to 1000 elements (unknown
    ///   members are ignored and named). A bad record is not an error: it is listed in `rejected`.
    public static func readBatch(_ bytes: [UInt8]) throws(AdminError) -> UsageBatch {
        let (envelope, unknownMembers) = try readEnvelope(bytes, known: ["envoy", "records"])
        let envoy = try identifier("envoy", in: envelope)
        var ignored = unknownMembers
        guard let recordsValue = envelope["records"] else { throw .invalid("records", "is required") }
        guard case .array(let elements) = recordsValue else {
            throw .invalid("records", "must be an array, got \(recordsValue.typeName)")
        }
        guard batchRecords.contains(elements.count) else {
            throw .invalid(
                "records",
                "must hold \(batchRecords.lowerBound) to \(batchRecords.upperBound) records, got \(elements.count)")
        }
        var batch = UsageBatch(envoy: envoy, records: [], rejected: [])
        batch.records.reserveCapacity(elements.count)
        for (index, element) in elements.enumerated() {
            if case .object(let object) = element, ignored.count < maxIgnoredFieldNames {
                for member in object.members where !recordFields.contains(member.key) { ignored.insert(member.key) }
            }
            switch readRecord(element) {
            case .success(let record): batch.records.append((index, record))
            case .failure(let problem): batch.rejected.append(.init(index: index, error: problem.message))
            }
        }
        batch.ignoredFields = Array(ignored.sorted().prefix(maxIgnoredFieldNames))
        return batch
    }

    /// The body of a fleet request as a JSON object, and its members not in `known`: those are
    /// ignored, not refused, so a sender newer than this sluiced loses nothing over a field added
    /// later (the answer and the log name them).
    /// - Throws: `AdminError.invalidRequest` (400) for a body that is not a JSON object.
    static func readEnvelope(_ bytes: [UInt8], known: Set<String>) throws(AdminError) -> (JSONObject, Set<String>) {
        let document: JSONValue
        do {
            document = try JSONParser.parse(bytes, limits: JSONLimits(maxDepth: 8, maxBytes: maxBodyBytes))
        } catch {
            throw AdminError(.invalidRequest, "the body is not valid JSON: \(error)")
        }
        guard case .object(let envelope) = document else {
            throw AdminError(.invalidRequest, "the body must be a JSON object, got \(document.typeName)")
        }
        var ignored = Set<String>()
        for member in envelope.members where !known.contains(member.key) { ignored.insert(member.key) }
        return (envelope, ignored)
    }

    /// The envelope's `field`: 1 to 128 printable ASCII characters.
    static func identifier(_ field: String, in envelope: JSONObject) throws(AdminError) -> String {
        guard let value = envelope[field] else { throw .invalid(field, "is required") }
        guard case .string(let text) = value else { throw .invalid(field, "must be a string, got \(value.typeName)") }
        if let problem = identifierProblem(text) { throw .invalid(field, problem) }
        return text
    }

    struct RecordProblem: Error {
        var message: String
        init(_ field: String, _ problem: String) { message = "\(field): \(problem)" }
        init(whole problem: String) { message = problem }
    }

    /// One record, or the first thing wrong with it.
    static func readRecord(_ value: JSONValue) -> Result<FleetUsageRecord, RecordProblem> {
        do {
            return .success(try record(value))
        } catch {
            return .failure(error)
        }
    }

    private static func record(_ value: JSONValue) throws(RecordProblem) -> FleetUsageRecord {
        guard case .object(let object) = value else {
            throw RecordProblem(whole: "a record must be a JSON object, got \(value.typeName)")
        }
        func string(_ field: String) throws(RecordProblem) -> String {
            guard let value = object[field] else { throw RecordProblem(field, "is required") }
            guard case .string(let text) = value else {
                throw RecordProblem(field, "must be a string, got \(value.typeName)")
            }
            return text
        }
        func name(_ field: String) throws(RecordProblem) -> String {
            let text = try string(field)
            guard text.utf8.count <= maxNameBytes else {
                throw RecordProblem(field, "must be at most \(maxNameBytes) bytes, got \(text.utf8.count)")
            }
            guard !text.unicodeScalars.contains(where: { $0.value < 0x20 || $0.value == 0x7F }) else {
                throw RecordProblem(field, "must not contain control characters")
            }
            return text
        }
        func integer(_ field: String, in range: ClosedRange<Int64>, value: JSONValue?) throws(RecordProblem) -> Int64 {
            guard let value else { throw RecordProblem(field, "is required") }
            let problem = "must be an integer between \(range.lowerBound) and \(range.upperBound)"
            guard case .number(let number) = value else {
                throw RecordProblem(field, "\(problem), got \(value.typeName)")
            }
            guard number.isInteger, let integer = number.int64, range.contains(integer) else {
                throw RecordProblem(field, "\(problem), got \(number.text)")
            }
            return integer
        }
        func integer(_ field: String, in range: ClosedRange<Int64>) throws(RecordProblem) -> Int64 {
            try integer(field, in: range, value: object[field])
        }

        let id = try string("id")
        if let problem = identifierProblem(id) { throw RecordProblem("id", problem) }
        var record = FleetUsageRecord(id: id, timeMillis: try integer("time_ms", in: timeRange))
        record.key = try name("key")
        record.team = try name("team")
        record.model = try name("model")
        record.backend = try name("backend")
        record.provider = try name("provider")
        record.status = Int(try integer("status", in: statusRange))
        record.inputTokens = Int(try integer("input_tokens", in: countRange))
        record.cachedInputTokens = Int(try integer("cached_input_tokens", in: countRange))
        record.outputTokens = Int(try integer("output_tokens", in: countRange))
        // `unit` and `search_units` came later: a sender that predates them metered tokens only.
        switch object["unit"] {
        case nil: record.unit = .tokens
        case .string(let name)?:
            guard let unit = UsageUnit(rawValue: name) else {
                throw RecordProblem("unit", "must be one of \(unitNames), got '\(name.prefix(32))'")
            }
            record.unit = unit
        case let value?: throw RecordProblem("unit", "must be a string, got \(value.typeName)")
        }
        switch object["search_units"] {
        case nil: record.searchUnits = 0
        case let value?: record.searchUnits = Int(try integer("search_units", in: countRange, value: value))
        }
        record.costMicros = try integer("cost_micro_usd", in: costRange)
        record.durationMillis = try integer("duration_ms", in: countRange)
        switch object["ttft_ms"] {
        case nil, .null?: record.ttftMillis = nil
        case let value?: record.ttftMillis = try integer("ttft_ms", in: countRange, value: value)
        }
        guard let stream = object["stream"] else { throw RecordProblem("stream", "is required") }
        guard case .bool(let flag) = stream else { throw RecordProblem("stream", "must be true or false, got \(stream.typeName)") }
        record.stream = flag
        return record
    }

    /// Why `text` is not 1 to 128 printable ASCII characters, or nil.
    static func identifierProblem(_ text: String) -> String? {
        let count = text.utf8.count
        guard identifierLength.contains(count) else {
            return "must be \(identifierLength.lowerBound) to \(identifierLength.upperBound) printable ASCII characters, got \(count) bytes"
        }
        guard text.utf8.allSatisfy({ (0x20...0x7E).contains($0) }) else {
            return "must be printable ASCII (0x20 to 0x7E)"
        }
        return nil
    }
}
