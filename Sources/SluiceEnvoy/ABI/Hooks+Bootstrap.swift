// The bootstrap-extension hooks Envoy 1.40 calls ("The background worker" in
// SluiceEnvoy.docc/EnvoyDynamicModulesABI.md): trampolines from the C ABI to `FleetWorker`.
// Envoy resolves all 17 when it loads a bootstrap extension, so the ones Sluice does not use
// are here too, doing nothing.
//
// The config object and the extension object are the same `FleetWorker` (one extension per
// config): `config_new` returns it retained, `new` retains it again for the extension handle,
// `destroy` and `config_destroy` each release their reference.
public import CEnvoyABI
internal import SluiceCore

@inline(__always)
private func worker(_ pointer: UnsafeRawPointer?) -> FleetWorker? {
    guard let pointer else { return nil }
    return Unmanaged<FleetWorker>.fromOpaque(pointer).takeUnretainedValue()
}

@c @implementation
public func envoy_dynamic_module_on_bootstrap_extension_config_new(
    _ extension_config_envoy_ptr: envoy_dynamic_module_type_bootstrap_extension_config_envoy_ptr?,
    _ name: envoy_dynamic_module_type_envoy_buffer,
    _ config: envoy_dynamic_module_type_envoy_buffer
) -> envoy_dynamic_module_type_bootstrap_extension_config_module_ptr? {
    guard let extension_config_envoy_ptr else { return nil }
    let handle = BootstrapConfigHandle(extension_config_envoy_ptr)
    let extensionName = name.stringCopy
    switch FleetWorker.make(name: extensionName, config: config.bytesCopy, handle: handle) {
    case .success(let made):
        // Nothing to wait for before Envoy serves: records of early requests wait in the queue.
        handle.signalInitComplete()
        return UnsafeRawPointer(Unmanaged.passRetained(made).toOpaque())
    case .failure(let error):
        EnvoyLog.error("sluice: rejecting bootstrap extension '\(extensionName)': \(error.message)")
        return nil
    }
}

@c @implementation
public func envoy_dynamic_module_on_bootstrap_extension_config_destroy(
    _ extension_config_ptr: envoy_dynamic_module_type_bootstrap_extension_config_module_ptr?
) {
    guard let extension_config_ptr else { return }
    let made = Unmanaged<FleetWorker>.fromOpaque(extension_config_ptr)
    made.takeUnretainedValue().destroy()
    made.release()
}

@c @implementation
public func envoy_dynamic_module_on_bootstrap_extension_new(
    _ extension_config_ptr: envoy_dynamic_module_type_bootstrap_extension_config_module_ptr?,
    _ extension_envoy_ptr: envoy_dynamic_module_type_bootstrap_extension_envoy_ptr?
) -> envoy_dynamic_module_type_bootstrap_extension_module_ptr? {
    guard let made = worker(extension_config_ptr) else { return nil }
    return UnsafeRawPointer(Unmanaged.passRetained(made).toOpaque())
}

@c @implementation
public func envoy_dynamic_module_on_bootstrap_extension_server_initialized(
    _ extension_envoy_ptr: envoy_dynamic_module_type_bootstrap_extension_envoy_ptr?,
    _ extension_ptr: envoy_dynamic_module_type_bootstrap_extension_module_ptr?
) {
    worker(extension_ptr)?.serverInitialized()
}

@c @implementation
public func envoy_dynamic_module_on_bootstrap_extension_worker_thread_initialized(
    _ extension_envoy_ptr: envoy_dynamic_module_type_bootstrap_extension_envoy_ptr?,
    _ extension_ptr: envoy_dynamic_module_type_bootstrap_extension_module_ptr?
) {
    // Nothing per worker: filters reach the worker through `ProcessUsageQueue`.
}

@c @implementation
public func envoy_dynamic_module_on_bootstrap_extension_destroy(
    _ extension_ptr: envoy_dynamic_module_type_bootstrap_extension_module_ptr?
) {
    guard let extension_ptr else { return }
    Unmanaged<FleetWorker>.fromOpaque(extension_ptr).release()
}

@c @implementation
public func envoy_dynamic_module_on_bootstrap_extension_drain_started(
    _ extension_envoy_ptr: envoy_dynamic_module_type_bootstrap_extension_envoy_ptr?,
    _ extension_ptr: envoy_dynamic_module_type_bootstrap_extension_module_ptr?
) {
    worker(extension_ptr)?.drainStarted()
}

@c @implementation
public func envoy_dynamic_module_on_bootstrap_extension_shutdown(
    _ extension_envoy_ptr: envoy_dynamic_module_type_bootstrap_extension_envoy_ptr?,
    _ extension_ptr: envoy_dynamic_module_type_bootstrap_extension_module_ptr?,
    _ done: envoy_dynamic_module_type_event_cb?,
    _ context: UnsafeMutableRawPointer?
) {
    let completion = ShutdownCompletion(done, context)
    guard let made = worker(extension_ptr) else {
        // Envoy waits for this call whatever happens.
        completion.finish()
        return
    }
    made.shutdown(completion)
}

@c @implementation
public func envoy_dynamic_module_on_bootstrap_extension_config_scheduled(
    _ extension_config_envoy_ptr: envoy_dynamic_module_type_bootstrap_extension_config_envoy_ptr?,
    _ extension_config_ptr: envoy_dynamic_module_type_bootstrap_extension_config_module_ptr?,
    _ event_id: UInt64
) {
    // The worker runs on its timer; it commits no scheduler events.
}

