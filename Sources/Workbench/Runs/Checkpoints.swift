import Foundation
import NN
import Tensor

/// Reading model weights from either kind of checkpoint the workbench writes: a plain
/// `state_dict` (PyTorch's keys; what `torch.save(model.state_dict())` holds) or a training
/// state, whose model part is under the prefix "model.".
public enum Checkpoints {
    public static func loadModelWeights(into model: Module, from url: URL) throws {
        let file = try SafeTensorsFile.read(url)
        let isTrainingState = file.keys.contains { $0.hasPrefix("model.") } && file.keys.contains { $0 == "step" }
        try model.loadStateDict(file, path: url.path, prefix: isTrainingState ? "model." : "", strict: !isTrainingState)
    }
}
