import Foundation
import Tensor

/// Golden fixtures next to a test file (`<test folder>/Fixtures/<name>`), made with PyTorch by
/// `../shared/fixtures/tools` (see Fixtures/FIXTURES-README.md).
public struct Fixture {
    public let file: SafeTensorsFile
    public let path: String

    public init(_ name: String, testFile: String = #filePath) throws {
        let url = URL(fileURLWithPath: testFile).deletingLastPathComponent().appendingPathComponent("Fixtures/\(name)")
        path = url.path
        file = try SafeTensorsFile.read(url)
    }

    public func tensor(_ key: String) throws -> Tensor { try file.tensor(key, path: path) }
    public func doubles(_ key: String) throws -> [Double] {
        guard let entry = file[key] else { throw SafeTensorsError(path: path, message: "no key \(key)") }
        return entry.doubles()
    }
    public func metadata(_ key: String) -> String? { file.metadata[key] }
    public var keys: [String] { file.keys }
}

/// nil when |a - b| <= atol + rtol·|b| elementwise and shapes match, else a description of the worst element.
public func mismatch(_ actual: Tensor, _ expected: Tensor, rtol: Float = 1e-5, atol: Float = 1e-6) -> String? {
    guard actual.count == expected.count else { return "shape \(actual.shape) vs expected \(expected.shape)" }
    if actual.shape != expected.shape && !(actual.count == 1) { return "shape \(actual.shape) vs expected \(expected.shape)" }
    return mismatch(actual.scalars.map(Double.init), expected.scalars.map(Double.init), rtol: Double(rtol), atol: Double(atol))
}

/// The same for Double arrays.
public func mismatch(_ actual: [Double], _ expected: [Double], rtol: Double, atol: Double) -> String? {
    guard actual.count == expected.count else { return "\(actual.count) values vs expected \(expected.count)" }
    var worst = -1
    var worstExcess = 0.0
    for i in 0..<actual.count {
        let difference = abs(actual[i] - expected[i])
        let allowed = atol + rtol * abs(expected[i])
        if !(difference <= allowed) {
            let excess = difference.isNaN ? .infinity : difference / max(allowed, 1e-300)
            if worst < 0 || excess > worstExcess { worst = i; worstExcess = excess }
        }
    }
    guard worst >= 0 else { return nil }
    return "element \(worst): \(actual[worst]) vs expected \(expected[worst]) (|diff| \(abs(actual[worst] - expected[worst])), allowed \(atol + rtol * abs(expected[worst])))"
}

/// Compares with a tolerance scaled by the expected tensor's largest magnitude:
/// |a - b| <= tolerance·max|b| (the fixtures README's "norm. err").
public func normalizedMismatch(_ actual: Tensor, _ expected: Tensor, tolerance: Float) -> String? {
    mismatch(actual, expected, rtol: 0, atol: tolerance * max(expected.maxAbs, 1e-30))
}

/// Central finite differences in Double of a scalar function of a flat parameter vector.
public func finiteDifferenceGradient(at point: [Double], step: Double = 1e-3, _ f: ([Double]) -> Double) -> [Double] {
    var x = point
    return (0..<point.count).map { i in
        x[i] = point[i] + step
        let up = f(x)
        x[i] = point[i] - step
        let down = f(x)
        x[i] = point[i]
        return (up - down) / (2 * step)
    }
}

/// The float32 rounding-error bound of a sum of `terms` rounded products, as a multiple of the
/// sum of the terms' magnitudes: γₙ = n·u / (1 − n·u), u = 2⁻²⁴ (Higham, *Accuracy and Stability
/// of Numerical Algorithms*, §3.1). It holds for every summation order, blocking and FMA use.
public func float32SumErrorBound(terms: Int) -> Double {
    let nu = Double(terms) * 0x1p-24
    return nu / (1 - nu)
}

/// Compares two float32 results of the same reductions computed in possibly different orders (ours
/// and the reference's): each may be off the exact value by γₙ·Σ|terms|, so they may differ by
/// twice that. `magnitudes` holds Σ|terms| per element (the same reduction run on absolute values).
/// A wrong kernel misses by a sizeable fraction of Σ|terms|, far beyond this.
public func reductionMismatch(_ actual: Tensor, _ expected: Tensor, magnitudes: Tensor, terms: Int) -> String? {
    guard actual.count == expected.count, magnitudes.count == expected.count else {
        return "shape \(actual.shape) vs expected \(expected.shape) (magnitudes \(magnitudes.shape))"
    }
    let bound = 2 * float32SumErrorBound(terms: terms)
    let a = actual.scalars, e = expected.scalars, m = magnitudes.scalars
    var worst = -1, worstExcess = 0.0
    for i in 0..<a.count {
        // The smallest normal float covers sums that are exactly zero on both sides.
        let allowed = bound * Double(m[i]) + Double(Float.leastNormalMagnitude)
        let difference = abs(Double(a[i]) - Double(e[i]))
        if !(difference <= allowed) {
            let excess = difference.isNaN ? .infinity : difference / allowed
            if worst < 0 || excess > worstExcess { worst = i; worstExcess = excess }
        }
    }
    guard worst >= 0 else { return nil }
    return "element \(worst): \(a[worst]) vs expected \(e[worst]) (|diff| \(abs(Double(a[worst]) - Double(e[worst]))), "
        + "allowed \(bound * Double(m[worst])) = 2·γ\(terms)·Σ|terms| with Σ|terms| = \(m[worst]))"
}
