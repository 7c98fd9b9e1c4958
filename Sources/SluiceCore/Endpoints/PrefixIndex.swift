// What each endpoint probably holds in its KV cache, learnt from where requests were sent: every
// routed request's prefix-block hashes are recorded against the endpoint it went to, and a new
// request's hashes are looked up per endpoint, counting the leading blocks found. The model
// server evicts least-recently-used blocks when its cache fills; this index does the same, within
// a fixed budget per endpoint, so it forgets what the server has most likely forgotten too.
//
// Fixed memory, no allocation after init: per endpoint a 4-way set-associative table (a block's
// hash picks its set; within a set the least recently used entry is replaced). Exact LRU over the
// whole table would need a linked list per endpoint; 4-way LRU is what CPU caches settle for and
// misses only when more than four hot blocks land in one set. An entry is 16 bytes (hash and
// last-use tick), so the default 16,384 blocks per endpoint (1 M tokens at 64 tokens a block,
// more than one GPU's KV cache holds for a 7-8 B model) cost 256 KiB per endpoint.
//
// The index is a value with mutating `record`: whoever owns it decides how it is shared (one per
// Envoy worker thread, or one behind a lock); neither read nor write allocates.

/// Learnt prefix blocks per endpoint, bounded; see the file's comment.
public struct PrefixIndex: Sendable {
    public static let ways = 4
    public static let maxEndpoints = EndpointSet.capacity
    /// Up to 1 M blocks (16 MiB, 64 M tokens) per endpoint: more than any one server caches.
    public static let blocksPerEndpointRange = 64...(1 << 20)

    public let endpointCount: Int
    /// Entries per endpoint (a power of two, `ways` × sets).
    public let blocksPerEndpoint: Int
    private let setMask: Int
    private var hashes: [UInt64]
    private var lastUse: [UInt64]
    private var tick: UInt64 = 0
    /// Slots holding a block (of `endpointCount * blocksPerEndpoint`): the index's fill, for the
    /// admin page.
    public private(set) var occupied = 0

    /// `blocksPerEndpoint` is rounded up to a power of two.
    public init(endpointCount: Int, blocksPerEndpoint: Int = 16_384) throws(EndpointConfigError) {
        guard (1...Self.maxEndpoints).contains(endpointCount) else {
            throw EndpointConfigError(
                field: "endpoint_count", message: "must be 1...\(Self.maxEndpoints), got \(endpointCount)")
        }
        guard Self.blocksPerEndpointRange.contains(blocksPerEndpoint) else {
            throw EndpointConfigError(
                field: "prefix_blocks_per_endpoint",
                message: "must be \(Self.blocksPerEndpointRange.lowerBound)...\(Self.blocksPerEndpointRange.upperBound), got \(blocksPerEndpoint)")
        }
        var rounded = Self.ways
        while rounded < blocksPerEndpoint { rounded &<<= 1 }
        self.endpointCount = endpointCount
        self.blocksPerEndpoint = rounded
        self.setMask = rounded / Self.ways - 1
        hashes = Array(repeating: 0, count: endpointCount * rounded)
        lastUse = Array(repeating: 0, count: endpointCount * rounded)
    }

    /// The first slot of `hash`'s set for `endpoint`.
    @inline(__always)
    private func setStart(endpoint: Int, hash: UInt64) -> Int {
        endpoint &* blocksPerEndpoint &+ (Int(truncatingIfNeeded: hash) & setMask) &* Self.ways
    }

    /// Records that a request with these blocks was sent to `endpoint` (out of range: ignored).
    public mutating func record(endpoint: Int, _ blocks: borrowing PrefixBlockHashes) {
        guard endpoint >= 0, endpoint < endpointCount else { return }
        for block in 0..<blocks.count {
            let hash = blocks[block]
            tick &+= 1
            let start = setStart(endpoint: endpoint, hash: hash)
            var victim = start
            var found = false
            for slot in start..<(start &+ Self.ways) {
                if hashes[slot] == hash {
                    victim = slot
                    found = true
                    break
                }
                if lastUse[slot] < lastUse[victim] { victim = slot }
            }
            if !found {
                if hashes[victim] == 0 && lastUse[victim] == 0 { occupied &+= 1 }
                hashes[victim] = hash
            }
            lastUse[victim] = tick
        }
    }

    /// How many leading blocks of `blocks` `endpoint` probably holds: the count of blocks, from the
    /// first, found in its table before the first one missing (a later block cannot be reused
    /// by the server without the ones before it).
    public func leadingBlocks(endpoint: Int, _ blocks: borrowing PrefixBlockHashes) -> Int {
        guard endpoint >= 0, endpoint < endpointCount else { return 0 }
        var matched = 0
        while matched < blocks.count {
            let hash = blocks[matched]
            let start = setStart(endpoint: endpoint, hash: hash)
            var found = false
            for slot in start..<(start &+ Self.ways) where hashes[slot] == hash {
                found = true
                break
            }
            if !found { break }
            matched &+= 1
        }
        return matched
    }

    /// Forgets everything recorded for `endpoint` (its server restarted or was replaced).
    public mutating func forget(endpoint: Int) {
        guard endpoint >= 0, endpoint < endpointCount else { return }
        let start = endpoint * blocksPerEndpoint
        for slot in start..<(start + blocksPerEndpoint) {
            if hashes[slot] != 0 || lastUse[slot] != 0 { occupied &-= 1 }
            hashes[slot] = 0
            lastUse[slot] = 0
        }
    }
}

/// A config value out of range: the field and what was wrong with it.
public struct EndpointConfigError: Error, Equatable, Sendable, CustomStringConvertible {
    public let field: String
    public let message: String
    public var description: String { "\(field): \(message)" }
}
