// Fake Envoy for the bootstrap extension (the module's background worker): the callbacks the
// module calls (init signal, timers, callouts, admin handlers, stats) recorded in memory, and a
// driver that calls the module's hooks the way Envoy 1.40 does. Timers fire and callouts are
// answered only when the test says so.
public import CEnvoyABI

/// Envoy's bootstrap-extension config object, as the fake keeps it.
public final class FakeBootstrapConfig: @unchecked Sendable {
    // @unchecked: driven from one test thread (Envoy's main thread).
    public var initCompleteSignals = 0
    /// Timers the module made; `enabledDelay` is the delay of the last `timer_enable`, nil when
    /// disabled or fired.
    public final class Timer {
        public var enabledDelay: UInt64?
        public var deleted = false
        public var pointer: UnsafeMutableRawPointer { Unmanaged.passUnretained(self).toOpaque() }
    }
    public var timers: [Timer] = []
    /// Callouts started and not yet answered by the test.
    public var callouts: [FakeCallout] = []
    var nextCalloutID: UInt64 = 1
    /// What `bootstrap_extension_http_callout` answers (Success unless a test sets another).
    public var calloutInitResult = envoy_dynamic_module_type_http_callout_init_result_Success
    public var adminHandlers: [String] = []
    public var adminResponse: [UInt8]?
    public var counters: [String: UInt64] = [:]
    public var gauges: [String: UInt64] = [:]
    var metricNames: [String] = []

    public init() {}

    public var pointer: UnsafeMutableRawPointer { Unmanaged.passUnretained(self).toOpaque() }

    static func from(_ pointer: UnsafeMutableRawPointer?) -> FakeBootstrapConfig? {
        guard let pointer else { return nil }
        return Unmanaged<FakeBootstrapConfig>.fromOpaque(pointer).takeUnretainedValue()
    }

    func define(_ name: envoy_dynamic_module_type_module_buffer, _ id: UnsafeMutablePointer<Int>?, counter: Bool)
        -> envoy_dynamic_module_type_metrics_result
    {
        let text = string(name)
        metricNames.append(text)
        if counter { counters[text] = 0 } else { gauges[text] = 0 }
        id?.pointee = metricNames.count - 1
        return envoy_dynamic_module_type_metrics_result_Success
    }

    func metricName(_ id: Int) -> String? { metricNames.indices.contains(id) ? metricNames[id] : nil }
}

/// Drives one bootstrap extension through the module's hooks.
public final class FakeBootstrapExtension {
    public let config: FakeBootstrapConfig
    /// The module's config object, or nil when it refused the config.
    public let configPointer: UnsafeRawPointer?
    public private(set) var extensionPointer: UnsafeRawPointer?
    /// How often the module called the shutdown completion.
    public private(set) var shutdownDoneCalls = 0

    /// `config_new(name, config)` then, if accepted, `new`.
    public init(name: String, config text: String, config: FakeBootstrapConfig = FakeBootstrapConfig()) {
        self.config = config
        _ = envoy_dynamic_module_on_program_init()
        configPointer = withEnvoyBuffer(Array(name.utf8)) { nameBuffer in
            withEnvoyBuffer(Array(text.utf8)) { envoy_dynamic_module_on_bootstrap_extension_config_new(config.pointer, nameBuffer, $0) }
        }
        if let configPointer {
            extensionPointer = envoy_dynamic_module_on_bootstrap_extension_new(configPointer, config.pointer)
        }
    }

    public var loaded: Bool { configPointer != nil }

    public func serverInitialized() {
        envoy_dynamic_module_on_bootstrap_extension_server_initialized(config.pointer, extensionPointer)
    }

    /// Fires every enabled timer once (as Envoy would when their delays pass).
    public func fireTimers() {
        for timer in config.timers where timer.enabledDelay != nil && !timer.deleted {
            timer.enabledDelay = nil
            envoy_dynamic_module_on_bootstrap_extension_timer_fired(config.pointer, configPointer, timer.pointer)
        }
    }

