// Fake Envoy: metrics, secrets, stream control, schedulers and callouts.
public import CEnvoyABI

// MARK: - Metrics

private let metricsSuccess = envoy_dynamic_module_type_metrics_result_Success
private let metricsNotFound = envoy_dynamic_module_type_metrics_result_MetricNotFound
private let metricsInvalidLabels = envoy_dynamic_module_type_metrics_result_InvalidLabels

private func define(
    _ pointer: UnsafeMutableRawPointer?, _ kind: FakeMetric.Kind, _ name: envoy_dynamic_module_type_module_buffer,
    _ labels: UnsafeMutablePointer<envoy_dynamic_module_type_module_buffer>?, _ count: Int, _ id: UnsafeMutablePointer<Int>?
) -> envoy_dynamic_module_type_metrics_result {
    guard let config = FakeFilterConfig.from(pointer) else { return metricsNotFound }
    if config.statsFrozen { return envoy_dynamic_module_type_metrics_result_Frozen }
    var labelNames: [String] = []
    if let labels, count > 0 { labelNames = UnsafeBufferPointer(start: labels, count: count).map(string) }
    config.metrics.append(FakeMetric(kind: kind, name: string(name), labelNames: labelNames))
    id?.pointee = config.metrics.count - 1
    return metricsSuccess
}

/// Applies `update` to metric `id` of `config` after checking the label count, as Envoy does.
private func record(
    _ config: FakeFilterConfig?, _ id: Int, _ labels: UnsafeMutablePointer<envoy_dynamic_module_type_module_buffer>?,
    _ count: Int, _ update: (inout FakeMetric, [String]) -> Void
) -> envoy_dynamic_module_type_metrics_result {
    guard let config, id >= 0, id < config.metrics.count else { return metricsNotFound }
    guard count == config.metrics[id].labelNames.count else { return metricsInvalidLabels }
    var values: [String] = []
    if let labels, count > 0 { values = UnsafeBufferPointer(start: labels, count: count).map(string) }
    update(&config.metrics[id], values)
    return metricsSuccess
}

@c @implementation
public func envoy_dynamic_module_callback_http_filter_config_define_counter(
    _ filter_config_envoy_ptr: envoy_dynamic_module_type_http_filter_config_envoy_ptr?,
    _ name: envoy_dynamic_module_type_module_buffer,
    _ label_names: UnsafeMutablePointer<envoy_dynamic_module_type_module_buffer>?,
    _ label_names_length: Int,
    _ counter_id_ptr: UnsafeMutablePointer<Int>?
) -> envoy_dynamic_module_type_metrics_result {
    define(filter_config_envoy_ptr, .counter, name, label_names, label_names_length, counter_id_ptr)
}

@c @implementation
public func envoy_dynamic_module_callback_http_filter_config_define_gauge(
    _ filter_config_envoy_ptr: envoy_dynamic_module_type_http_filter_config_envoy_ptr?,
    _ name: envoy_dynamic_module_type_module_buffer,
    _ label_names: UnsafeMutablePointer<envoy_dynamic_module_type_module_buffer>?,
    _ label_names_length: Int,
    _ gauge_id_ptr: UnsafeMutablePointer<Int>?
) -> envoy_dynamic_module_type_metrics_result {
    define(filter_config_envoy_ptr, .gauge, name, label_names, label_names_length, gauge_id_ptr)
}

@c @implementation
public func envoy_dynamic_module_callback_http_filter_config_define_histogram(
    _ filter_config_envoy_ptr: envoy_dynamic_module_type_http_filter_config_envoy_ptr?,
    _ name: envoy_dynamic_module_type_module_buffer,
    _ label_names: UnsafeMutablePointer<envoy_dynamic_module_type_module_buffer>?,
    _ label_names_length: Int,
    _ histogram_id_ptr: UnsafeMutablePointer<Int>?
) -> envoy_dynamic_module_type_metrics_result {
    define(filter_config_envoy_ptr, .histogram, name, label_names, label_names_length, histogram_id_ptr)
}

