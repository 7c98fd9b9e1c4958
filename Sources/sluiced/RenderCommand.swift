// `sluiced render`: the static Envoy bootstrap equivalent to a config, for users who run no
// daemon. Secrets are read from their sources and written inline.
import ArgumentParser
import Foundation
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

    @Option(
        name: .customLong("fleet-admin"),
        help: "Where sluiced's admin API listens (host:port), for the module's background worker ('none': no worker).")
    var fleetAdmin: String = "127.0.0.1:18001"

    @Option(
        name: .customLong("fleet-token-file"),
        help: "The fleet token file the worker authenticates with (made absolute against the current directory).")
    var fleetTokenFile: String = ".sluiced/fleet-token"

    func validate() throws {
        guard format == "yaml" || format == "json" else { throw ValidationError("--format must be yaml or json, got '\(format)'") }
        guard (0...65535).contains(adminPort) else { throw ValidationError("--admin-port must be 0...65535") }
        if fleetAdmin != "none" { _ = try ServeCommand.hostPort(fleetAdmin, option: "--fleet-admin") }
        guard !fleetTokenFile.isEmpty else { throw ValidationError("--fleet-token-file must not be empty") }
        guard (1...128).contains(nodeID.utf8.count), nodeID.utf8.allSatisfy({ $0 >= 0x20 && $0 < 0x7F }) else {
            throw ValidationError("--node-id must be 1 to 128 printable ASCII characters")
        }
    }

    /// The worker's settings: sluiced's admin address and the token file's absolute path.
    func fleet() throws -> StaticBootstrap.Fleet? {
        guard fleetAdmin != "none" else { return nil }
        let (host, port) = try ServeCommand.hostPort(fleetAdmin, option: "--fleet-admin")
        let path = fleetTokenFile.hasPrefix("/")
            ? fleetTokenFile : URL(fileURLWithPath: FileManager.default.currentDirectoryPath).appendingPathComponent(fleetTokenFile).path
        return StaticBootstrap.Fleet(host: host, port: port, tokenFile: path)
    }

    func run() throws {
        let source = ConfigSource(path: options.config)
        do {
            let plan = try source.load(warn: printError).compile()
            let text = try StaticBootstrap.render(
                plan: plan, node: .init(id: nodeID), admin: adminPort == 0 ? nil : .init(port: adminPort), fleet: try fleet(),
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
