// AWS event streams (`application/vnd.amazon.eventstream`), the binary framing of Bedrock's
// ConverseStream and InvokeModelWithResponseStream responses.
//
// A message is:
//
//     total length (u32 BE) | headers length (u32 BE) | prelude CRC (u32 BE, over the first 8 bytes)
//     | headers | payload | message CRC (u32 BE, over everything before it)
//
// and each header is `name length (u8) | name (UTF-8) | type (u8) | value`, with value types
// 0 true, 1 false, 2 byte, 3 short, 4 int, 5 long, 6 bytes (u16 length), 7 string (u16 length),
// 8 timestamp (i64 milliseconds), 9 uuid (16 bytes). All integers are big-endian.
//
// The decoder is incremental: messages may be split across body chunks at any byte, and only the
// unfinished message is buffered. Both CRCs are verified and both lengths are bounded before any
// byte of a message is buffered beyond its prelude, so hostile lengths cannot make it allocate.

// MARK: - Values

/// The value of one event-stream header.
public enum AWSEventHeaderValue: Sendable, Equatable {
    case bool(Bool)
    case byte(Int8)
    case short(Int16)
    case int(Int32)
    case long(Int64)
    case bytes([UInt8])
    case string(String)
    /// Milliseconds since the Unix epoch.
    case timestamp(Int64)
    /// The 16 raw bytes of a UUID.
    case uuid([UInt8])

    /// The string, if this is a string header.
    public var stringValue: String? {
        if case .string(let value) = self { return value }
        return nil
    }
}

/// One decoded event-stream message.
public struct AWSEventMessage: Sendable, Equatable {
    public var headers: [String: AWSEventHeaderValue]
    public var payload: [UInt8]

    public init(headers: [String: AWSEventHeaderValue], payload: [UInt8]) {
        self.headers = headers
        self.payload = payload
    }

    /// `:event-type`, e.g. `contentBlockDelta`.
    public var eventType: String? { headers[":event-type"]?.stringValue }
    /// `:message-type`: `event`, `exception` or `error`.
    public var messageType: String? { headers[":message-type"]?.stringValue }
    /// `:exception-type` of an exception message, e.g. `throttlingException`.
    public var exceptionType: String? { headers[":exception-type"]?.stringValue }
    /// `:content-type` of the payload, usually `application/json`.
    public var contentType: String? { headers[":content-type"]?.stringValue }
}

/// Why an event stream was refused. Once a decoder has thrown, it keeps throwing the same error.
public enum AWSEventStreamError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The CRC of the 8 length bytes does not match the prelude CRC.
    case preludeChecksumMismatch(expected: UInt32, actual: UInt32)
    /// The CRC of the whole message does not match its trailing CRC.
    case messageChecksumMismatch(expected: UInt32, actual: UInt32)
    /// The total length is below the 16-byte minimum or above the decoder's limit.
    case invalidTotalLength(UInt32)
    /// The headers length exceeds the message or the decoder's limit.
    case invalidHeadersLength(UInt32)
    /// A header is truncated, has an unknown type, or a name or string that is not UTF-8.
    case malformedHeader(String)
    /// The stream ended inside a message.
    case truncated(bufferedBytes: Int)
    /// The encoder was given a header name over 255 bytes or a value over 65535 bytes, or a message over the limit.
    case unencodable(String)

    public var description: String {
        switch self {
        case .preludeChecksumMismatch(let expected, let actual):
            "event stream prelude CRC mismatch (expected \(expected), computed \(actual))"
        case .messageChecksumMismatch(let expected, let actual):
            "event stream message CRC mismatch (expected \(expected), computed \(actual))"
        case .invalidTotalLength(let length): "event stream message length \(length) is out of bounds"
        case .invalidHeadersLength(let length): "event stream headers length \(length) is out of bounds"
        case .malformedHeader(let reason): "malformed event stream header: \(reason)"
        case .truncated(let count): "event stream ended inside a message (\(count) bytes buffered)"
        case .unencodable(let reason): "cannot encode event stream message: \(reason)"
        }
    }
}

