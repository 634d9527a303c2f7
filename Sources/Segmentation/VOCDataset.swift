import Foundation
import ImageIO

/// A data set problem: names the folder or files and says what to do.
public struct DatasetError: Error, CustomStringConvertible {
    public let message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}

/// The 21 PASCAL VOC classes, index = label value.
public enum VOCClasses {
    public static let names = ["background", "aeroplane", "bicycle", "bird", "boat", "bottle", "bus", "car", "cat", "chair",
                               "cow", "diningtable", "dog", "horse", "motorbike", "person", "pottedplant", "sheep", "sofa",
                               "train", "tvmonitor"]
    /// The label value of the "void" border around objects, ignored by losses and metrics.
    public static let void: UInt8 = 255
}

/// A VOC-layout segmentation data set: `JPEGImages/<id>.jpg`, `SegmentationClass/<id>.png`
/// (palette PNGs whose values are class indices, 255 = void) and
/// `ImageSets/Segmentation/<split>.txt`.
public struct VOCDataset: Sendable {
    public let root: URL
    public let split: String
    public let ids: [String]

    public var count: Int { ids.count }

    /// Opens `split` ("all" lists every PNG in SegmentationClass, as the seed does); every listed id
    /// must have its image and label, or the error names the missing ones.
    public init(root: URL, split: String) throws {
        self.root = root
        self.split = split
        let fm = FileManager.default
        var isFolder: ObjCBool = false
        guard fm.fileExists(atPath: root.path, isDirectory: &isFolder), isFolder.boolValue else {
            throw DatasetError("\(root.path): no such folder; point data.root at an extracted VOC2007 (the folder holding JPEGImages/)")
        }
        let labels = root.appendingPathComponent("SegmentationClass")
        // A common slip: data.root one level too high (the folder that holds VOC2007/, or VOCdevkit/).
        if !fm.fileExists(atPath: root.appendingPathComponent("JPEGImages").path) {
            let inside = ((try? fm.contentsOfDirectory(atPath: root.path)) ?? []).sorted().first { name in
                fm.fileExists(atPath: root.appendingPathComponent(name).appendingPathComponent("JPEGImages").path)
                    || fm.fileExists(atPath: root.appendingPathComponent(name).appendingPathComponent("VOC2007/JPEGImages").path)
            }
            let hint = inside.map { name -> String in
                let direct = root.appendingPathComponent(name)
                let target = fm.fileExists(atPath: direct.appendingPathComponent("JPEGImages").path) ? direct : direct.appendingPathComponent("VOC2007")
                return "; did you mean data.root=\(target.path)?"
            } ?? "; point data.root at the folder that holds JPEGImages/, SegmentationClass/ and ImageSets/"
            throw DatasetError("\(root.path): no JPEGImages/ folder here\(hint)")
        }
        var ids: [String]
        if split == "all" {
            guard let names = try? fm.contentsOfDirectory(atPath: labels.path) else {
                throw DatasetError("\(labels.path): missing; a VOC data set needs SegmentationClass/ with the label PNGs")
            }
            ids = names.filter { $0.hasSuffix(".png") }.map { String($0.dropLast(4)) }.sorted()
        } else {
            let list = root.appendingPathComponent("ImageSets/Segmentation/\(split).txt")
            guard let text = try? String(contentsOf: list, encoding: .utf8) else {
                let available = (try? fm.contentsOfDirectory(atPath: list.deletingLastPathComponent().path))?
                    .filter { $0.hasSuffix(".txt") }.map { String($0.dropLast(4)) }.sorted() ?? []
                throw DatasetError("\(list.path): no such split list (available: \(available.isEmpty ? "none" : available.joined(separator: ", ")); or use \"all\")")
            }
            ids = text.split(whereSeparator: \.isNewline).map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
        }
        guard !ids.isEmpty else { throw DatasetError("\(root.path): split '\(split)' lists no images") }
        var missing: [String] = []
        for id in ids {
            if !fm.fileExists(atPath: root.appendingPathComponent("JPEGImages/\(id).jpg").path) { missing.append("JPEGImages/\(id).jpg") }
            if !fm.fileExists(atPath: labels.appendingPathComponent("\(id).png").path) { missing.append("SegmentationClass/\(id).png") }
        }
        guard missing.isEmpty else {
            let shown = missing.prefix(10).joined(separator: ", ")
            throw DatasetError("\(root.path): split '\(split)' lists ids whose files are missing: \(shown)\(missing.count > 10 ? " and \(missing.count - 10) more" : "")")
        }
        self.ids = ids
    }

    public func imageURL(_ index: Int) -> URL { root.appendingPathComponent("JPEGImages/\(ids[index]).jpg") }
    public func labelURL(_ index: Int) -> URL { root.appendingPathComponent("SegmentationClass/\(ids[index]).png") }

    /// The image as RGB (grayscale and CMYK converted). Pixels come in stored order, ignoring any
    /// EXIF orientation, because label maps are aligned with the stored pixels (as PIL reads them).
    public func image(_ index: Int) throws -> Image { try ImageFile.read(imageURL(index), applyOrientation: false).rgb() }

    /// The label's class indices (palette indices, never colours); sizes must match the image.
    public func labelIndices(_ index: Int, expectedWidth: Int? = nil, expectedHeight: Int? = nil) throws -> Image {
        let label = try PNG.readIndices(labelURL(index))
        if let expectedWidth, let expectedHeight, label.width != expectedWidth || label.height != expectedHeight {
            throw DatasetError("\(labelURL(index).path): label is \(label.width)×\(label.height) but its image is \(expectedWidth)×\(expectedHeight)")
        }
        return label
    }

    /// The label as an RGB colour image (what the seed's `Image.open(png)` + RGB paste gives).
    public func labelColours(_ index: Int) throws -> Image { try PNG.read(labelURL(index)).rgb() }
}
