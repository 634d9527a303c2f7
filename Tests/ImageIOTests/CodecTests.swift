import Foundation
import ImageIO
import XCTest

final class CodecTests: XCTestCase {
    var folder: URL!

    override func setUpWithError() throws {
        folder = FileManager.default.temporaryDirectory.appendingPathComponent("imageio-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws { try? FileManager.default.removeItem(at: folder) }

    func gradient(width: Int, height: Int, channels: Int) -> Image {
        var image = Image(width: width, height: height, channels: channels)
        for y in 0..<height {
            for x in 0..<width {
                for c in 0..<channels { image[x, y, c] = UInt8((x * 7 + y * 13 + c * 50) % 256) }
            }
        }
        return image
    }

    func testPNGRoundTrips() throws {
        for channels in 1...4 {
            let image = gradient(width: 13, height: 7, channels: channels)
            XCTAssertEqual(try PNG.decode(PNG.encode(image), path: "memory"), image)
        }
    }

    func testPalettePNGDecodesIndicesNotColours() throws {
        var labels = Image(width: 5, height: 3, channels: 1)
        labels.pixels = [0, 1, 2, 15, 20, 255, 255, 0, 7, 7, 3, 3, 3, 0, 0]
        let data = try PNG.encode(labels, palette: Palette.voc)
        let indices = try PNG.decodeIndices(data, path: "memory")
        XCTAssertEqual(indices, labels, "palette indices, including void 255, come back unchanged")
        let colours = try PNG.decode(data, path: "memory")
        XCTAssertEqual(colours.channels, 3)
        XCTAssertEqual([colours[5, 0, 0], colours[5, 0, 1], colours[5, 0, 2]], [224, 224, 192], "void is drawn (224,224,192)")
        XCTAssertEqual([colours[1, 0, 0], colours[1, 0, 1], colours[1, 0, 2]], [128, 0, 0], "aeroplane is (128,0,0)")
    }

    func testCorruptPNGGivesErrorNamingTheFile() throws {
        let data = try PNG.encode(gradient(width: 32, height: 32, channels: 3))
        let truncated = folder.appendingPathComponent("truncated.png")
        try data.prefix(data.count / 2).write(to: truncated)
        XCTAssertThrowsError(try PNG.read(truncated)) { error in
            XCTAssertTrue("\(error)".contains(truncated.path), "\(error)")
            XCTAssertTrue("\(error)".contains("PNG"), "\(error)")
        }
        var flipped = data
        flipped[flipped.count - 30] ^= 0xFF
        let damaged = folder.appendingPathComponent("damaged.png")
        try flipped.write(to: damaged)
        XCTAssertThrowsError(try PNG.read(damaged)) { XCTAssertTrue("\($0)".contains(damaged.path), "\($0)") }
        let missing = folder.appendingPathComponent("missing.png")
        XCTAssertThrowsError(try ImageFile.read(missing)) { XCTAssertTrue("\($0)".contains("no such file"), "\($0)") }
    }

    func testJPEGRoundTripAndGrayscale() throws {
        var image = Image(width: 16, height: 16, channels: 3)
        for y in 0..<16 { for x in 0..<16 { for c in 0..<3 { image[x, y, c] = UInt8(x * 7 + y * 5 + c * 30) } } }
        let decoded = try JPEG.decode(JPEG.encode(image, quality: 95), path: "memory")
        XCTAssertEqual(decoded.channels, 3)
        XCTAssertEqual(decoded.width, 16)
        let error = zip(decoded.pixels, image.pixels).map { abs(Int($0) - Int($1)) }.max()!
        XCTAssertLessThan(error, 12)
        let gray = try JPEG.decode(JPEG.encode(gradient(width: 9, height: 5, channels: 1)), path: "memory")
        XCTAssertEqual(gray.channels, 1)
        XCTAssertEqual(gray.rgb().channels, 3)
    }

    func testCMYKJPEGBecomesRGB() throws {
        // Adobe CMYK stores inverted ink: 255 everywhere means no ink, i.e. white.
        let white = Image(width: 8, height: 8, channels: 4, fill: 255)
        let decoded = try JPEG.decode(JPEG.encode(white), path: "memory")
        XCTAssertEqual(decoded.channels, 3)
        XCTAssertGreaterThan(decoded.pixels.min()!, 245)
    }

    func testCorruptJPEGGivesErrorNamingTheFile() throws {
        let data = try JPEG.encode(gradient(width: 64, height: 64, channels: 3))
        let truncated = folder.appendingPathComponent("truncated.jpg")
        try data.prefix(data.count / 2).write(to: truncated)
        XCTAssertThrowsError(try JPEG.read(truncated)) { error in
            XCTAssertTrue("\(error)".contains(truncated.path), "\(error)")
            XCTAssertTrue("\(error)".contains("JPEG"), "\(error)")
        }
        let garbage = folder.appendingPathComponent("garbage.jpg")
        try Data([0xFF, 0xD8, 0xFF, 0x00, 1, 2, 3, 4, 5]).write(to: garbage)
        XCTAssertThrowsError(try ImageFile.read(garbage)) { XCTAssertTrue("\($0)".contains(garbage.path), "\($0)") }
    }

    /// An APP1 Exif segment holding only the orientation tag.
    func exifSegment(orientation: UInt16) -> [UInt8] {
        var tiff: [UInt8] = Array("MM".utf8) + [0, 42, 0, 0, 0, 8]   // big endian, IFD at 8
        tiff += [0, 1]                                               // one entry
        tiff += [0x01, 0x12, 0, 3, 0, 0, 0, 1, UInt8(orientation >> 8), UInt8(orientation & 0xFF), 0, 0]
        tiff += [0, 0, 0, 0]
        let payload = Array("Exif".utf8) + [0, 0] + tiff
        let length = payload.count + 2
        return [0xFF, 0xE1, UInt8(length >> 8), UInt8(length & 0xFF)] + payload
    }

    func testEXIFOrientationIsApplied() throws {
        // A 4×2 image with a bright left column; orientation 6 means "rotate 90° clockwise to view".
        var image = Image(width: 4, height: 2, channels: 1, fill: 0)
        image[0, 0, 0] = 255
        image[0, 1, 0] = 255
        let plain = try JPEG.encode(image, quality: 100)
        let tagged = Data(plain.prefix(2) + exifSegment(orientation: 6) + plain.dropFirst(2))
        let upright = try JPEG.decode(tagged, path: "memory")
        XCTAssertEqual(upright.width, 2)
        XCTAssertEqual(upright.height, 4)
        XCTAssertGreaterThan(upright[0, 0, 0], 200, "the left column becomes the top row")
        XCTAssertGreaterThan(upright[1, 0, 0], 200)
        XCTAssertLessThan(upright[0, 3, 0], 60)
    }

    func testResizeAndKeepSameSize() {
        let image = gradient(width: 10, height: 6, channels: 3)
        let square = image.keepSameSize(8, filter: .bicubic)
        XCTAssertEqual(square.width, 8)
        XCTAssertEqual(square.height, 8)
        XCTAssertEqual(Array(square.pixels[(7 * 8 * 3)...].prefix(3)), [0, 0, 0], "the pad below the image is black")
        var labels = Image(width: 4, height: 4, channels: 1)
        labels.pixels = [1, 1, 2, 2, 1, 1, 2, 2, 255, 255, 3, 3, 255, 255, 3, 3]
        let nearest = labels.resized(width: 2, height: 2, filter: .nearest)
        XCTAssertEqual(nearest.pixels, [1, 2, 255, 3], "nearest keeps label values")
        let constant = Image(width: 7, height: 5, channels: 1, fill: 77)
        XCTAssertTrue(constant.resized(width: 3, height: 11, filter: .bicubic).pixels.allSatisfy { $0 == 77 })
    }
}