@c @implementation
public func envoy_dynamic_module_callback_http_filter_increment_counter(
    _ filter_envoy_ptr: envoy_dynamic_module_type_http_filter_envoy_ptr?, _ id: Int,
    _ label_values: UnsafeMutablePointer<envoy_dynamic_module_type_module_buffer>?, _ label_values_length: Int,
    _ value: UInt64
) -> envoy_dynamic_module_type_metrics_result {
    record(FakeStream.from(filter_envoy_ptr)?.config, id, label_values, label_values_length) { metric, labels in
        metric.values[labels, default: 0] &+= value
    }
}

@c @implementation
public func envoy_dynamic_module_callback_http_filter_increment_gauge(
    _ filter_envoy_ptr: envoy_dynamic_module_type_http_filter_envoy_ptr?, _ id: Int,
    _ label_values: UnsafeMutablePointer<envoy_dynamic_module_type_module_buffer>?, _ label_values_length: Int,
    _ value: UInt64
) -> envoy_dynamic_module_type_metrics_result {
    record(FakeStream.from(filter_envoy_ptr)?.config, id, label_values, label_values_length) { metric, labels in
        metric.values[labels, default: 0] &+= value
    }
}

@c @implementation
public func envoy_dynamic_module_callback_http_filter_decrement_gauge(
    _ filter_envoy_ptr: envoy_dynamic_module_type_http_filter_envoy_ptr?, _ id: Int,
    _ label_values: UnsafeMutablePointer<envoy_dynamic_module_type_module_buffer>?, _ label_values_length: Int,
    _ value: UInt64
) -> envoy_dynamic_module_type_metrics_result {
    record(FakeStream.from(filter_envoy_ptr)?.config, id, label_values, label_values_length) { metric, labels in
        metric.values[labels, default: 0] &-= value
    }
}

@c @implementation
public func envoy_dynamic_module_callback_http_filter_set_gauge(
    _ filter_envoy_ptr: envoy_dynamic_module_type_http_filter_envoy_ptr?, _ id: Int,
    _ label_values: UnsafeMutablePointer<envoy_dynamic_module_type_module_buffer>?, _ label_values_length: Int,
    _ value: UInt64
) -> envoy_dynamic_module_type_metrics_result {
    record(FakeStream.from(filter_envoy_ptr)?.config, id, label_values, label_values_length) { metric, labels in
        metric.values[labels] = value
    }
}

@c @implementation
public func envoy_dynamic_module_callback_http_filter_record_histogram_value(
    _ filter_envoy_ptr: envoy_dynamic_module_type_http_filter_envoy_ptr?, _ id: Int,
    _ label_values: UnsafeMutablePointer<envoy_dynamic_module_type_module_buffer>?, _ label_values_length: Int,
    _ value: UInt64
) -> envoy_dynamic_module_type_metrics_result {
    record(FakeStream.from(filter_envoy_ptr)?.config, id, label_values, label_values_length) { metric, labels in
        metric.samples[labels, default: []].append(value)
    }
}

@c @implementation
public func envoy_dynamic_module_callback_http_filter_config_increment_counter(
    _ filter_config_envoy_ptr: envoy_dynamic_module_type_http_filter_config_envoy_ptr?, _ id: Int,
    _ label_values: UnsafeMutablePointer<envoy_dynamic_module_type_module_buffer>?, _ label_values_length: Int,
    _ value: UInt64
) -> envoy_dynamic_module_type_metrics_result {
    record(FakeFilterConfig.from(filter_config_envoy_ptr), id, label_values, label_values_length) { metric, labels in
        metric.values[labels, default: 0] &+= value
    }
}

@c @implementation
public func envoy_dynamic_module_callback_http_filter_config_set_gauge(
    _ filter_config_envoy_ptr: envoy_dynamic_module_type_http_filter_config_envoy_ptr?, _ id: Int,
    _ label_values: UnsafeMutablePointer<envoy_dynamic_module_type_module_buffer>?, _ label_values_length: Int,
    _ value: UInt64
) -> envoy_dynamic_module_type_metrics_result {
    record(FakeFilterConfig.from(filter_config_envoy_ptr), id, label_values, label_values_length) { metric, labels in
        metric.values[labels] = value
    }
}

