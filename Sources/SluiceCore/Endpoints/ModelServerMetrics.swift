// A model server's load as its `/metrics` page (Prometheus text exposition format 0.0.4) says:
// queue, running requests, KV-cache use and loaded LoRA adapters, for vLLM, SGLang and TGI.
//
// The page is untrusted input from an upstream, read every 50 ms per endpoint on the module's
// main thread, so the parser is bounded and allocation-free: one pass over the bytes, lines past
// `maxLineBytes` skipped, nothing copied; numbers parsed in place (Double(String) would allocate
// a String per sample). Only the lines of the metrics below are looked at past their name;
// everything else (HELP/TYPE comments, other metrics, histograms' `_bucket`/`_sum`/`_count`
// lines, whose names never equal a gauge's) is skipped at the first byte that differs.
//
// Values enter range-checked: a count must be finite and ≥ 0 and is clamped to `maxCount`; a
// KV-cache use must be finite and ≥ 0 and is clamped to 1. A sample that fails is ignored (the
// value stays absent if no other sample gives it) and counted in `ignoredSamples`.
//
// Several series of one metric (vLLM with data parallelism labels each engine; a page listing
// a metric twice) combine as the load of the whole server: counts add up (clamped), KV-cache use
// takes the largest (the fullest engine decides whether a long prompt fits).

/// The load of one model server, from one `/metrics` page. Absent values were not on the page.
public struct ModelServerMetrics: Sendable, Equatable {
    /// Requests waiting for a batch slot (vLLM `vllm:num_requests_waiting`, SGLang
    /// `sglang:num_queue_reqs`, TGI `tgi_queue_size`).
    public var waitingRequests: Int?
    /// Requests in the running batch (vLLM `vllm:num_requests_running`, SGLang
    /// `sglang:num_running_reqs`, TGI `tgi_batch_current_size`).
    public var runningRequests: Int?
    /// KV-cache use in 0...1 (vLLM `vllm:kv_cache_usage_perc`, or the older
    /// `vllm:gpu_cache_usage_perc` when the newer is absent; SGLang `sglang:token_usage`).
    public var kvCacheUsage: Double?
    /// vLLM's `vllm:lora_requests_info`, the sample with the largest value (vLLM sets it to the
    /// time of the update, so the largest is the current state).
    public var lora: LoRAState?
    /// Samples of the metrics above that were out of range or unreadable, and lines skipped as
    /// longer than `maxLineBytes`.
    public var ignoredSamples = 0

    public init(
        waitingRequests: Int? = nil, runningRequests: Int? = nil, kvCacheUsage: Double? = nil, lora: LoRAState? = nil
    ) {
        self.waitingRequests = waitingRequests
        self.runningRequests = runningRequests
        self.kvCacheUsage = kvCacheUsage
        self.lora = lora
    }

    /// Counts are clamped here: no real server queues a million requests.
    public static let maxCount = 1_000_000
    /// Longer lines are skipped unread (vLLM's longest lines are histogram buckets, ~200 bytes).
    public static let maxLineBytes = 64 * 1024
    /// Bytes read of a page; the rest is ignored (a vLLM page is ~30-60 KiB).
    public static let maxPageBytes = 8 * 1024 * 1024
}

/// The LoRA adapters a vLLM server has loaded and waiting, as adapter-name hashes, in fixed storage.
public struct LoRAState: Sendable, Equatable {
    public static let maxAdapters = 16

    /// `max_lora`: adapter slots (0...1024); nil when the label is absent or out of range.
    public var maxLoRA: Int?
    private var runningStorage = InlineArray<16, UInt64>(repeating: 0)
    private var waitingStorage = InlineArray<16, UInt64>(repeating: 0)
    public private(set) var runningCount = 0
    public private(set) var waitingCount = 0
    /// More names were listed than `maxAdapters`; the rest were dropped.
    public var truncated = false
    /// The sample's value (vLLM: the time of the update, in seconds).
    public var updatedAt: Double = 0

    public init() {}

    public func isRunning(_ adapter: AdapterID) -> Bool {
        for index in 0..<runningCount where runningStorage[index] == adapter.value { return true }
        return false
    }

    public func isWaiting(_ adapter: AdapterID) -> Bool {
        for index in 0..<waitingCount where waitingStorage[index] == adapter.value { return true }
        return false
    }

    /// A slot is free for a new adapter: `max_lora` known and more than the adapters running.
    public var hasFreeSlot: Bool {
        guard let maxLoRA else { return false }
        return runningCount < maxLoRA
    }

