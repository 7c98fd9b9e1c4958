// sluiced's answer to `POST /v1/fleet/usage`, read as untrusted input: it must be the protocol's
// object with counts that fit the batch that was sent, or it is not an answer at all (the worker
// then retries the batch; sluiced stores records idempotently by id, so a retry never counts twice).

/// `{"accepted": a, "duplicates": d, "rejected": [{"index": i, "error": "..."}]}`.
public struct FleetUsageAnswer: Sendable, Equatable {
    public var accepted: Int
    public var duplicates: Int
    public var rejected: [(index: Int, error: String)]

    public static func == (lhs: FleetUsageAnswer, rhs: FleetUsageAnswer) -> Bool {
        lhs.accepted == rhs.accepted && lhs.duplicates == rhs.duplicates
            && lhs.rejected.map(\.index) == rhs.rejected.map(\.index) && lhs.rejected.map(\.error) == rhs.rejected.map(\.error)
    }

    /// Why an answer was not taken.
    public struct Invalid: Error, Sendable, Equatable, CustomStringConvertible {
        public var message: String
        public var description: String { message }
    }

    /// The answer for a batch of `batchCount` records. Every record must be accounted for exactly
    /// once: `accepted + duplicates + rejected.count == batchCount`, rejected indexes distinct and
    /// within the batch. Unknown members are ignored (a newer sluiced may say more).
    public static func parse(_ body: [UInt8], batchCount: Int) throws(Invalid) -> FleetUsageAnswer {
        let document: JSONValue
        do {
            document = try JSONParser.parse(body, limits: JSONLimits(maxDepth: 8, maxBytes: 4 * 1024 * 1024))
        } catch {
            throw Invalid(message: "answer is not JSON: \(error)")
        }
        guard case .object(let object) = document else { throw Invalid(message: "answer is not an object") }
        let accepted = try count(object, "accepted", max: batchCount)
        let duplicates = try count(object, "duplicates", max: batchCount)
        var rejected: [(index: Int, error: String)] = []
        switch object["rejected"] {
        case nil, .null?:
            break
        case .array(let entries)?:
            guard entries.count <= batchCount else {
                throw Invalid(message: "answer rejects \(entries.count) records of a batch of \(batchCount)")
            }
            var seen = Set<Int>()
            for (position, entry) in entries.enumerated() {
                guard case .object(let item) = entry else { throw Invalid(message: "rejected[\(position)] is not an object") }
                guard let index = item["index"]?.int64Value, index >= 0, index < batchCount else {
                    throw Invalid(message: "rejected[\(position)].index is not an index of the batch (0..<\(batchCount))")
                }
                guard seen.insert(Int(index)).inserted else {
                    throw Invalid(message: "rejected[\(position)].index \(index) is repeated")
                }
                guard case .string(let message)? = item["error"] else {
                    throw Invalid(message: "rejected[\(position)].error is not a string")
                }
                rejected.append((Int(index), String(message.prefix(300))))
            }
        default:
            throw Invalid(message: "rejected is not an array")
        }
        guard accepted + duplicates + rejected.count == batchCount else {
            throw Invalid(
                message: "answer accounts for \(accepted + duplicates + rejected.count) records of a batch of \(batchCount)")
        }
        return FleetUsageAnswer(accepted: accepted, duplicates: duplicates, rejected: rejected)
    }

    private static func count(_ object: JSONObject, _ name: String, max: Int) throws(Invalid) -> Int {
        guard let value = object[name] else { throw Invalid(message: "answer has no \(name)") }
        guard let number = value.int64Value, number >= 0, number <= Int64(max) else {
            throw Invalid(message: "\(name) is not an integer in 0...\(max)")
        }
        return Int(number)
    }
}
