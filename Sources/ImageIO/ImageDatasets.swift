import CImageCodecs
import Foundation
import Tensor

/// A data set of images, as CHW floats in [-1, 1] on the 8-bit grid, with a class per image when
/// the data has labels (MNIST's label files, one sub-folder per class, CIFAR-10's records).
public protocol ImageSource: Sendable {
    var count: Int { get }
    var channels: Int { get }
    var imageSize: Int { get }
    /// Writes image `index` (C·S·S floats in [-1, 1]) at `target`.
    func write(_ index: Int, into target: UnsafeMutablePointer<Float>) throws
    /// The class of each image (0..<classNames.count), or nil for unlabelled data.
    var labels: [Int]? { get }
    /// The names of the classes, in label order (nil for unlabelled data).
    var classNames: [String]? { get }
}

extension ImageSource {
    /// Stops unless every image has a class below `classCount` (`model` names what needs them).
    public func checkLabels(classCount: Int, root: URL, model: String) throws {
        guard let labels else {
            throw DataSourceError("\(root.path): \(model) needs labelled images (data.labels: format for MNIST and CIFAR-10, subfolders for a folder), but these have none")
        }
        if let bad = labels.firstIndex(where: { $0 >= classCount }) {
            let name = classNames.map { " ('\($0[labels[bad]])')" } ?? ""
            throw DataSourceError("\(root.path): image \(bad) has class \(labels[bad])\(name), outside model.num_classes \(classCount) (classes 0…\(classCount - 1)); raise model.num_classes to at least \(classNames?.count ?? labels.max()! + 1)")
        }
    }

    public var labels: [Int]? { nil }
    public var classNames: [String]? { nil }

    /// A batch [B, C, S, S]; `flip` mirrors the images whose entry is true.
    public func batch(_ indices: [Int], flip: [Bool]? = nil) throws -> Tensor {
        let plane = imageSize * imageSize, size = channels * plane
        var tensor = Tensor(uninitializedShape: [indices.count, channels, imageSize, imageSize])
        let p = tensor.mutablePointer()
        for (slot, index) in indices.enumerated() {
            try write(index, into: p + slot * size)
            if flip?[slot] == true {
                for row in 0..<(channels * imageSize) {
                    let line = p + slot * size + row * imageSize
                    for x in 0..<(imageSize / 2) { line.swapAt(x, imageSize - 1 - x) }
                }
            }
        }
        return tensor
    }
}

extension UnsafeMutablePointer where Pointee == Float {
    func swapAt(_ a: Int, _ b: Int) { let t = self[a]; self[a] = self[b]; self[b] = t }
}

/// Reads a gzip file, or a raw one, into memory; with `prefix`, at most its first `prefix` bytes
/// (after decompression), so a header can be checked before the rest takes memory.
public func readMaybeGzip(_ url: URL, prefix: Int? = nil) throws -> Data {
    guard let data = try? Data(contentsOf: url, options: .mappedIfSafe) else { throw DataSourceError("\(url.path): cannot read the file") }
    return try maybeGunzip(data, path: url.path, prefix: prefix)
}

/// `data` itself, or its gzip content when it starts with the gzip magic; `prefix` as above.
public func maybeGunzip(_ data: Data, path: String, prefix: Int? = nil) throws -> Data {
    guard data.starts(with: [0x1F, 0x8B]) else { return prefix.map { data.prefix($0) } ?? data }
    var buffer = wb_buffer()
    var message = [CChar](repeating: 0, count: 256)
    let limit = prefix.map { max($0, 1) } ?? 0
    let status = data.withUnsafeBytes { wb_gunzip($0.bindMemory(to: UInt8.self).baseAddress, $0.count, limit, &buffer, &message, message.count) }
    guard status == 0 else { throw DataSourceError("\(path): \(String(cString: message))") }
    let result = Data(bytes: buffer.data, count: buffer.size)
    wb_free(buffer.data)
    return result
}

public struct DataSourceError: Error, CustomStringConvertible {
    public let message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}