    mutating func appendRunning(_ adapter: AdapterID) {
        guard runningCount < Self.maxAdapters else {
            truncated = true
            return
        }
        runningStorage[runningCount] = adapter.value
        runningCount += 1
    }

    mutating func appendWaiting(_ adapter: AdapterID) {
        guard waitingCount < Self.maxAdapters else {
            truncated = true
            return
        }
        waitingStorage[waitingCount] = adapter.value
        waitingCount += 1
    }

    public static func == (left: LoRAState, right: LoRAState) -> Bool {
        guard left.maxLoRA == right.maxLoRA, left.runningCount == right.runningCount,
            left.waitingCount == right.waitingCount, left.truncated == right.truncated,
            left.updatedAt == right.updatedAt
        else { return false }
        for index in 0..<left.runningCount where left.runningStorage[index] != right.runningStorage[index] {
            return false
        }
        for index in 0..<left.waitingCount where left.waitingStorage[index] != right.waitingStorage[index] {
            return false
        }
        return true
    }
}

extension ModelServerMetrics {
    /// Reads a `/metrics` page. Never fails: what cannot be read is absent or counted.
    public static func parse(_ page: [UInt8]) -> ModelServerMetrics {
        parse(page.span)
    }

    public static func parse(_ page: Span<UInt8>) -> ModelServerMetrics {
        var reader = MetricsPageReader()
        let end = min(page.count, maxPageBytes)
        var lineStart = 0
        while lineStart < end {
            var lineEnd = lineStart
            while lineEnd < end && page[lineEnd] != 0x0A { lineEnd &+= 1 }
            if lineEnd &- lineStart > maxLineBytes {
                reader.result.ignoredSamples &+= 1
            } else {
                reader.readLine(page, lineStart, lineEnd)
            }
            lineStart = lineEnd &+ 1
        }
        return reader.finish()
    }
}

/// The metric a line's name is, among those read.
enum KnownMetric {
    case waiting, running, kvCacheUsage, legacyKVCacheUsage, loraInfo

    static func match(_ page: Span<UInt8>, _ start: Int, _ end: Int) -> KnownMetric? {
        // Compared by length first, then bytes: most lines are other metrics and fail at once.
        let length = end &- start
        for (name, metric) in table where name.count == length {
            var equal = true
            var index = 0
            while index < length {
                if page[start &+ index] != name[index] {
                    equal = false
                    break
                }
                index &+= 1
            }
            if equal { return metric }
        }
        return nil
    }

    static let table: [([UInt8], KnownMetric)] = [
        (Array("vllm:num_requests_waiting".utf8), .waiting),
        (Array("vllm:num_requests_running".utf8), .running),
        (Array("vllm:kv_cache_usage_perc".utf8), .kvCacheUsage),
        (Array("vllm:gpu_cache_usage_perc".utf8), .legacyKVCacheUsage),
        (Array("vllm:lora_requests_info".utf8), .loraInfo),
        (Array("sglang:num_queue_reqs".utf8), .waiting),
        (Array("sglang:num_running_reqs".utf8), .running),
        (Array("sglang:token_usage".utf8), .kvCacheUsage),
        (Array("tgi_queue_size".utf8), .waiting),
        (Array("tgi_batch_current_size".utf8), .running),
    ]
}

struct MetricsPageReader {
    var result = ModelServerMetrics()
    var waiting: Double?
    var running: Double?
    var kv: Double?
    var legacyKV: Double?

    mutating func finish() -> ModelServerMetrics {
        result.waitingRequests = waiting.map(Self.count)
        result.runningRequests = running.map(Self.count)
        result.kvCacheUsage = kv ?? legacyKV
        return result
    }

    static func count(_ value: Double) -> Int {
        value >= Double(ModelServerMetrics.maxCount) ? ModelServerMetrics.maxCount : Int(value)
    }

    static func isSpace(_ byte: UInt8) -> Bool { byte == 0x20 || byte == 0x09 || byte == 0x0D }

    static func isNameByte(_ byte: UInt8) -> Bool {
        (byte >= 0x61 && byte <= 0x7A) || (byte >= 0x41 && byte <= 0x5A) || (byte >= 0x30 && byte <= 0x39)
            || byte == 0x5F || byte == 0x3A
    }

