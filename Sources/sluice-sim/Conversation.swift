import Foundation
import SluiceCore

/// A tool offered to the model, in a provider-neutral form.
struct SimTool: Sendable {
    var name: String
    /// The JSON schema of the tool's arguments, when the request gave one.
    var schema: JSONValue?
}

/// What the simulators need to know about a chat request, whatever the provider's wire shape.
struct Conversation: Sendable {
    /// Text of the last user message ("" when there is none).
    var lastUserText = ""
    /// Whether the last message carries a tool result (then the reply mentions it).
    var endsWithToolResult = false
    /// Text of the last tool result.
    var toolResultText = ""
    var tools: [SimTool] = []
    /// A tool the request forces (`tool_choice` naming one).
    var forcedTool: String?
    /// `tool_choice: none` or equivalent: never call a tool.
    var toolsDisabled = false
    /// All prompt text (system, messages, tool results), for token and cache accounting.
    var promptText = ""
    var maxTokens: Int?
    /// Extended thinking asked for (Anthropic `thinking`, Gemini `thinkingConfig`).
    var thinking = false
    var stream = false

    /// Appends prompt text, space separated.
    mutating func addPrompt(_ text: String) {
        if !promptText.isEmpty { promptText += " " }
        promptText += text
    }
}

/// The reply a simulator produces for a conversation.
struct SimReply: Sendable {
    enum Content: Sendable {
        /// Text, as word tokens (" word" after the first).
        case text([String])
        /// A call to a tool, with its arguments as a JSON object text split into stream fragments.
        case toolCall(name: String, arguments: JSONValue, fragments: [String])
    }

    enum Finish: Sendable {
        case stop, length, toolCalls
    }

    var content: Content
    /// Thinking tokens, when thinking was asked for.
    var thinking: [String]
    var finish: Finish
    var promptTokens: Int
    /// Prompt tokens served from a (simulated) prompt cache.
    var cachedTokens: Int
    var completionTokens: Int

    /// The reply text (empty for a tool call).
    var text: String {
        if case .text(let tokens) = content { return tokens.joined() }
        return ""
    }

    var thinkingText: String { thinking.joined() }

    /// The tool call's arguments as compact JSON text.
    var argumentsText: String {
        if case .toolCall(_, let arguments, _) = content {
            return String(decoding: arguments.serialized(), as: UTF8.self)
        }
        return ""
    }
}

/// Deterministic behaviour shared by every provider simulator.
enum Planner {
    /// Prompts longer than this many characters report cached tokens (providers that cache).
    static let cacheThresholdChars = 1000

    /// Word tokens of a text: the first word bare, the others with a leading space.
    static func tokens(_ text: String) -> [String] {
        let words = text.split(whereSeparator: { $0 == " " || $0 == "\n" || $0 == "\t" || $0 == "\r" })
        return words.enumerated().map { $0.offset == 0 ? String($0.element) : " " + $0.element }
    }

    /// Approximate token count: words, at least 1.
    static func countTokens(_ text: String) -> Int {
        max(1, text.split(whereSeparator: { $0 == " " || $0 == "\n" || $0 == "\t" || $0 == "\r" }).count)
    }

    /// The first `count` words of a text, without injection markers.
    static func firstWords(_ text: String, _ count: Int = 8) -> String {
        let cleaned = SimFault.stripMarkers(text)
        return cleaned.split(whereSeparator: { $0 == " " || $0 == "\n" || $0 == "\t" || $0 == "\r" })
            .prefix(count).joined(separator: " ")
    }

