// Writes a `JSONValue` exactly as Python's `json.dumps(value, indent=2, ensure_ascii=False) + "\n"`
// does, members in the order they were parsed: the format of sluice.schema.json, so a test can
// rewrite values in it and leave every other byte as it was.
import SluiceCore

enum PythonStyleJSON {
    /// `value` in Python's indented format, with the final newline.
    static func text(_ value: JSONValue) -> String {
        var out = ""
        write(value, indent: 0, to: &out)
        out += "\n"
        return out
    }

    private static func write(_ value: JSONValue, indent: Int, to out: inout String) {
        switch value {
        case .null: out += "null"
        case .bool(let flag): out += flag ? "true" : "false"
        // The number's source text: Python would re-spell `1E2` or `1.50`, so a file holding such a
        // number fails the round-trip test rather than being rewritten differently.
        case .number(let number): out += number.text
        case .string(let text): writeString(text, to: &out)
        case .array(let elements):
            guard !elements.isEmpty else {
                out += "[]"
                return
            }
            out += "["
            for (index, element) in elements.enumerated() {
                out += index == 0 ? "\n" : ",\n"
                out += String(repeating: " ", count: indent + 2)
                write(element, indent: indent + 2, to: &out)
            }
            out += "\n" + String(repeating: " ", count: indent) + "]"
        case .object(let object):
            guard !object.isEmpty else {
                out += "{}"
                return
            }
            out += "{"
            for (index, member) in object.members.enumerated() {
                out += index == 0 ? "\n" : ",\n"
                out += String(repeating: " ", count: indent + 2)
                writeString(member.key, to: &out)
                out += ": "
                write(member.value, indent: indent + 2, to: &out)
            }
            out += "\n" + String(repeating: " ", count: indent) + "}"
        }
    }

    /// Python's escaping without `ensure_ascii`: the quote, the backslash and control characters;
    /// everything else as it is.
    private static func writeString(_ text: String, to out: inout String) {
        out += "\""
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case "\u{08}": out += "\\b"
            case "\u{0C}": out += "\\f"
            case _ where scalar.value < 0x20:
                let hex = String(scalar.value, radix: 16)
                out += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
            default: out.unicodeScalars.append(scalar)
            }
        }
        out += "\""
    }
}

extension JSONValue {
    /// This value with the value at `path` (member names from the root) replaced by `replacement`.
    /// - Throws: `MissingMember` naming the path when a member on it does not exist.
    func replacing(_ path: [String], with replacement: JSONValue) throws -> JSONValue {
        guard let key = path.first else { return replacement }
        guard let object = objectValue, let index = object.members.firstIndex(where: { $0.key == key }) else {
            throw MissingMember(path: path)
        }
        var members = object.members
        members[index].value = try members[index].value.replacing(Array(path.dropFirst()), with: replacement)
        return .object(JSONObject(members))
    }

    struct MissingMember: Error, CustomStringConvertible {
        let path: [String]
        var description: String { "no member at \(path.joined(separator: "."))" }
    }
}
