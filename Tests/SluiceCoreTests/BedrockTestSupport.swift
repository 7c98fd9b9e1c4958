import Foundation
import Testing

@testable import SluiceCore

/// Fixture files and canonical JSON comparison for the Bedrock tests.
/// `SLUICE_UPDATE_FIXTURES=1 swift test --filter Bedrock` rewrites the expected files for review.
enum BedrockFixtures {
    static let directory = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .appendingPathComponent("Fixtures/bedrock")

    static var updating: Bool { ProcessInfo.processInfo.environment["SLUICE_UPDATE_FIXTURES"] == "1" }

    static func bytes(_ name: String) throws -> [UInt8] {
        Array(try Data(contentsOf: directory.appendingPathComponent(name)))
    }

    static func json(_ name: String) throws -> JSONValue {
        try JSONParser.parse(try bytes(name))
    }

    /// Compares `actual` JSON with the expected fixture (keys sorted, so member order does not matter).
    static func expectJSON(_ actual: [UInt8], matches name: String, sourceLocation: SourceLocation = #_sourceLocation) throws {
        let value = try JSONParser.parse(actual)
        if updating {
            try Data(pretty(value).utf8).write(to: directory.appendingPathComponent(name))
            return
        }
        #expect(sorted(value) == sorted(try json(name)), "\(name)", sourceLocation: sourceLocation)
    }

    /// Compares bytes exactly with the expected fixture.
    static func expectBytes(_ actual: [UInt8], matches name: String, sourceLocation: SourceLocation = #_sourceLocation) throws {
        if updating {
            try Data(actual).write(to: directory.appendingPathComponent(name))
            return
        }
        let expected = try bytes(name)
        #expect(String(decoding: actual, as: UTF8.self) == String(decoding: expected, as: UTF8.self), "\(name)",
            sourceLocation: sourceLocation)
    }

    static func sorted(_ value: JSONValue) -> JSONValue {
        switch value {
        case .array(let items): .array(items.map(sorted))
        case .object(let object):
            .object(JSONObject(object.members.sorted { $0.key < $1.key }.map { (key: $0.key, value: sorted($0.value)) }))
        default: value
        }
    }

    /// Pretty JSON with sorted keys and two-space indentation.
    static func pretty(_ value: JSONValue, indent: String = "") -> String {
        let inner = indent + "  "
        switch value {
        case .array(let items):
            if items.isEmpty { return "[]" }
            return "[\n" + items.map { inner + pretty($0, indent: inner) }.joined(separator: ",\n") + "\n" + indent + "]"
        case .object(let object):
            if object.isEmpty { return "{}" }
            let members = object.members.sorted { $0.key < $1.key }
            return "{\n"
                + members.map {
                    inner + String(decoding: JSONWriter.escaped($0.key), as: UTF8.self) + ": "
                        + pretty($0.value, indent: inner)
                }.joined(separator: ",\n") + "\n" + indent + "}"
        default:
            return String(decoding: value.serialized(), as: UTF8.self)
        }
    }

    /// Encodes a stream fixture (`[{"event": type, "payload": {...}} | {"exception": type, "payload": {...}}]`).
    static func eventStream(_ name: String) throws -> [UInt8] {
        var out: [UInt8] = []
        for item in try json(name).arrayValue ?? [] {
            let payload = item["payload"]?.serialized() ?? Array("{}".utf8)
            if let type = item["event"]?.stringValue {
                out += try AWSEventStreamEncoder.event(type, payload: payload)
            } else if let type = item["exception"]?.stringValue {
                out += try AWSEventStreamEncoder.exception(type, payload: payload)
            }
        }
        return out
    }
}