    /// Plans the reply: a tool call when tools are offered to a user turn, else text.
    static func reply(to conversation: Conversation) -> SimReply {
        let promptTokens = countTokens(conversation.promptText)
        let cached = conversation.promptText.utf8.count > cacheThresholdChars ? promptTokens / 2 : 0
        var thinking: [String] = []
        if conversation.thinking {
            let subject = conversation.endsWithToolResult ? conversation.toolResultText : conversation.lastUserText
            thinking = tokens("Thinking about: \(firstWords(subject))")
        }
        let callTool = !conversation.tools.isEmpty && !conversation.endsWithToolResult && !conversation.toolsDisabled
        if callTool {
            let tool = conversation.tools.first { $0.name == conversation.forcedTool } ?? conversation.tools[0]
            let arguments = SchemaSynthesizer.value(for: tool.schema, name: "value", depth: 0, topLevel: true)
            let text = String(decoding: arguments.serialized(), as: UTF8.self)
            let fragments = split(text, parts: 3)
            let completion = countTokens(tool.name) + fragments.count + thinking.count
            return SimReply(
                content: .toolCall(name: tool.name, arguments: arguments, fragments: fragments),
                thinking: thinking, finish: .toolCalls,
                promptTokens: promptTokens, cachedTokens: cached, completionTokens: completion
            )
        }
        let text: String
        if conversation.endsWithToolResult {
            text = "The tool returned: \(firstWords(conversation.toolResultText))"
        } else {
            text = "Sim reply to: \(firstWords(conversation.lastUserText))"
        }
        var words = tokens(text)
        var finish = SimReply.Finish.stop
        if let limit = conversation.maxTokens, limit >= 0, words.count > limit {
            words = Array(words.prefix(limit))
            finish = .length
        }
        return SimReply(
            content: .text(words), thinking: thinking, finish: finish,
            promptTokens: promptTokens, cachedTokens: cached, completionTokens: words.count + thinking.count
        )
    }

    /// Splits a text into about `parts` pieces at character boundaries (for streamed arguments).
    static func split(_ text: String, parts: Int) -> [String] {
        let characters = Array(text)
        guard characters.count > parts, parts > 1 else { return [text] }
        let size = (characters.count + parts - 1) / parts
        return stride(from: 0, to: characters.count, by: size).map {
            String(characters[$0..<min($0 + size, characters.count)])
        }
    }
}

/// Builds arguments that satisfy a JSON schema: required properties with type-appropriate values.
enum SchemaSynthesizer {
    static func value(for schema: JSONValue?, name: String, depth: Int, topLevel: Bool = false) -> JSONValue {
        guard depth < 8, let schema = schema?.objectValue else {
            return topLevel ? .object(JSONObject()) : .string("sim-\(name)")
        }
        if let constant = schema["const"] { return constant }
        if let first = schema["enum"]?.arrayValue?.first { return first }
        if let example = schema["default"] { return example }
        for combinator in ["anyOf", "oneOf", "allOf"] {
            if let first = schema[combinator]?.arrayValue?.first(where: { $0["type"]?.stringValue != "null" }) {
                return value(for: first, name: name, depth: depth + 1)
            }
        }
        var type = schema["type"]?.stringValue
        if type == nil, let types = schema["type"]?.arrayValue {
            type = types.compactMap(\.stringValue).first { $0 != "null" }
        }
        if type == nil {
            type = schema["properties"] != nil || topLevel ? "object" : "string"
        }
        switch type {
        case "object":
            let properties = schema["properties"]?.objectValue
            let required = schema["required"]?.arrayValue?.compactMap(\.stringValue) ?? []
            var members: [JSONObject.Member] = []
            for key in required {
                members.append((key, value(for: properties?[key], name: key, depth: depth + 1)))
            }
            return .object(JSONObject(members))
        case "array":
            return .array([value(for: schema["items"], name: name, depth: depth + 1)])
        case "integer":
            return .number(JSONNumber(schema["minimum"]?.int64Value ?? 1))
        case "number":
            return schema["minimum"] ?? .number(JSONNumber(Int64(2)))
        case "boolean":
            return .bool(true)
        case "null":
            return .null
        default:
            switch schema["format"]?.stringValue {
            case "date": return .string("2024-01-01")
            case "date-time": return .string("2024-01-01T00:00:00Z")
            case "email": return .string("sim@example.com")
            case "uri", "url": return .string("https://example.com/sim")
            default: return .string("sim-\(name)")
            }
        }
    }
}

