// Reading YAML nodes with their positions. Every value the loader reads comes with the line and
// column Yams recorded for it and the path it was reached by, so each problem is reported where
// the user can fix it; problems are collected rather than thrown, so one run names many.
internal import Foundation
internal import Yams

/// Collects the loader's findings.
final class DiagnosticLog {
    let file: String
    private(set) var errors: [ConfigDiagnostic] = []
    private(set) var warnings: [ConfigDiagnostic] = []

    init(file: String) { self.file = file }

    func error(_ mark: Mark?, _ path: String, _ message: String) {
        errors.append(
            ConfigDiagnostic(file: file, line: mark?.line ?? 0, column: mark?.column ?? 0, path: path, message: message))
    }

    func warning(_ mark: Mark?, _ path: String, _ message: String) {
        warnings.append(
            ConfigDiagnostic(
                severity: .warning, file: file, line: mark?.line ?? 0, column: mark?.column ?? 0, path: path, message: message))
    }
}

/// A string read from the config, with where it was.
struct Located: Sendable {
    var value: String
    var mark: Mark?
    var path: String
}

/// One YAML mapping of a known section: its fields by name, unknown ones already reported.
struct MapReader {
    let path: String
    let mark: Mark?
    let log: DiagnosticLog
    private var entries: [String: (key: Node, value: Node)] = [:]
    /// Field names in file order.
    private(set) var keys: [String] = []
    /// Whether unknown fields were reported (then "missing field" errors would be noise).
    private(set) var hadUnknownFields = false
    /// Fields an unknown field was taken for (their absence is not reported again).
    private(set) var suggested: Set<String> = []
    /// The section's field names (nil: free keys).
    private let known: [String]?

    /// Reads `node` as a mapping whose fields are listed in `ConfigFields.sections[section]`
    /// (nil: free keys, such as model names or header names). Reports a node that is not a
    /// mapping (and returns nil), unknown fields with a did-you-mean, and duplicate keys.
    init?(_ node: Node, path: String, section: String?, log: DiagnosticLog) {
        self.path = path
        self.mark = node.mark
        self.log = log
        guard case .mapping(let mapping) = node else {
            log.error(node.mark, path, "expected a mapping (key: value), got \(describe(node))")
            return nil
        }
        let known = section.flatMap { ConfigFields.sections[$0] }
        assert(section == nil || known != nil, "no section '\(section ?? "")' in ConfigFields")
        self.known = known
        for (keyNode, value) in mapping {
            let key = keyNode.scalar?.string ?? ""
            if let known, !known.contains(key) {
                if let familiar = section.flatMap({ ConfigFields.familiarNames[$0]?[key] }) {
                    log.error(keyNode.mark, path, "unknown field '\(key)'" + familiar.hint)
                    if let field = familiar.field { suggested.insert(field) }
                } else {
                    log.error(keyNode.mark, path, "unknown field '\(key)'" + Spelling.hint(for: key, among: known))
                    if let field = Spelling.suggestion(for: key, among: known) { suggested.insert(field) }
                }
                hadUnknownFields = true
                continue
            }
            if entries[key] != nil {
                log.error(keyNode.mark, path, "'\(key)' is given twice")
                continue
            }
            entries[key] = (keyNode, value)
            keys.append(key)
        }
    }

    static func child(_ path: String, _ key: String) -> String { path.isEmpty ? key : "\(path).\(key)" }

    func childPath(_ key: String) -> String { MapReader.child(path, key) }

    /// The value of `key`, or nil when absent or null (`key:` or `key: ~`).
    func node(_ key: String) -> Node? {
        assert(known?.contains(key) ?? true, "'\(key)' is read but missing from ConfigFields")
        guard let value = entries[key]?.value else { return nil }
        if value.isNull { return nil }
        return value
    }

    func has(_ key: String) -> Bool { node(key) != nil }

    func keyMark(_ key: String) -> Mark? { entries[key]?.key.mark }

    // MARK: - Typed values

    /// A string (any scalar's text as written). `allowEmpty: false` refuses "".
    func string(_ key: String, required: Bool = false, allowEmpty: Bool = false) -> String? {
        guard let node = node(key) else {
            if required { missing(key) }
            return nil
        }
        return MapReader.string(node, path: childPath(key), allowEmpty: allowEmpty, log: log)
    }

    func located(_ key: String, required: Bool = false) -> Located? {
        guard let value = string(key, required: required) else { return nil }
        return Located(value: value, mark: node(key)?.mark, path: childPath(key))
    }

    static func string(_ node: Node, path: String, allowEmpty: Bool = false, log: DiagnosticLog) -> String? {
        guard case .scalar(let scalar) = node else {
            log.error(node.mark, path, "expected a string, got \(describe(node))")
            return nil
        }
        if !allowEmpty && scalar.string.isEmpty {
            log.error(node.mark, path, "must not be empty")
            return nil
        }
        return scalar.string
    }

    func int(_ key: String, in range: ClosedRange<Int64>, required: Bool = false) -> Int64? {
        guard let node = node(key) else {
            if required { missing(key) }
            return nil
        }
        return MapReader.int(node, path: childPath(key), in: range, log: log)
    }

