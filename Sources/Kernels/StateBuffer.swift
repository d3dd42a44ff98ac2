// A piece of a trainer's state that a checkpoint saves and restores in place:
// a name, an element type (safetensors' names), a shape and the bytes. Each
// stateful part (arenas, loss histories, DARTS' moments, extra state,
// metrics) lists its buffers; the checkpoint writes them as tensors and, on
// resume, copies the saved bytes back after checking type and shape.

public struct StateBuffer {
    public enum Element: String, Sendable { case f32 = "F32", f64 = "F64", i32 = "I32", i8 = "I8" }
    public let name: String
    public let element: Element
    public let shape: [Int]
    public let bytes: UnsafeMutableRawBufferPointer
    /// Elements per local ID (the buffer is indexed by local ID), or nil for
    /// this rank's own totals (metrics), which add up across ranks. Resuming
    /// on another number of ranks moves per-ID elements to the IDs' new owners
    /// and sums the totals.
    public let perID: Int?

    public init<T>(_ name: String, _ element: Element, shape: [Int], perID: Int?, _ pointer: UnsafeMutablePointer<T>) {
        self.name = name
        self.element = element
        self.shape = shape
        self.perID = perID
        bytes = UnsafeMutableRawBufferPointer(start: pointer, count: shape.reduce(1, *) * MemoryLayout<T>.stride)
    }

    /// The same buffer under `prefix.name`.
    public func prefixed(_ prefix: String) -> StateBuffer {
        StateBuffer(named: prefix + "." + name, element, shape, perID, bytes)
    }

    private init(named name: String, _ element: Element, _ shape: [Int], _ perID: Int?, _ bytes: UnsafeMutableRawBufferPointer) {
        self.name = name; self.element = element; self.shape = shape; self.perID = perID; self.bytes = bytes
    }

    public var elementBytes: Int { element == .f64 ? 8 : element == .i8 ? 1 : 4 }
}

extension ParameterArena {
    /// Values and both Adam moments (gradients are rebuilt every batch).
    public var stateBuffers: [StateBuffer] {
        [StateBuffer("values", .f32, shape: [count], perID: nil, values.baseAddress!),
         StateBuffer("adam_m", .f32, shape: [count], perID: nil, firstMoments.baseAddress!),
         StateBuffer("adam_v", .f32, shape: [count], perID: nil, secondMoments.baseAddress!)]
    }
}
