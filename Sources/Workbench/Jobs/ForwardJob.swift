import Autograd
import Foundation
import NN
import Tensor

/// `workbench forward`: one forward pass of an experiment's model on a tensor from a safetensors
/// file, for checking a port against PyTorch.
public enum ForwardJob {
    public struct InputError: Error, CustomStringConvertible {
        public let message: String
        public var description: String { message }
    }

    /// Reads key `x` from `input`, writes key `y` to `output`; returns the output shape.
    /// Eval mode by default; `trainMode` uses batch statistics with dropout off.
    @discardableResult
    public static func run(experiment: Experiment, checkpoint: URL, input: URL, output: URL, trainMode: Bool) throws -> [Int] {
        let model = experiment.makeModel()
        try Checkpoints.loadModelWeights(into: model, from: checkpoint)
        let file = try SafeTensorsFile.read(input)
        guard let entry = file["x"] else {
            throw InputError(message: "\(input.path): no tensor named 'x' (it has: \(file.keys.joined(separator: ", "))); save the input under key x")
        }
        guard [.F32, .F64].contains(entry.dtype) else {
            throw InputError(message: "\(input.path): x is \(entry.dtype.rawValue); save it as float32")
        }
        let x = Tensor(shape: entry.shape, scalars: entry.floats())
        guard let unet = model as? UNet else {
            throw InputError(message: "workbench forward supports the segmentation U-Net; this experiment's model takes more than an image")
        }
        do {
            try unet.validate(inputShape: x.shape)
        } catch {
            throw InputError(message: "\(input.path): \(error)")
        }
        if trainMode {
            unet.train()
            for (_, module) in unet.namedModules() { (module as? Dropout)?.isTraining = false }
        } else {
            unet.eval()
        }
        let y = withNoGrad { unet(Variable(x)) }
        var result = SafeTensorsFile()
        result.set("y", y.value)
        try result.write(to: output)
        return y.shape
    }
}
