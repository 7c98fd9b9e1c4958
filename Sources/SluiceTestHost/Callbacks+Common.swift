// Fake Envoy: process-wide callbacks (logging, concurrency, validation mode).
public import CEnvoyABI

func bytes(_ buffer: envoy_dynamic_module_type_module_buffer) -> [UInt8] {
    guard let ptr = buffer.ptr, buffer.length > 0 else { return [] }
    return Array(UnsafeRawBufferPointer(start: ptr, count: buffer.length))
}

func string(_ buffer: envoy_dynamic_module_type_module_buffer) -> String { String(decoding: bytes(buffer), as: UTF8.self) }

func envoyBuffer(_ stable: StableBytes?) -> envoy_dynamic_module_type_envoy_buffer {
    guard let stable else { return envoy_dynamic_module_type_envoy_buffer(ptr: nil, length: 0) }
    return envoy_dynamic_module_type_envoy_buffer(ptr: stable.pointer.assumingMemoryBound(to: CChar.self), length: stable.count)
}

/// Fake worker count reported to the module.
nonisolated(unsafe) public var fakeConcurrency: UInt32 = 2
nonisolated(unsafe) public var fakeValidationMode = false

@c @implementation
public func envoy_dynamic_module_callback_log(
    _ level: envoy_dynamic_module_type_log_level, _ message: envoy_dynamic_module_type_module_buffer
) {
    FakeLog.append(level.rawValue, string(message))
}

@c @implementation
public func envoy_dynamic_module_callback_log_v2(
    _ level: envoy_dynamic_module_type_log_level, _ message: envoy_dynamic_module_type_module_buffer,
    _ source_file: envoy_dynamic_module_type_module_buffer, _ source_line: UInt32
) {
    FakeLog.append(level.rawValue, string(message))
}

@c @implementation
public func envoy_dynamic_module_callback_log_enabled(_ level: envoy_dynamic_module_type_log_level) -> Bool {
    level.rawValue >= FakeLog.minimumLevel
}

@c @implementation
public func envoy_dynamic_module_callback_get_log_level() -> envoy_dynamic_module_type_log_level {
    envoy_dynamic_module_type_log_level(rawValue: FakeLog.minimumLevel)
}

@c @implementation
public func envoy_dynamic_module_callback_get_concurrency() -> UInt32 { fakeConcurrency }

@c @implementation
public func envoy_dynamic_module_callback_is_validation_mode() -> Bool { fakeValidationMode }
