// Stores for the tests: SQLite in a fresh temp dir, and PostgreSQL in a fresh schema of the
// database `SLUICE_TEST_POSTGRES_URL` names (Tests/start-postgres.sh prints it). Without that
// variable the PostgreSQL cases are not generated.
import Foundation
import SluiceAdmin
import Testing

enum StoreKind: String, CaseIterable, CustomTestStringConvertible, Sendable {
    case sqlite
    case postgres

    var testDescription: String { rawValue }

    static let postgresURL: String? = {
        guard let url = ProcessInfo.processInfo.environment["SLUICE_TEST_POSTGRES_URL"], !url.isEmpty else { return nil }
        return url
    }()

    /// The kinds this run can test.
    static var available: [StoreKind] { postgresURL == nil ? [.sqlite] : [.sqlite, .postgres] }
}

/// One isolated database; `open()` may be called several times (replicas, reopening).
struct TestDatabase: Sendable {
    let kind: StoreKind
    /// The `--database` value.
    let location: String

    init(_ kind: StoreKind) throws {
        self.kind = kind
        let unique = UUID().uuidString.lowercased().replacingOccurrences(of: "-", with: "")
        switch kind {
        case .sqlite:
            let directory = FileManager.default.temporaryDirectory.appendingPathComponent("sluice-admin-\(unique)")
            try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
            location = directory.appendingPathComponent("admin.sqlite").path
        case .postgres:
            let url = StoreKind.postgresURL ?? ""
            location = url + (url.contains("?") ? "&" : "?") + "schema=t_\(unique.prefix(20))"
        }
    }

    func open() async throws -> any AdminStore {
        try await AdminStores.open(database: location)
    }

    /// Opens a store, runs `body`, closes the store.
    func with<T>(_ body: (any AdminStore) async throws -> T) async throws -> T {
        let store = try await open()
        do {
            let result = try await body(store)
            await store.close()
            return result
        } catch {
            await store.close()
            throw error
        }
    }
}
