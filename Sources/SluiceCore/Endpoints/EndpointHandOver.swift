// The hand-over from the gateway filter to the load balancer: one compact request header.
//
// Why a header: the load-balancing module sees the request only through Envoy's
// LoadBalancerContext — its headers and a hash key, never the body, dynamic metadata or filter
// state. The body (prompt, model) is the filter's; retries and host health are the load
// balancer's. So the filter, which has read the body anyway to route on `model`, computes the
// prompt's prefix-block hashes and the LoRA adapter once and writes them here; the load
// balancer, which runs for every attempt with Envoy's host set and retry state, reads them.
//
// Format (ASCII, at most 17 + 16 × 64 bytes):
//
//     x-sluice-epp: <adapter: 16 lower-case hex digits, or empty>;<16 hex digits per block hash>
//
// e.g. `;3f2a…` (no adapter, hashes) or `00c0ffee00c0ffee;` (an adapter, a prompt under one
// block). The header is the gateway's own: the upstream filter removes it before the request
// leaves Envoy, and a client's copy is overwritten or removed by the gateway filter, so a
// client cannot steer the pick beyond what its own prompt does.

/// Encodes and decodes the `x-sluice-epp` hand-over header.
public enum EndpointHandOver {
    public static let headerName = "x-sluice-epp"
    /// Block hashes carried at most (16 KiB of prompt): the blocks that decide affinity are the
    /// leading ones, and the header stays about 1 KiB.
    public static let maxBlocks = 64
    public static let maxValueBytes = 17 + 16 * maxBlocks

    /// The header value for `prefix` (its first `maxBlocks` hashes) and `adapter`.
    public static func encode(prefix: borrowing PrefixBlockHashes, adapter: AdapterID?) -> String {
        let blocks = min(prefix.count, maxBlocks)
        var bytes: [UInt8] = []
        bytes.reserveCapacity(17 + 16 * blocks)
        if let adapter { appendHex(adapter.value, to: &bytes) }
        bytes.append(UInt8(ascii: ";"))
        for block in 0..<blocks { appendHex(prefix[block], to: &bytes) }
        return String(decoding: bytes, as: UTF8.self)
    }

    /// The request a header value describes, or nil when it is malformed (wrong length, a byte
    /// that is not lower-case hex, a zero hash): the caller then trusts none of it.
    public static func decode(_ value: Span<UInt8>) -> EndpointRequest? {
        guard value.count > 0, value.count <= maxValueBytes else { return nil }
        var separator = -1
        for index in 0..<min(value.count, 17) where value[index] == UInt8(ascii: ";") {
            separator = index
            break
        }
        guard separator == 0 || separator == 16 else { return nil }
        var request = EndpointRequest()
        if separator == 16 {
            guard let adapter = readHex(value, from: 0), adapter != 0 else { return nil }
            request.adapter = AdapterID(hash: adapter)
        }
        let hashBytes = value.count &- separator &- 1
        guard hashBytes % 16 == 0, hashBytes / 16 <= maxBlocks else { return nil }
        var offset = separator &+ 1
        while offset < value.count {
            guard let hash = readHex(value, from: offset), request.prefix.append(hash) else { return nil }
            offset &+= 16
        }
        return request
    }

    public static func decode(_ value: [UInt8]) -> EndpointRequest? { decode(value.span) }

    private static let hexDigits: InlineArray<16, UInt8> = [
        0x30, 0x31, 0x32, 0x33, 0x34, 0x35, 0x36, 0x37, 0x38, 0x39, 0x61, 0x62, 0x63, 0x64, 0x65, 0x66,
    ]

    private static func appendHex(_ value: UInt64, to bytes: inout [UInt8]) {
        var shift: UInt64 = 60
        for _ in 0..<16 {
            bytes.append(hexDigits[Int((value &>> shift) & 0xF)])
            shift &-= 4
        }
    }

    /// 16 lower-case hex digits at `offset`, or nil.
    private static func readHex(_ bytes: Span<UInt8>, from offset: Int) -> UInt64? {
        guard offset >= 0, offset &+ 16 <= bytes.count else { return nil }
        var value: UInt64 = 0
        for index in offset..<(offset &+ 16) {
            let byte = bytes[index]
            let digit: UInt8
            switch byte {
            case 0x30...0x39: digit = byte &- 0x30
            case 0x61...0x66: digit = byte &- 0x61 &+ 10
            default: return nil
            }
            value = value &<< 4 | UInt64(digit)
        }
        return value
    }

    /// The bytes of a request body the prefix hashes cover: from the prompt's field on. The
    /// filter has no tokenizer and does not re-serialise the messages; two requests that share a
    /// system prompt share the bytes of their `messages` (or `prompt`) array up to where they
    /// differ, while the fields before it (`model`, `stream`, `max_tokens`, ...) vary between
    /// otherwise equal requests. Starting at the field's key skips them. A Responses API body
    /// has neither: its prompt is `instructions` (the system prompt) and `input`, from whichever
    /// comes first. A body with none of these keys is hashed whole.
    public static func promptBytes(of body: Span<UInt8>) -> Range<Int> {
        let start =
            firstIndex(of: messagesKey, in: body) ?? firstIndex(of: promptKey, in: body)
            ?? earliest(firstIndex(of: instructionsKey, in: body), firstIndex(of: inputKey, in: body)) ?? 0
        return start..<body.count
    }

    private static let messagesKey: [UInt8] = Array("\"messages\"".utf8)
    private static let promptKey: [UInt8] = Array("\"prompt\"".utf8)
    private static let instructionsKey: [UInt8] = Array("\"instructions\"".utf8)
    private static let inputKey: [UInt8] = Array("\"input\"".utf8)

    private static func earliest(_ a: Int?, _ b: Int?) -> Int? {
        guard let a else { return b }
        guard let b else { return a }
        return min(a, b)
    }

    private static func firstIndex(of needle: [UInt8], in haystack: Span<UInt8>) -> Int? {
        let last = haystack.count &- needle.count
        guard last >= 0, let first = needle.first else { return nil }
        var index = 0
        while index <= last {
            if haystack[index] == first {
                var matched = 1
                while matched < needle.count, haystack[index &+ matched] == needle[matched] { matched &+= 1 }
                if matched == needle.count { return index }
            }
            index &+= 1
        }
        return nil
    }
}

/// Least-request among candidates: the fewest active requests, ties broken by rotating the start
/// (`tieBreak`), so idle hosts share the load rather than the first taking everything.
public enum LeastRequest {
    /// The candidate in `0..<count` (and in `candidates`) with the fewest `active(i)`, or nil.
    public static func pick(
        count: Int, candidates: EndpointSet, tieBreak: UInt64, active: (Int) -> UInt64
    ) -> Int? {
        let hosts = min(count, EndpointSet.capacity)
        guard hosts > 0 else { return nil }
        let start = Int(tieBreak % UInt64(hosts))
        var best = -1
        var bestActive = UInt64.max
        for step in 0..<hosts {
            var index = start &+ step
            if index >= hosts { index &-= hosts }
            guard candidates.contains(index) else { continue }
            let load = active(index)
            if best < 0 || load < bestActive {
                best = index
                bestActive = load
            }
        }
        return best >= 0 ? best : nil
    }
}
