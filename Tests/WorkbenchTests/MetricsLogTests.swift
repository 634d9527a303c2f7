import Foundation
import Workbench
import XCTest

/// metrics.jsonl is read back with Foundation's JSONDecoder: every double exactly, values in the
/// order written, non-finite values (written as strings) restored.
final class MetricsLogTests: XCTestCase {
    func testRecordsRoundTripBitForBit() throws {
        let folder = try CommandLine.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        var generator = SystemRandomNumberGenerator()
        var written: [MetricsRecord] = []
        let log = try MetricsLog(folder: folder)
        for step in 0..<2000 {
            // Random doubles over a wide range of magnitudes, names out of alphabetical order.
            let values = ["zloss", "lr", "mIoU", "a_metric"].map { name in
                (name: name, value: Double(bitPattern: UInt64.random(in: 0x3000_0000_0000_0000...0x4F00_0000_0000_0000, using: &generator))
                    * (Bool.random(using: &generator) ? 1 : -1))
            }
            let record = MetricsRecord(kind: step % 2 == 0 ? "train" : "eval", step: step, epoch: step / 10, values: values)
            written.append(record)
            try log.append(record)
        }
        let special = MetricsRecord(kind: "final_eval", step: 2000, epoch: 200, values: [("loss", .infinity), ("bpd", -.infinity), ("mse", 0.1)])
        try log.append(special)
        let read = try MetricsLog(folder: folder).records
        XCTAssertEqual(read.count, written.count + 1)
        XCTAssertEqual(Array(read.prefix(written.count)), written)
        XCTAssertEqual(read.last, special)
        let other = folder.appendingPathComponent("nan")
        try FileManager.default.createDirectory(at: other, withIntermediateDirectories: true)
        try MetricsLog(folder: other).append(MetricsRecord(kind: "train", step: 1, epoch: 0, values: [("loss", .nan)]))
        XCTAssertTrue(try MetricsLog(folder: other).records.first?.values.first?.value.isNaN == true)
    }
}
