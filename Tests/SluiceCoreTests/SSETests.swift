import Testing

@testable import SluiceCore

@Suite struct SSETests {
    static let stream = Array(
        "event: message_start\ndata: {\"a\":1}\n\n: keep-alive\n\ndata: line1\ndata: line2\r\n\r\nid: 7\ndata: x\r\rdata: [DONE]\n\n"
            .utf8)

    static let expected = [
        SSEEvent(event: "message_start", data: Array(#"{"a":1}"#.utf8)),
        SSEEvent(data: Array("line1\nline2".utf8)),
        SSEEvent(data: Array("x".utf8), id: "7"),
        SSEEvent(data: Array("[DONE]".utf8), id: "7"),
    ]

    @Test func parsesWholeStream() throws {
        var parser = SSEParser()
        var events = try parser.feed(Self.stream)
        events += parser.finish()
        #expect(events == Self.expected)
    }

    @Test func everySplitPointGivesTheSameEvents() throws {
        for split in 0...Self.stream.count {
            var parser = SSEParser()
            var events = try parser.feed(Self.stream[0..<split])
            events += try parser.feed(Self.stream[split...])
            events += parser.finish()
            #expect(events == Self.expected, "split at \(split)")
        }
        var parser = SSEParser()
        var events: [SSEEvent] = []
        for byte in Self.stream { events += try parser.feed([byte]) }
        #expect(events + parser.finish() == Self.expected)
    }

    @Test func unterminatedLastEventIsDispatchedAtFinish() throws {
        var parser = SSEParser()
        #expect(try parser.feed(Array("data: tail".utf8)).isEmpty)
        #expect(parser.finish() == [SSEEvent(data: Array("tail".utf8))])
    }

    @Test func oversizedEventIsAnError() {
        var parser = SSEParser(maxEventBytes: 16)
        #expect(throws: SSEError.eventTooLarge(limit: 16)) {
            _ = try parser.feed(Array(("data: " + String(repeating: "x", count: 32)).utf8))
        }
    }

    @Test func writerFrames() {
        var out: [UInt8] = []
        SSEWriter.appendEvent("ping", data: Array("{}".utf8), to: &out)
        SSEWriter.appendData(Array("{\"x\":1}".utf8), to: &out)
        SSEWriter.appendDone(to: &out)
        #expect(String(decoding: out, as: UTF8.self) == "event: ping\ndata: {}\n\ndata: {\"x\":1}\n\ndata: [DONE]\n\n")
    }
}
