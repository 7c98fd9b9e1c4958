// sluiced: the control daemon of Sluice. One YAML config in; Envoy configured over gRPC ADS;
// consumers, keys and teams through an admin API.
import ArgumentParser

@main
struct Sluiced: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sluiced",
        abstract: "The Sluice control daemon: serves Envoy its configuration over gRPC ADS.",
        subcommands: []
    )
}
