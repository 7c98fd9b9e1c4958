// `sluiced render`: the static Envoy bootstrap equivalent to a config, for users who run no
// daemon. Secrets are read from their sources and written inline.
import ArgumentParser
import SluiceControl
import SluiceXDS

struct RenderCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "render", abstract: "Print the static Envoy bootstrap equivalent to a config.")

    @OptionGroup var options: ConfigOptions

    @Option(help: "Output format: yaml or json.")
    var format: String = "yaml"

    @Option(name: .customLong("node-id"), help: "The bootstrap's node.id.")
    var nodeID: String = "sluice-gateway"

    @Option(name: .customLong("admin-port"), help: "Envoy's admin port on 127.0.0.1 (0: no admin listener).")
    var adminPort: Int = 9901

    func validate() throws {
        guard format == "yaml" || format == "json" else { throw ValidationError("--format must be yaml or json, got '\(format)'") }
        guard (0...65535).contains(adminPort) else { throw ValidationError("--admin-port must be 0...65535") }
    }

    func run() throws {
        let source = ConfigSource(path: options.config)
        do {
            let plan = try source.load(warn: printError).compile()
            let text = try StaticBootstrap.render(
                plan: plan, node: .init(id: nodeID), admin: adminPort == 0 ? nil : .init(port: adminPort),
                format: format == "json" ? .json : .yaml)
            print(text, terminator: "")
        } catch let error as ConfigLoadError {
            printError(error.description)
            throw ExitCode.failure
        } catch {
            printError("\(source.displayName): \(error)")
            throw ExitCode.failure
        }
    }
}