// MARK: - Decoder

/// An incremental decoder of AWS event-stream messages.
public struct AWSEventStreamDecoder: Sendable {
    /// Prelude (12 bytes) plus message CRC (4 bytes): the smallest possible message.
    public static let minimumMessageLength = 16
    /// Default bound on one message (AWS's own clients allow 16 MiB).
    public static let defaultMaxMessageLength = 16 * 1024 * 1024
    /// Default bound on the headers of one message (AWS's own clients allow 128 KiB).
    public static let defaultMaxHeadersLength = 128 * 1024

    public let maxMessageLength: Int
    public let maxHeadersLength: Int

    /// Bytes of the unfinished message (never more than one message).
    private var buffer: [UInt8] = []
    private var failure: AWSEventStreamError?

    public init(
        maxMessageLength: Int = AWSEventStreamDecoder.defaultMaxMessageLength,
        maxHeadersLength: Int = AWSEventStreamDecoder.defaultMaxHeadersLength
    ) {
        self.maxMessageLength = max(maxMessageLength, Self.minimumMessageLength)
        self.maxHeadersLength = max(maxHeadersLength, 0)
    }

    /// The number of bytes held for an unfinished message.
    public var bufferedByteCount: Int { buffer.count }

    /// Feeds `chunk` and returns every message it completes.
    /// - Throws: `AWSEventStreamError` on a corrupt or oversized message; the decoder stays failed.
    public mutating func feed(_ chunk: [UInt8]) throws(AWSEventStreamError) -> [AWSEventMessage] {
        var messages: [AWSEventMessage] = []
        try feed(chunk) { messages.append($0) }
        return messages
    }

    /// Feeds `chunk` and calls `emit` for every message it completes.
    public mutating func feed(
        _ chunk: [UInt8], _ emit: (AWSEventMessage) -> Void
    ) throws(AWSEventStreamError) {
        if let failure { throw failure }
        var input = chunk[...]
        do {
            while !input.isEmpty {
                if buffer.isEmpty {
                    // Fast path: decode whole messages straight from the chunk, buffering only a tail.
                    guard let length = try completeLength(input) else {
                        buffer.append(contentsOf: input)
                        return
                    }
                    let end = input.startIndex + length
                    emit(try Self.decodeMessage(input[input.startIndex..<end]))
                    input = input[end...]
                } else {
                    // Top up the prelude first, then exactly the rest of the message.
                    let wanted =
                        buffer.count < 12 ? 12 - buffer.count : try validatedPrelude(buffer[...]) - buffer.count
                    let take = min(max(wanted, 0), input.count)
                    buffer.append(contentsOf: input.prefix(take))
                    input = input.dropFirst(take)
                    if buffer.count >= 12, try validatedPrelude(buffer[...]) == buffer.count {
                        let message = try Self.decodeMessage(buffer[...])
                        buffer.removeAll(keepingCapacity: true)
                        emit(message)
                    } else if input.isEmpty {
                        return
                    }
                }
            }
        } catch {
            failure = error
            buffer = []
            throw error
        }
    }

    /// Checks that the stream ended on a message boundary.
    /// - Throws: `.truncated` if part of a message is still buffered, or the earlier failure.
    public mutating func finish() throws(AWSEventStreamError) {
        if let failure { throw failure }
        if !buffer.isEmpty {
            let error = AWSEventStreamError.truncated(bufferedBytes: buffer.count)
            failure = error
            buffer = []
            throw error
        }
    }

    /// The validated total length of the message starting at `bytes.startIndex`, if the prelude is complete;
    /// returns that length only when `bytes` holds the whole message, nil while more bytes are needed.
    ///
    /// When the prelude is complete but the message is not, it still validates the prelude (so a corrupt length
    /// fails before anything is buffered for it) and returns nil.
    private func completeLength(_ bytes: ArraySlice<UInt8>) throws(AWSEventStreamError) -> Int? {
        guard bytes.count >= 12 else { return nil }
        let total = try validatedPrelude(bytes)
        return bytes.count >= total ? total : nil
    }

