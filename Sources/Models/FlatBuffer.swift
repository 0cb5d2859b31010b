// FlatBuffer: one aligned allocation of Floats that lives as long as its owner, its size fixed at
// creation (ModelBuilder plans what goes inside).
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A zero-initialised, 64-byte aligned buffer of `count` Floats. Buffers of 2 MiB or more are
/// 2 MiB aligned and, on Linux, advised as transparent huge pages (honoured in the kernel's
/// `madvise` mode, Debian's default): activations are streamed every step, and 4 KiB pages cost
/// TLB misses.
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