/// MNIST in its IDX format (gzip or raw): `train-images-idx3-ubyte[.gz]` and
/// `t10k-images-idx3-ubyte[.gz]` in one folder. Digits are 28×28; they are padded to 32×32 with
/// background (as is usual for 32×32 models) and resized when another size is asked for.
public struct MNISTSource: ImageSource {
    public let pixels: [UInt8]
    public let count: Int
    /// The digits, from `<split>-labels-idx1-ubyte[.gz]` when asked for.
    public private(set) var labels: [Int]?
    public var classNames: [String]? { labels == nil ? nil : (0...9).map(String.init) }
    public let imageSize: Int
    public var channels: Int { 1 }
    let rows: Int, columns: Int

    /// `split` is "train" or "test"; `limit` keeps the first images only; with `labels` the digit
    /// of each image is read from the split's label file.
    public init(folder: URL, split: String, imageSize: Int, limit: Int? = nil, labels: Bool = false) throws {
        let prefix = split == "train" ? "train" : "t10k"
        func find(_ kind: String) throws -> URL {
            let candidates = ["\(prefix)-\(kind)-idx\(kind == "images" ? 3 : 1)-ubyte.gz", "\(prefix)-\(kind)-idx\(kind == "images" ? 3 : 1)-ubyte"]
            guard let name = candidates.first(where: { FileManager.default.fileExists(atPath: folder.appendingPathComponent($0).path) }) else {
                throw DataSourceError("\(folder.path): no \(candidates[0]) (or raw \(candidates[1])); point data.root at a folder with the MNIST IDX files")
            }
            return folder.appendingPathComponent(name)
        }
        let url = try find("images")
        try self.init(path: url.path, imageSize: imageSize, limit: limit, split: split) { try readMaybeGzip(url, prefix: $0) }
        if labels {
            let labelURL = try find("labels")
            self.labels = try MNISTSource.readLabels(path: labelURL.path, count: count, classes: 10) { try readMaybeGzip(labelURL, prefix: $0) }
        }
    }

    /// Reads the first `count` labels of an IDX1 file (each below `classes`) through `read(prefix)`.
    public static func readLabels(path: String, count: Int, classes: Int, read: (Int) throws -> Data) throws -> [Int] {
        let header = try read(8)
        guard header.count >= 8 else { throw DataSourceError("\(path): too short for an IDX header (truncated?)") }
        let bytes = Array(header)
        let magic = bytes[0..<4].reduce(0) { $0 << 8 | Int($1) }, total = bytes[4..<8].reduce(0) { $0 << 8 | Int($1) }
        guard magic == 0x0000_0801 else { throw DataSourceError("\(path): not an IDX1 label file (magic \(String(magic, radix: 16)))") }
        guard total >= count else {
            throw DataSourceError("\(path): holds \(total) labels for \(count) images; the label file must match the image file")
        }
        let data = Array(try read(8 + count))
        guard data.count >= 8 + count else { throw DataSourceError("\(path): holds \(data.count - 8) labels, its header promises \(total) (truncated?)") }
        let labels = data[8..<(8 + count)].map(Int.init)
        if let bad = labels.firstIndex(where: { $0 >= classes }) {
            throw DataSourceError("\(path): label \(labels[bad]) of image \(bad) is not a digit 0…\(classes - 1)")
        }
        return labels
    }