    mutating func readLine(_ page: Span<UInt8>, _ start: Int, _ end: Int) {
        var position = start
        while position < end && Self.isSpace(page[position]) { position &+= 1 }
        guard position < end, page[position] != 0x23 else { return }  // blank or `#` comment
        let nameStart = position
        while position < end && Self.isNameByte(page[position]) { position &+= 1 }
        guard let metric = KnownMetric.match(page, nameStart, position) else { return }

        var lora = LoRAState()
        if position < end && page[position] == 0x7B {  // `{`
            guard let afterLabels = readLabels(page, position &+ 1, end, lora: &lora, readLoRA: metric == .loraInfo)
            else {
                result.ignoredSamples &+= 1
                return
            }
            position = afterLabels
        }
        guard position < end, Self.isSpace(page[position]) else {
            result.ignoredSamples &+= 1
            return
        }
        while position < end && Self.isSpace(page[position]) { position &+= 1 }
        let valueStart = position
        while position < end && !Self.isSpace(page[position]) { position &+= 1 }
        // An optional timestamp may follow; the scrape time is what the scorer uses.
        guard let value = parsePrometheusFloat(page, valueStart, position), !value.isNaN else {
            result.ignoredSamples &+= 1
            return
        }
        switch metric {
        case .waiting: waiting = addCount(value, waiting)
        case .running: running = addCount(value, running)
        case .kvCacheUsage: kv = maxUsage(value, kv)
        case .legacyKVCacheUsage: legacyKV = maxUsage(value, legacyKV)
        case .loraInfo:
            guard value.isFinite else {
                result.ignoredSamples &+= 1
                return
            }
            lora.updatedAt = value
            if let current = result.lora, current.updatedAt > value { return }
            result.lora = lora
        }
    }

    private mutating func addCount(_ value: Double, _ total: Double?) -> Double? {
        guard value.isFinite, value >= 0 else {
            result.ignoredSamples &+= 1
            return total
        }
        return min((total ?? 0) + value, Double(ModelServerMetrics.maxCount))
    }

    private mutating func maxUsage(_ value: Double, _ current: Double?) -> Double? {
        guard value.isFinite, value >= 0 else {
            result.ignoredSamples &+= 1
            return current
        }
        let clamped = min(value, 1)
        return max(clamped, current ?? 0)
    }

    /// Reads `name="value",...}` from just after `{`; returns the index after `}`, or nil when
    /// malformed. With `readLoRA`, reads vLLM's LoRA labels into `lora`.
    private func readLabels(
        _ page: Span<UInt8>, _ start: Int, _ end: Int, lora: inout LoRAState, readLoRA: Bool
    ) -> Int? {
        var position = start
        while true {
            while position < end && Self.isSpace(page[position]) { position &+= 1 }
            guard position < end else { return nil }
            if page[position] == 0x7D { return position &+ 1 }  // `}` (after a trailing comma too)
            let nameStart = position
            while position < end && Self.isNameByte(page[position]) { position &+= 1 }
            guard position > nameStart else { return nil }
            let label = readLoRA ? LoRALabel.match(page, nameStart, position) : .other
            while position < end && Self.isSpace(page[position]) { position &+= 1 }
            guard position < end, page[position] == 0x3D else { return nil }  // `=`
            position &+= 1
            while position < end && Self.isSpace(page[position]) { position &+= 1 }
            guard position < end, page[position] == 0x22 else { return nil }  // `"`
            position &+= 1

            var adapter = AdapterID.FNV1a()
            var adapterBytes = 0
            var number = 0
            var numberValid = true
            var closed = false
            while position < end {
                var byte = page[position]
                position &+= 1
                if byte == 0x22 {
                    closed = true
                    break
                }
                if byte == 0x5C {  // `\`: `\\`, `\"` or `\n`
                    guard position < end else { return nil }
                    byte = page[position] == 0x6E ? 0x0A : page[position]
                    position &+= 1
                }
                switch label {
                case .other: break
                case .running, .waiting:
                    if byte == 0x2C {  // `,` ends a name
                        if adapterBytes > 0 { append(AdapterID(hash: adapter.value), label, &lora) }
                        adapter = AdapterID.FNV1a()
                        adapterBytes = 0
                    } else {
                        adapter.add(byte)
                        adapterBytes &+= 1
                    }
                case .maxLoRA:
                    if byte >= 0x30 && byte <= 0x39 && number <= 1024 {
                        number = number &* 10 &+ Int(byte &- 0x30)
                    } else {
                        numberValid = false
                    }
                }
            }
            guard closed else { return nil }
            switch label {
            case .other: break
            case .running, .waiting:
                if adapterBytes > 0 { append(AdapterID(hash: adapter.value), label, &lora) }
            case .maxLoRA:
                lora.maxLoRA = numberValid && number <= 1024 ? number : nil
            }
            while position < end && Self.isSpace(page[position]) { position &+= 1 }
            guard position < end else { return nil }
            if page[position] == 0x2C {
                position &+= 1
            } else if page[position] != 0x7D {
                return nil
            }
        }
    }