    /// Validates the prelude at the start of `bytes` (at least 12 bytes) and returns the total length.
    private func validatedPrelude(_ bytes: ArraySlice<UInt8>) throws(AWSEventStreamError) -> Int {
        let base = bytes.startIndex
        let total = Self.uint32(bytes, at: base)
        let headers = Self.uint32(bytes, at: base + 4)
        let expected = Self.uint32(bytes, at: base + 8)
        let actual = CRC32.checksum(bytes[base..<(base + 8)])
        guard expected == actual else { throw .preludeChecksumMismatch(expected: expected, actual: actual) }
        guard Int(total) >= Self.minimumMessageLength, Int(total) <= maxMessageLength else {
            throw .invalidTotalLength(total)
        }
        guard Int(headers) <= maxHeadersLength, Int(headers) <= Int(total) - Self.minimumMessageLength else {
            throw .invalidHeadersLength(headers)
        }
        return Int(total)
    }

    /// Decodes one complete message whose prelude has been validated.
    private static func decodeMessage(_ message: ArraySlice<UInt8>) throws(AWSEventStreamError) -> AWSEventMessage {
        let base = message.startIndex
        let end = message.endIndex
        let expected = uint32(message, at: end - 4)
        let actual = CRC32.checksum(message[base..<(end - 4)])
        guard expected == actual else { throw .messageChecksumMismatch(expected: expected, actual: actual) }
        let headersEnd = base + 12 + Int(uint32(message, at: base + 4))
        let headers = try decodeHeaders(message[(base + 12)..<headersEnd])
        return AWSEventMessage(headers: headers, payload: Array(message[headersEnd..<(end - 4)]))
    }

    /// Decodes a header block, bounds-checking every field against the block.
    static func decodeHeaders(_ block: ArraySlice<UInt8>) throws(AWSEventStreamError) -> [String: AWSEventHeaderValue] {
        // Bedrock sends three headers a message: room for four, so the table is allocated once.
        var headers = [String: AWSEventHeaderValue](minimumCapacity: 4)
        var reader = Reader(bytes: block)
        while !reader.atEnd {
            let nameLength = Int(try reader.byte("name length"))
            guard nameLength > 0 else { throw .malformedHeader("empty header name") }
            let name = try reader.utf8(count: nameLength, "header name")
            let type = try reader.byte("type of \(name)")
            let value: AWSEventHeaderValue
            switch type {
            case 0: value = .bool(true)
            case 1: value = .bool(false)
            case 2: value = .byte(Int8(bitPattern: try reader.byte(name)))
            case 3: value = .short(Int16(bitPattern: UInt16(truncatingIfNeeded: try reader.integer(2, name))))
            case 4: value = .int(Int32(bitPattern: UInt32(truncatingIfNeeded: try reader.integer(4, name))))
            case 5: value = .long(Int64(bitPattern: try reader.integer(8, name)))
            case 6: value = .bytes(Array(try reader.take(Int(try reader.integer(2, name)), name)))
            case 7: value = .string(try reader.utf8(count: Int(try reader.integer(2, name)), name))
            case 8: value = .timestamp(Int64(bitPattern: try reader.integer(8, name)))
            case 9: value = .uuid(Array(try reader.take(16, name)))
            default: throw .malformedHeader("unknown value type \(type) of \(name)")
            }
            headers[name] = value
        }
        return headers
    }

    /// A big-endian `UInt32` at `index`; callers guarantee four bytes are there.
    private static func uint32(_ bytes: ArraySlice<UInt8>, at index: Int) -> UInt32 {
        UInt32(bytes[index]) << 24 | UInt32(bytes[index + 1]) << 16 | UInt32(bytes[index + 2]) << 8
            | UInt32(bytes[index + 3])
    }

