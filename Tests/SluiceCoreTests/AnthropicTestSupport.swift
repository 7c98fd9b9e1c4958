// Fixture loading, golden comparison and a seeded PRNG for the Anthropic translator tests.
// Set SLUICE_UPDATE_FIXTURES=1 to rewrite the expected files for review.

import Foundation
import Testing

@testable import SluiceCore

enum AnthropicFixtures {
    static let directory = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .appendingPathComponent("Fixtures/anthropic")

    static var updating: Bool { ProcessInfo.processInfo.environment["SLUICE_UPDATE_FIXTURES"] != nil }

    static func bytes(_ name: String) throws -> [UInt8] {
        let url = directory.appendingPathComponent(name)
        guard let data = FileManager.default.contents(atPath: url.path) else {
            throw FixtureMissing(name: name)
        }
        return [UInt8](data)
    }

    static func json(_ name: String) throws -> JSONValue {
        try JSONParser.parse(try bytes(name))
    }

    struct FixtureMissing: Error, CustomStringConvertible {
        var name: String
        var description: String { "missing fixture \(name) (run with SLUICE_UPDATE_FIXTURES=1)" }
    }

    /// Compares JSON `actual` with the expected fixture, ignoring member order.
    static func expectJSON(
        _ actual: [UInt8], matches name: String, sourceLocation: SourceLocation = #_sourceLocation
    ) throws {
        let value = try JSONParser.parse(actual)
        if updating {
            try Data(pretty(value).utf8).write(to: directory.appendingPathComponent(name))
            return
        }
        let expected = try json(name)
        #expect(sorted(value) == sorted(expected), "\(name):\n\(pretty(value))", sourceLocation: sourceLocation)
    }

    /// Compares bytes exactly (streams: the framing is part of the contract).
    static func expectBytes(
        _ actual: [UInt8], match name: String, sourceLocation: SourceLocation = #_sourceLocation
    ) throws {
        if updating {
            try Data(actual).write(to: directory.appendingPathComponent(name))
            return
        }
        let expected = try bytes(name)
        #expect(
            actual == expected, "\(name):\n\(String(decoding: actual, as: UTF8.self))", sourceLocation: sourceLocation)
    }

    /// The value with every object's members sorted by key, so comparisons ignore member order.
    static func sorted(_ value: JSONValue) -> JSONValue {
        switch value {
        case .array(let elements): .array(elements.map(sorted))
        case .object(let object):
            .object(
                JSONObject(object.members.sorted { $0.key < $1.key }.map { (key: $0.key, value: sorted($0.value)) }))
        default: value
        }
    }

    /// Pretty-printed JSON with sorted keys and two-space indentation.
    static func pretty(_ value: JSONValue, indent: String = "") -> String {
        let inner = indent + "  "
        switch value {
        case .array(let elements):
            if elements.isEmpty { return "[]" }
            return "[\n" + elements.map { inner + pretty($0, indent: inner) }.joined(separator: ",\n") + "\n\(indent)]"
        case .object(let object):
            if object.isEmpty { return "{}" }
            let members = object.members.sorted { $0.key < $1.key }.map {
                inner + String(decoding: JSONWriter.escaped($0.key), as: UTF8.self) + ": "
                    + pretty($0.value, indent: inner)
            }
            return "{\n" + members.joined(separator: ",\n") + "\n\(indent)}"
        default:
            return String(decoding: value.serialized(), as: UTF8.self)
        }
    }

    /// Feeds `input` to a stream translator in the given pieces and returns everything it wrote.
    static func run<S>(
        _ make: () -> S, _ input: [UInt8], cuts: [Int], feed: (inout S, [UInt8]) -> [UInt8],
        finish: (inout S) -> [UInt8]
    ) -> ([UInt8], S) {
        var stream = make()
        var out: [UInt8] = []
        var start = 0
        for cut in cuts + [input.count] where cut >= start && cut <= input.count {
            out += feed(&stream, Array(input[start..<cut]))
            start = cut
        }
        out += finish(&stream)
        return (out, stream)
    }

    /// Parses SSE output into (event name, JSON or raw data) pairs.
    static func events(_ bytes: [UInt8]) -> [(name: String?, data: [UInt8])] {
        var parser = SSEParser()
        let events = ((try? parser.feed(bytes)) ?? []) + parser.finish()
        return events.map { ($0.event, $0.data) }
    }
}

extension JSONValue {
    /// The array element at `index`, if this is an array long enough (tests only).
    func item(_ index: Int) -> JSONValue? {
        guard let elements = arrayValue, elements.indices.contains(index) else { return nil }
        return elements[index]
    }
}
