import Foundation
import Tensor

/// safetensors parsing, then reading every entry's values the way checkpoints are loaded.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzSafeTensors(_ start: UnsafeRawPointer, _ count: Int) -> CInt {
    guard let file = try? SafeTensorsFile.parse(Data(bytes: start, count: count), path: "fuzz.safetensors") else { return 0 }
    for key in file.keys {
        let entry = file[key]!
        precondition(entry.floats().count == entry.elementCount, "values disagree with the shape")
        _ = try? file.tensor(key)
    }
    return 0
}
