// The engine's `/metrics` page in vLLM's Prometheus text format (exposition 0.0.4), with vLLM's
// own names, help texts, label shapes and bucket bounds, taken from vLLM's V1 engine metrics
// (vllm/v1/metrics/loggers.py, `PrometheusStatLogger`): per-engine series carry
// `engine="0",model_name="<served model>"`; counters end in `_total` (prometheus_client adds it);
// `vllm:lora_requests_info` has only `max_lora`, `waiting_lora_adapters` and
// `running_lora_adapters` (comma-separated names) and its value is the time of the update, in
// seconds since the epoch.

public struct VLLMMetricsPage {
    /// The served model name (the `model_name` label).
    public var modelName: String
    /// Also write `vllm:gpu_cache_usage_perc`, the name vLLM used before `kv_cache_usage_perc`.
    public var legacyCacheName = false
    /// Write `vllm:lora_requests_info` (vLLM does only when LoRA is enabled).
    public var loRAEnabled = true

    public init(modelName: String, legacyCacheName: Bool = false, loRAEnabled: Bool = true) {
        self.modelName = modelName
        self.legacyCacheName = legacyCacheName
        self.loRAEnabled = loRAEnabled
    }

    /// Renders the page for `engine` at `epochSeconds`.
    public func render(_ engine: VLLMEngine, epochSeconds: Double) -> String {
        var text = ""
        text.reserveCapacity(16 * 1024)
        let labels = "engine=\"0\",model_name=\"\(escape(modelName))\""
        let stats = engine.stats

        func header(_ name: String, _ type: String, _ help: String) {
            text += "# HELP \(name) \(help)\n# TYPE \(name) \(type)\n"
        }
        func gauge(_ name: String, _ help: String, _ value: Double) {
            header(name, "gauge", help)
            text += "\(name){\(labels)} \(format(value))\n"
        }
        func counter(_ name: String, _ help: String, _ value: Int) {
            header(name, "counter", help)
            text += "\(name)_total{\(labels)} \(format(Double(value)))\n"
        }
        func histogram(_ name: String, _ help: String, _ histogram: Histogram) {
            header(name, "histogram", help)
            for (bound, count) in zip(histogram.buckets, histogram.counts) {
                text += "\(name)_bucket{\(labels),le=\"\(format(bound))\"} \(format(Double(count)))\n"
            }
            text += "\(name)_bucket{\(labels),le=\"+Inf\"} \(format(Double(histogram.count)))\n"
            text += "\(name)_count{\(labels)} \(format(Double(histogram.count)))\n"
            text += "\(name)_sum{\(labels)} \(format(histogram.sum))\n"
        }

        gauge("vllm:num_requests_running", "Number of requests in model execution batches.", Double(engine.runningCount))
        gauge("vllm:num_requests_waiting", "Number of requests waiting to be processed.", Double(engine.waitingCount))
        gauge("vllm:kv_cache_usage_perc", "KV-cache usage. 1 means 100 percent usage.", engine.kvCacheUsage)
        if legacyCacheName {
            gauge("vllm:gpu_cache_usage_perc", "GPU KV-cache usage. 1 means 100 percent usage.", engine.kvCacheUsage)
        }
        counter("vllm:prefix_cache_queries", "Prefix cache queries, in terms of number of queried tokens.",
            stats.prefixQueryTokens)
        counter("vllm:prefix_cache_hits", "Prefix cache hits, in terms of number of cached tokens.", stats.prefixHitTokens)
        counter("vllm:num_preemptions", "Cumulative number of preemption from the engine.", 0)
        counter("vllm:prompt_tokens", "Number of prefill tokens processed.", stats.promptTokens)
        counter("vllm:generation_tokens", "Number of generation tokens processed.", stats.generationTokens)
        header("vllm:request_success", "counter", "Count of successfully processed requests.")
        for reason in ["stop", "length", "abort"] {
            let value =
                switch reason {
                case "stop": stats.requestsFinished - stats.finishedAtLimit
                case "length": stats.finishedAtLimit
                default: stats.aborted
                }
            text += "vllm:request_success_total{\(labels),finished_reason=\"\(reason)\"} \(format(Double(value)))\n"
        }
        histogram("vllm:time_to_first_token_seconds", "Histogram of time to first token in seconds.",
            stats.timeToFirstToken)
        histogram("vllm:inter_token_latency_seconds", "Histogram of inter-token latency in seconds.",
            stats.interTokenLatency)
        histogram("vllm:e2e_request_latency_seconds", "Histogram of e2e request latency in seconds.", stats.endToEnd)
        histogram("vllm:request_queue_time_seconds", "Histogram of time spent in WAITING phase for request.",
            stats.queueSeconds)
        histogram("vllm:request_prefill_time_seconds", "Histogram of time spent in PREFILL phase for request.",
            stats.prefillSeconds)
        if loRAEnabled {
            header("vllm:lora_requests_info", "gauge", "Running stats on lora requests.")
            let waiting = engine.waitingAdapters.map(escape).joined(separator: ",")
            let running = engine.runningAdapters.map(escape).joined(separator: ",")
            text += "vllm:lora_requests_info{max_lora=\"\(engine.config.maxLoRAs)\",waiting_lora_adapters=\"\(waiting)\","
                + "running_lora_adapters=\"\(running)\"} \(format(epochSeconds))\n"
        }
        header("vllm:cache_config_info", "gauge", "Information of the LLMEngine CacheConfig")
        text += "vllm:cache_config_info{block_size=\"\(VLLMEngineConfig.blockTokens)\",enable_prefix_caching=\"True\","
            + "engine=\"0\",num_gpu_blocks=\"\(engine.config.numBlocks)\"} 1.0\n"
        return text
    }

    /// A label value as the exposition format writes it.
    private func escape(_ value: String) -> String {
        var out = ""
        for character in value {
            switch character {
            case "\\": out += "\\\\"
            case "\"": out += "\\\""
            case "\n": out += "\\n"
            default: out.append(character)
            }
        }
        return out
    }

    /// Numbers as prometheus_client writes them: floats with a decimal point (`1.0`, `0.25`).
    private func format(_ value: Double) -> String {
        if value == value.rounded(), abs(value) < 1e15 { return "\(Int(value)).0" }
        return "\(value)"
    }
}
