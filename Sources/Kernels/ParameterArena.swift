// Dense parameters in the llm.c layout: one allocation holding four regions
// of equal size — values | gradients | Adam m | Adam v — and named views
// into it, registered once at build time. Zeroing the gradients is one
// memset, the dense all-reduce is one call over `gradients`, and the Adam
// step is one loop.
//
//   var layout = ParameterLayout()
//   let fc1 = layout.addLinear("mlp.fc1", inFeatures: 256, outFeatures: 512)
//   let arena = ParameterArena(layout: layout, seed: seed)
//   linearForward(out: …, inp: …, weight: arena.value(fc1.weight), bias: arena.value(fc1.bias!), …)
import Random

// MARK: - Views

/// A named tensor inside the arena: `count` floats at `offset` in every region.
public struct ParameterView: Sendable, Hashable, CustomStringConvertible {
    public let name: String
    public let offset: Int
    public let count: Int
    /// Row-major shape, PyTorch's convention (a Linear weight is (OC, C)).
    public let shape: [Int]
    public let initialiser: ParameterInit

    public var description: String { "\(name) \(shape) @\(offset)" }
}

/// The views of a Linear layer: weight (OC, C) and optional bias (OC).
public struct LinearParameters: Sendable, Hashable {
    public let weight: ParameterView
    public let bias: ParameterView?
    public let inFeatures: Int
    public let outFeatures: Int
}

/// The views of a BatchNorm layer: γ (C) and β (C).
public struct BatchNormParameters: Sendable, Hashable {
    public let gamma: ParameterView
    public let beta: ParameterView
    public let channels: Int
}

// MARK: - Layout

/// The list of tensors, built before the arena is allocated. Every view
/// starts on a 64-byte boundary; the padding stays zero in every region.
public struct ParameterLayout: Sendable {
    public static let alignment = 16   // floats

    public private(set) var views: [ParameterView] = []
    /// Floats per region, padding included.
    public private(set) var count = 0
    private var names: Set<String> = []

    public init() {}

    @discardableResult
    public mutating func add(_ name: String, shape: [Int], initialiser: ParameterInit) -> ParameterView {
        precondition(!shape.isEmpty && shape.allSatisfy { $0 > 0 },
                     "ParameterLayout: tensor \(name) needs a non-empty shape of positive sizes, got \(shape)")
        precondition(names.insert(name).inserted, "ParameterLayout: tensor name \(name) registered twice")
        let view = ParameterView(name: name, offset: count, count: shape.reduce(1, *),
                                 shape: shape, initialiser: initialiser)
        views.append(view)
        count += (view.count + Self.alignment - 1) / Self.alignment * Self.alignment
        return view
    }

    /// `name.weight` (OC, C) and `name.bias` (OC), PyTorch-initialised.
    public mutating func addLinear(_ name: String, inFeatures: Int, outFeatures: Int,
                                   bias: Bool = true) -> LinearParameters {
        let rule = ParameterInit.linear(fanIn: inFeatures)
        let w = add("\(name).weight", shape: [outFeatures, inFeatures], initialiser: rule)
        let b = bias ? add("\(name).bias", shape: [outFeatures], initialiser: rule) : nil
        return LinearParameters(weight: w, bias: b, inFeatures: inFeatures, outFeatures: outFeatures)
    }

    /// `name.gamma` = 1 and `name.beta` = 0, each (C).
    public mutating func addBatchNorm(_ name: String, channels: Int) -> BatchNormParameters {
        let g = add("\(name).gamma", shape: [channels], initialiser: .ones)
        let b = add("\(name).beta", shape: [channels], initialiser: .zeros)
        return BatchNormParameters(gamma: g, beta: b, channels: channels)
    }
}

// MARK: - Arena

public final class ParameterArena {
    public let layout: ParameterLayout
    /// Floats per region.
    public var count: Int { layout.count }

    private let base: UnsafeMutablePointer<Float>
    public let values: UnsafeMutableBufferPointer<Float>
    /// All dense gradients, contiguous: all-reduce this in one call.
    public let gradients: UnsafeMutableBufferPointer<Float>
    public let firstMoments: UnsafeMutableBufferPointer<Float>
    public let secondMoments: UnsafeMutableBufferPointer<Float>

    /// Allocates the four regions and initialises every tensor from
    /// `RandomStream(seed:, purpose: .denseInit, stableKey(name))`; gradients
    /// and moments start at zero.
    public init(layout: ParameterLayout, seed: UInt64) {
        self.layout = layout
        let n = layout.count
        base = UnsafeMutableRawPointer.allocate(byteCount: Swift.max(4 * n, 1) * MemoryLayout<Float>.stride,
                                                alignment: 64)
            .bindMemory(to: Float.self, capacity: Swift.max(4 * n, 1))
        base.initialize(repeating: 0, count: Swift.max(4 * n, 1))
        values = UnsafeMutableBufferPointer(start: base, count: n)
        gradients = UnsafeMutableBufferPointer(start: base + n, count: n)
        firstMoments = UnsafeMutableBufferPointer(start: base + 2 * n, count: n)
        secondMoments = UnsafeMutableBufferPointer(start: base + 3 * n, count: n)
        initialise(seed: seed)
    }

    deinit { base.deallocate() }

    /// Redraws every tensor and zeroes gradients and moments.
    public func initialise(seed: UInt64) {
        base.update(repeating: 0, count: 4 * count)
        for view in layout.views {
            var stream = RandomStream(seed: seed, purpose: .denseInit, stableKey(view.name))
            view.initialiser.fill(value(view), count: view.count, stream: &stream)
        }
    }

    // MARK: Access

    public func value(_ view: ParameterView) -> UnsafeMutablePointer<Float> {
        values.baseAddress! + view.offset
    }

    public func gradient(_ view: ParameterView) -> UnsafeMutablePointer<Float> {
        gradients.baseAddress! + view.offset
    }

    public func view(named name: String) -> ParameterView? {
        layout.views.first { $0.name == name }
    }

    // MARK: Optimisation

    /// Zeroes every gradient: one memset.
    public func zeroGradients() {
        gradients.baseAddress!.update(repeating: 0, count: count)
    }

    /// One Adam step over every parameter at global step `t` (≥ 1), with the
    /// gradients as they are (already all-reduced across ranks).
    public func adamStep(lr: Double, beta1: Double = 0.9, beta2: Double = 0.999, eps: Double = 1e-8, step t: Int) {
        adamUpdate(values: values.baseAddress!, m: firstMoments.baseAddress!, v: secondMoments.baseAddress!,
                   grads: gradients.baseAddress!, count: count,
                   AdamHyperparameters(lr: lr, beta1: beta1, beta2: beta2, eps: eps), step: t)
    }

    /// Bitwise checksum of the values: replicas that took the same steps agree exactly.
    public func checksum() -> UInt64 {
        parameterChecksum(UnsafePointer(values.baseAddress!), count: count)
    }
}

// MARK: - Checksum

/// Fletcher-style checksum of the bit patterns of `count` floats: one cheap
/// pass, sensitive to any changed bit and to the order of the values.
public func parameterChecksum(_ values: UnsafePointer<Float>, count: Int) -> UInt64 {
    var a: UInt64 = 0, b: UInt64 = 0
    for i in 0..<count {
        a &+= UInt64(values[i].bitPattern) &+ 1
        b &+= a
    }
    return (b &* 0x9E37_79B9_7F4A_7C15) ^ a
}
