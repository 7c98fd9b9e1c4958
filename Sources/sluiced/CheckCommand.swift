// `sluiced check`: validates a config and compiles it, printing every diagnostic.
import ArgumentParser
import SluiceControl

struct CheckCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "check", abstract: "Validate a config: print its errors and warnings, compile it, change nothing.")

    @OptionGroup var options: ConfigOptions

    func run() throws {
        let source = ConfigSource(path: options.config)
        let config: SluiceConfig
        do {
            config = try source.load(warn: printError)
        } catch {
            printError(error.description)
            throw ExitCode.failure
        }
        do {
            let plan = try config.compile()
            print(
                "\(source.displayName): OK (\(plan.listeners.count) listeners, \(plan.clusters.count) clusters, \(config.models.count) models, \(plan.secrets.count) secrets)"
            )
        } catch {
            printError("\(source.displayName): \(error.description)")
            throw ExitCode.failure
        }
    }
}
