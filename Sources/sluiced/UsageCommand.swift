// `sluiced usage`: the fleet's usage from the admin database (the records every Envoy sent).
import ArgumentParser
import Foundation
import SluiceAdmin

struct UsageCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "usage", abstract: "Usage and cost of every Envoy from the admin database, summed per group.")

    @OptionGroup var store: StoreOptions

    @Option(name: .customLong("group-by"), help: "A comma-separated subset of key,team,model,backend,provider.")
    var groupBy: String?

    @Option(help: "How far back from now: 90s, 30m, 24h, 7d.")
    var since: String?

    @Option(help: "Start of the range, inclusive: Unix milliseconds or an RFC 3339 time.")
    var from: String?

    @Option(help: "End of the range, exclusive: Unix milliseconds or an RFC 3339 time. Default: no end.")
    var to: String?

    func run() async throws {
        let now = Int64((Date().timeIntervalSince1970 * 1000).rounded(.down))
        try await store.with {
            try await UsageCLI.summary(
                groupBy: groupBy, since: since, from: from, to: to, store: $0, nowMillis: now, format: store.format)
        }
    }
}
