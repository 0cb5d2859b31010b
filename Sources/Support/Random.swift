// Random: counter-based randomness (SplitMix64 finaliser over a key and a counter), so any rank can
// draw the number for (seed, step, purpose, index) without carrying generator state. The mixing
// is statistical, not cryptographic.

/// Stateless random numbers: the same key and counter give the same value on every rank.
public enum CounterRandom {
    /// Mixes 64 bits thoroughly (SplitMix64's finaliser).
    @inlinable @inline(__always)
    public static func mix(_ value: UInt64) -> UInt64 {
        var z = value &+ 0x9E37_79B9_7F4A_7C15
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// A key for a stream of numbers, derived from several identifiers (seed, step, purpose…).
    /// Fixed arity (no variadic array) so the step loop can call it without allocating.
    @inlinable @inline(__always)
    public static func key(_ a: UInt64, _ b: UInt64 = 0, _ c: UInt64 = 0, _ d: UInt64 = 0,
                           _ e: UInt64 = 0) -> UInt64 {
        var key: UInt64 = 0x6A09_E667_F3BC_C909
        key = mix(key ^ mix(a)); key = mix(key ^ mix(b)); key = mix(key ^ mix(c))
        key = mix(key ^ mix(d)); key = mix(key ^ mix(e))
        return key
    }

    /// 64 random bits for position `counter` of the stream `key`.
    @inlinable @inline(__always)
    public static func bits(key: UInt64, counter: UInt64) -> UInt64 {
        mix(key ^ (counter &* 0xD1B5_4A32_D192_ED03))
    }

    /// A float uniform in [0, 1) with 24 bits of resolution.
    @inlinable @inline(__always)
    public static func uniform(key: UInt64, counter: UInt64) -> Float {
        Float(bits(key: key, counter: counter) >> 40) * (1.0 / 16_777_216.0)
    }

    /// An integer uniform in `0..<bound` (bound > 0), by 128-bit multiply (Lemire, no rejection).
    @inlinable @inline(__always)
    public static func below(_ bound: Int, key: UInt64, counter: UInt64) -> Int {
        Int(bits(key: key, counter: counter).multipliedFullWidth(by: UInt64(bound)).high)
    }

    /// A standard normal sample (Box–Muller on two uniforms).
    @inlinable
    public static func normal(key: UInt64, counter: UInt64) -> Float {
        let u1 = max(Double(bits(key: key, counter: 2 &* counter) >> 11) * 0x1p-53, 1e-300)
        let u2 = Double(bits(key: key, counter: 2 &* counter &+ 1) >> 11) * 0x1p-53
        return Float((-2 * _log(u1)).squareRoot() * _cos(2 * Double.pi * u2))
    }
}

#if canImport(Glibc)
import Glibc
@usableFromInline @inline(__always) func _log(_ x: Double) -> Double { Glibc.log(x) }
@usableFromInline @inline(__always) func _cos(_ x: Double) -> Double { Glibc.cos(x) }
#else
import Darwin
@usableFromInline @inline(__always) func _log(_ x: Double) -> Double { Darwin.log(x) }
@usableFromInline @inline(__always) func _cos(_ x: Double) -> Double { Darwin.cos(x) }
#endif
