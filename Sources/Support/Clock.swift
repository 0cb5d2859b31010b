// Clock: Loom's one monotonic clock (CLOCK_MONOTONIC), for every duration it measures — step times,
// kernel profiles, GEMM engine probes, communication waits, tokenization speed. Time stamps use
// Date.
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Nanoseconds since an arbitrary fixed point; never goes backwards, unaffected by clock changes.
@inlinable @inline(__always)
public func monotonicNanoseconds() -> UInt64 {
    var t = timespec()
    clock_gettime(CLOCK_MONOTONIC, &t)
    return UInt64(t.tv_sec) * 1_000_000_000 + UInt64(t.tv_nsec)
}

/// `monotonicNanoseconds()` in seconds: subtract two readings for a duration.
@inlinable @inline(__always)
public func monotonicSeconds() -> Double { Double(monotonicNanoseconds()) * 1e-9 }
