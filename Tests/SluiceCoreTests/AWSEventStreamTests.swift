import Testing

@testable import SluiceCore

@Suite struct AWSEventStreamTests {
    @Test func crc32KnownVectors() {
        #expect(CRC32.checksum(Array("123456789".utf8)) == 0xCBF4_3926)
        #expect(CRC32.checksum([UInt8]()) == 0)
        var crc = CRC32()
        crc.update(Array("1234".utf8))
        crc.update(Array("56789".utf8))
        #expect(crc.value == 0xCBF4_3926)
    }

    /// AWS's published event-stream test vector "all_headers" style check: an empty message is 16 bytes with the
    /// well-known prelude and message CRCs.
    @Test func emptyMessageMatchesTheSpec() throws {
        let bytes = try AWSEventStreamEncoder.encode(headers: [], payload: [])
        #expect(bytes == [0, 0, 0, 0x10, 0, 0, 0, 0, 0x05, 0xC2, 0x48, 0xEB, 0x7D, 0x98, 0xC8, 0xFF])
        var decoder = AWSEventStreamDecoder()
        #expect(try decoder.feed(bytes) == [AWSEventMessage(headers: [:], payload: [])])
    }

    static let allHeaders: [(name: String, value: AWSEventHeaderValue)] = [
        ("true", .bool(true)), ("false", .bool(false)), ("byte", .byte(-7)), ("short", .short(-300)),
        ("int", .int(70_000)), ("long", .long(-5_000_000_000)), ("bytes", .bytes([0, 1, 2, 255])),
        (":event-type", .string("contentBlockDelta")), ("ts", .timestamp(1_700_000_000_123)),
        ("uuid", .uuid(Array(0..<16))),
    ]

