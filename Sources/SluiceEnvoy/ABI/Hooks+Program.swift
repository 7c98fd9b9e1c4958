// Program init: the one place for process-wide setup ("Program init and the ABI version" in
// SluiceEnvoy.docc/EnvoyDynamicModulesABI.md).
public import CEnvoyABI

/// Main thread, once per process. Returns the ABI version Envoy 1.40 expects; a static string, so
/// it stays valid after return. Nothing here can fail today; a future failure would return nil and
/// Envoy would refuse the module with a clean config error.
@c @implementation
public func envoy_dynamic_module_on_program_init() -> envoy_dynamic_module_type_abi_version_module_ptr? {
    // A StaticString literal is NUL-terminated and lives in the image for the process lifetime.
    return UnsafeRawPointer(sluiceABIVersion.utf8Start).assumingMemoryBound(to: CChar.self)
}

/// Must equal `SLUICE_ENVOY_ABI_VERSION` in include/CEnvoyABI/envoy_dynamic_modules_abi.h (a test checks).
public let sluiceABIVersion: StaticString = "v0.2.0"