@c @implementation
public func envoy_dynamic_module_callback_http_filter_config_record_histogram_value(
    _ filter_config_envoy_ptr: envoy_dynamic_module_type_http_filter_config_envoy_ptr?, _ id: Int,
    _ label_values: UnsafeMutablePointer<envoy_dynamic_module_type_module_buffer>?, _ label_values_length: Int,
    _ value: UInt64
) -> envoy_dynamic_module_type_metrics_result {
    record(FakeFilterConfig.from(filter_config_envoy_ptr), id, label_values, label_values_length) { metric, labels in
        metric.samples[labels, default: []].append(value)
    }
}

// MARK: - Secrets

@c @implementation
public func envoy_dynamic_module_callback_http_filter_config_generic_secret_subscribe(
    _ filter_config_envoy_ptr: envoy_dynamic_module_type_http_filter_config_envoy_ptr?,
    _ secret_name: envoy_dynamic_module_type_module_buffer,
    _ config_source_json: envoy_dynamic_module_type_module_buffer
) -> Int {
    guard let config = FakeFilterConfig.from(filter_config_envoy_ptr), secret_name.length > 0 else { return 0 }
    config.subscribedSecrets.append(string(secret_name))
    return config.subscribedSecrets.count
}

private func secret(_ config: FakeFilterConfig?, _ handle: Int) -> StableBytes? {
    guard let config, handle >= 1, handle <= config.subscribedSecrets.count else { return nil }
    return config.secrets[config.subscribedSecrets[handle - 1]]
}

@c @implementation
public func envoy_dynamic_module_callback_http_filter_get_generic_secret(
    _ filter_envoy_ptr: envoy_dynamic_module_type_http_filter_envoy_ptr?, _ handle: Int,
    _ result: UnsafeMutablePointer<envoy_dynamic_module_type_envoy_buffer>?
) -> Bool {
    guard let value = secret(FakeStream.from(filter_envoy_ptr)?.config, handle) else { return false }
    result?.pointee = envoyBuffer(value)
    return true
}

@c @implementation
public func envoy_dynamic_module_callback_http_filter_config_get_generic_secret(
    _ filter_config_envoy_ptr: envoy_dynamic_module_type_http_filter_config_envoy_ptr?, _ handle: Int,
    _ result: UnsafeMutablePointer<envoy_dynamic_module_type_envoy_buffer>?
) -> Bool {
    guard let value = secret(FakeFilterConfig.from(filter_config_envoy_ptr), handle) else { return false }
    result?.pointee = envoyBuffer(value)
    return true
}

// MARK: - Stream control, routing, upstream

@c @implementation
public func envoy_dynamic_module_callback_http_filter_continue_decoding(
    _ filter_envoy_ptr: envoy_dynamic_module_type_http_filter_envoy_ptr?
) {
    FakeStream.from(filter_envoy_ptr)?.continueDecodingCalls += 1
}

@c @implementation
public func envoy_dynamic_module_callback_http_filter_continue_encoding(
    _ filter_envoy_ptr: envoy_dynamic_module_type_http_filter_envoy_ptr?
) {
    FakeStream.from(filter_envoy_ptr)?.continueEncodingCalls += 1
}

@c @implementation
public func envoy_dynamic_module_callback_http_clear_route_cache(_ filter_envoy_ptr: envoy_dynamic_module_type_http_filter_envoy_ptr?) {
    FakeStream.from(filter_envoy_ptr)?.routeCacheClears += 1
}

@c @implementation
public func envoy_dynamic_module_callback_http_clear_route_cluster_cache(
    _ filter_envoy_ptr: envoy_dynamic_module_type_http_filter_envoy_ptr?
) {
    FakeStream.from(filter_envoy_ptr)?.clusterCacheClears += 1
}

