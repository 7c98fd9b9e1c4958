// `sluiced keys ...` and `sluiced teams ...`: the admin database from the command line (the
// same store the daemon serves; a running sluiced picks the change up within its reload interval).
import ArgumentParser
import Foundation
import SluiceAdmin

/// The database and output options every `keys`/`teams` command takes.
struct StoreOptions: ParsableArguments {
    @Option(help: "The admin database: a SQLite file (path or sqlite:PATH) or a postgres:// URL.")
    var database: String = AdminStores.defaultDatabase

    @Flag(help: "Print JSON instead of text.")
    var json = false

    var format: CLIOutputFormat { json ? .json : .text }

    /// Opens the store, runs `body` and prints its output; store errors exit with a message.
    func with(_ body: (any AdminStore) async throws -> String) async throws {
        let store: any AdminStore
        do {
            store = try await AdminStores.open(database: database)
        } catch {
            printError("sluiced: cannot open the admin database '\(database)': \(error)")
            throw ExitCode.failure
        }
        do {
            let output = try await body(store)
            await store.close()
            print(output, terminator: "")
        } catch {
            await store.close()
            printError("sluiced: \(error)")
            throw ExitCode.failure
        }
    }
}

/// Limits and budgets as flags.
struct LimitFlags: ParsableArguments {
    @Option(name: .customLong("requests-per-minute")) var requestsPerMinute: Int64?
    @Option(name: .customLong("tokens-per-minute")) var tokensPerMinute: Int64?
    @Option(name: .customLong("input-tokens-per-minute")) var inputTokensPerMinute: Int64?
    @Option(name: .customLong("output-tokens-per-minute")) var outputTokensPerMinute: Int64?
    @Option(name: .customLong("budget-usd-per-day")) var budgetUSDPerDay: Double?
    @Option(name: .customLong("budget-usd-per-month")) var budgetUSDPerMonth: Double?

    var limits: LimitOptions {
        LimitOptions(
            requestsPerMinute: requestsPerMinute, tokensPerMinute: tokensPerMinute, inputTokensPerMinute: inputTokensPerMinute,
            outputTokensPerMinute: outputTokensPerMinute, budgetUSDPerDay: budgetUSDPerDay, budgetUSDPerMonth: budgetUSDPerMonth)
    }
}

struct KeysCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "keys", abstract: "Create, list, revoke, enable, rotate and delete client keys in the admin database.",
        subcommands: [Create.self, List.self, Revoke.self, Enable.self, Rotate.self, Delete.self])

    struct Create: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Create a consumer with a new key (the key is printed this once).")
        @OptionGroup var store: StoreOptions
        @Option(help: "The consumer's name (default: generated).") var name: String?
        @Option(help: "The consumer's team.") var team: String?
        @Option(help: "Models the key may use: names or prefixes ending in '*' (repeatable).") var model: [String] = []
        @Option(name: .customLong("expires-at"), help: "Unix seconds after which the key is refused.") var expiresAt: Int64?
        @OptionGroup var limits: LimitFlags

        func run() async throws {
            let options = KeyCreateOptions(
                name: name, team: team, models: model.isEmpty ? nil : model, expiresAt: expiresAt, limits: limits.limits)
            try await store.with { try await KeysCLI.create(options, store: $0, format: store.format) }
        }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List the database's consumers (keys are never shown).")
        @OptionGroup var store: StoreOptions
        @Option(help: "Only this team's consumers.") var team: String?
        func run() async throws { try await store.with { try await KeysCLI.list(team: team, store: $0, format: store.format) } }
    }

    struct Revoke: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Disable a consumer's key (401 api_key_revoked).")
        @OptionGroup var store: StoreOptions
        @Argument var name: String
        func run() async throws { try await store.with { try await KeysCLI.revoke(name, store: $0, format: store.format) } }
    }

    struct Enable: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Enable a revoked consumer's key again.")
        @OptionGroup var store: StoreOptions
        @Argument var name: String
        func run() async throws { try await store.with { try await KeysCLI.enable(name, store: $0, format: store.format) } }
    }

    struct Rotate: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Give a consumer a new key (printed this once); the old one stops working.")
        @OptionGroup var store: StoreOptions
        @Argument var name: String
        func run() async throws { try await store.with { try await KeysCLI.rotate(name, store: $0, format: store.format) } }
    }

    struct Delete: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Delete a consumer.")
        @OptionGroup var store: StoreOptions
        @Argument var name: String
        func run() async throws { try await store.with { try await KeysCLI.delete(name, store: $0) } }
    }
}

struct TeamsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "teams", abstract: "Create teams and set their limits and budgets in the admin database.",
        subcommands: [Create.self, Limits.self, List.self])

    struct Create: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Create a team.")
        @OptionGroup var store: StoreOptions
        @Argument var name: String
        @OptionGroup var limits: LimitFlags
        func run() async throws {
            try await store.with { try await TeamsCLI.create(name, limits: limits.limits, store: $0, format: store.format) }
        }
    }

    struct Limits: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "limits", abstract: "Replace a team's limits and budgets.")
        @OptionGroup var store: StoreOptions
        @Argument var name: String
        @OptionGroup var limits: LimitFlags
        func run() async throws {
            try await store.with { try await TeamsCLI.setLimits(name, limits: limits.limits, store: $0, format: store.format) }
        }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List the database's teams.")
        @OptionGroup var store: StoreOptions
        func run() async throws { try await store.with { try await TeamsCLI.list(store: $0, format: store.format) } }
    }
}
