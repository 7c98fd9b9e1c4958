// Server-Sent Events (text/event-stream), incrementally: bytes arrive in arbitrary pieces (an
// event, a line, even a CRLF pair may be split across Envoy body callbacks), and events come out
// as soon as their terminating blank line has arrived. Only the unfinished event is buffered.

/// One dispatched event. `event` is nil when the stream did not name it ("message").
public struct SSEEvent: Sendable, Equatable {
    public var event: String?
    /// The `data:` lines joined with "\n", as bytes (usually JSON).
    public var data: [UInt8]
    public var id: String?

    public init(event: String? = nil, data: [UInt8], id: String? = nil) {
        self.event = event
        self.data = data
        self.id = id
    }

    /// `data` as a string (lossy UTF-8), for tests and logs.
    public var dataString: String { String(decoding: data, as: UTF8.self) }
}

/// Why an event stream was refused.
public enum SSEError: Error, Sendable, Equatable {
    /// One event grew beyond `maxEventBytes` without a terminating blank line.
    case eventTooLarge(limit: Int)
}

/// An incremental SSE parser (WHATWG "event stream interpretation").
public struct SSEParser: Sendable {
    /// The largest single event accepted; a stream that never ends its event is an error, not an
    /// unbounded buffer.
    public let maxEventBytes: Int

    private var line: [UInt8] = []
    private var sawCR = false
    private var eventName: String?
    private var data: [UInt8] = []
    private var hasData = false
    private var lastID: String?
    private var pendingBytes = 0
    private var bomChecked = false

    public init(maxEventBytes: Int = 4 * 1024 * 1024) {
        self.maxEventBytes = maxEventBytes
    }

    /// Feeds `chunk` and calls `emit` for every event completed by it.
    public mutating func feed(_ chunk: some Sequence<UInt8>, _ emit: (SSEEvent) -> Void) throws(SSEError) {
        for byte in chunk {
            if sawCR {
                sawCR = false
                // CRLF: the LF completes the line the CR already ended.
                if byte == 0x0A { continue }
            }
            switch byte {
            case 0x0D:
                sawCR = true
                endLine(emit)
            case 0x0A:
                endLine(emit)
            default:
                line.append(byte)
                pendingBytes += 1
                if pendingBytes > maxEventBytes { throw .eventTooLarge(limit: maxEventBytes) }
            }
        }
    }

    /// Feeds `chunk` and returns the completed events.
    public mutating func feed(_ chunk: some Sequence<UInt8>) throws(SSEError) -> [SSEEvent] {
        var events: [SSEEvent] = []
        try feed(chunk) { events.append($0) }
        return events
    }

    /// End of stream: an event without its final blank line is dispatched if it has data
    /// (providers sometimes omit the last blank line).
    public mutating func finish(_ emit: (SSEEvent) -> Void) {
        if !line.isEmpty { endLine(emit) }
        dispatch(emit)
    }

    public mutating func finish() -> [SSEEvent] {
        var events: [SSEEvent] = []
        finish { events.append($0) }
        return events
    }

    private mutating func endLine(_ emit: (SSEEvent) -> Void) {
        defer { line.removeAll(keepingCapacity: true) }
        if !bomChecked {
            bomChecked = true
            if line.starts(with: [0xEF, 0xBB, 0xBF]) { line.removeFirst(3) }
        }
        if line.isEmpty {
            dispatch(emit)
            return
        }
        if line[0] == UInt8(ascii: ":") { return }  // comment / keep-alive
        let colon = line.firstIndex(of: UInt8(ascii: ":"))
        let fieldEnd = colon ?? line.count
        var valueStart = fieldEnd
        if let colon {
            valueStart = colon + 1
            if valueStart < line.count, line[valueStart] == UInt8(ascii: " ") { valueStart += 1 }
        }
        let field = line[0..<fieldEnd]
        let value = line[valueStart..<line.count]
        if field.elementsEqual("data".utf8) {
            if hasData { data.append(0x0A) }
            data.append(contentsOf: value)
            hasData = true
        } else if field.elementsEqual("event".utf8) {
            eventName = String(decoding: value, as: UTF8.self)
        } else if field.elementsEqual("id".utf8) {
            if !value.contains(0) { lastID = String(decoding: value, as: UTF8.self) }
        }
        // `retry` and unknown fields are ignored, as the spec says.
    }

    private mutating func dispatch(_ emit: (SSEEvent) -> Void) {
        defer {
            eventName = nil
            data.removeAll(keepingCapacity: true)
            hasData = false
            pendingBytes = 0
        }
        guard hasData || eventName != nil else { return }
        emit(SSEEvent(event: eventName, data: data, id: lastID))
    }
}

/// Writes SSE frames.
public enum SSEWriter {
    /// Appends `data: <payload>\n\n` (payload must not contain newlines; JSON from JSONWriter never does).
    public static func appendData(_ payload: [UInt8], to out: inout [UInt8]) {
        out.append(contentsOf: "data: ".utf8)
        out.append(contentsOf: payload)
        out.append(contentsOf: "\n\n".utf8)
    }

    /// Appends `event: <name>\ndata: <payload>\n\n` (Anthropic's framing).
    public static func appendEvent(_ name: String, data payload: [UInt8], to out: inout [UInt8]) {
        out.append(contentsOf: "event: ".utf8)
        out.append(contentsOf: name.utf8)
        out.append(0x0A)
        appendData(payload, to: &out)
    }

    /// `data: [DONE]\n\n`, OpenAI's end-of-stream marker.
    public static func appendDone(to out: inout [UInt8]) {
        out.append(contentsOf: "data: [DONE]\n\n".utf8)
    }
}