    /// Reads an IDX3 image file through `read(prefix)` (its first `prefix` bytes, gzip undone);
    /// `path` names it in errors.
    public init(path: String, imageSize: Int, limit: Int? = nil, split: String = "train", read: (Int) throws -> Data) throws {
        let url = URL(fileURLWithPath: path)
        // The header first: the sizes it declares are checked before the pixels take memory.
        let header = try read(16)
        guard header.count >= 16 else { throw DataSourceError("\(url.path): too short for an IDX header (truncated?)") }
        func word(_ offset: Int) -> Int { header[header.startIndex + offset..<header.startIndex + offset + 4].reduce(0) { $0 << 8 | Int($1) } }
        guard word(0) == 0x0000_0803 else { throw DataSourceError("\(url.path): not an IDX3 image file (magic \(String(word(0), radix: 16)))") }
        let total = word(4), rows = word(8), columns = word(12)
        guard total > 0 else { throw DataSourceError("\(url.path): the header declares 0 images; this split has nothing to \(split == "train" ? "train on" : "evaluate")") }
        guard (1...4096).contains(rows), (1...4096).contains(columns) else {
            throw DataSourceError("\(url.path): the header declares \(rows)×\(columns) images; MNIST-like IDX files hold images of at most 4096×4096")
        }
        let used = min(total, limit ?? total)
        // rows, columns ≤ 4096 and used < 2^32, so this product cannot overflow Int.
        let needed = 16 + used * rows * columns
        let budget = Int(min(ProcessInfo.processInfo.physicalMemory / 2, UInt64(Int.max)))
        guard needed <= budget else {
            throw DataSourceError("\(url.path): \(used) images of \(rows)×\(columns) need \(needed >> 20) MB, more than half of this machine's memory (\(budget >> 20) MB); set data.limit to use fewer")
        }
        let data = try read(needed)
        guard data.count >= needed else {
            throw DataSourceError("\(url.path): holds \(data.count - 16) pixel bytes, its header promises \(total * rows * columns) (truncated?)")
        }
        count = used
        pixels = Array(data[(data.startIndex + 16)..<(data.startIndex + needed)])
        self.rows = rows
        self.columns = columns
        self.imageSize = imageSize
    }

    public func write(_ index: Int, into target: UnsafeMutablePointer<Float>) throws {
        var image = Image(width: columns, height: rows, channels: 1,
                          pixels: Array(pixels[(index * rows * columns)..<((index + 1) * rows * columns)]))
        // Found by the MNIST fuzzer: a 2×32 image is as wide as a 32 model wants but not as tall.
        if imageSize != columns || imageSize != rows {
            let side = max(32, max(rows, columns))
            var padded = Image(width: side, height: side, channels: 1)
            padded.paste(image, x: (side - columns) / 2, y: (side - rows) / 2)
            image = padded.resized(width: imageSize, height: imageSize, filter: .bilinear)
        }
        for i in 0..<(imageSize * imageSize) { target[i] = Float(image.pixels[i]) / 127.5 - 1 }
    }
}

/// A folder of PNG/JPEG images (any sizes; centre-cropped to a square and resized), read as gray
/// or RGB. VOC's `JPEGImages/` works as such a folder.
public struct ImageFolderSource: ImageSource {
    public let files: [URL]
    public let imageSize: Int
    public let channels: Int
    public var count: Int { files.count }
    public var labels: [Int]?
    public var classNames: [String]?

    static func imageNames(in folder: URL) -> [String] {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: folder.path)) ?? []
        return names.filter { ["png", "jpg", "jpeg"].contains(($0 as NSString).pathExtension.lowercased()) }.sorted()
    }

    /// One sub-folder per class (class names = folder names, sorted); every sub-folder must hold images.
    public init(classFolders folder: URL, imageSize: Int, channels: Int) throws {
        let entries = ((try? FileManager.default.contentsOfDirectory(atPath: folder.path)) ?? []).sorted()
        let classes = entries.filter { name in
            var isFolder: ObjCBool = false
            return !name.hasPrefix(".") && FileManager.default.fileExists(atPath: folder.appendingPathComponent(name).path, isDirectory: &isFolder) && isFolder.boolValue
        }
        guard !classes.isEmpty else {
            throw DataSourceError("\(folder.path): no class sub-folders; with data.labels: subfolders put each class's images in a folder named after it")
        }
        var files: [URL] = [], labels: [Int] = []
        for (label, name) in classes.enumerated() {
            let images = ImageFolderSource.imageNames(in: folder.appendingPathComponent(name))
            guard !images.isEmpty else {
                throw DataSourceError("\(folder.appendingPathComponent(name).path): the class folder '\(name)' holds no PNG or JPEG images; add some or remove the folder")
            }
            files += images.map { folder.appendingPathComponent(name).appendingPathComponent($0) }
            labels += Array(repeating: label, count: images.count)
        }
        self.files = files
        self.labels = labels
        classNames = classes
        self.imageSize = imageSize
        self.channels = channels
    }

    public init(folder: URL, imageSize: Int, channels: Int, limit: Int? = nil) throws {
        let images = ImageFolderSource.imageNames(in: folder)
        guard !images.isEmpty else { throw DataSourceError("\(folder.path): no PNG or JPEG images found") }
        files = Array(images.prefix(limit ?? images.count)).map { folder.appendingPathComponent($0) }
        self.imageSize = imageSize
        self.channels = channels
    }

    public func write(_ index: Int, into target: UnsafeMutablePointer<Float>) throws {
        var image = try ImageFile.read(files[index])
        image = channels == 1 ? image.gray() : image.rgb()
        let side = min(image.width, image.height)
        image = image.cropped(x: (image.width - side) / 2, y: (image.height - side) / 2, width: side, height: side)
            .resized(width: imageSize, height: imageSize, filter: .bicubic)
        let plane = imageSize * imageSize
        for i in 0..<plane {
            for c in 0..<channels { target[c * plane + i] = Float(image.pixels[i * channels + c]) / 127.5 - 1 }
        }
    }
}