    /// A cursor over a header block whose every read is bounds-checked. What is being read (`what`)
    /// is built only for an error: built eagerly, it cost two allocations a header.
    private struct Reader {
        var bytes: ArraySlice<UInt8>

        var atEnd: Bool { bytes.isEmpty }

        mutating func take(_ count: Int, _ what: @autoclosure () -> String) throws(AWSEventStreamError) -> ArraySlice<UInt8> {
            guard count >= 0, count <= bytes.count else { throw .malformedHeader("\(what()) is truncated") }
            let taken = bytes.prefix(count)
            bytes = bytes.dropFirst(count)
            return taken
        }

        mutating func byte(_ what: @autoclosure () -> String) throws(AWSEventStreamError) -> UInt8 {
            guard let first = bytes.first else { throw .malformedHeader("\(what()) is truncated") }
            bytes = bytes.dropFirst()
            return first
        }

        mutating func integer(_ width: Int, _ what: @autoclosure () -> String) throws(AWSEventStreamError) -> UInt64 {
            var value: UInt64 = 0
            for byte in try take(width, what()) { value = value << 8 | UInt64(byte) }
            return value
        }

        mutating func utf8(count: Int, _ what: @autoclosure () -> String) throws(AWSEventStreamError) -> String {
            let raw = try take(count, what())
            guard let text = String(validating: raw, as: UTF8.self) else {
                throw .malformedHeader("\(what()) is not UTF-8")
            }
            return text
        }
    }
}

// MARK: - Encoder

/// Encodes AWS event-stream messages (for tests and the Bedrock simulator).
public enum AWSEventStreamEncoder {
    /// One message with `headers` in the given order.
    /// - Throws: `.unencodable` for a header name over 255 bytes, a bytes/string value over 65535 bytes, or a
    ///   message over `maxMessageLength`.
    public static func encode(
        headers: [(name: String, value: AWSEventHeaderValue)], payload: [UInt8],
        maxMessageLength: Int = AWSEventStreamDecoder.defaultMaxMessageLength
    ) throws(AWSEventStreamError) -> [UInt8] {
        var block: [UInt8] = []
        for (name, value) in headers {
            let nameBytes = Array(name.utf8)
            guard !nameBytes.isEmpty, nameBytes.count <= 255 else { throw .unencodable("header name length") }
            block.append(UInt8(nameBytes.count))
            block.append(contentsOf: nameBytes)
            switch value {
            case .bool(let flag): block.append(flag ? 0 : 1)
            case .byte(let number):
                block.append(2)
                block.append(UInt8(bitPattern: number))
            case .short(let number):
                block.append(3)
                appendBigEndian(UInt64(UInt16(bitPattern: number)), width: 2, to: &block)
            case .int(let number):
                block.append(4)
                appendBigEndian(UInt64(UInt32(bitPattern: number)), width: 4, to: &block)
            case .long(let number):
                block.append(5)
                appendBigEndian(UInt64(bitPattern: number), width: 8, to: &block)
            case .bytes(let bytes):
                guard bytes.count <= 0xFFFF else { throw .unencodable("bytes value of \(name) too long") }
                block.append(6)
                appendBigEndian(UInt64(bytes.count), width: 2, to: &block)
                block.append(contentsOf: bytes)
            case .string(let text):
                let bytes = Array(text.utf8)
                guard bytes.count <= 0xFFFF else { throw .unencodable("string value of \(name) too long") }
                block.append(7)
                appendBigEndian(UInt64(bytes.count), width: 2, to: &block)
                block.append(contentsOf: bytes)
            case .timestamp(let millis):
                block.append(8)
                appendBigEndian(UInt64(bitPattern: millis), width: 8, to: &block)
            case .uuid(let bytes):
                guard bytes.count == 16 else { throw .unencodable("uuid of \(name) is not 16 bytes") }
                block.append(9)
                block.append(contentsOf: bytes)
            }
        }
        let total = 16 + block.count + payload.count
        guard total <= maxMessageLength, total <= Int(UInt32.max) else {
            throw .unencodable("message of \(total) bytes over the limit")
        }
        var message: [UInt8] = []
        message.reserveCapacity(total)
        appendBigEndian(UInt64(total), width: 4, to: &message)
        appendBigEndian(UInt64(block.count), width: 4, to: &message)
        appendBigEndian(UInt64(CRC32.checksum(message)), width: 4, to: &message)
        message.append(contentsOf: block)
        message.append(contentsOf: payload)
        appendBigEndian(UInt64(CRC32.checksum(message)), width: 4, to: &message)
        return message
    }

