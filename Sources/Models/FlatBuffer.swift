// FlatBuffer: one aligned allocation of Floats that lives as long as its owner, and Arena, which
// carves named views out of one. They are not growable arrays: sizes are fixed at creation.
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A zero-initialised, 64-byte aligned buffer of `count` Floats. Buffers of 2 MiB or more are
/// 2 MiB aligned and, on Linux, advised as transparent huge pages (honoured in the kernel's
/// `madvise` mode, Debian's default): activations are streamed every step, and 4 KiB pages cost
/// TLB misses (tiny GPT step ~3 % faster, median of 8 alternating runs).
public final class FlatBuffer {
    public let pointer: UnsafeMutablePointer<Float>
    public let count: Int

    public init(count: Int) {
        self.count = count
        var raw: UnsafeMutableRawPointer?
        let bytes = max(count, 1) * MemoryLayout<Float>.stride
        let huge = 2 << 20
        let rc = posix_memalign(&raw, bytes >= huge ? huge : 64, bytes)
        precondition(rc == 0 && raw != nil, "FlatBuffer: cannot allocate \(count) floats")
        #if os(Linux)
        if bytes >= huge { _ = madvise(raw, (bytes + huge - 1) / huge * huge, MADV_HUGEPAGE) }
        #endif
        pointer = raw!.bindMemory(to: Float.self, capacity: max(count, 1))
        pointer.initialize(repeating: 0, count: max(count, 1))
    }
    deinit { free(pointer) }

    public var bytes: Int { count * MemoryLayout<Float>.stride }
    public var buffer: UnsafeMutableBufferPointer<Float> { .init(start: pointer, count: count) }
    /// Copies every value from `other` (same count).
    public func copy(from other: FlatBuffer) {
        precondition(other.count == count)
        pointer.update(from: other.pointer, count: count)
    }
}

/// Hands out consecutive 64-byte aligned slices of one FlatBuffer: plan with `take` calls on a
/// counting arena, allocate once, then take the same slices again from the real one.
public struct Arena {
    public private(set) var used = 0
    private let base: UnsafeMutablePointer<Float>?

    /// A counting arena: `take` returns placeholders; read `used` afterwards.
    public init() { base = nil }
    public init(buffer: FlatBuffer) { base = buffer.pointer }

    public mutating func take(_ count: Int) -> UnsafeMutablePointer<Float> {
        let start = used
        used += (count + 15) / 16 * 16
        guard let base else { return UnsafeMutablePointer(bitPattern: 64)! }
        return base + start
    }
}