@c @implementation
public func envoy_dynamic_module_callback_http_set_upstream_override_host(
    _ filter_envoy_ptr: envoy_dynamic_module_type_http_filter_envoy_ptr?,
    _ host: envoy_dynamic_module_type_module_buffer,
    _ strict: Bool
) -> Bool {
    guard let stream = FakeStream.from(filter_envoy_ptr) else { return false }
    let text = string(host)
    // Envoy accepts only an IP literal with a port.
    guard let colon = text.lastIndex(of: ":"), UInt16(text[text.index(after: colon)...]) != nil,
        text[..<colon].allSatisfy({ $0.isNumber || $0 == "." || $0 == ":" || $0 == "[" || $0 == "]" || $0.isHexDigit })
    else { return false }
    stream.upstreamOverrideHost = (text, strict)
    return true
}

@c @implementation
public func envoy_dynamic_module_callback_http_get_cluster_name(
    _ filter_envoy_ptr: envoy_dynamic_module_type_http_filter_envoy_ptr?,
    _ result: UnsafeMutablePointer<envoy_dynamic_module_type_envoy_buffer>?
) -> Bool {
    guard let stream = FakeStream.from(filter_envoy_ptr), let name = stream.clusterName else { return false }
    let stable = StableBytes(name)
    stream.filterState["__cluster_view"] = stable
    result?.pointee = envoyBuffer(stable)
    return true
}

@c @implementation
public func envoy_dynamic_module_callback_get_most_specific_route_config(
    _ filter_envoy_ptr: envoy_dynamic_module_type_http_filter_envoy_ptr?
) -> envoy_dynamic_module_type_http_filter_per_route_config_module_ptr? {
    FakeStream.from(filter_envoy_ptr)?.perRouteConfig
}

@c @implementation
public func envoy_dynamic_module_callback_http_filter_get_worker_index(
    _ filter_envoy_ptr: envoy_dynamic_module_type_http_filter_envoy_ptr?
) -> UInt32 {
    FakeStream.from(filter_envoy_ptr)?.workerIndex ?? 0
}

@c @implementation
public func envoy_dynamic_module_callback_http_filter_reset_stream(
    _ filter_envoy_ptr: envoy_dynamic_module_type_http_filter_envoy_ptr?,
    _ reason: envoy_dynamic_module_type_http_filter_stream_reset_reason,
    _ details: envoy_dynamic_module_type_module_buffer
) {
    FakeStream.from(filter_envoy_ptr)?.resetDetails = string(details)
}

@c @implementation
public func envoy_dynamic_module_callback_http_filter_get_attribute_string(
    _ filter_envoy_ptr: envoy_dynamic_module_type_http_filter_envoy_ptr?,
    _ attribute_id: envoy_dynamic_module_type_attribute_id,
    _ result: UnsafeMutablePointer<envoy_dynamic_module_type_envoy_buffer>?
) -> Bool {
    guard let stream = FakeStream.from(filter_envoy_ptr), let value = stream.attributes[attribute_id.rawValue] else {
        return false
    }
    let stable = StableBytes(value)
    stream.filterState["__attribute_view"] = stable
    result?.pointee = envoyBuffer(stable)
    return true
}

@c @implementation
public func envoy_dynamic_module_callback_http_filter_get_attribute_int(
    _ filter_envoy_ptr: envoy_dynamic_module_type_http_filter_envoy_ptr?,
    _ attribute_id: envoy_dynamic_module_type_attribute_id,
    _ result: UnsafeMutablePointer<UInt64>?
) -> Bool {
    guard let stream = FakeStream.from(filter_envoy_ptr), let value = stream.intAttributes[attribute_id.rawValue] else {
        return false
    }
    result?.pointee = value
    return true
}

// MARK: - Schedulers

/// A fake scheduler: commits are recorded on the stream (or config) for the test to deliver.
final class FakeScheduler {
    weak var stream: FakeStream?
    weak var config: FakeFilterConfig?
    init(stream: FakeStream?, config: FakeFilterConfig?) {
        self.stream = stream
        self.config = config
    }
}

