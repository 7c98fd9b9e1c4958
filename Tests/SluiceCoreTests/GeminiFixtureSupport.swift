import Foundation
import Testing

@testable import SluiceCore

/// Golden-fixture helpers for the translator suites: fixtures live in `Fixtures/<area>/`, JSON ones
/// pretty-printed with sorted keys. `SLUICE_UPDATE_FIXTURES=1 swift test ...` rewrites the expected files.
enum GeminiFixtureSupport {
    static let directory = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent(
        "Fixtures")

    static var updating: Bool { ProcessInfo.processInfo.environment["SLUICE_UPDATE_FIXTURES"] != nil }

    static func load(_ path: String) throws -> [UInt8] {
        [UInt8](try Data(contentsOf: directory.appendingPathComponent(path)))
    }

    /// Compares JSON by value (keys sorted), or rewrites the fixture when updating.
    static func expectJSON(_ actual: [UInt8], matches path: String, sourceLocation: SourceLocation = #_sourceLocation)
        throws
    {
        let actualValue = try JSONParser.parse(actual)
        if updating {
            try Data(pretty(actualValue).utf8).write(to: directory.appendingPathComponent(path))
            return
        }
        let expected = try JSONParser.parse(try load(path))
        #expect(canonical(actualValue) == canonical(expected), "\(path)", sourceLocation: sourceLocation)
    }

    /// Compares bytes exactly (SSE output), or rewrites the fixture when updating.
    static func expectBytes(_ actual: [UInt8], matches path: String, sourceLocation: SourceLocation = #_sourceLocation)
        throws
    {
        if updating {
            try Data(actual).write(to: directory.appendingPathComponent(path))
            return
        }
        let expected = try load(path)
        #expect(
            String(decoding: actual, as: UTF8.self) == String(decoding: expected, as: UTF8.self), "\(path)",
            sourceLocation: sourceLocation)
    }

    static func canonical(_ value: JSONValue) -> JSONValue {
        switch value {
        case .array(let items): return .array(items.map(canonical))
        case .object(let object):
            return .object(
                JSONObject(object.members.sorted { $0.key < $1.key }.map { ($0.key, canonical($0.value)) }))
        default: return value
        }
    }

    static func pretty(_ value: JSONValue, indent: String = "") -> String {
        let inner = indent + "  "
        switch value {
        case .array(let items):
            if items.isEmpty { return "[]" }
            return "[\n" + items.map { inner + pretty($0, indent: inner) }.joined(separator: ",\n") + "\n" + indent
                + "]"
        case .object(let object):
            if object.isEmpty { return "{}" }
            let members = object.members.sorted { $0.key < $1.key }.map {
                inner + String(decoding: JSONWriter.escaped($0.key), as: UTF8.self) + ": "
                    + pretty($0.value, indent: inner)
            }
            return "{\n" + members.joined(separator: ",\n") + "\n" + indent + "}"
        default:
            return String(decoding: value.serialized(), as: UTF8.self)
        }
    }
}

/// A tiny deterministic PRNG for fuzz loops (SplitMix64).
struct GeminiFuzzRandom {
    var state: UInt64

    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    mutating func below(_ bound: Int) -> Int { bound <= 0 ? 0 : Int(next() % UInt64(bound)) }

    /// Random bytes, random slices of `seeds`, and seeds with a few bytes flipped, inserted or deleted.
    mutating func mutated(_ seeds: [[UInt8]]) -> [UInt8] {
        let structural = Array("{}[]\",:0123456789.-eEtruefalsn \\u\n\r".utf8)
        switch below(4) {
        case 0:
            return (0..<below(64)).map { _ in structural[below(structural.count)] }
        case 1:
            guard let seed = seeds.randomElement(using: &self), !seed.isEmpty else { return [] }
            let start = below(seed.count)
            return Array(seed[start..<(start + below(seed.count - start + 1))])
        default:
            guard var bytes = seeds.randomElement(using: &self) else { return [] }
            for _ in 0...below(4) {
                guard !bytes.isEmpty else { break }
                let at = below(bytes.count)
                switch below(3) {
                case 0: bytes[at] = structural[below(structural.count)]
                case 1: bytes.insert(structural[below(structural.count)], at: at)
                default: bytes.remove(at: at)
                }
            }
            return bytes
        }
    }

    /// Splits `bytes` into random chunks.
    mutating func chunks(_ bytes: [UInt8]) -> [[UInt8]] {
        var out: [[UInt8]] = []
        var index = 0
        while index < bytes.count {
            let size = 1 + below(min(32, bytes.count - index))
            out.append(Array(bytes[index..<(index + size)]))
            index += size
        }
        return out
    }
}

extension GeminiFuzzRandom: RandomNumberGenerator {}
