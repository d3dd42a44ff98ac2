// Buffers that a table's parts allocate once, zero-filled (so they are
// resident from the start: a later, larger batch does not grow the process),
// counted as they are made (so the bytes the memory report gives are the
// bytes allocated, not a second list kept by hand) and freed together.

public final class BufferPool {
    private var buffers: [UnsafeMutableRawPointer] = []
    /// Bytes allocated through this pool.
    public private(set) var bytes = 0

    public init() {}

    deinit { for b in buffers { b.deallocate() } }

    /// `count` values of `T` (at least one), every one set to `value`.
    public func make<T>(_ count: Int, _ value: T) -> UnsafeMutablePointer<T> {
        let n = max(1, count)
        let p = UnsafeMutablePointer<T>.allocate(capacity: n)
        p.initialize(repeating: value, count: n)
        buffers.append(UnsafeMutableRawPointer(p))
        bytes += n * MemoryLayout<T>.stride
        return p
    }

    /// `count` zero bytes (at least one), 64-byte aligned.
    public func raw(_ count: Int) -> UnsafeMutableRawPointer {
        let n = max(1, count)
        let p = UnsafeMutableRawPointer.allocate(byteCount: n, alignment: 64)
        p.initializeMemory(as: UInt8.self, repeating: 0, count: n)
        buffers.append(p)
        bytes += n
        return p
    }
}
