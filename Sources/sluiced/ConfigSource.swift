// Reading the config, from a file or the embedded default, with diagnostics printed the way a
// compiler prints them.
import Foundation
import SluiceControl

enum ConfigSource: Sendable, Equatable {
    case file(String)
    case embedded

    init(path: String?) { self = path.map(ConfigSource.file) ?? .embedded }

    var displayName: String {
        switch self {
        case .file(let path): path
        case .embedded: "the embedded default config (\(SluiceConfig.defaultFileName))"
        }
    }

    /// Loads and validates the config; warnings go to `warn`.
    func load(warn: (String) -> Void) throws(ConfigLoadError) -> SluiceConfig {
        let loaded: SluiceConfig.Loaded
        switch self {
        case .file(let path): loaded = try SluiceConfig.load(contentsOfFile: path)
        case .embedded: loaded = try SluiceConfig.loadDefault()
        }
        for warning in loaded.warnings { warn(warning.description) }
        return loaded.config
    }

    /// What identifies the file's current content cheaply (modification time and size), or nil
    /// for the embedded config and for a file that cannot be read now.
    func fingerprint() -> FileFingerprint? {
        guard case .file(let path) = self,
            let attributes = try? FileManager.default.attributesOfItem(atPath: path),
            let modified = attributes[.modificationDate] as? Date
        else { return nil }
        let size = (attributes[.size] as? NSNumber)?.int64Value ?? -1
        return FileFingerprint(modified: modified, size: size)
    }
}

struct FileFingerprint: Sendable, Equatable {
    var modified: Date
    var size: Int64
}

/// Prints to standard error.
func printError(_ text: String) {
    FileHandle.standardError.write(Data((text.hasSuffix("\n") ? text : text + "\n").utf8))
}
