// Level-checked logging into Envoy's `dynamic_modules` logger.
internal import CEnvoyABI

/// Log levels, mirroring Envoy's (spdlog) numbering.
public enum LogLevel: UInt32, Sendable, Comparable {
    case trace = 0, debug, info, warn, error, critical, off

    public static func < (lhs: LogLevel, rhs: LogLevel) -> Bool { lhs.rawValue < rhs.rawValue }
}

/// Writes to Envoy's log. Any thread. The message is built only when the level is enabled, so a
/// disabled debug line costs one ABI call. Never pass secrets: redact keys before they get here.
public enum EnvoyLog {
    @inline(__always)
    public static func log(
        _ level: LogLevel, _ message: @autoclosure () -> String, file: StaticString = #fileID, line: UInt32 = #line
    ) {
        let cLevel = envoy_dynamic_module_type_log_level(rawValue: level.rawValue)
        guard envoy_dynamic_module_callback_log_enabled(cLevel) else { return }
        emit(cLevel, message(), file: file, line: line)
    }

    @inline(never)
    private static func emit(_ level: envoy_dynamic_module_type_log_level, _ message: String, file: StaticString, line: UInt32) {
        ModuleBuffer.with(message) { text in
            envoy_dynamic_module_callback_log_v2(level, text, ModuleBuffer.of(file), line)
        }
    }

    public static func debug(_ message: @autoclosure () -> String, file: StaticString = #fileID, line: UInt32 = #line) {
        log(.debug, message(), file: file, line: line)
    }
    public static func info(_ message: @autoclosure () -> String, file: StaticString = #fileID, line: UInt32 = #line) {
        log(.info, message(), file: file, line: line)
    }
    public static func warn(_ message: @autoclosure () -> String, file: StaticString = #fileID, line: UInt32 = #line) {
        log(.warn, message(), file: file, line: line)
    }
    public static func error(_ message: @autoclosure () -> String, file: StaticString = #fileID, line: UInt32 = #line) {
        log(.error, message(), file: file, line: line)
    }
}