@c @implementation
public func envoy_dynamic_module_on_bootstrap_extension_http_callout_done(
    _ extension_config_envoy_ptr: envoy_dynamic_module_type_bootstrap_extension_config_envoy_ptr?,
    _ extension_config_ptr: envoy_dynamic_module_type_bootstrap_extension_config_module_ptr?,
    _ callout_id: UInt64,
    _ result: envoy_dynamic_module_type_http_callout_result,
    _ headers: UnsafeMutablePointer<envoy_dynamic_module_type_envoy_http_header>?,
    _ headers_size: Int,
    _ body_chunks: UnsafeMutablePointer<envoy_dynamic_module_type_envoy_buffer>?,
    _ body_chunks_size: Int
) {
    guard let made = worker(extension_config_ptr) else { return }
    made.calloutDone(
        id: callout_id, outcome: calloutOutcome(result, headers, headers_size, body_chunks, body_chunks_size))
}

/// The callout's end in the shipper's terms: an answer only with a valid `:status`.
private func calloutOutcome(
    _ result: envoy_dynamic_module_type_http_callout_result,
    _ headers: UnsafeMutablePointer<envoy_dynamic_module_type_envoy_http_header>?, _ headerCount: Int,
    _ chunks: UnsafeMutablePointer<envoy_dynamic_module_type_envoy_buffer>?, _ chunkCount: Int
) -> FleetCalloutOutcome {
    switch result {
    case envoy_dynamic_module_type_http_callout_result_Success:
        break
    case envoy_dynamic_module_type_http_callout_result_ExceedResponseBufferLimit:
        return .failed("answer exceeded the callout buffer limit")
    default:
        return .failed("connection reset or refused, or timed out")
    }
    var status: Int?
    if let headers, headerCount > 0 {
        for header in UnsafeBufferPointer(start: headers, count: headerCount) {
            let name = envoy_dynamic_module_type_envoy_buffer(ptr: header.key_ptr, length: header.key_length)
            guard name.rawBytes.elementsEqual(":status".utf8) else { continue }
            let value = envoy_dynamic_module_type_envoy_buffer(ptr: header.value_ptr, length: header.value_length)
            status = value.rawBytes.count == 3 ? Int(value.stringCopy) : nil
        }
    }
    guard let status, (100...599).contains(status) else { return .failed("answer without a valid :status") }
    var body: [UInt8] = []
    if let chunks, chunkCount > 0 {
        for chunk in UnsafeBufferPointer(start: chunks, count: chunkCount) { body.append(contentsOf: chunk.rawBytes) }
    }
    return .answered(status: status, body: body)
}

@c @implementation
public func envoy_dynamic_module_on_bootstrap_extension_timer_fired(
    _ extension_config_envoy_ptr: envoy_dynamic_module_type_bootstrap_extension_config_envoy_ptr?,
    _ extension_config_ptr: envoy_dynamic_module_type_bootstrap_extension_config_module_ptr?,
    _ timer_ptr: envoy_dynamic_module_type_bootstrap_extension_timer_module_ptr?
) {
    worker(extension_config_ptr)?.timerFired()
}

@c @implementation
public func envoy_dynamic_module_on_bootstrap_extension_file_changed(
    _ extension_config_envoy_ptr: envoy_dynamic_module_type_bootstrap_extension_config_envoy_ptr?,
    _ extension_config_ptr: envoy_dynamic_module_type_bootstrap_extension_config_module_ptr?,
    _ path: envoy_dynamic_module_type_envoy_buffer,
    _ events: UInt32
) {}

@c @implementation
public func envoy_dynamic_module_on_bootstrap_extension_admin_request(
    _ extension_config_envoy_ptr: envoy_dynamic_module_type_bootstrap_extension_config_envoy_ptr?,
    _ extension_config_ptr: envoy_dynamic_module_type_bootstrap_extension_config_module_ptr?,
    _ method: envoy_dynamic_module_type_envoy_buffer,
    _ path: envoy_dynamic_module_type_envoy_buffer,
    _ body: envoy_dynamic_module_type_envoy_buffer
) -> UInt32 {
    guard let extension_config_envoy_ptr, let made = worker(extension_config_ptr) else { return 500 }
    let page = made.adminPage(path: path.stringCopy)
    BootstrapConfigHandle(extension_config_envoy_ptr).setAdminResponse(page.body)
    return page.status
}

@c @implementation
public func envoy_dynamic_module_on_bootstrap_extension_cluster_add_or_update(
    _ extension_config_envoy_ptr: envoy_dynamic_module_type_bootstrap_extension_config_envoy_ptr?,
    _ extension_config_ptr: envoy_dynamic_module_type_bootstrap_extension_config_module_ptr?,
    _ cluster_name: envoy_dynamic_module_type_envoy_buffer
) {}

@c @implementation
public func envoy_dynamic_module_on_bootstrap_extension_cluster_removal(
    _ extension_config_envoy_ptr: envoy_dynamic_module_type_bootstrap_extension_config_envoy_ptr?,
    _ extension_config_ptr: envoy_dynamic_module_type_bootstrap_extension_config_module_ptr?,
    _ cluster_name: envoy_dynamic_module_type_envoy_buffer
) {}

@c @implementation
public func envoy_dynamic_module_on_bootstrap_extension_listener_add_or_update(
    _ extension_config_envoy_ptr: envoy_dynamic_module_type_bootstrap_extension_config_envoy_ptr?,
    _ extension_config_ptr: envoy_dynamic_module_type_bootstrap_extension_config_module_ptr?,
    _ listener_name: envoy_dynamic_module_type_envoy_buffer
) {}

@c @implementation
public func envoy_dynamic_module_on_bootstrap_extension_listener_removal(
    _ extension_config_envoy_ptr: envoy_dynamic_module_type_bootstrap_extension_config_envoy_ptr?,
    _ extension_config_ptr: envoy_dynamic_module_type_bootstrap_extension_config_module_ptr?,
    _ listener_name: envoy_dynamic_module_type_envoy_buffer
) {}
