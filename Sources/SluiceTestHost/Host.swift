public import CEnvoyABI

@c @implementation
public func envoy_dynamic_module_callback_get_concurrency() -> UInt32 { 2 }
