// sluiced: the control daemon of Sluice. One YAML config in; Envoy configured over gRPC ADS;
// consumers, keys and teams through an admin API.
//
//     sluiced --config sluice.yaml            serve (the default subcommand)
//     sluiced render --config sluice.yaml     the equivalent static Envoy bootstrap
//     sluiced check --config sluice.yaml      validate only
//     sluiced keys create --team research --budget-usd-per-day 20
import ArgumentParser

@main
struct Sluiced: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sluiced",
        abstract: "The Sluice control daemon: serves Envoy its configuration over gRPC ADS.",
        subcommands: [
            ServeCommand.self, RenderCommand.self, CheckCommand.self, KeysCommand.self, TeamsCommand.self, UsageCommand.self,
        ],
        defaultSubcommand: ServeCommand.self
    )
}

/// Where the config comes from: a file, or the embedded demo config.
struct ConfigOptions: ParsableArguments {
    @Option(name: .long, help: "The config file (YAML). Default: the embedded demo config (envoy-module/sluice.yaml).")
    var config: String?
}