    static func int(_ node: Node, path: String, in range: ClosedRange<Int64>, log: DiagnosticLog) -> Int64? {
        let outOfRange = { (text: String) in
            log.error(node.mark, path, "must be between \(range.lowerBound) and \(range.upperBound), got \(text)")
        }
        guard case .scalar(let scalar) = node else {
            log.error(node.mark, path, "expected an integer, got \(describe(node))")
            return nil
        }
        let text = scalar.string
        switch node.tagName {
        case .int:
            var digits = text.replacingOccurrences(of: "_", with: "")
            if digits.hasPrefix("+") { digits.removeFirst() }
            var value: Int64?
            if digits.hasPrefix("0x") {
                value = Int64(digits.dropFirst(2), radix: 16)
            } else if digits.hasPrefix("0o") {
                value = Int64(digits.dropFirst(2), radix: 8)
            } else {
                value = Int64(digits)
            }
            guard let value, range.contains(value) else {
                outOfRange(text)
                return nil
            }
            return value
        case .float:
            guard let double = Double(text.replacingOccurrences(of: "_", with: "")), double.isFinite,
                double == double.rounded(.towardZero)
            else {
                log.error(node.mark, path, "expected an integer, got \(text)")
                return nil
            }
            guard double.magnitude <= 9_007_199_254_740_992, range.contains(Int64(double)) else {
                outOfRange(text)
                return nil
            }
            return Int64(double)
        default:
            log.error(node.mark, path, "expected an integer, got \(describe(node))")
            return nil
        }
    }

    func double(_ key: String, in range: ClosedRange<Double>, required: Bool = false) -> Double? {
        guard let node = node(key) else {
            if required { missing(key) }
            return nil
        }
        let path = childPath(key)
        guard case .scalar(let scalar) = node, node.tagName == .int || node.tagName == .float,
            let double = Double(scalar.string.replacingOccurrences(of: "_", with: "")), double.isFinite
        else {
            log.error(node.mark, path, "expected a number, got \(describe(node))")
            return nil
        }
        guard range.contains(double) else {
            log.error(node.mark, path, "must be between \(formatted(range.lowerBound)) and \(formatted(range.upperBound)), got \(scalar.string)")
            return nil
        }
        return double
    }

    func bool(_ key: String) -> Bool? {
        guard let node = node(key) else { return nil }
        guard node.tagName == .bool, let value = node.bool else {
            log.error(node.mark, childPath(key), "expected true or false, got \(describe(node))")
            return nil
        }
        return value
    }

    /// A list of strings; a single string is refused (say `[a]`).
    func strings(_ key: String, required: Bool = false) -> [Located]? {
        guard let node = node(key) else {
            if required { missing(key) }
            return nil
        }
        let path = childPath(key)
        guard case .sequence(let sequence) = node else {
            log.error(node.mark, path, "expected a list of strings (like [a, b]), got \(describe(node))")
            return nil
        }
        var result: [Located] = []
        for (index, element) in sequence.enumerated() {
            let elementPath = "\(path)[\(index)]"
            if let text = MapReader.string(element, path: elementPath, log: log) {
                result.append(Located(value: text, mark: element.mark, path: elementPath))
            }
        }
        return result
    }

    /// The elements of a list with their paths (absent = empty).
    func list(_ key: String) -> [(node: Node, path: String)] {
        guard let node = node(key) else { return [] }
        let path = childPath(key)
        guard case .sequence(let sequence) = node else {
            log.error(node.mark, path, "expected a list (entries starting with '- '), got \(describe(node))")
            return []
        }
        return sequence.enumerated().map { (node: $1, path: "\(path)[\($0)]") }
    }

    /// A nested mapping of section `section` (nil: free keys).
    func map(_ key: String, section: String?, required: Bool = false) -> MapReader? {
        guard let node = node(key) else {
            if required { missing(key) }
            return nil
        }
        return MapReader(node, path: childPath(key), section: section, log: log)
    }

    /// A mapping of free keys to strings (`model_overrides`, `headers`).
    func stringMap(_ key: String) -> [(key: Located, value: String)]? {
        guard let map = map(key, section: nil) else { return nil }
        var result: [(key: Located, value: String)] = []
        for name in map.keys {
            guard let value = map.string(name) else {
                if !map.has(name) { log.error(map.keyMark(name), map.childPath(name), "expected a string, got null") }
                continue
            }
            result.append((Located(value: name, mark: map.keyMark(name), path: map.childPath(name)), value))
        }
        return result
    }

    func missing(_ key: String, _ detail: String = "") {
        guard !suggested.contains(key) else { return }
        log.error(mark, path, "missing required field '\(key)'" + detail)
    }
}

/// How a node is named in "expected X, got Y".
func describe(_ node: Node) -> String {
    switch node {
    case .mapping: return "a mapping"
    case .sequence: return "a list"
    case .alias: return "an alias"
    case .scalar(let scalar):
        let text = scalar.string.count > 40 ? String(scalar.string.prefix(40)) + "..." : scalar.string
        switch node.tagName {
        case .null: return "null"
        case .bool: return "a boolean (\(text))"
        case .int: return "an integer (\(text))"
        case .float: return "a number (\(text))"
        default: return "a string \"\(text)\""
        }
    }
}

/// A bound in a message: `1000000` rather than `1000000.0`.
func formatted(_ value: Double) -> String {
    if value == value.rounded(), value.magnitude < 1e15 { return String(Int64(value)) }
    return String(value)
}

extension Node {
    /// Whether this is YAML's null (`~`, `null`, or nothing), without resolving the tag (Yams
    /// resolves tags with regular expressions on every access).
    var isNull: Bool {
        guard case .scalar(let scalar) = self, scalar.style == .plain else { return false }
        switch scalar.string {
        case "", "~", "null", "Null", "NULL": return scalar.tag.rawValue.isEmpty || tagName == .null
        default: return false
        }
    }

    /// The resolved tag's name (`Tag.name` is internal to Yams; its raw value is not).
    var tagName: Tag.Name { Tag.Name(rawValue: tag.rawValue) }
}
