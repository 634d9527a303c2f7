import Foundation
import ImageIO
import Segmentation
import XCTest

final class MetricsTests: XCTestCase {
    /// A 3-class example computed by hand:
    /// truth     0 0 1 1 2 255      predicted 0 1 1 1 0 2
    /// matrix (rows truth, columns predicted): [[1,1,0],[0,2,0],[1,0,0]]; the void pixel is ignored.
    /// IoU0 = 1/(2+2-1) = 1/3, IoU1 = 2/(2+3-2) = 2/3, IoU2 = 0/(1+0-0) = 0; mIoU = 1/3; accuracy 3/5.
    func testConfusionMatrixByHand() {
        var matrix = ConfusionMatrix(classCount: 3)
        matrix.add(predicted: [0, 1, 1, 1, 0, 2], truth: [0, 0, 1, 1, 2, 255])
        XCTAssertEqual(matrix.counts, [1, 1, 0, 0, 2, 0, 1, 0, 0])
        XCTAssertEqual(matrix.total, 5)
        XCTAssertEqual(matrix.pixelAccuracy, 0.6, accuracy: 1e-12)
        let iou = matrix.intersectionOverUnion
        XCTAssertEqual(iou[0]!, 1.0 / 3, accuracy: 1e-12)
        XCTAssertEqual(iou[1]!, 2.0 / 3, accuracy: 1e-12)
        XCTAssertEqual(iou[2]!, 0, accuracy: 1e-12)
        XCTAssertEqual(matrix.meanIoU, 1.0 / 3, accuracy: 1e-12)
        // Acc_k = TP/(row sum): 1/2, 2/2, 0/1 → mAcc 1/2. Dice_k = 2TP/(row + column): 2/4, 4/5, 0/1 → mDice 1.3/3.
        XCTAssertEqual(matrix.classAccuracy.map { $0! }, [0.5, 1, 0])
        XCTAssertEqual(matrix.meanAccuracy, 0.5, accuracy: 1e-12)
        XCTAssertEqual(matrix.dice[0]!, 0.5, accuracy: 1e-12)
        XCTAssertEqual(matrix.dice[1]!, 0.8, accuracy: 1e-12)
        XCTAssertEqual(matrix.meanDice, 1.3 / 3, accuracy: 1e-12)
        // Foreground (classes 1, 2) against background: TP 2 (1→1), union 2 + FP 1 (0→1) + FN 1 (2→0) = 4.
        XCTAssertEqual(matrix.foregroundIoU, 0.5, accuracy: 1e-12)
        XCTAssertEqual(matrix.rowNormalized[0], [0.5, 0.5, 0])
    }

    func testAbsentClassesDoNotCount() {
        var matrix = ConfusionMatrix(classCount: 21)
        matrix.add(predicted: [0, 0, 5, 5], truth: [0, 0, 5, 5])
        XCTAssertEqual(matrix.intersectionOverUnion.compactMap { $0 }.count, 2)
        XCTAssertEqual(matrix.meanIoU, 1)
    }

    func testUndoKeepSameSize() {
        // A 4×2 image becomes a 4×4 square (bottom half padding); at S = 8 the class map's
        // top half maps back onto the image.
        var map = Image(width: 8, height: 8, channels: 1)
        for y in 0..<8 { for x in 0..<8 { map[x, y, 0] = y < 4 ? UInt8(x / 2) : 9 } }
        let back = SegmentationPredictor.undoKeepSameSize(map, width: 4, height: 2)
        XCTAssertEqual(back.width, 4)
        XCTAssertEqual(back.height, 2)
        XCTAssertEqual(back.pixels, [0, 1, 2, 3, 0, 1, 2, 3])
    }

    func testSyntheticVOCIsAValidVOCFolder() throws {
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("synth-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: root) }
        try SyntheticVOC.generate(root: root, count: 10, seed: 1)
        let train = try VOCDataset(root: root, split: "train"), val = try VOCDataset(root: root, split: "val")
        XCTAssertEqual(train.count, 8)
        XCTAssertEqual(val.count, 2)
        XCTAssertEqual(try VOCDataset(root: root, split: "trainval").count, 10)
        var values = Set<UInt8>()
        var sizes = Set<[Int]>()
        for index in 0..<train.count {
            let image = try train.image(index), label = try train.labelIndices(index, expectedWidth: image.width, expectedHeight: image.height)
            values.formUnion(label.pixels)
            sizes.insert([image.width, image.height])
            let data = try Data(contentsOf: train.labelURL(index))
            XCTAssertTrue(try PNG.isPalette(data), "labels are palette PNGs")
        }
        XCTAssertTrue(values.contains(255), "void borders")
        XCTAssertTrue(values.contains(0))
        XCTAssertGreaterThan(values.subtracting([0, 255]).count, 1, "several classes")
        XCTAssertGreaterThan(sizes.count, 4, "varied sizes")
        // Same seed, same bytes.
        let again = FileManager.default.temporaryDirectory.appendingPathComponent("synth-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: again) }
        try SyntheticVOC.generate(root: again, count: 10, seed: 1)
        XCTAssertEqual(try Data(contentsOf: train.imageURL(3)), try Data(contentsOf: again.appendingPathComponent("JPEGImages/\(train.ids[3]).jpg")))
    }
}
