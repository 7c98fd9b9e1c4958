// The module's side of `POST /v1/fleet/leases` on the wire: the request body the background worker
// sends for a `LeaseBook.Request`, and the reading of sluiced's answer into `LeaseGrant`s. Every
// number from sluiced is range-checked where it enters; a grant that is not well formed is
// dropped (and named), never trusted: sluiced then counts a slice this Envoy does not use, which
// comes back to the fleet when the lease expires — the safe side.

/// Encoding of lease requests and reading of their answers (Foundation-free, for the module).
public enum LeaseWire {
    /// `ttl_ms` accepted from sluiced: up to an hour.
    public static let ttlRange: ClosedRange<Int64> = 0...3_600_000
    /// `granted`, `held`, `limit`, `consumed`, `outstanding`, `remaining`: 0...10^15.
    public static let amountRange: ClosedRange<Int64> = 0...1_000_000_000_000_000
    /// Times in Unix milliseconds: 0...2^53.
    public static let timeRange: ClosedRange<Int64> = 0...(1 << 53)

    /// The members naming `key` (`scope`, `name`, `dimension`), as the wire and `/sluice/fleet` spell them.
    public static func writeKey(_ key: LeaseKey, to writer: inout JSONWriter) {
        writer.key("scope")
        writer.string(key.scope.kind.leaseWireName)
        writer.key("name")
        writer.string(key.scope.name)
        writer.key("dimension")
        writer.string(key.dimension.rawValue)
    }

    /// The JSON body of `request` from the holder (`envoy`, `boot`).
    public static func requestBody(_ request: LeaseBook.Request, envoy: String, boot: String) -> [UInt8] {
        var writer = JSONWriter(reservingCapacity: 64 + request.items.count * 160)
        writer.beginObject()
        writer.key("envoy")
        writer.string(envoy)
        writer.key("boot")
        writer.string(boot)
        writer.key("seq")
        writer.int(request.seq)
        writer.key("items")
        writer.beginArray()
        for item in request.items {
            writer.beginObject()
            writeKey(item.key, to: &writer)
            writer.key("window")
            writer.int(item.window)
            writer.key("limit")
            writer.int(item.limit)
            writer.key("spent")
            writer.int(item.spent)
            writer.key("returned")
            writer.int(item.returned)
            writer.key("want")
            writer.int(item.want)
            writer.key("held")
            writer.int(item.held)
            writer.endObject()
        }
        writer.endArray()
        writer.endObject()
        return writer.bytes
    }

    /// sluiced's answer, read.
    public struct Answer: Sendable, Equatable {
        public var seq: Int64
        public var replay: Bool
        public var grants: [LeaseGrant]
        /// Grants dropped as malformed (`grants[3].held: …`), and items sluiced rejected (`items[1]: …`).
        public var problems: [String]
    }

    /// Why an answer could not be read at all (the worker treats it as no answer and resends).
    public struct AnswerError: Error, Sendable, Equatable, CustomStringConvertible {
        public var description: String
    }

    /// Reads sluiced's 200 answer to the request numbered `seq`.
    public static func readAnswer(_ bytes: [UInt8], seq: Int64) -> Result<Answer, AnswerError> {
        let document: JSONValue
        do {
            document = try JSONParser.parse(bytes, limits: JSONLimits(maxDepth: 8, maxBytes: 4 << 20))
        } catch {
            return .failure(AnswerError(description: "the answer is not valid JSON: \(error)"))
        }
        guard case .object(let object) = document else {
            return .failure(AnswerError(description: "the answer must be a JSON object, got \(document.typeName)"))
        }
        guard let answered = object["seq"]?.int64Value, answered == seq else {
            return .failure(AnswerError(description: "the answer's seq is not \(seq)"))
        }
        guard case .array(let grantValues)? = object["grants"] else {
            return .failure(AnswerError(description: "the answer has no grants array"))
        }
        var answer = Answer(seq: seq, replay: object["replay"]?.boolValue ?? false, grants: [], problems: [])
        for (index, value) in grantValues.enumerated() {
            switch grant(value) {
            case .success(let grant): answer.grants.append(grant)
            case .failure(let problem): answer.problems.append("grants[\(index)].\(problem.description)")
            }
        }
        if case .array(let rejected)? = object["rejected"] {
            for entry in rejected.prefix(16) {
                let index = entry["index"]?.int64Value.map(String.init) ?? "?"
                answer.problems.append("items[\(index)]: \(entry["error"]?.stringValue?.prefix(256) ?? "rejected")")
            }
        }
        return .success(answer)
    }

    private static func grant(_ value: JSONValue) -> Result<LeaseGrant, AnswerError> {
        guard case .object = value else { return .failure(AnswerError(description: "is not an object")) }
        guard let scopeText = value["scope"]?.stringValue, let kind = QuotaScope.Kind(leaseWireName: scopeText) else {
            return .failure(AnswerError(description: "scope: not key, team or model"))
        }
        guard let name = value["name"]?.stringValue, (1...256).contains(name.utf8.count) else {
            return .failure(AnswerError(description: "name: not 1 to 256 bytes"))
        }
        guard let dimensionText = value["dimension"]?.stringValue, let dimension = LeaseDimension(rawValue: dimensionText) else {
            return .failure(AnswerError(description: "dimension: unknown"))
        }
        var numbers: [Int64] = []
        let fields: [(String, ClosedRange<Int64>)] = [
            ("window", 0...dimension.period.maxWindow), ("granted", amountRange), ("held", amountRange),
            ("ttl_ms", ttlRange), ("expires_at_ms", timeRange), ("limit", amountRange), ("consumed", amountRange),
            ("outstanding", amountRange), ("remaining", amountRange), ("window_end_ms", timeRange),
        ]
        for (field, range) in fields {
            guard let number = value[field]?.numberValue, number.isInteger, let integer = number.int64, range.contains(integer)
            else {
                return .failure(AnswerError(description: "\(field): not an integer between \(range.lowerBound) and \(range.upperBound)"))
            }
            numbers.append(integer)
        }
        return .success(
            LeaseGrant(
                key: LeaseKey(QuotaScope(kind, name), dimension), window: numbers[0], granted: numbers[1], held: numbers[2],
                ttlMillis: numbers[3], expiresAtMillis: numbers[4], limit: numbers[5], consumed: numbers[6],
                outstanding: numbers[7], remaining: numbers[8], windowEndMillis: numbers[9]))
    }
}

extension QuotaScope.Kind {
    /// `key`, `team`, `model`: the names the lease protocol uses.
    public var leaseWireName: String {
        switch self {
        case .key: "key"
        case .team: "team"
        case .model: "model"
        }
    }

    public init?(leaseWireName: String) {
        switch leaseWireName {
        case "key": self = .key
        case "team": self = .team
        case "model": self = .model
        default: return nil
        }
    }
}
