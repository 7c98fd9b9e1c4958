// Session affinity: which endpoint each session's requests went to, learnt from the picks.
//
// A multi-turn conversation or an agent's loop resends its whole history with every request; the
// replica that served the previous turn holds that history in its KV cache. Prefix hashing finds
// it too, but only within the first `EndpointHandOver.maxBlocks` blocks and only when the client
// resends the bytes unchanged; a session id the client (or an agent framework) sends in a header
// says it directly, even when the prompt is short or rewritten. The scorer adds `session_weight`
// to the endpoint the session used last, so the session stays there while that endpoint is not
// saturated, and moves (and the table follows) when it is.
//
// Learnt rather than derived: hashing the session id onto an endpoint (consistent hashing) would
// ignore load and break when the pool changes; recording where the scorer actually sent the
// session keeps the pick load-aware. The table has the prefix index's shape for the same
// reasons: fixed memory, no allocation after init, 4-way set-associative with least-recently-used
// replacement, so sessions that stopped talking are forgotten first.

/// Where each session last went, bounded; see the file's comment.
public struct SessionTable: Sendable {
    public static let ways = 4
    /// 64 to 4 M sessions (16 bytes each: 64 MiB at most).
    public static let capacityRange = 64...(1 << 22)
    /// Session ids longer than this are not used (a header that long is not an id).
    public static let maxIDBytes = 512

    /// Slots (a power of two, `ways` × sets).
    public let capacity: Int
    private let setMask: Int
    private var keys: [UInt64]
    /// Per slot: the endpoint (low 8 bits) and the last-use tick (the rest).
    private var entries: [UInt64]
    private var tick: UInt64 = 0
    /// Slots holding a session, for the admin page.
    public private(set) var occupied = 0

    /// `capacity` is rounded up to a power of two.
    public init(capacity: Int = 65_536) throws(EndpointConfigError) {
        guard Self.capacityRange.contains(capacity) else {
            throw EndpointConfigError(
                field: "session_entries",
                message: "must be \(Self.capacityRange.lowerBound)...\(Self.capacityRange.upperBound), got \(capacity)")
        }
        var rounded = Self.ways
        while rounded < capacity { rounded &<<= 1 }
        self.capacity = rounded
        setMask = rounded / Self.ways - 1
        keys = Array(repeating: 0, count: rounded)
        entries = Array(repeating: 0, count: rounded)
    }

    /// The key of a session id (its FNV-1a hash, never 0), or nil for an empty or over-long id.
    public static func key(of id: Span<UInt8>) -> UInt64? {
        guard id.count > 0, id.count <= maxIDBytes else { return nil }
        return AdapterID(name: id).value
    }

    public static func key(of id: String) -> UInt64? {
        let bytes = Array(id.utf8)
        return key(of: bytes.span)
    }

    @inline(__always)
    private func setStart(_ key: UInt64) -> Int {
        // The low bits of an FNV-1a hash mix poorly for ids differing in their last byte; fold
        // the high half in.
        (Int(truncatingIfNeeded: key ^ (key &>> 32)) & setMask) &* Self.ways
    }

    /// The endpoint `key`'s session went to last, if the table still holds it.
    public func endpoint(for key: UInt64) -> Int? {
        guard key != 0 else { return nil }
        let start = setStart(key)
        for slot in start..<(start &+ Self.ways) where keys[slot] == key {
            return Int(entries[slot] & 0xFF)
        }
        return nil
    }

    /// Records that `key`'s session went to `endpoint` (0..<64; otherwise ignored).
    public mutating func record(_ key: UInt64, endpoint: Int) {
        guard key != 0, endpoint >= 0, endpoint < EndpointSet.capacity else { return }
        tick &+= 1
        let start = setStart(key)
        var victim = start
        for slot in start..<(start &+ Self.ways) {
            if keys[slot] == key {
                victim = slot
                break
            }
            if keys[slot] == 0 {
                victim = slot
                break
            }
            if entries[slot] &>> 8 < entries[victim] &>> 8 { victim = slot }
        }
        if keys[victim] == 0 { occupied &+= 1 }
        keys[victim] = key
        entries[victim] = (tick &<< 8) | UInt64(endpoint)
    }
}
