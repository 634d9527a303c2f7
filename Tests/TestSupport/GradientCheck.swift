import Autograd
import Tensor

/// Finite-difference check of an op: L = Σ out·G for a random G drawn from `weights`; the tape's
/// gradient of every input is compared with central differences of L. Returns one description
/// per input whose gradient disagrees (empty when all agree).
public func gradientCheck(_ inputs: [Tensor], weights random: RandomGenerator, step: Float = 1e-2, rtol: Double = 1e-2,
                          atol: Double = 2e-3, _ op: ([Variable]) -> Variable) -> [String] {
    let variables = inputs.map { Variable($0, requiresGrad: true) }
    let output = op(variables)
    let weights = random.normal(output.shape)
    output.backward(weights)
    func objective(_ tensors: [Tensor]) -> Double {
        let out = withNoGrad { op(tensors.map { Variable($0) }) }
        return (0..<out.value.count).reduce(0.0) { $0 + Double(out.value[flat: $1]) * Double(weights[flat: $1]) }
    }
    var problems: [String] = []
    for (index, input) in inputs.enumerated() {
        guard let analytic = variables[index].grad else { problems.append("input \(index): no gradient"); continue }
        var numeric = [Double](repeating: 0, count: input.count)
        for i in 0..<input.count {
            var plus = inputs, minus = inputs
            plus[index][flat: i] = input[flat: i] + step
            minus[index][flat: i] = input[flat: i] - step
            let width = Double(plus[index][flat: i]) - Double(minus[index][flat: i])
            numeric[i] = (objective(plus) - objective(minus)) / width
        }
        if let problem = mismatch(analytic.scalars.map(Double.init), numeric, rtol: rtol, atol: atol) {
            problems.append("input \(index): \(problem)")
        }
    }
    return problems
}