/// CIFAR-10's binary version: `data_batch_1.bin` … `data_batch_5.bin` (training) and
/// `test_batch.bin`, each a run of 3073-byte records (label, then 32×32 red, green, blue planes),
/// with the class names from `batches.meta.txt` when it is there.
public struct CIFAR10Source: ImageSource {
    public static let recordSize = 1 + 3 * 32 * 32
    public let records: [UInt8]
    public let count: Int
    public let imageSize: Int
    public let channels: Int
    public let labels: [Int]?
    public let classNames: [String]?

    public init(folder: URL, split: String, imageSize: Int, channels: Int = 3, limit: Int? = nil) throws {
        let names = split == "train" ? (1...5).map { "data_batch_\($0).bin" } : ["test_batch.bin"]
        let present = names.filter { FileManager.default.fileExists(atPath: folder.appendingPathComponent($0).path) }
        guard !present.isEmpty else {
            throw DataSourceError("\(folder.path): no \(names[0]); point data.root at the folder of CIFAR-10's binary version (cifar-10-batches-bin)")
        }
        var records: [UInt8] = []
        for name in present {
            let url = folder.appendingPathComponent(name)
            guard let data = try? Data(contentsOf: url) else { throw DataSourceError("\(url.path): cannot read the file") }
            guard data.count > 0, data.count % CIFAR10Source.recordSize == 0 else {
                throw DataSourceError("\(url.path): \(data.count) bytes is not a whole number of 3073-byte CIFAR-10 records (truncated, or not the binary version?)")
            }
            records += data
            if let limit, records.count >= limit * CIFAR10Source.recordSize { break }
        }
        let total = records.count / CIFAR10Source.recordSize
        count = min(total, limit ?? total)
        self.records = Array(records.prefix(count * CIFAR10Source.recordSize))
        var labels: [Int] = []
        for index in 0..<count {
            let label = Int(self.records[index * CIFAR10Source.recordSize])
            guard label < 10 else {
                throw DataSourceError("\(folder.appendingPathComponent(present[0]).path): record \(index) has label \(label); CIFAR-10 labels are 0…9")
            }
            labels.append(label)
        }
        self.labels = labels
        let meta = (try? String(contentsOf: folder.appendingPathComponent("batches.meta.txt"), encoding: .utf8))?
            .split(whereSeparator: \.isNewline).map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
        classNames = meta?.count == 10 ? meta : (0...9).map { "class \($0)" }
        self.imageSize = imageSize
        self.channels = channels
    }

    public func write(_ index: Int, into target: UnsafeMutablePointer<Float>) throws {
        let base = index * CIFAR10Source.recordSize + 1, plane = 32 * 32
        var image = Image(width: 32, height: 32, channels: 3)
        for i in 0..<plane {
            for c in 0..<3 { image.pixels[i * 3 + c] = records[base + c * plane + i] }
        }
        if channels == 1 { image = image.gray() }
        if imageSize != 32 { image = image.resized(width: imageSize, height: imageSize, filter: .bicubic) }
        let size = imageSize * imageSize
        for i in 0..<size {
            for c in 0..<channels { target[c * size + i] = Float(image.pixels[i * channels + c]) / 127.5 - 1 }
        }
    }
}