@c @implementation
public func envoy_dynamic_module_callback_http_filter_scheduler_new(
    _ filter_envoy_ptr: envoy_dynamic_module_type_http_filter_envoy_ptr?
) -> envoy_dynamic_module_type_http_filter_scheduler_module_ptr? {
    guard let stream = FakeStream.from(filter_envoy_ptr) else { return nil }
    return Unmanaged.passRetained(FakeScheduler(stream: stream, config: nil)).toOpaque()
}

@c @implementation
public func envoy_dynamic_module_callback_http_filter_scheduler_commit(
    _ scheduler_module_ptr: envoy_dynamic_module_type_http_filter_scheduler_module_ptr?, _ event_id: UInt64
) {
    guard let scheduler_module_ptr else { return }
    Unmanaged<FakeScheduler>.fromOpaque(scheduler_module_ptr).takeUnretainedValue().stream?.schedulerCommits.append(event_id)
}

@c @implementation
public func envoy_dynamic_module_callback_http_filter_scheduler_delete(
    _ scheduler_module_ptr: envoy_dynamic_module_type_http_filter_scheduler_module_ptr?
) {
    guard let scheduler_module_ptr else { return }
    Unmanaged<FakeScheduler>.fromOpaque(scheduler_module_ptr).release()
}

@c @implementation
public func envoy_dynamic_module_callback_http_filter_config_scheduler_new(
    _ filter_config_envoy_ptr: envoy_dynamic_module_type_http_filter_config_envoy_ptr?
) -> envoy_dynamic_module_type_http_filter_config_scheduler_module_ptr? {
    guard let config = FakeFilterConfig.from(filter_config_envoy_ptr) else { return nil }
    return Unmanaged.passRetained(FakeScheduler(stream: nil, config: config)).toOpaque()
}

@c @implementation
public func envoy_dynamic_module_callback_http_filter_config_scheduler_commit(
    _ scheduler_module_ptr: envoy_dynamic_module_type_http_filter_config_scheduler_module_ptr?, _ event_id: UInt64
) {
    guard let scheduler_module_ptr else { return }
    Unmanaged<FakeScheduler>.fromOpaque(scheduler_module_ptr).takeUnretainedValue().config?.schedulerCommits.append(event_id)
}

@c @implementation
public func envoy_dynamic_module_callback_http_filter_config_scheduler_delete(
    _ scheduler_module_ptr: envoy_dynamic_module_type_http_filter_config_scheduler_module_ptr?
) {
    guard let scheduler_module_ptr else { return }
    Unmanaged<FakeScheduler>.fromOpaque(scheduler_module_ptr).release()
}

// MARK: - Callouts

/// Clusters the fake knows; callouts to others fail with ClusterNotFound, as in Envoy.
nonisolated(unsafe) public var fakeClusters: Set<String> = ["upstream", "sluiced"]

private func startCallout(
    _ headers: UnsafeMutablePointer<envoy_dynamic_module_type_module_http_header>?, _ count: Int,
    _ cluster: envoy_dynamic_module_type_module_buffer, _ body: envoy_dynamic_module_type_module_buffer,
    _ timeout: UInt64, streaming: Bool, nextID: inout UInt64, record: (FakeCallout) -> Void,
    _ idOut: UnsafeMutablePointer<UInt64>?
) -> envoy_dynamic_module_type_http_callout_init_result {
    let map = headerMap(headers, count)
    guard map[":method"] != nil, map[":path"] != nil, map["host"] != nil || map[":authority"] != nil else {
        return envoy_dynamic_module_type_http_callout_init_result_MissingRequiredHeaders
    }
    let clusterName = string(cluster)
    guard fakeClusters.contains(clusterName) else { return envoy_dynamic_module_type_http_callout_init_result_ClusterNotFound }
    let id = nextID
    nextID += 1
    record(FakeCallout(id: id, cluster: clusterName, headers: map, body: bytes(body), timeoutMilliseconds: timeout, streaming: streaming))
    idOut?.pointee = id
    return envoy_dynamic_module_type_http_callout_init_result_Success
}