    /// Answers callout `id` with `status` and `body` (or a reset when `reset`), removing it from
    /// the pending list.
    public func answerCallout(_ id: UInt64, status: Int = 200, body: [UInt8] = [], reset: Bool = false) {
        config.callouts.removeAll { $0.id == id }
        let names = [StableBytes(":status"), StableBytes("content-type")]
        let values = [StableBytes(String(status)), StableBytes("application/json")]
        var headers = (0..<2).map { index in
            envoy_dynamic_module_type_envoy_http_header(
                key_ptr: names[index].pointer.assumingMemoryBound(to: CChar.self), key_length: names[index].count,
                value_ptr: values[index].pointer.assumingMemoryBound(to: CChar.self), value_length: values[index].count)
        }
        let bodyStable = StableBytes(body)
        var chunks = [envoyBuffer(bodyStable)]
        let result = reset ? envoy_dynamic_module_type_http_callout_result_Reset : envoy_dynamic_module_type_http_callout_result_Success
        withExtendedLifetime((names, values, bodyStable)) {
            headers.withUnsafeMutableBufferPointer { headerBuffer in
                chunks.withUnsafeMutableBufferPointer { chunkBuffer in
                    envoy_dynamic_module_on_bootstrap_extension_http_callout_done(
                        config.pointer, configPointer, id, result, reset ? nil : headerBuffer.baseAddress, reset ? 0 : 2,
                        chunkBuffer.baseAddress, body.isEmpty ? 0 : 1)
                }
            }
        }
    }

    /// `admin_request` for `path`: the status and the body the module set.
    public func admin(_ path: String, method: String = "GET") -> (status: UInt32, body: String) {
        config.adminResponse = nil
        let status = withEnvoyBuffer(Array(method.utf8)) { methodBuffer in
            withEnvoyBuffer(Array(path.utf8)) { pathBuffer in
                withEnvoyBuffer([]) { body in
                    envoy_dynamic_module_on_bootstrap_extension_admin_request(config.pointer, configPointer, methodBuffer, pathBuffer, body)
                }
            }
        }
        return (status, String(decoding: config.adminResponse ?? [], as: UTF8.self))
    }

    public func drainStarted() {
        envoy_dynamic_module_on_bootstrap_extension_drain_started(config.pointer, extensionPointer)
    }

    /// `shutdown`; the completion may come now or later (from a timer or callout hook).
    public func shutdown() {
        let context = Unmanaged.passUnretained(self).toOpaque()
        envoy_dynamic_module_on_bootstrap_extension_shutdown(config.pointer, extensionPointer, { context in
            guard let context else { return }
            Unmanaged<FakeBootstrapExtension>.fromOpaque(context).takeUnretainedValue().shutdownDoneCalls += 1
        }, context)
    }

    /// `destroy` then `config_destroy`, as Envoy does at exit.
    public func destroy() {
        if let extensionPointer { envoy_dynamic_module_on_bootstrap_extension_destroy(extensionPointer) }
        extensionPointer = nil
        if let configPointer { envoy_dynamic_module_on_bootstrap_extension_config_destroy(configPointer) }
    }
}

// MARK: - Callbacks

@c @implementation
public func envoy_dynamic_module_callback_bootstrap_extension_config_signal_init_complete(
    _ extension_config_envoy_ptr: envoy_dynamic_module_type_bootstrap_extension_config_envoy_ptr?
) {
    FakeBootstrapConfig.from(extension_config_envoy_ptr)?.initCompleteSignals += 1
}

@c @implementation
public func envoy_dynamic_module_callback_bootstrap_extension_timer_new(
    _ extension_config_envoy_ptr: envoy_dynamic_module_type_bootstrap_extension_config_envoy_ptr?
) -> envoy_dynamic_module_type_bootstrap_extension_timer_module_ptr? {
    guard let config = FakeBootstrapConfig.from(extension_config_envoy_ptr) else { return nil }
    let timer = FakeBootstrapConfig.Timer()
    config.timers.append(timer)
    return timer.pointer
}

