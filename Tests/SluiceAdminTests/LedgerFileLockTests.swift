// With SQLite, one sluiced owns the lease ledger: the lock next to the database refuses a second
// holder (a second `sluiced serve` on the same file) and is free again once released.
import Foundation
import SluiceAdmin
import Testing

@Suite("Ledger file lock")
struct LedgerFileLockTests {
    @Test("a second lock on the same database is refused with a message naming the file and PostgreSQL")
    func exclusive() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("sluice-lock-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let database = directory.appendingPathComponent("admin.sqlite").path
        var first: LedgerFileLock? = try LedgerFileLock(databasePath: database)
        #expect(first?.path == database + ".lease-lock")
        do {
            _ = try LedgerFileLock(databasePath: database)
            Issue.record("a second lock on \(database) should be refused")
        } catch {
            #expect(error.message.contains("another sluiced already serves the SQLite database \(database)"))
            #expect(error.message.contains("PostgreSQL"))
        }
        // Another database is another lock.
        _ = try LedgerFileLock(databasePath: directory.appendingPathComponent("other.sqlite").path)
        first = nil
        #expect(first == nil)
        _ = try LedgerFileLock(databasePath: database)  // free again once released
    }
}
