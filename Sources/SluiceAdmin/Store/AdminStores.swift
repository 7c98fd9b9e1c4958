// Choosing the store from sluiced's `--database` option.
import Foundation
public import Logging

/// Opens the admin store a `--database` value names.
public enum AdminStores {
    /// The default database, in the `.sluiced/` state directory of where sluiced runs.
    public static let defaultDatabase = "sqlite:.sluiced/sluice-admin.sqlite"

    /// The SQLite file a `--database` value names; nil for PostgreSQL URLs and empty paths.
    public static func sqlitePath(database: String) -> String? {
        let lowered = database.lowercased()
        if lowered.hasPrefix("postgres://") || lowered.hasPrefix("postgresql://") { return nil }
        var path = Substring(database)
        if lowered.hasPrefix("sqlite://") {
            path = path.dropFirst("sqlite://".count)
        } else if lowered.hasPrefix("sqlite:") {
            path = path.dropFirst("sqlite:".count)
        }
        return path.isEmpty ? nil : String(path)
    }

    /// `postgres://…` or `postgresql://…` opens a `PostgresAdminStore`; `sqlite:PATH`,
    /// `sqlite://PATH` or a plain path opens a `SQLiteAdminStore` (created if missing).
    /// - Throws: `AdminError` (`.invalidRequest` naming `database`, or `.storeFailure`).
    public static func open(
        database: String, logger: Logger = Logger(label: "sluice.admin.store")
    ) async throws(AdminError) -> any AdminStore {
        guard let path = sqlitePath(database: database) else {
            let lowered = database.lowercased()
            if lowered.hasPrefix("postgres://") || lowered.hasPrefix("postgresql://") {
                return try await PostgresAdminStore(url: database, logger: logger)
            }
            throw .invalid("database", "expected a file path or a postgres:// URL")
        }
        // A fresh checkout has no state directory yet: the default must work there.
        let directory = path.lastIndex(of: "/").map { String(path[..<$0]) } ?? ""
        if !directory.isEmpty {
            do {
                try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
            } catch {
                throw AdminError(.storeFailure, "cannot create the directory of the admin database \(path): \(error)")
            }
        }
        return try SQLiteAdminStore(path: String(path))
    }
}