/// Where the training images come from.
public enum ImageSourceKind: String, CaseIterable, Sendable {
    /// A folder with MNIST's IDX files (gzip or raw).
    case mnist
    /// A folder of PNG/JPEG images.
    case folder
    /// A VOC folder: its `JPEGImages/` as unconditional images.
    case voc
    /// CIFAR-10's binary batches (`data_batch_*.bin`, `test_batch.bin`), with labels.
    case cifar10
}

/// Where the class of each image comes from.
public enum ImageLabelKind: String, CaseIterable, Sendable {
    /// No labels (unconditional data).
    case none
    /// The format's own labels: MNIST's label files, CIFAR-10's records.
    case format
    /// An image folder with one sub-folder per class.
    case subfolders
}

/// Where a head's images come from (the diffusion head and the classifier): the folder, its format,
/// the size the images are brought to, and where their classes come from.
public struct ImageDataSettings: Sendable, Equatable {
    public var root: URL
    public var format = ImageSourceKind.mnist
    public var imageSize = 32
    public var channels = 1
    /// Random horizontal flips (off for digits).
    public var flip = false
    /// Use only the first N training images.
    public var limit: Int?
    public var labels = ImageLabelKind.none
    public var prefetchBatches = 2

    public init(root: URL) { self.root = root }

    /// The training or test images. MNIST has its own test split; folders are split 95/5 by order.
    public func source(split: String) throws -> ImageSource {
        let limit = split == "train" ? self.limit : nil
        switch format {
        case .mnist:
            return try MNISTSource(folder: root, split: split, imageSize: imageSize, limit: limit, labels: labels != .none)
        case .cifar10:
            return try CIFAR10Source(folder: root, split: split, imageSize: imageSize, channels: channels, limit: limit)
        case .folder, .voc:
            let folder = format == .voc ? root.appendingPathComponent("JPEGImages") : root
            let all = labels == .subfolders
                ? try ImageFolderSource(classFolders: folder, imageSize: imageSize, channels: channels)
                : try ImageFolderSource(folder: folder, imageSize: imageSize, channels: channels)
            // The last 5 % by order is the test split; with class sub-folders (ordered by class) every
            // 20th image instead, so that each class keeps its share.
            let testCount = max(1, all.count / 20)
            let isTest: (Int) -> Bool = labels == .subfolders
                ? { $0 % 20 == 19 || (all.count < 20 && $0 == all.count - 1) } : { $0 >= all.count - testCount }
            let chosen = all.files.indices.filter { (split == "train") != isTest($0) }
            let kept = split == "train" ? Array(chosen.prefix(limit ?? Int.max)) : chosen
            var source = ImageFolderSource(files: kept.map { all.files[$0] }, imageSize: imageSize, channels: channels)
            source.labels = all.labels.map { labels in kept.map { labels[$0] } }
            source.classNames = all.classNames
            return source
        }
    }
}

extension ImageFolderSource {
    init(files: [URL], imageSize: Int, channels: Int) {
        self.files = files
        self.imageSize = imageSize
        self.channels = channels
    }
}

extension ImageSource {
    /// Image `index` as 8-bit pixels (the sources' values lie on the 8-bit grid).
    public func image(_ index: Int) throws -> Image {
        let plane = imageSize * imageSize
        var floats = [Float](repeating: 0, count: channels * plane)
        try floats.withUnsafeMutableBufferPointer { try write(index, into: $0.baseAddress!) }
        var image = Image(width: imageSize, height: imageSize, channels: channels)
        for i in 0..<plane {
            for c in 0..<channels { image.pixels[i * channels + c] = UInt8(max(0, min(255, ((floats[c * plane + i] + 1) * 127.5).rounded()))) }
        }
        return image
    }
}
