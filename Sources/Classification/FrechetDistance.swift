import Foundation

/// The Fréchet distance between two Gaussians fitted to feature sets (Heusel et al. 2017):
/// ‖μ₁ − μ₂‖² + Tr(Σ₁ + Σ₂ − 2(Σ₁Σ₂)^½), with Tr(Σ₁Σ₂)^½ computed as Tr(Σ₁^½ Σ₂ Σ₁^½)^½ from
/// symmetric eigendecompositions (so it stays real). With a classifier's features instead of
/// Inception's it is a domain-specific FID, comparable only between runs that use the same classifier.
public enum FrechetDistance {
    /// Mean and (biased-free, N − 1) covariance of rows of equal width.
    public static func statistics(_ rows: [[Double]]) -> (mean: [Double], covariance: [[Double]]) {
        let n = rows.count, d = rows.first?.count ?? 0
        var mean = [Double](repeating: 0, count: d)
        for row in rows { for j in 0..<d { mean[j] += row[j] } }
        mean = mean.map { $0 / Double(max(n, 1)) }
        var covariance = [[Double]](repeating: [Double](repeating: 0, count: d), count: d)
        for row in rows {
            for i in 0..<d {
                let a = row[i] - mean[i]
                for j in i..<d { covariance[i][j] += a * (row[j] - mean[j]) }
            }
        }
        for i in 0..<d {
            for j in i..<d {
                covariance[i][j] /= Double(max(n - 1, 1))
                covariance[j][i] = covariance[i][j]
            }
        }
        return (mean, covariance)
    }

    public static func distance(_ a: [[Double]], _ b: [[Double]]) -> Double {
        let (m1, s1) = statistics(a), (m2, s2) = statistics(b)
        let meanTerm = zip(m1, m2).reduce(0.0) { $0 + ($1.0 - $1.1) * ($1.0 - $1.1) }
        let root1 = symmetricFunction(s1) { max($0, 0).squareRoot() }
        let middle = multiply(multiply(root1, s2), root1)
        let (values, _) = eigen(middle)
        let traceRoot = values.reduce(0.0) { $0 + max($1, 0).squareRoot() }
        let trace = (0..<s1.count).reduce(0.0) { $0 + s1[$1][$1] + s2[$1][$1] }
        return meanTerm + trace - 2 * traceRoot
    }

    static func multiply(_ a: [[Double]], _ b: [[Double]]) -> [[Double]] {
        let n = a.count, m = b.first?.count ?? 0, k = b.count
        var c = [[Double]](repeating: [Double](repeating: 0, count: m), count: n)
        for i in 0..<n { for p in 0..<k where a[i][p] != 0 { for j in 0..<m { c[i][j] += a[i][p] * b[p][j] } } }
        return c
    }

    /// f(S) = V·diag(f(λ))·Vᵀ for a symmetric S.
    static func symmetricFunction(_ s: [[Double]], _ f: (Double) -> Double) -> [[Double]] {
        let (values, vectors) = eigen(s)
        let n = s.count
        var result = [[Double]](repeating: [Double](repeating: 0, count: n), count: n)
        for k in 0..<n {
            let fk = f(values[k])
            for i in 0..<n { for j in 0..<n { result[i][j] += vectors[i][k] * fk * vectors[j][k] } }
        }
        return result
    }

    /// Eigenvalues and eigenvectors (columns) of a symmetric matrix, by cyclic Jacobi rotations.
    public static func eigen(_ matrix: [[Double]]) -> (values: [Double], vectors: [[Double]]) {
        var a = matrix
        let n = a.count
        var v = (0..<n).map { i in (0..<n).map { $0 == i ? 1.0 : 0.0 } }
        for _ in 0..<100 {
            var off = 0.0
            for i in 0..<n { for j in (i + 1)..<max(n, i + 1) { off += a[i][j] * a[i][j] } }
            if off < 1e-22 * max(1, (0..<n).reduce(0.0) { $0 + a[$1][$1] * a[$1][$1] }) { break }
            for p in 0..<n {
                for q in (p + 1)..<max(n, p + 1) where a[p][q] != 0 {
                    let theta = (a[q][q] - a[p][p]) / (2 * a[p][q])
                    let t = (theta >= 0 ? 1.0 : -1.0) / (abs(theta) + (theta * theta + 1).squareRoot())
                    let c = 1 / (t * t + 1).squareRoot(), s = t * c
                    for k in 0..<n {
                        let akp = a[k][p], akq = a[k][q]
                        a[k][p] = c * akp - s * akq
                        a[k][q] = s * akp + c * akq
                    }
                    for k in 0..<n {
                        let apk = a[p][k], aqk = a[q][k]
                        a[p][k] = c * apk - s * aqk
                        a[q][k] = s * apk + c * aqk
                    }
                    for k in 0..<n {
                        let vkp = v[k][p], vkq = v[k][q]
                        v[k][p] = c * vkp - s * vkq
                        v[k][q] = s * vkp + c * vkq
                    }
                }
            }
        }
        return ((0..<n).map { a[$0][$0] }, v)
    }
}
