// Wall-clock time for response `created` fields (SluiceCore takes time as a parameter).
#if canImport(Glibc)
internal import Glibc
#endif

enum WallClock {
    /// Seconds since the Unix epoch.
    static func unixSeconds() -> Int64 {
        var now = timespec()
        clock_gettime(CLOCK_REALTIME, &now)
        return Int64(now.tv_sec)
    }

    /// Milliseconds since the Unix epoch (quota clocks).
    static func unixMillis() -> Int64 { unixMicros() / 1000 }

    /// Microseconds since the Unix epoch (durations of requests).
    static func unixMicros() -> Int64 {
        var now = timespec()
        clock_gettime(CLOCK_REALTIME, &now)
        return Int64(now.tv_sec) &* 1_000_000 &+ Int64(now.tv_nsec / 1000)
    }
}

/// The monotonic clock fleet lease expiries are timed on (the worker and the filters alike).
enum MonotonicClock {
    @Sendable static func nanos() -> Int64 {
        var now = timespec()
        clock_gettime(CLOCK_MONOTONIC, &now)
        return Int64(now.tv_sec) &* 1_000_000_000 &+ Int64(now.tv_nsec)
    }
}
