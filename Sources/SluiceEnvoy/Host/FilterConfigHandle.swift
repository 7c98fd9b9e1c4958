// A safe handle on Envoy's per-filter-config object (`filter_config_envoy_ptr`): metric
// definitions, secret subscriptions, config-level schedulers and callouts.
//
// Thread: the main thread (config_new, config_scheduled, config callout hooks), except where a
// method says otherwise. The handle stays valid until `config_destroy`.
internal import CEnvoyABI

public struct CounterID: Sendable, Hashable { let raw: Int }
public struct GaugeID: Sendable, Hashable { let raw: Int }
public struct HistogramID: Sendable, Hashable { let raw: Int }
public struct SecretHandle: Sendable, Hashable { let raw: Int }

/// Why a metric could not be defined or recorded.
public enum MetricError: UInt32, Error, Sendable {
    case notFound = 1, invalidLabels, frozen, unknown = 0xFFFF
}

public struct FilterConfigHandle: @unchecked Sendable {
    // @unchecked: the pointer is only dereferenced by Envoy, on the thread rules documented above.
    let raw: UnsafeMutableRawPointer

    init(_ raw: UnsafeMutableRawPointer) { self.raw = raw }

    // MARK: - Metrics (define during config_new only)

    public func defineCounter(_ name: String, labels: [String] = []) throws(MetricError) -> CounterID {
        CounterID(raw: try define(name, labels, envoy_dynamic_module_callback_http_filter_config_define_counter))
    }

    public func defineGauge(_ name: String, labels: [String] = []) throws(MetricError) -> GaugeID {
        GaugeID(raw: try define(name, labels, envoy_dynamic_module_callback_http_filter_config_define_gauge))
    }

    public func defineHistogram(_ name: String, labels: [String] = []) throws(MetricError) -> HistogramID {
        HistogramID(raw: try define(name, labels, envoy_dynamic_module_callback_http_filter_config_define_histogram))
    }

    private typealias DefineFunction = @convention(c) (
        UnsafeMutableRawPointer?, envoy_dynamic_module_type_module_buffer,
        UnsafeMutablePointer<envoy_dynamic_module_type_module_buffer>?, Int, UnsafeMutablePointer<Int>?
    ) -> envoy_dynamic_module_type_metrics_result

    private func define(_ name: String, _ labels: [String], _ function: DefineFunction) throws(MetricError) -> Int {
        var id = 0
        let result = ModuleBuffer.with(name) { nameBuffer in
            withLabelBuffers(labels) { function(raw, nameBuffer, $0, $1, &id) }
        }
        guard result == envoy_dynamic_module_type_metrics_result_Success else {
            throw MetricError(rawValue: result.rawValue) ?? .unknown
        }
        return id
    }

    /// Increments a counter outside any stream (config_scheduled, callout hooks).
    public func increment(_ counter: CounterID, labels: [String] = [], by value: UInt64 = 1) {
        withLabelBuffers(labels) { ptr, count in
            _ = envoy_dynamic_module_callback_http_filter_config_increment_counter(raw, counter.raw, ptr, count, value)
        }
    }

    public func set(_ gauge: GaugeID, _ value: UInt64, labels: [String] = []) {
        withLabelBuffers(labels) { ptr, count in
            _ = envoy_dynamic_module_callback_http_filter_config_set_gauge(raw, gauge.raw, ptr, count, value)
        }
    }

    public func record(_ histogram: HistogramID, _ value: UInt64, labels: [String] = []) {
        withLabelBuffers(labels) { ptr, count in
            _ = envoy_dynamic_module_callback_http_filter_config_record_histogram_value(raw, histogram.raw, ptr, count, value)
        }
    }

    // MARK: - Secrets (subscribe during config_new only)

    /// Subscribes to generic secret `name`: the static `static_resources.secrets` entry when
    /// `configSourceJSON` is empty, else an SDS `ConfigSource` in JSON (file-based SDS rotates).
    public func subscribeGenericSecret(_ name: String, configSourceJSON: String = "") -> SecretHandle? {
        let handle = ModuleBuffer.with(name) { nameBuffer in
            if configSourceJSON.isEmpty {
                return envoy_dynamic_module_callback_http_filter_config_generic_secret_subscribe(raw, nameBuffer, ModuleBuffer.absent)
            }
            return ModuleBuffer.with(configSourceJSON) {
                envoy_dynamic_module_callback_http_filter_config_generic_secret_subscribe(raw, nameBuffer, $0)
            }
        }
        return handle == 0 ? nil : SecretHandle(raw: handle)
    }

    /// The current secret value from the config context; bytes valid only inside `body`.
    public func withGenericSecret<R>(_ handle: SecretHandle, _ body: (UnsafeRawBufferPointer?) -> R) -> R {
        var out = envoy_dynamic_module_type_envoy_buffer.empty
        guard envoy_dynamic_module_callback_http_filter_config_get_generic_secret(raw, handle.raw, &out) else { return body(nil) }
        return body(out.rawBytes)
    }

    // MARK: - Scheduler and callouts

    /// A scheduler whose `commit` (any thread) delivers `onConfigScheduled` on the main thread.
    public func makeScheduler() -> ConfigScheduler? {
        guard let pointer = envoy_dynamic_module_callback_http_filter_config_scheduler_new(raw) else { return nil }
        return ConfigScheduler(pointer)
    }

    /// A one-shot callout not tied to a request (main thread); completes in `onConfigCalloutDone`.
    public func startCallout(
        cluster: String, headers: ModuleHeaderList, body: [UInt8], timeoutMilliseconds: UInt64
    ) -> Result<UInt64, CalloutStartError> {
        var id: UInt64 = 0
        let result = withCalloutArguments(cluster, headers, body) { clusterBuffer, list, count, bodyBuffer in
            envoy_dynamic_module_callback_http_filter_config_http_callout(
                raw, &id, clusterBuffer, list, count, bodyBuffer, timeoutMilliseconds)
        }
        return calloutResult(result, id)
    }
}

/// Wakes a stream's worker from any thread. Envoy allocates it; we delete it exactly once.
public final class StreamScheduler: @unchecked Sendable {
    // @unchecked: `commit` is documented thread-safe by Envoy; `deinit` runs once.
    private let raw: UnsafeMutableRawPointer

    init(_ raw: UnsafeMutableRawPointer) { self.raw = raw }

    /// Any thread: delivers `onScheduled(eventID)` on the stream's worker (no-op after destroy).
    public func commit(_ eventID: UInt64) { envoy_dynamic_module_callback_http_filter_scheduler_commit(raw, eventID) }

    deinit { envoy_dynamic_module_callback_http_filter_scheduler_delete(raw) }
}

/// Wakes the main thread from any thread for config-level work.
public final class ConfigScheduler: @unchecked Sendable {
    private let raw: UnsafeMutableRawPointer

    init(_ raw: UnsafeMutableRawPointer) { self.raw = raw }

    /// Any thread: delivers `onConfigScheduled(eventID)` on the main thread.
    public func commit(_ eventID: UInt64) { envoy_dynamic_module_callback_http_filter_config_scheduler_commit(raw, eventID) }

    deinit { envoy_dynamic_module_callback_http_filter_config_scheduler_delete(raw) }
}
