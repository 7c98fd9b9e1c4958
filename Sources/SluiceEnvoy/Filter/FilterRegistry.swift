// Maps `filter_name` (from Envoy's DynamicModuleFilter config) to the filter Sluice builds.
internal import SluiceCore

/// Why a config could not be built; logged by the hook before Envoy rejects the config.
public struct ConfigLoadError: Error, Sendable {
    public var message: String
    public init(_ message: String) { self.message = message }
}

public enum FilterRegistry {
    /// The filter names this module implements.
    public static let filterNames = ["sluice", "sluice_upstream"]

    /// Builds the config object for `name` on the main thread.
    public static func makeFactory(
        name: String, config: [UInt8], handle: FilterConfigHandle
    ) -> Result<HTTPFilterFactory, ConfigLoadError> {
        switch name {
        case "sluice":
            return GatewayFilterFactory.make(config: config, handle: handle)
        case "sluice_upstream":
            return UpstreamFilterFactory.make(config: config, handle: handle)
        default:
            return .failure(
                ConfigLoadError("unknown filter_name '\(name)'; this module implements: \(filterNames.joined(separator: ", "))"))
        }
    }

    /// Builds a per-route config. None is defined yet: refuse rather than ignore it.
    public static func makePerRouteConfig(name: String, config: [UInt8]) -> Result<PerRouteConfig, ConfigLoadError> {
        .failure(ConfigLoadError("unknown per_route_config_name '\(name)'; sluice has no per-route settings yet"))
    }
}