    private func append(_ adapter: AdapterID, _ label: LoRALabel, _ lora: inout LoRAState) {
        if label == .running { lora.appendRunning(adapter) } else { lora.appendWaiting(adapter) }
    }
}

enum LoRALabel {
    case running, waiting, maxLoRA, other

    static func match(_ page: Span<UInt8>, _ start: Int, _ end: Int) -> LoRALabel {
        for (name, label) in table where name.count == end &- start {
            var index = 0
            while index < name.count && page[start &+ index] == name[index] { index &+= 1 }
            if index == name.count { return label }
        }
        return .other
    }

    static let table: [([UInt8], LoRALabel)] = [
        (Array("running_lora_adapters".utf8), .running),
        (Array("waiting_lora_adapters".utf8), .waiting),
        (Array("max_lora".utf8), .maxLoRA),
    ]
}

/// A Prometheus sample value: a Go `strconv.ParseFloat` number (`1`, `-0.5`, `2.5e-3`, `1.7e+09`)
/// or `NaN`, `Inf`, `+Inf`, `-Inf` (any case). Parsed in place to about 1e-15 relative error: 19
/// significant digits kept, then scaled by powers of ten, which is all load numbers need. nil
/// when it is not a number.
func parsePrometheusFloat(_ page: Span<UInt8>, _ start: Int, _ end: Int) -> Double? {
    var position = start
    guard position < end else { return nil }
    var negative = false
    if page[position] == 0x2B || page[position] == 0x2D {
        negative = page[position] == 0x2D
        position &+= 1
    }
    guard position < end else { return nil }
    let first = page[position] | 0x20  // lower case for letters
    if first == 0x6E || first == 0x69 {  // `n`an, `i`nf
        // The word packed lower-cased into a UInt64 (all three fit in 8 bytes).
        let length = end &- position
        guard length <= 8 else { return nil }
        var packed: UInt64 = 0
        for index in 0..<length { packed = packed &<< 8 | UInt64(page[position &+ index] | 0x20) }
        if packed == 0x6E_61_6E { return .nan }  // "nan"
        if packed == 0x69_6E_66 || packed == 0x69_6E_66_69_6E_69_74_79 {  // "inf", "infinity"
            return negative ? -.infinity : .infinity
        }
        return nil
    }
    var mantissa: UInt64 = 0
    var significant = 0
    var exponent = 0
    var digits = 0
    var seenPoint = false
    while position < end {
        let byte = page[position]
        if byte >= 0x30 && byte <= 0x39 {
            digits &+= 1
            if significant < 19 {
                if mantissa != 0 || byte != 0x30 { significant &+= 1 }
                mantissa = mantissa &* 10 &+ UInt64(byte &- 0x30)
                if seenPoint { exponent &-= 1 }
            } else if !seenPoint {
                exponent &+= 1
            }
        } else if byte == 0x2E && !seenPoint {
            seenPoint = true
        } else {
            break
        }
        position &+= 1
    }
    guard digits > 0 else { return nil }
    if position < end {
        guard page[position] | 0x20 == 0x65 else { return nil }  // `e`
        position &+= 1
        var exponentNegative = false
        if position < end && (page[position] == 0x2B || page[position] == 0x2D) {
            exponentNegative = page[position] == 0x2D
            position &+= 1
        }
        var written = 0
        var exponentDigits = 0
        while position < end, page[position] >= 0x30, page[position] <= 0x39 {
            if written < 10_000 { written = written &* 10 &+ Int(page[position] &- 0x30) }
            exponentDigits &+= 1
            position &+= 1
        }
        guard exponentDigits > 0, position == end else { return nil }
        exponent &+= exponentNegative ? -written : written
    }
    var value = Double(mantissa)
    if value != 0 {
        // Scale in steps of 1e22 (exact in a Double); past ±400 the result is 0 or ∞ anyway.
        var remaining = max(-400, min(400, exponent))
        while remaining > 0 {
            let step = min(remaining, 22)
            value *= powersOfTen[step]
            remaining &-= step
        }
        while remaining < 0 {
            let step = min(-remaining, 22)
            value /= powersOfTen[step]
            remaining &+= step
        }
    }
    return negative ? -value : value
}

private let powersOfTen: InlineArray<23, Double> = [
    1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19,
    1e20, 1e21, 1e22,
]
