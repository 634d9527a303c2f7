import Foundation
import Workbench

/// The experiment reader: YAML text → a typed, validated experiment (data folders not checked),
/// and its resolved form must read back to itself.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzExperiment(_ start: UnsafeRawPointer, _ count: Int) -> CInt {
    guard let text = String(data: Data(bytes: start, count: count), encoding: .utf8) else { return 0 }
    let source = URL(fileURLWithPath: "/fuzz/experiment.yaml")
    guard let reader = try? ConfigReader(yaml: text, file: source.path),
          let experiment = try? Experiment.decode(reader, source: source, checkData: false) else { return 0 }
    let again = try! ConfigReader(yaml: experiment.resolvedYAML, file: source.path)
    let reread = try! Experiment.decode(again, source: source, checkData: false)
    precondition(reread.resolvedYAML == experiment.resolvedYAML, "the resolved config does not read back to itself")
    return 0
}
