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
}
