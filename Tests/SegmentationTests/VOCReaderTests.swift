import Foundation
import ImageIO
import Segmentation
import XCTest

/// Reading a VOC folder written by other tools (Pillow; see scripts/fixtures/make_foreign_voc.py).
final class VOCReaderTests: XCTestCase {
    let fixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Fixtures")
    var root: URL { fixtures.appendingPathComponent("foreign-voc") }
    var reference: URL { fixtures.appendingPathComponent("pillow-keep-same-size") }

    func testPaletteLabelsDecodeToClassIndicesWithVoid() throws {
        let dataset = try VOCDataset(root: root, split: "train")
        XCTAssertEqual(dataset.ids, ["2007_000001", "2007_000002", "2007_000003", "2007_000004"])
        let label = try dataset.labelIndices(0)
        XCTAssertEqual(label.width, 37)
        XCTAssertEqual(label.height, 23)
        XCTAssertEqual(label.channels, 1)
        XCTAssertEqual(label[0, 0, 0], 0, "background")
        XCTAssertEqual(label[10, 8, 0], 1, "aeroplane interior")
        XCTAssertEqual(label[3, 2, 0], 255, "void outline")
        XCTAssertEqual(label[25, 10, 0], 15, "person interior")
        XCTAssertEqual(Set(label.pixels), [0, 1, 15, 255], "indices, never colours")
        // The seed formulation reads the same file as colours.
        let colours = try dataset.labelColours(0)
        XCTAssertEqual([colours[10, 8, 0], colours[10, 8, 1], colours[10, 8, 2]], [128, 0, 0])
        XCTAssertEqual([colours[3, 2, 0], colours[3, 2, 1], colours[3, 2, 2]], [224, 224, 192])
    }

    func testJPEGKinds() throws {
        let dataset = try VOCDataset(root: root, split: "train")
        let rgb = try dataset.image(0)
        let pillow = try PNG.read(reference.appendingPathComponent("image1-decoded.png"))
        XCTAssertEqual(rgb.width, 37)
        let difference = zip(rgb.pixels, pillow.pixels).map { abs(Int($0) - Int($1)) }.max()!
        XCTAssertLessThanOrEqual(difference, 2, "the same libjpeg decode as Pillow")
        let gray = try dataset.image(1)
        XCTAssertEqual(gray.channels, 3, "grayscale JPEGs are read as RGB")
        XCTAssertEqual(gray.width, 20)
        XCTAssertEqual(gray.height, 31)
        XCTAssertTrue(stride(from: 0, to: gray.pixels.count, by: 3).allSatisfy { gray.pixels[$0] == gray.pixels[$0 + 1] })
        let cmyk = try dataset.image(2)
        XCTAssertEqual(cmyk.channels, 3, "CMYK JPEGs are converted to RGB")
        let centre = [cmyk[12, 8, 0], cmyk[12, 8, 1], cmyk[12, 8, 2]].map(Int.init)
        for (value, expected) in zip(centre, [200, 60, 40]) { XCTAssertEqual(Double(value), Double(expected), accuracy: 25, "\(centre)") }
    }

    func testEXIFOrientedJPEGKeepsStoredPixelsToMatchItsLabel() throws {
        let dataset = try VOCDataset(root: root, split: "train")
        let image = try dataset.image(3)
        let label = try dataset.labelIndices(3, expectedWidth: image.width, expectedHeight: image.height)
        XCTAssertEqual([image.width, image.height], [16, 24], "stored order, as PIL (and the seed) read it")
        XCTAssertEqual(label[5, 10, 0], 3)
        // Viewing the same file upright (as predict does for user photos) rotates it.
        let upright = try ImageFile.read(dataset.imageURL(3))
        XCTAssertEqual([upright.width, upright.height], [24, 16])
    }

    func testMissingFilesAreNamed() throws {
        XCTAssertThrowsError(try VOCDataset(root: root, split: "broken")) { error in
            XCTAssertTrue("\(error)".contains("JPEGImages/2007_000009.jpg"), "\(error)")
            XCTAssertTrue("\(error)".contains("SegmentationClass/2007_000009.png"), "\(error)")
        }
        XCTAssertThrowsError(try VOCDataset(root: root, split: "test")) { error in
            XCTAssertTrue("\(error)".contains("available: broken, train, val"), "\(error)")
        }
        XCTAssertThrowsError(try VOCDataset(root: root.appendingPathComponent("nowhere"), split: "all"))
        XCTAssertEqual(try VOCDataset(root: root, split: "all").count, 4, "'all' lists SegmentationClass, as the seed")
    }

    func testKeepSameSizeMatchesPillow() throws {
        let dataset = try VOCDataset(root: root, split: "train")
        let pillowDecode = try PNG.read(reference.appendingPathComponent("image1-decoded.png"))
        for size in [16, 64] {
            let ours = pillowDecode.keepSameSize(size, filter: .bicubic)
            let theirs = try PNG.read(reference.appendingPathComponent("image1-\(size).png"))
            let difference = zip(ours.pixels, theirs.pixels).map { abs(Int($0) - Int($1)) }.max()!
            XCTAssertLessThanOrEqual(difference, 1, "bicubic keep_same_size to \(size)")
        }
        let label = try dataset.labelColours(0).keepSameSize(16, filter: .bicubic)
        let pillowLabel = try PNG.read(reference.appendingPathComponent("label1-16.png"))
        XCTAssertLessThanOrEqual(zip(label.pixels, pillowLabel.pixels).map { abs(Int($0) - Int($1)) }.max()!, 1)
    }

    func testClassLabelsAndLabelPadding() throws {
        var settings = SegmentationSettings(data: SegmentationDataSettings(root: root))
        settings.data.imageSize = 32
        settings.target = .onehot
        for padding in LabelPadding.allCases {
            settings.data.labelPadding = padding
            let sampler = SegmentationSampler(dataset: try VOCDataset(root: root, split: "train"), settings: settings, seed: 0)
            let batch = try sampler.batch([0, 1], epoch: nil)
            XCTAssertEqual(batch.images.shape, [2, 3, 32, 32])
            let labels = batch.labels!
            XCTAssertEqual(labels.shape, [2, 32, 32])
            XCTAssertNil(batch.colours)
            XCTAssertTrue(labels.values.allSatisfy { $0 < 21 || $0 == 255 })
            // The pad below the 37×23 image (rows past 23·32/37) holds the padding label.
            XCTAssertEqual(labels.values[31 * 32 + 5], padding.value, "\(padding)")
            XCTAssertNotEqual(labels.values[0], 255)
        }
    }

    func testLabelBeyondTheClassesIsAnErrorNamingTheFile() throws {
        var settings = SegmentationSettings(data: SegmentationDataSettings(root: root))
        settings.data.imageSize = 32
        settings.target = .onehot
        settings.classCount = 2
        let sampler = SegmentationSampler(dataset: try VOCDataset(root: root, split: "train"), settings: settings, seed: 0)
        XCTAssertThrowsError(try sampler.batch([0, 1], epoch: nil)) { error in
            XCTAssertTrue("\(error)".contains("SegmentationClass/"), "\(error)")
            XCTAssertTrue("\(error)".contains("segmentation.classes is 2"), "\(error)")
        }
    }
}
