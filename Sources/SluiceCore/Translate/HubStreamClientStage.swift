// The driver both hub-to-client stream stages share (`OpenAIToAnthropicStream`,
// `OpenAIToResponsesStream`): parsing the hub's SSE, translating the events completed before an
// oversized one as if they had come alone (the output must not depend on where the stream is
// cut), and ending a stream that stopped without `[DONE]` — complete when the hub sent its finish
// reason, failed otherwise. Each stage keeps only what is its own: how one hub event reads, and
// how its client's stream ends.

/// A stage turning the hub's chat-completion chunks (SSE) into a client's stream events.
protocol HubStreamClientStage {
    /// The hub's SSE, parsed as it arrives.
    var parser: SSEParser { get set }
    /// The stage wrote its final event (completed or failed): later bytes are ignored.
    var isDone: Bool { get }
    /// The hub's finish reason, once seen.
    var finishReason: String? { get }
    /// The message of the error that ends a stream stopped before the answer was complete.
    static var unfinishedMessage: String { get }

    /// One hub event's data (`[DONE]` included), translated into `out`.
    mutating func handle(_ data: [UInt8], _ out: inout [UInt8])
    /// The final events of a complete answer.
    mutating func complete(_ out: inout [UInt8])
    /// Ends the stream with an error event in the client's terms (a server error).
    mutating func failStream(_ message: String, _ out: inout [UInt8])
}

extension HubStreamClientStage {
    /// Feeds hub bytes and returns the client events they complete (possibly none).
    mutating func feedHub(_ chunk: [UInt8]) -> [UInt8] {
        guard !isDone else { return [] }
        var out: [UInt8] = []
        // Events are handled as the parser completes them, with the parser moved out of `self` meanwhile (a
        // placeholder holds no buffer), so they need no array of their own.
        var feeding = SSEParser(maxEventBytes: parser.maxEventBytes)
        swap(&feeding, &parser)
        var oversized = false
        do {
            try feeding.feed(chunk) { event in
                if !isDone { handle(event.data, &out) }
            }
        } catch {
            oversized = true
        }
        swap(&feeding, &parser)
        if oversized, !isDone {
            failStream("An upstream stream event exceeded \(parser.maxEventBytes) bytes.", &out)
        }
        return out
    }

    /// Ends the stream: one that stopped without `[DONE]` completes when the hub sent its finish
    /// reason, and fails otherwise.
    mutating func finishHub() -> [UInt8] {
        guard !isDone else { return [] }
        var out: [UInt8] = []
        // Accepts exactly what `JSONParser.parse` accepts (repeated member names refused too), without a tree.
        var validator = JSONValidator()
        for event in parser.finish() where !isDone {
            // An event without its blank line is usually cut mid-JSON: that is truncation, not garbage.
            guard event.data.elementsEqual("[DONE]".utf8) || (try? validator.validate(event.data)) != nil else { break }
            handle(event.data, &out)
        }
        guard !isDone else { return out }
        if finishReason != nil {
            complete(&out)
        } else {
            failStream(Self.unfinishedMessage, &out)
        }
        return out
    }
}