private func fakeTimer(_ pointer: UnsafeMutableRawPointer?) -> FakeBootstrapConfig.Timer? {
    guard let pointer else { return nil }
    return Unmanaged<FakeBootstrapConfig.Timer>.fromOpaque(pointer).takeUnretainedValue()
}

@c @implementation
public func envoy_dynamic_module_callback_bootstrap_extension_timer_enable(
    _ timer_ptr: envoy_dynamic_module_type_bootstrap_extension_timer_module_ptr?, _ delay_milliseconds: UInt64
) {
    fakeTimer(timer_ptr)?.enabledDelay = delay_milliseconds
}

@c @implementation
public func envoy_dynamic_module_callback_bootstrap_extension_timer_disable(
    _ timer_ptr: envoy_dynamic_module_type_bootstrap_extension_timer_module_ptr?
) {
    fakeTimer(timer_ptr)?.enabledDelay = nil
}

@c @implementation
public func envoy_dynamic_module_callback_bootstrap_extension_timer_delete(
    _ timer_ptr: envoy_dynamic_module_type_bootstrap_extension_timer_module_ptr?
) {
    fakeTimer(timer_ptr)?.deleted = true
}

@c @implementation
public func envoy_dynamic_module_callback_bootstrap_extension_http_callout(
    _ extension_config_envoy_ptr: envoy_dynamic_module_type_bootstrap_extension_config_envoy_ptr?,
    _ callout_id_out: UnsafeMutablePointer<UInt64>?,
    _ cluster_name: envoy_dynamic_module_type_module_buffer,
    _ headers: UnsafeMutablePointer<envoy_dynamic_module_type_module_http_header>?,
    _ headers_size: Int,
    _ body: envoy_dynamic_module_type_module_buffer,
    _ timeout_milliseconds: UInt64
) -> envoy_dynamic_module_type_http_callout_init_result {
    guard let config = FakeBootstrapConfig.from(extension_config_envoy_ptr) else {
        return envoy_dynamic_module_type_http_callout_init_result_CannotCreateRequest
    }
    guard config.calloutInitResult == envoy_dynamic_module_type_http_callout_init_result_Success else {
        return config.calloutInitResult
    }
    var map = FakeHeaderMap()
    if let headers {
        for header in UnsafeBufferPointer(start: headers, count: headers_size) {
            map.add(
                bytes(envoy_dynamic_module_type_module_buffer(ptr: header.key_ptr, length: header.key_length)),
                bytes(envoy_dynamic_module_type_module_buffer(ptr: header.value_ptr, length: header.value_length)))
        }
    }
    let id = config.nextCalloutID
    config.nextCalloutID += 1
    config.callouts.append(
        FakeCallout(
            id: id, cluster: string(cluster_name), headers: map, body: bytes(body), timeoutMilliseconds: timeout_milliseconds,
            streaming: false))
    callout_id_out?.pointee = id
    return envoy_dynamic_module_type_http_callout_init_result_Success
}

@c @implementation
public func envoy_dynamic_module_callback_bootstrap_extension_register_admin_handler(
    _ extension_config_envoy_ptr: envoy_dynamic_module_type_bootstrap_extension_config_envoy_ptr?,
    _ path_prefix: envoy_dynamic_module_type_module_buffer,
    _ help_text: envoy_dynamic_module_type_module_buffer,
    _ removable: Bool,
    _ mutates_server_state: Bool
) -> Bool {
    guard let config = FakeBootstrapConfig.from(extension_config_envoy_ptr) else { return false }
    config.adminHandlers.append(string(path_prefix))
    return true
}

