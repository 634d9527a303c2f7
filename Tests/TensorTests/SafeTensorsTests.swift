import Foundation
import Tensor
import XCTest

final class SafeTensorsTests: XCTestCase {
    var folder: URL!

    override func setUpWithError() throws {
        folder = FileManager.default.temporaryDirectory.appendingPathComponent("safetensors-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws { try? FileManager.default.removeItem(at: folder) }

    func testRoundTripIsByteStable() throws {
        var file = SafeTensorsFile()
        file.set("b.weight", Tensor(shape: [2, 2], scalars: [1, 2, 3, 4]))
        file["a.count"] = SafeTensorsEntry(int64s: [7], shape: [])
        file["z.table"] = SafeTensorsEntry(doubles: [0.5, 0.25], shape: [2])
        file.metadata = ["format": "pt"]
        let url = folder.appendingPathComponent("x.safetensors")
        try file.write(to: url)
        let read = try SafeTensorsFile.read(url)
        XCTAssertEqual(read.keys, ["a.count", "b.weight", "z.table"])
        XCTAssertEqual(read["a.count"]?.shape, [])
        XCTAssertEqual(read["a.count"]?.int64s(), [7])
        XCTAssertEqual(try read.tensor("b.weight").scalars, [1, 2, 3, 4])
        XCTAssertEqual(read["z.table"]?.doubles(), [0.5, 0.25])
        XCTAssertEqual(read.metadata["format"], "pt")
        XCTAssertEqual(read.serialized(), try Data(contentsOf: url))
        let headerLength = try Data(contentsOf: url).prefix(8).withUnsafeBytes { $0.load(as: UInt64.self) }
        XCTAssertEqual(headerLength % 8, 0)
    }

    func testTruncatedFileNamesTheFile() throws {
        var file = SafeTensorsFile()
        file.set("w", Tensor(repeating: 1, shape: [64]))
        let url = folder.appendingPathComponent("truncated.safetensors")
        try file.serialized().prefix(100).write(to: url)
        XCTAssertThrowsError(try SafeTensorsFile.read(url)) { error in
            let message = "\(error)"
            XCTAssertTrue(message.contains(url.path), message)
            XCTAssertTrue(message.contains("truncated"), message)
        }
        let tiny = folder.appendingPathComponent("tiny.safetensors")
        try Data([1, 2, 3]).write(to: tiny)
        XCTAssertThrowsError(try SafeTensorsFile.read(tiny)) { XCTAssertTrue("\($0)".contains(tiny.path)) }
        let garbage = folder.appendingPathComponent("garbage.safetensors")
        try Data([8, 0, 0, 0, 0, 0, 0, 0] + Array("not json".utf8)).write(to: garbage)
        XCTAssertThrowsError(try SafeTensorsFile.read(garbage)) { XCTAssertTrue("\($0)".contains("JSON"), "\($0)") }
    }
}
