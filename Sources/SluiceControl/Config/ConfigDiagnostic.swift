// What the loader says about a config: an error or a warning, with the file, line and column
// it is about, the path of the value (`backends[2].credential`), what is wrong and, when the
// loader can tell, what would be right.

/// One finding of the config loader or compiler.
public struct ConfigDiagnostic: Sendable, Equatable, CustomStringConvertible {
    public enum Severity: String, Sendable, Equatable {
        /// The config is refused.
        case error
        /// The config is accepted, but something in it deserves attention (a plaintext key).
        case warning
    }

    public var severity: Severity
    /// The file name as given to the loader (`sluice.yaml`).
    public var file: String
    /// 1-based line and column of the value or key at fault (0 when unknown).
    public var line: Int
    public var column: Int
    /// The path of the value: `backends[2].credential`, `models[0].id` ("" for the document).
    public var path: String
    /// What is wrong, and what would be right.
    public var message: String

    public init(severity: Severity = .error, file: String, line: Int, column: Int, path: String, message: String) {
        self.severity = severity
        self.file = file
        self.line = line
        self.column = column
        self.path = path
        self.message = message
    }

    /// `sluice.yaml:14:5: backends[2].credential: unknown field 'evn'; did you mean 'env'?`
    /// (warnings say `warning:` after the position).
    public var description: String {
        var text = file
        if line > 0 { text += ":\(line):\(column)" }
        text += ": "
        if severity == .warning { text += "warning: " }
        if !path.isEmpty { text += "\(path): " }
        return text + message
    }
}

/// A config the loader refused: every error found (up to `ConfigLoadError.limit`), in file order.
public struct ConfigLoadError: Error, Sendable, Equatable, CustomStringConvertible {
    /// At most this many errors are reported; the rest are counted in `omitted`.
    public static let limit = 20

    public var diagnostics: [ConfigDiagnostic]
    /// Errors found beyond `limit`.
    public var omitted: Int

    public init(diagnostics: [ConfigDiagnostic], omitted: Int = 0) {
        self.diagnostics = diagnostics
        self.omitted = omitted
    }

    /// One diagnostic per line, then how many were left out.
    public var description: String {
        var lines = diagnostics.map(\.description)
        if omitted > 0 { lines.append("... and \(omitted) more error\(omitted == 1 ? "" : "s")") }
        return lines.joined(separator: "\n")
    }
}

/// A compiled config that Envoy or the module would refuse: a name defined twice after merging
/// the database's consumers, or a generated module config the module's own parser rejects.
public struct ConfigCompileError: Error, Sendable, Equatable, CustomStringConvertible {
    public var problems: [String]

    public init(problems: [String]) { self.problems = problems }

    public var description: String { problems.joined(separator: "\n") }
}

// MARK: - Did you mean

package enum Spelling {
    /// The candidate closest to `word`, if it is close enough to be a likely misspelling:
    /// same letters in another case, or an edit distance (insertions, deletions, substitutions
    /// and swaps of neighbours) of at most a third of the word's length (at least 1, at most 3).
    package static func suggestion(for word: String, among candidates: some Sequence<String>) -> String? {
        let lowered = word.lowercased()
        var best: (name: String, distance: Int)?
        for candidate in candidates {
            let distance = candidate.lowercased() == lowered ? 0 : editDistance(lowered, candidate.lowercased())
            let allowed = max(1, min(3, max(word.count, candidate.count) / 3))
            guard distance <= allowed else { continue }
            if let current = best, current.distance <= distance { continue }
            best = (candidate, distance)
        }
        return best?.name
    }

    /// Optimal string alignment distance (Levenshtein plus transpositions of neighbours).
    package static func editDistance(_ a: String, _ b: String) -> Int {
        let a = Array(a.unicodeScalars)
        let b = Array(b.unicodeScalars)
        if a.isEmpty { return b.count }
        if b.isEmpty { return a.count }
        var previous2 = [Int](repeating: 0, count: b.count + 1)
        var previous = Array(0...b.count)
        var current = [Int](repeating: 0, count: b.count + 1)
        for i in 1...a.count {
            current[0] = i
            for j in 1...b.count {
                let cost = a[i - 1] == b[j - 1] ? 0 : 1
                var value = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + cost)
                if i > 1, j > 1, a[i - 1] == b[j - 2], a[i - 2] == b[j - 1] { value = min(value, previous2[j - 2] + 1) }
                current[j] = value
            }
            (previous2, previous, current) = (previous, current, previous2)
        }
        return previous[b.count]
    }

    /// "; did you mean 'x'?" or "; expected one of: a, b, c" (or "" with no candidates).
    static func hint(for word: String, among candidates: [String], noun: String = "one of") -> String {
        if let match = suggestion(for: word, among: candidates) { return "; did you mean '\(match)'?" }
        guard !candidates.isEmpty else { return "" }
        if candidates.count > 12 { return "" }
        return "; expected \(noun): " + candidates.joined(separator: ", ")
    }
}
