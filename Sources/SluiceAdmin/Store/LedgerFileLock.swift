// With SQLite the lease ledger lives in the memory of one sluiced (the database only keeps its
// accounts across restarts), so two sluiced serving the same SQLite file would each grant the
// whole limit. `sluiced serve` takes this lock next to the database for as long as it runs and
// refuses to start when another process holds it. (Several replicas need PostgreSQL, where the
// ledger is the database's: FleetLeases.md.) An advisory `flock`: the kernel drops it when the
// process exits, however it exits, so a killed sluiced never leaves a stale lock behind.
import Foundation

/// An exclusive lock on `<database>.lease-lock`, held until this value is released.
public final class LedgerFileLock: Sendable {
    public let path: String
    private let descriptor: Int32

    /// Takes the lock of the SQLite database at `databasePath`.
    /// - Throws: `AdminError` naming the lock file when another process holds it, or when the
    ///   file cannot be opened.
    public init(databasePath: String) throws(AdminError) {
        path = databasePath + ".lease-lock"
        let descriptor = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o600)
        guard descriptor >= 0 else {
            throw AdminError(.storeFailure, "cannot open the lease ledger's lock file \(path): \(String(cString: strerror(errno)))")
        }
        guard flock(descriptor, LOCK_EX | LOCK_NB) == 0 else {
            let reason = errno == EWOULDBLOCK ? nil : String(cString: strerror(errno))
            close(descriptor)
            if let reason { throw AdminError(.storeFailure, "cannot lock \(path): \(reason)") }
            throw AdminError(
                .storeFailure,
                "another sluiced already serves the SQLite database \(databasePath) (it holds \(path)). With SQLite the "
                    + "lease ledger lives in one process, and two would each grant the whole limit: stop the other one, "
                    + "or run replicas on PostgreSQL (--database postgres://...), where they share the ledger.")
        }
        self.descriptor = descriptor
    }

    deinit {
        close(descriptor)
    }
}
