public import CEnvoyABI

@c @implementation
public func envoy_dynamic_module_on_program_init() -> envoy_dynamic_module_type_abi_version_module_ptr? {
    return nil
}