@c @implementation
public func envoy_dynamic_module_callback_bootstrap_extension_remove_admin_handler(
    _ extension_config_envoy_ptr: envoy_dynamic_module_type_bootstrap_extension_config_envoy_ptr?,
    _ path_prefix: envoy_dynamic_module_type_module_buffer
) -> Bool {
    guard let config = FakeBootstrapConfig.from(extension_config_envoy_ptr) else { return false }
    let prefix = string(path_prefix)
    let before = config.adminHandlers.count
    config.adminHandlers.removeAll { $0 == prefix }
    return config.adminHandlers.count < before
}

@c @implementation
public func envoy_dynamic_module_callback_bootstrap_extension_admin_set_response(
    _ extension_config_envoy_ptr: envoy_dynamic_module_type_bootstrap_extension_config_envoy_ptr?,
    _ response_body: envoy_dynamic_module_type_module_buffer
) {
    FakeBootstrapConfig.from(extension_config_envoy_ptr)?.adminResponse = bytes(response_body)
}

@c @implementation
public func envoy_dynamic_module_callback_bootstrap_extension_config_define_counter(
    _ extension_config_envoy_ptr: envoy_dynamic_module_type_bootstrap_extension_config_envoy_ptr?,
    _ name: envoy_dynamic_module_type_module_buffer,
    _ label_names: UnsafeMutablePointer<envoy_dynamic_module_type_module_buffer>?,
    _ label_names_length: Int,
    _ counter_id_ptr: UnsafeMutablePointer<Int>?
) -> envoy_dynamic_module_type_metrics_result {
    guard let config = FakeBootstrapConfig.from(extension_config_envoy_ptr) else {
        return envoy_dynamic_module_type_metrics_result_MetricNotFound
    }
    return config.define(name, counter_id_ptr, counter: true)
}

@c @implementation
public func envoy_dynamic_module_callback_bootstrap_extension_config_define_gauge(
    _ extension_config_envoy_ptr: envoy_dynamic_module_type_bootstrap_extension_config_envoy_ptr?,
    _ name: envoy_dynamic_module_type_module_buffer,
    _ label_names: UnsafeMutablePointer<envoy_dynamic_module_type_module_buffer>?,
    _ label_names_length: Int,
    _ gauge_id_ptr: UnsafeMutablePointer<Int>?
) -> envoy_dynamic_module_type_metrics_result {
    guard let config = FakeBootstrapConfig.from(extension_config_envoy_ptr) else {
        return envoy_dynamic_module_type_metrics_result_MetricNotFound
    }
    return config.define(name, gauge_id_ptr, counter: false)
}

@c @implementation
public func envoy_dynamic_module_callback_bootstrap_extension_config_increment_counter(
    _ extension_config_envoy_ptr: envoy_dynamic_module_type_bootstrap_extension_config_envoy_ptr?,
    _ id: Int,
    _ label_values: UnsafeMutablePointer<envoy_dynamic_module_type_module_buffer>?,
    _ label_values_length: Int,
    _ value: UInt64
) -> envoy_dynamic_module_type_metrics_result {
    guard let config = FakeBootstrapConfig.from(extension_config_envoy_ptr), let name = config.metricName(id),
        config.counters[name] != nil
    else { return envoy_dynamic_module_type_metrics_result_MetricNotFound }
    config.counters[name, default: 0] += value
    return envoy_dynamic_module_type_metrics_result_Success
}

@c @implementation
public func envoy_dynamic_module_callback_bootstrap_extension_config_set_gauge(
    _ extension_config_envoy_ptr: envoy_dynamic_module_type_bootstrap_extension_config_envoy_ptr?,
    _ id: Int,
    _ label_values: UnsafeMutablePointer<envoy_dynamic_module_type_module_buffer>?,
    _ label_values_length: Int,
    _ value: UInt64
) -> envoy_dynamic_module_type_metrics_result {
    guard let config = FakeBootstrapConfig.from(extension_config_envoy_ptr), let name = config.metricName(id),
        config.gauges[name] != nil
    else { return envoy_dynamic_module_type_metrics_result_MetricNotFound }
    config.gauges[name] = value
    return envoy_dynamic_module_type_metrics_result_Success
}