/// An injected failure, asked for by `x-sim-error` or `[sim-error:<kind>]` in the prompt.
enum SimFault: String, Sendable {
    case rateLimited = "429"
    case serverError = "500"
    case unavailable = "503"
    case overloaded
    case contextLength = "context_length"
    /// An error event after a few streamed tokens (non-streaming requests are unaffected).
    case midstream

    /// Tokens streamed before a mid-stream error.
    static let tokensBeforeMidstreamError = 3

    /// The fault a request asks for, if any.
    static func requested(header: String?, prompt: String) -> SimFault? {
        if let header, let fault = SimFault(rawValue: header.trimmingCharacters(in: .whitespaces).lowercased()) {
            return fault
        }
        guard let start = prompt.range(of: "[sim-error:") else { return nil }
        let rest = prompt[start.upperBound...]
        guard let close = rest.firstIndex(of: "]") else { return nil }
        return SimFault(rawValue: rest[..<close].trimmingCharacters(in: .whitespaces).lowercased())
    }

    /// Removes `[sim-error:...]` markers so replies do not echo them.
    static func stripMarkers(_ text: String) -> String {
        var result = text
        while let start = result.range(of: "[sim-error:"),
            let close = result[start.upperBound...].firstIndex(of: "]")
        {
            result.removeSubrange(start.lowerBound...close)
        }
        return result
    }
}

/// A request the simulator rejects, with the provider-neutral facts of why.
struct SimInvalid: Error, Sendable {
    var message: String
    var param: String?

    init(_ message: String, param: String? = nil) {
        self.message = message
        self.param = param
    }
}

/// Deterministic embeddings: `dimensions` floats in [-1, 1] from SHA-256 of the input, unit length.
enum SimEmbedding {
    static func vector(for text: String, dimensions: Int = 8) -> [Float] {
        let digest = SHA256.hash(text).bytes
        var values: [Float] = []
        for index in 0..<max(1, min(dimensions, 16)) {
            let high = Int(digest[(2 * index) % digest.count])
            let low = Int(digest[(2 * index + 1) % digest.count])
            values.append(Float(high << 8 | low) / 32767.5 - 1)
        }
        let norm = values.reduce(0) { $0 + $1 * $1 }.squareRoot()
        return norm > 0 ? values.map { $0 / norm } : values
    }

    /// Little-endian float32 bytes, base64 encoded (OpenAI `encoding_format: base64`).
    static func base64(_ values: [Float]) -> String {
        var bytes: [UInt8] = []
        for value in values {
            let bits = value.bitPattern
            bytes += [UInt8(bits & 0xFF), UInt8(bits >> 8 & 0xFF), UInt8(bits >> 16 & 0xFF), UInt8(bits >> 24)]
        }
        return Base64.encode(bytes)
    }
}

/// Standard base64 with padding.
enum Base64 {
    private static let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/".utf8)

    static func encode(_ bytes: [UInt8]) -> String {
        var out: [UInt8] = []
        out.reserveCapacity((bytes.count + 2) / 3 * 4)
        var index = 0
        while index < bytes.count {
            let b0 = Int(bytes[index])
            let b1 = index + 1 < bytes.count ? Int(bytes[index + 1]) : 0
            let b2 = index + 2 < bytes.count ? Int(bytes[index + 2]) : 0
            out.append(alphabet[b0 >> 2])
            out.append(alphabet[(b0 & 3) << 4 | b1 >> 4])
            out.append(index + 1 < bytes.count ? alphabet[(b1 & 15) << 2 | b2 >> 6] : UInt8(ascii: "="))
            out.append(index + 2 < bytes.count ? alphabet[b2 & 63] : UInt8(ascii: "="))
            index += 3
        }
        return String(decoding: out, as: UTF8.self)
    }
}

extension JSONWriter {
    /// Writes a float as a JSON number (its shortest decimal form).
    mutating func float(_ value: Float) {
        double(Double(String(value)) ?? 0)
    }
}
