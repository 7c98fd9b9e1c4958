// The errors of the admin stores and API: a code the API maps to an HTTP status, a message for
// people, and for invalid input the field at fault (`limits.budget_usd_per_day`).

/// An admin operation's failure.
public struct AdminError: Error, Sendable, Equatable, CustomStringConvertible {
    public enum Code: String, Sendable, Equatable {
        /// Bad input; `field` names it. HTTP 400.
        case invalidRequest = "invalid_request"
        /// Missing or wrong admin token. HTTP 401.
        case unauthorized
        /// No such consumer or team. HTTP 404.
        case notFound = "not_found"
        /// The name is taken. HTTP 409.
        case conflict
        /// The consumer or team is defined in the config file, which the API does not edit. HTTP 409.
        case definedInConfig = "defined_in_config"
        /// The database failed or cannot be reached. HTTP 503.
        case storeFailure = "store_failure"
    }

    public var code: Code
    public var message: String
    /// The request field at fault, as a JSON path (`limits.requests_per_minute`), for `.invalidRequest`.
    public var field: String?

    public init(_ code: Code, _ message: String, field: String? = nil) {
        self.code = code
        self.message = message
        self.field = field
    }

    public var description: String { field.map { "\($0): \(message)" } ?? message }

    @inline(never)
    public static func invalid(_ field: String, _ problem: String) -> AdminError {
        AdminError(.invalidRequest, problem, field: field)
    }

    @inline(never)
    public static func consumerNotFound(_ name: String) -> AdminError {
        AdminError(.notFound, "no consumer named '\(name)' in the database")
    }

    @inline(never)
    public static func teamNotFound(_ name: String) -> AdminError {
        AdminError(.notFound, "no team named '\(name)' in the database")
    }

    /// A usage record whose stored `unit` sluiced does not know (written by a newer sluiced).
    @inline(never)
    static func storedUnit(_ unit: String, id: String) -> AdminError {
        AdminError(.storeFailure, "usage record '\(id)': unit '\(unit)' in the database is not one this sluiced knows")
    }

    @inline(never)
    public static func store(_ operation: String, _ error: any Error) -> AdminError {
        AdminError(.storeFailure, "the admin database failed to \(operation): \(error)")
    }
}
