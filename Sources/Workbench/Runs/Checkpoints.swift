import Foundation
import NN
import Segmentation
import Tensor

/// Reading model weights from either kind of checkpoint the workbench writes: a plain
/// `state_dict` (PyTorch's keys; what `torch.save(model.state_dict())` holds) or a training
/// state, whose model part is under the prefix "model.".
public enum Checkpoints {
    /// Loads `model`'s weights from a model file or a training state (whose weights under
    /// `statePrefix` are used: "model." for the live model, "extra.ema." for the EMA).
    public static func loadModelWeights(into model: Module, from url: URL, statePrefix: String = "model.") throws {
        let file = try read(url)
        let isTrainingState = file.keys.contains { $0.hasPrefix(statePrefix) } && file.keys.contains { $0 == "step" }
        let prefix = isTrainingState ? statePrefix : ""
        // A checkpoint of the other head shares few keys with this model: say so instead of listing them all.
        let expected = Set(model.namedState(prefix: prefix).map(\.name))
        if expected.intersection(file.keys).count * 2 < expected.count {
            throw TrainingError("\(url.path): this checkpoint is not of this model (\(describe(file, prefix: prefix)), while the experiment builds a \(describe(model))); pair it with the experiment it was trained with, or use `--run RUN_DIR`")
        }
        try model.loadStateDict(file, path: url.path, prefix: prefix, strict: !isTrainingState)
    }

    /// Reads a checkpoint; a folder or a missing file gets a message that says what to pass.
    public static func read(_ url: URL) throws -> SafeTensorsFile {
        var isFolder: ObjCBool = false
        guard FileManager.default.fileExists(atPath: url.path, isDirectory: &isFolder) else {
            throw TrainingError("\(url.path): no such checkpoint; a run writes them to <run>/checkpoints/model-final.safetensors")
        }
        if isFolder.boolValue {
            let final = url.appendingPathComponent("checkpoints/model-final.safetensors")
            let hint = FileManager.default.fileExists(atPath: final.path) ? " (this looks like a run folder: did you mean \(final.path)?)" : ""
            throw TrainingError("\(url.path) is a folder; --checkpoint takes a .safetensors file\(hint)")
        }
        return try SafeTensorsFile.read(url)
    }

    /// Which kind of model a state dict holds, from its key names.
    static func describe(_ file: SafeTensorsFile, prefix: String) -> String {
        let keys = file.keys.filter { $0.hasPrefix(prefix) }.map { String($0.dropFirst(prefix.count)) }
        if keys.contains(where: { $0.hasPrefix("time_mlp") }) { return "it holds a diffusion noise predictor" }
        if keys.contains(where: { $0.hasPrefix("c1.layer") }) { return "it holds a segmentation U-Net" }
        return "its keys begin \(keys.prefix(3).joined(separator: ", "))"
    }

    static func describe(_ model: Module) -> String {
        model is UNet ? "segmentation U-Net" : "diffusion noise predictor"
    }
}