    static func sampleStream() throws -> (bytes: [UInt8], messages: [AWSEventMessage]) {
        var bytes: [UInt8] = []
        var messages: [AWSEventMessage] = []
        let payloads = [Array(#"{"delta":{"text":"héllo"}}"#.utf8), [], Array(repeating: 0x41, count: 300)]
        for payload in payloads {
            bytes += try AWSEventStreamEncoder.encode(headers: allHeaders, payload: payload)
            messages.append(
                AWSEventMessage(headers: Dictionary(uniqueKeysWithValues: allHeaders.map { ($0.name, $0.value) }), payload: payload))
        }
        return (bytes, messages)
    }

    @Test func roundTripsEveryHeaderType() throws {
        let (bytes, expected) = try Self.sampleStream()
        var decoder = AWSEventStreamDecoder()
        let messages = try decoder.feed(bytes)
        #expect(messages == expected)
        #expect(messages.first?.eventType == "contentBlockDelta")
        try decoder.finish()
    }

    @Test func everySplitPointGivesTheSameMessages() throws {
        let (bytes, expected) = try Self.sampleStream()
        for split in 0...bytes.count {
            var decoder = AWSEventStreamDecoder()
            var messages = try decoder.feed(Array(bytes[0..<split]))
            messages += try decoder.feed(Array(bytes[split...]))
            try decoder.finish()
            #expect(messages == expected, "split at \(split)")
        }
        var decoder = AWSEventStreamDecoder()
        var messages: [AWSEventMessage] = []
        for byte in bytes { messages += try decoder.feed([byte]) }
        #expect(messages == expected)
        #expect(decoder.bufferedByteCount == 0)
    }

    @Test func randomChunkingsGiveTheSameMessages() throws {
        let (bytes, expected) = try Self.sampleStream()
        var rng = SplitMix64(seed: 42)
        for _ in 0..<200 {
            var decoder = AWSEventStreamDecoder()
            var messages: [AWSEventMessage] = []
            var offset = 0
            while offset < bytes.count {
                let size = Int.random(in: 1...64, using: &rng)
                let end = min(offset + size, bytes.count)
                messages += try decoder.feed(Array(bytes[offset..<end]))
                offset = end
            }
            #expect(messages == expected)
        }
    }

    static func frame() throws -> [UInt8] {
        try AWSEventStreamEncoder.event("messageStart", payload: Array(#"{"role":"assistant"}"#.utf8))
    }

    @Test func corruptPreludeCRCIsAnError() throws {
        var bytes = try Self.frame()
        bytes[9] ^= 0x01
        var decoder = AWSEventStreamDecoder()
        #expect {
            _ = try decoder.feed(bytes)
        } throws: { error in
            if case .preludeChecksumMismatch = error as? AWSEventStreamError { return true }
            return false
        }
        // The decoder stays failed.
        #expect(throws: AWSEventStreamError.self) { _ = try decoder.feed(try Self.frame()) }
    }

    @Test func corruptPayloadIsAMessageCRCError() throws {
        var bytes = try Self.frame()
        bytes[bytes.count - 6] ^= 0x20
        for split in [0, 5, 12, bytes.count - 1] {
            var decoder = AWSEventStreamDecoder()
            #expect {
                _ = try decoder.feed(Array(bytes[..<split]))
                _ = try decoder.feed(Array(bytes[split...]))
            } throws: { error in
                if case .messageChecksumMismatch = error as? AWSEventStreamError { return true }
                return false
            }
        }
    }

    /// A prelude with a consistent CRC but hostile lengths.
    static func prelude(total: UInt32, headers: UInt32) -> [UInt8] {
        var bytes: [UInt8] = []
        for value in [total, headers] {
            bytes += [UInt8(value >> 24), UInt8(value >> 16 & 0xFF), UInt8(value >> 8 & 0xFF), UInt8(value & 0xFF)]
        }
        let crc = CRC32.checksum(bytes)
        return bytes + [UInt8(crc >> 24), UInt8(crc >> 16 & 0xFF), UInt8(crc >> 8 & 0xFF), UInt8(crc & 0xFF)]
    }

    static let hostileLengths: [(UInt32, UInt32, AWSEventStreamError)] = [
        (15, 0, .invalidTotalLength(15)),
        (UInt32.max, 0, .invalidTotalLength(UInt32.max)),
        (16_777_217, 0, .invalidTotalLength(16_777_217)),
        (100, 85, .invalidHeadersLength(85)),
        (1_000_000, 200_000, .invalidHeadersLength(200_000)),
    ]

    @Test(arguments: hostileLengths)
    func hostileLengthsAreRejectedBeforeBuffering(total: UInt32, headers: UInt32, error: AWSEventStreamError) {
        var decoder = AWSEventStreamDecoder()
        #expect(throws: error) { _ = try decoder.feed(Self.prelude(total: total, headers: headers)) }
        #expect(decoder.bufferedByteCount == 0)
    }

    @Test func malformedHeadersAreErrors() throws {
        // A header claiming a 10-byte string in a 5-byte block.
        let block: [UInt8] = [1, 0x61, 7, 0, 10]
        #expect(throws: AWSEventStreamError.self) { _ = try AWSEventStreamDecoder.decodeHeaders(block[...]) }
        #expect(throws: AWSEventStreamError.self) { _ = try AWSEventStreamDecoder.decodeHeaders([1, 0x61, 10][...]) }
        #expect(throws: AWSEventStreamError.self) { _ = try AWSEventStreamDecoder.decodeHeaders([0][...]) }
        #expect(throws: AWSEventStreamError.self) {
            _ = try AWSEventStreamDecoder.decodeHeaders([1, 0x61, 7, 0, 2, 0xC3, 0x28][...])
        }
    }

    @Test func truncatedStreamIsAnErrorAtFinish() throws {
        let bytes = try Self.frame()
        var decoder = AWSEventStreamDecoder()
        _ = try decoder.feed(Array(bytes.dropLast(3)))
        #expect(throws: AWSEventStreamError.truncated(bufferedBytes: bytes.count - 3)) { try decoder.finish() }
    }

    /// Runs in an exit test: a trap fails this test alone instead of the whole suite.
    @Test func fuzzNeverTraps() async {
        await #expect(processExitsWith: .success) { try AWSEventStreamTests.fuzzNeverTrapsRun() }
    }

    static func fuzzNeverTrapsRun() throws {
        var rng = SplitMix64(seed: 0xB3D_0C4)
        let (valid, _) = try Self.sampleStream()
        for round in 0..<3000 {
            var input: [UInt8]
            if round % 3 == 0 {
                input = (0..<Int.random(in: 0...80, using: &rng)).map { _ in UInt8.random(in: 0...255, using: &rng) }
            } else {
                input = valid
                for _ in 0..<Int.random(in: 1...4, using: &rng) {
                    input[Int.random(in: 0..<input.count, using: &rng)] = UInt8.random(in: 0...255, using: &rng)
                }
            }
            var decoder = AWSEventStreamDecoder()
            var offset = 0
            while offset < input.count {
                let end = min(offset + Int.random(in: 1...40, using: &rng), input.count)
                do { _ = try decoder.feed(Array(input[offset..<end])) } catch { break }
                offset = end
            }
            #expect(decoder.bufferedByteCount <= AWSEventStreamDecoder.defaultMaxMessageLength)
        }
    }
}
