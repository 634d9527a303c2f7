import Foundation
import XCTest

/// Every command's help page shows examples a user can copy, and `--version` says whether this
/// machine can train data-parallel.
final class HelpTests: XCTestCase {
    func testEveryCommandHasExamples() throws {
        let commands = [["train"], ["sweep"], ["eval"], ["predict"], ["sample"], ["restore"], ["eval-samples"], ["forward"], ["bench"], ["data", "synth-voc"],
                        ["config", "show"], ["config", "check"], ["runs", "list"], ["runs", "compare"], ["reproduce"]]
        for command in commands {
            let help = try CommandLine.run(command + ["--help"])
            XCTAssertEqual(help.status, 0, "\(command): \(help.error)")
            XCTAssertTrue(help.output.contains("Examples:"), "\(command.joined(separator: " ")) --help has no examples")
            XCTAssertTrue(help.output.contains("workbench " + command.joined(separator: " ")), "\(command): examples do not use the command")
        }
        let version = try CommandLine.run(["--version"])
        XCTAssertTrue(version.output.contains("data-parallel: "), version.output)
        XCTAssertTrue(version.output.contains("matrix products: ") && version.output.contains("bf16"), version.output)
        let portable = try CommandLine.run(["--version"], environment: ["WORKBENCH_AVX512": "0", "WORKBENCH_GEMM": "openblas"])
        XCTAssertTrue(portable.output.contains("OpenBLAS") && portable.output.contains("bf16 not available"), portable.output)
    }
}