    /// An `event` message as Bedrock sends it: `:event-type`, `:content-type: application/json`, `:message-type`.
    public static func event(_ type: String, payload: [UInt8]) throws(AWSEventStreamError) -> [UInt8] {
        try encode(
            headers: [
                (":event-type", .string(type)), (":content-type", .string("application/json")),
                (":message-type", .string("event")),
            ], payload: payload)
    }

    /// An `exception` message as Bedrock sends it mid-stream, e.g. `throttlingException` with `{"message":…}`.
    public static func exception(_ type: String, payload: [UInt8]) throws(AWSEventStreamError) -> [UInt8] {
        try encode(
            headers: [
                (":exception-type", .string(type)), (":content-type", .string("application/json")),
                (":message-type", .string("exception")),
            ], payload: payload)
    }

    private static func appendBigEndian(_ value: UInt64, width: Int, to out: inout [UInt8]) {
        var shift = (width - 1) * 8
        while shift >= 0 {
            out.append(UInt8(truncatingIfNeeded: value >> UInt64(shift)))
            shift -= 8
        }
    }
}

// MARK: - Stream stages over an event stream

/// A stream translator that reads an AWS event stream (Bedrock's ConverseStream and
/// InvokeModelWithResponseStream): the decoding and its failures are the same for every such
/// stage, only what a message means differs.
protocol AWSEventStreamStage {
    var decoder: AWSEventStreamDecoder { get set }
    /// The stage has ended its output (an error written, or the end of the stream).
    var done: Bool { get }
    /// Translates one complete message into client bytes.
    mutating func handle(_ message: AWSEventMessage, into out: inout [UInt8])
    /// Writes `error` in the client's shape and ends the stage.
    mutating func fail(_ error: GatewayError, into out: inout [UInt8])
}

extension AWSEventStreamStage {
    /// Feeds raw event-stream bytes; returns the client bytes they complete (possibly none). Messages
    /// completed before a corrupt one still reach the client, whatever the chunking.
    mutating func feedEventStream(_ chunk: [UInt8]) -> [UInt8] {
        guard !done else { return [] }
        var out: [UInt8] = []
        // The decoder is moved out while it calls back into `handle`, which mutates `self`.
        var decoder = AWSEventStreamDecoder(
            maxMessageLength: self.decoder.maxMessageLength, maxHeadersLength: self.decoder.maxHeadersLength)
        swap(&decoder, &self.decoder)
        defer { swap(&decoder, &self.decoder) }
        do {
            try decoder.feed(chunk) { message in
                if !done { handle(message, into: &out) }
            }
        } catch {
            if !done {
                fail(
                    TranslateError.badUpstreamResponse("Bedrock sent a corrupt event stream: \(error.description)")
                        .gatewayError, into: &out)
            }
        }
        return out
    }

    /// The end of the upstream body for the decoder: false (with the error written to `out`) when the
    /// stream was cut inside a message.
    mutating func finishEventStream(into out: inout [UInt8]) -> Bool {
        do {
            try decoder.finish()
            return true
        } catch {
            fail(
                TranslateError.badUpstreamResponse("Bedrock's event stream ended mid-message: \(error.description)")
                    .gatewayError, into: &out)
            return false
        }
    }
}