@c @implementation
public func envoy_dynamic_module_callback_http_filter_http_callout(
    _ filter_envoy_ptr: envoy_dynamic_module_type_http_filter_envoy_ptr?,
    _ callout_id_out: UnsafeMutablePointer<UInt64>?,
    _ cluster_name: envoy_dynamic_module_type_module_buffer,
    _ headers: UnsafeMutablePointer<envoy_dynamic_module_type_module_http_header>?,
    _ headers_size: Int,
    _ body: envoy_dynamic_module_type_module_buffer,
    _ timeout_milliseconds: UInt64
) -> envoy_dynamic_module_type_http_callout_init_result {
    guard let stream = FakeStream.from(filter_envoy_ptr) else {
        return envoy_dynamic_module_type_http_callout_init_result_CannotCreateRequest
    }
    return startCallout(
        headers, headers_size, cluster_name, body, timeout_milliseconds, streaming: false, nextID: &stream.nextCalloutID,
        record: { stream.callouts.append($0) }, callout_id_out)
}

@c @implementation
public func envoy_dynamic_module_callback_http_filter_start_http_stream(
    _ filter_envoy_ptr: envoy_dynamic_module_type_http_filter_envoy_ptr?,
    _ stream_id_out: UnsafeMutablePointer<UInt64>?,
    _ cluster_name: envoy_dynamic_module_type_module_buffer,
    _ headers: UnsafeMutablePointer<envoy_dynamic_module_type_module_http_header>?,
    _ headers_size: Int,
    _ body: envoy_dynamic_module_type_module_buffer,
    _ end_stream: Bool,
    _ timeout_milliseconds: UInt64
) -> envoy_dynamic_module_type_http_callout_init_result {
    guard let stream = FakeStream.from(filter_envoy_ptr) else {
        return envoy_dynamic_module_type_http_callout_init_result_CannotCreateRequest
    }
    return startCallout(
        headers, headers_size, cluster_name, body, timeout_milliseconds, streaming: true, nextID: &stream.nextCalloutID,
        record: { stream.callouts.append($0) }, stream_id_out)
}

@c @implementation
public func envoy_dynamic_module_callback_http_stream_send_data(
    _ filter_envoy_ptr: envoy_dynamic_module_type_http_filter_envoy_ptr?,
    _ stream_id: UInt64,
    _ data: envoy_dynamic_module_type_module_buffer,
    _ end_stream: Bool
) -> Bool {
    guard let stream = FakeStream.from(filter_envoy_ptr), stream.callouts.contains(where: { $0.id == stream_id && $0.streaming })
    else { return false }
    stream.streamData[stream_id, default: []].append(contentsOf: bytes(data))
    return true
}

@c @implementation
public func envoy_dynamic_module_callback_http_filter_reset_http_stream(
    _ filter_envoy_ptr: envoy_dynamic_module_type_http_filter_envoy_ptr?, _ stream_id: UInt64
) {
    FakeStream.from(filter_envoy_ptr)?.resetCallouts.append(stream_id)
}

@c @implementation
public func envoy_dynamic_module_callback_http_filter_config_http_callout(
    _ filter_config_envoy_ptr: envoy_dynamic_module_type_http_filter_config_envoy_ptr?,
    _ callout_id_out: UnsafeMutablePointer<UInt64>?,
    _ cluster_name: envoy_dynamic_module_type_module_buffer,
    _ headers: UnsafeMutablePointer<envoy_dynamic_module_type_module_http_header>?,
    _ headers_size: Int,
    _ body: envoy_dynamic_module_type_module_buffer,
    _ timeout_milliseconds: UInt64
) -> envoy_dynamic_module_type_http_callout_init_result {
    guard let config = FakeFilterConfig.from(filter_config_envoy_ptr) else {
        return envoy_dynamic_module_type_http_callout_init_result_CannotCreateRequest
    }
    return startCallout(
        headers, headers_size, cluster_name, body, timeout_milliseconds, streaming: false, nextID: &config.nextCalloutID,
        record: { config.callouts.append($0) }, callout_id_out)
}
