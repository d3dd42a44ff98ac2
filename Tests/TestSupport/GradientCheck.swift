// The central-difference gradient check shared by the kernel tests and the
// embedding tests: perturb one input in place, rerun the forward, compare.
import Kernels
import Random
import XCTest

/// Compares `analytic[i]` (∂objective/∂x[i]) with the central difference
/// (objective(x + eps) − objective(x − eps)) / (2 eps) for every index in
/// `indices`, perturbing `x` in place (and restoring it). With `fourthOrder`
/// the five-point stencil (f(x−2h) − 8f(x−h) + 8f(x+h) − f(x+2h)) / 12h is
/// used instead: its truncation error is O(h⁴) rather than O(h²), for
/// objectives whose curvature (BatchNorm over few rows, tanh) makes the
/// central difference's error show at steps large enough to beat Float noise. The forward runs in
/// Float, the objective is summed in Double. Passes when
/// |analytic − numeric| ≤ atol + rtol·max(|analytic|, |numeric|); reports at
/// most five failures. Returns the largest |analytic − numeric| / tolerance
/// seen (≤ 1 when everything passed), so callers can print the headroom.
@discardableResult
public func checkGradient(_ name: String, at x: UnsafeMutablePointer<Float>, count: Int, analytic: [Float],
                          indices: [Int], eps: Float = 1e-2, rtol: Float = 1e-3, atol: Float = 1e-4,
                          fourthOrder: Bool = false,
                          file: StaticString = #filePath, line: UInt = #line,
                          objective: () -> Double) -> Float {
    XCTAssertEqual(analytic.count, count, "\(name): gradient size", file: file, line: line)
    var worst: Float = 0
    var failures = 0
    for i in indices {
        let saved = x[i]
        /// objective at x[i] = saved + k·eps, and the step actually taken (Float rounding).
        func at(_ k: Float) -> (f: Double, x: Double) {
            x[i] = saved + k * eps
            defer { x[i] = saved }
            return (objective(), Double(saved + k * eps))
        }
        let numeric: Float
        if fourthOrder {
            let m2 = at(-2), m1 = at(-1), p1 = at(1), p2 = at(2)
            let h = (p1.x - m1.x) / 2
            numeric = Float((m2.f - 8 * m1.f + 8 * p1.f - p2.f) / (12 * h))
        } else {
            let p1 = at(1), m1 = at(-1)
            numeric = Float((p1.f - m1.f) / (p1.x - m1.x))
        }
        let a = analytic[i]
        let tolerance = atol + rtol * Swift.max(abs(a), abs(numeric))
        let ratio = abs(a - numeric) / tolerance
        worst = Swift.max(worst, ratio)
        if !(ratio <= 1) && failures < 5 {
            failures += 1
            XCTFail("\(name)[\(i)]: analytic \(a) vs numeric \(numeric) (tolerance \(tolerance))", file: file, line: line)
        }
    }
    // The check must have looked at something that could fail.
    XCTAssertGreaterThan(indices.count, 0, "\(name): nothing checked", file: file, line: line)
    XCTAssert(analytic.contains { $0 != 0 }, "\(name): gradient is identically zero", file: file, line: line)
    return worst
}

/// Checks every tensor of `arena` against finite differences of `objective`:
/// `backward()` must zero the arena's gradients and fill them for the current
/// values. Every element of a tensor of up to `sample` elements, `sample`
/// random ones of a larger tensor, or only `indices(view)` when given (for
/// tables where most rows are not read). Returns the worst |Δ|/tolerance.
@discardableResult
public func checkArenaGradients(_ arena: ParameterArena, views: [ParameterView]? = nil, sample: Int = 48,
                                indices chosen: ((ParameterView) -> [Int]?)? = nil,
                                eps: Float = 1e-2, rtol: Float = 2e-3, atol: Float = 1e-4,
                                file: StaticString = #filePath, line: UInt = #line,
                                backward: () -> Void, objective: () -> Double) -> Float {
    backward()
    var worst: Float = 0
    var pick = RandomStream(seed: 17, purpose: .test)
    for view in views ?? arena.layout.views {
        let analytic = Array(UnsafeBufferPointer(start: arena.gradient(view), count: view.count))
        var indices = chosen?(view) ?? Array(0..<view.count)
        if chosen?(view) == nil && view.count > sample {
            for i in 0..<sample { indices.swapAt(i, i + pick.below(view.count - i)) }
            indices = Array(indices.prefix(sample))
        }
        worst = max(worst, checkGradient(view.name, at: arena.value(view), count: view.count, analytic: analytic,
                                         indices: indices, eps: eps, rtol: rtol, atol: atol, fourthOrder: true,
                                         file: file, line: line, objective: objective))
    }
    return worst
}
