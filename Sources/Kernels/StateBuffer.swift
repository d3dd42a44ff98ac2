// A piece of a trainer's state that a checkpoint saves and restores in place:
// a name, an element type (safetensors' names), a shape and the bytes. The
// arenas and the metrics list their buffers; the checkpoint writes them as
// tensors and, on resume, copies the saved bytes back after checking type and
// shape. (Per-ID state is not here: it lives in the stores' columns and is
// saved with each row.)

public struct StateBuffer {
    public enum Element: String, Sendable { case f32 = "F32", f64 = "F64", i32 = "I32", i8 = "I8" }
    public let name: String
    public let element: Element
    public let shape: [Int]
    public let bytes: UnsafeMutableRawBufferPointer

    public init<T>(_ name: String, _ element: Element, shape: [Int], _ pointer: UnsafeMutablePointer<T>) {
        self.name = name
        self.element = element
        self.shape = shape
        bytes = UnsafeMutableRawBufferPointer(start: pointer, count: shape.reduce(1, *) * MemoryLayout<T>.stride)
    }

    /// The same buffer under `prefix.name`.
    public func prefixed(_ prefix: String) -> StateBuffer {
        StateBuffer(named: prefix + "." + name, element, shape, bytes)
    }

    private init(named name: String, _ element: Element, _ shape: [Int], _ bytes: UnsafeMutableRawBufferPointer) {
        self.name = name; self.element = element; self.shape = shape; self.bytes = bytes
    }

    public var elementBytes: Int { element == .f64 ? 8 : element == .i8 ? 1 : 4 }
}

extension ParameterArena {
    /// Values and both Adam moments (gradients are rebuilt every batch).
    public var stateBuffers: [StateBuffer] {
        [StateBuffer("values", .f32, shape: [count], values.baseAddress!),
         StateBuffer("adam_m", .f32, shape: [count], firstMoments.baseAddress!),
         StateBuffer("adam_v", .f32, shape: [count], secondMoments.baseAddress!)]
    }
}
