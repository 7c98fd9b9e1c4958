// A safe handle on Envoy's bootstrap-extension config object (`bootstrap_extension_config_envoy_ptr`):
// init signal, timers, callouts, admin handlers and stats of the background worker.
//
// Thread: the main thread only (every callback here is main-thread-only in Envoy 1.40). The
// handle stays valid until `config_destroy`.
internal import CEnvoyABI

struct BootstrapConfigHandle: @unchecked Sendable {
    // @unchecked: the pointer is only dereferenced by Envoy, on the main thread.
    let raw: UnsafeMutableRawPointer

    init(_ raw: UnsafeMutableRawPointer) { self.raw = raw }

    /// Lets Envoy start serving; must be called exactly once per extension config.
    func signalInitComplete() {
        envoy_dynamic_module_callback_bootstrap_extension_config_signal_init_complete(raw)
    }

    /// A one-shot timer firing `timer_fired` on the main thread; nil if Envoy made none.
    func makeTimer() -> BootstrapTimer? {
        guard let pointer = envoy_dynamic_module_callback_bootstrap_extension_timer_new(raw) else { return nil }
        return BootstrapTimer(pointer)
    }

    /// A one-shot callout, answered in `http_callout_done` with the returned id.
    func startCallout(
        cluster: String, headers: ModuleHeaderList, body: [UInt8], timeoutMilliseconds: UInt64
    ) -> Result<UInt64, CalloutStartError> {
        var id: UInt64 = 0
        let result = withCalloutArguments(cluster, headers, body) { clusterBuffer, list, count, bodyBuffer in
            envoy_dynamic_module_callback_bootstrap_extension_http_callout(
                raw, &id, clusterBuffer, list, count, bodyBuffer, timeoutMilliseconds)
        }
        return calloutResult(result, id)
    }

    /// Serves Envoy admin requests under `prefix` through `admin_request`.
    func registerAdminHandler(_ prefix: String, help: String) -> Bool {
        ModuleBuffer.with(prefix) { prefixBuffer in
            ModuleBuffer.with(help) { helpBuffer in
                envoy_dynamic_module_callback_bootstrap_extension_register_admin_handler(raw, prefixBuffer, helpBuffer, false, false)
            }
        }
    }

    /// The body of the admin answer being built (inside `admin_request` only).
    func setAdminResponse(_ body: [UInt8]) {
        ModuleBuffer.with(body) { envoy_dynamic_module_callback_bootstrap_extension_admin_set_response(raw, $0) }
    }

    // MARK: - Stats (define during config_new)

    func defineCounter(_ name: String) throws(MetricError) -> CounterID {
        var id = 0
        let result = ModuleBuffer.with(name) {
            envoy_dynamic_module_callback_bootstrap_extension_config_define_counter(raw, $0, nil, 0, &id)
        }
        guard result == envoy_dynamic_module_type_metrics_result_Success else {
            throw MetricError(rawValue: result.rawValue) ?? .unknown
        }
        return CounterID(raw: id)
    }

    func defineGauge(_ name: String) throws(MetricError) -> GaugeID {
        var id = 0
        let result = ModuleBuffer.with(name) {
            envoy_dynamic_module_callback_bootstrap_extension_config_define_gauge(raw, $0, nil, 0, &id)
        }
        guard result == envoy_dynamic_module_type_metrics_result_Success else {
            throw MetricError(rawValue: result.rawValue) ?? .unknown
        }
        return GaugeID(raw: id)
    }

    func increment(_ counter: CounterID, by value: UInt64) {
        guard value > 0 else { return }
        _ = envoy_dynamic_module_callback_bootstrap_extension_config_increment_counter(raw, counter.raw, nil, 0, value)
    }

    func set(_ gauge: GaugeID, _ value: UInt64) {
        _ = envoy_dynamic_module_callback_bootstrap_extension_config_set_gauge(raw, gauge.raw, nil, 0, value)
    }
}

/// A main-thread timer Envoy allocated; deleted exactly once, on the main thread, by `delete()`
/// (deleting off the main thread is undefined in Envoy, so this is not left to `deinit`).
final class BootstrapTimer {
    private var raw: UnsafeMutableRawPointer?

    init(_ raw: UnsafeMutableRawPointer) { self.raw = raw }

    /// Whether `pointer` is this timer (the `timer_fired` hook passes it back).
    func isSame(_ pointer: UnsafeMutableRawPointer?) -> Bool { pointer != nil && pointer == raw }

    func enable(afterMilliseconds delay: UInt64) {
        guard let raw else { return }
        envoy_dynamic_module_callback_bootstrap_extension_timer_enable(raw, delay)
    }

    func delete() {
        guard let raw else { return }
        self.raw = nil
        envoy_dynamic_module_callback_bootstrap_extension_timer_disable(raw)
        envoy_dynamic_module_callback_bootstrap_extension_timer_delete(raw)
    }
}

/// Envoy's "shutdown is done" callback, called at most once however often `finish` is asked.
final class ShutdownCompletion {
    private var done: envoy_dynamic_module_type_event_cb?
    private let context: UnsafeMutableRawPointer?

    init(_ done: envoy_dynamic_module_type_event_cb?, _ context: UnsafeMutableRawPointer?) {
        self.done = done
        self.context = context
    }

    var finished: Bool { done == nil }

    func finish() {
        guard let done else { return }
        self.done = nil
        done(context)
    }
}
