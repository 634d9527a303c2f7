import Foundation
import ImageIO
import Tensor

/// Writes a synthetic data set in the exact VOC layout, with content a U-Net can learn: discs
/// (class 1, aeroplane), boxes (class 8, cat) and triangles (class 15, person), each with a
/// class-typical but jittered colour and texture, on textured backgrounds; a void band (255) of
/// 2 pixels lines every object boundary, as in VOC's annotations. Image sizes vary (portrait and
/// landscape, odd sizes included).
public enum SyntheticVOC {
    /// How hard the data set is. The defaults are the quick experiment's set (three classes told
    /// apart by colour, large objects); `classByShape` with more classes and small objects makes a
    /// set where a model must learn *which* class an object is, not only where objects are.
    public struct Options: Sendable, Equatable {
        /// Object classes (label values 1…classes when `classByShape`; at most `shapes.count`).
        public var classes = 3
        /// Objects per image: 1…maxObjects.
        public var maxObjects = 3
        /// Object size range as a fraction of the image's shorter side.
        public var minSize = 0.2
        public var maxSize = 0.45
        /// The class is decided by the shape alone, and every object gets a random colour.
        public var classByShape = false
        public init() {}

        /// Nil when the options can make a data set, else what is wrong.
        public var problem: String? {
            if classByShape && !(1...SyntheticVOC.shapes.count).contains(classes) {
                return "--classes must be 1…\(SyntheticVOC.shapes.count) with --by-shape (one shape per class)"
            }
            if !classByShape && classes != SyntheticVOC.classes.count {
                return "--classes other than \(SyntheticVOC.classes.count) needs --by-shape"
            }
            if maxObjects < 1 { return "--objects must be at least 1" }
            if !(minSize > 0 && minSize <= maxSize && maxSize <= 0.5) { return "sizes must satisfy 0 < min-size ≤ max-size ≤ 0.5" }
            return nil
        }
    }

    /// Shape names of the class-by-shape mode, in class order (class k + 1 is shape k).
    public static let shapes = ["disc", "square", "wide bar", "tall bar", "triangle", "ring", "plus", "diamond",
                                "frame", "cross", "half disc", "L"]

    /// Whether (dx, dy) from the centre lies in shape `kind` of radius `size`, rotated by `spin` (triangles only).
    static func inside(shape kind: Int, dx: Double, dy: Double, size: Double, spin: Double) -> Bool {
        let (ax, ay) = (abs(dx), abs(dy))
        switch kind {
        case 0: return dx * dx + dy * dy <= size * size
        case 1: return ax <= size * 0.8 && ay <= size * 0.8
        case 2: return ax <= size && ay <= size * 0.35
        case 3: return ax <= size * 0.35 && ay <= size
        case 4:
            return (0..<3).allSatisfy { k in
                let normal = spin + Double(k) * 2 * .pi / 3
                return dx * cos(normal) + dy * sin(normal) <= size * 0.5
            }
        case 5: let r = (dx * dx + dy * dy).squareRoot(); return r <= size && r >= size * 0.55
        case 6: return (ax <= size && ay <= size * 0.3) || (ax <= size * 0.3 && ay <= size)
        case 7: return ax + ay <= size
        case 8: return max(ax, ay) <= size * 0.9 && max(ax, ay) >= size * 0.55
        case 9: return abs(dx - dy) <= size * 0.3 * 1.414 && ax <= size * 0.8 && ay <= size * 0.8
            || abs(dx + dy) <= size * 0.3 * 1.414 && ax <= size * 0.8 && ay <= size * 0.8
        case 10: return dx * dx + dy * dy <= size * size && dy <= 0
        default: return (dx >= -size * 0.8 && dx <= -size * 0.3 && ay <= size * 0.8) || (dy >= size * 0.3 && dy <= size * 0.8 && ax <= size * 0.8)
        }
    }

    /// (label value, base colour) of the synthetic classes.
    public static let classes: [(label: UInt8, colour: (Double, Double, Double))] = [
        (1, (200, 60, 50)), (8, (60, 170, 70)), (15, (60, 90, 200)),
    ]

    /// Generates `count` images into `root` (JPEGImages/, SegmentationClass/, ImageSets/Segmentation/
    /// train.txt (80%), val.txt (20%), trainval.txt).
    public static func generate(root: URL, count: Int, seed: UInt64, options: Options = Options(), minSide: Int = 72,
                                maxSide: Int = 160) throws {
        if let problem = options.problem { throw DatasetError("synthetic VOC: \(problem)") }
        let fm = FileManager.default
        for folder in ["JPEGImages", "SegmentationClass", "ImageSets/Segmentation"] {
            try fm.createDirectory(at: root.appendingPathComponent(folder), withIntermediateDirectories: true)
        }
        let ids = (0..<count).map { String(format: "2007_%06d", $0 + 1) }
        var failure: Error?
        let lock = NSLock()
        Parallel.forEach(count) { index in
            do {
                let random = RandomGenerator(seed: seed, purpose: "synth-voc/\(index)")
                let (image, label) = makeSample(random: random, options: options, minSide: minSide, maxSide: maxSide)
                try JPEG.write(image, to: root.appendingPathComponent("JPEGImages/\(ids[index]).jpg"), quality: 92)
                try PNG.write(label, to: root.appendingPathComponent("SegmentationClass/\(ids[index]).png"), palette: Palette.voc)
            } catch {
                lock.lock(); failure = failure ?? error; lock.unlock()
            }
        }
        if let failure { throw failure }
        let trainCount = max(1, Int((Double(count) * 0.8).rounded()))
        let lists = ["train": Array(ids.prefix(trainCount)), "val": Array(ids.dropFirst(trainCount)), "trainval": ids]
        for (name, members) in lists {
            try AtomicFile.write(Data((members.joined(separator: "\n") + "\n").utf8),
                                 to: root.appendingPathComponent("ImageSets/Segmentation/\(name).txt"))
        }
    }

    static func makeSample(random: RandomGenerator, options: Options, minSide: Int, maxSide: Int) -> (Image, Image) {
        func uniform(_ low: Double, _ high: Double) -> Double { low + (high - low) * random.nextDouble() }
        let width = minSide + random.nextInt(below: maxSide - minSide + 1)
        let height = minSide + random.nextInt(below: maxSide - minSide + 1)
        var image = Image(width: width, height: height, channels: 3)
        var label = Image(width: width, height: height, channels: 1)
        // Background: a gradient between two muted colours plus pixel noise.
        let a = (uniform(40, 200), uniform(40, 200), uniform(40, 200)), b = (uniform(40, 200), uniform(40, 200), uniform(40, 200))
        let noise = random.normal([width * height * 3], std: 12)
        let angle = uniform(0, 2 * .pi)
        for y in 0..<height {
            for x in 0..<width {
                let t = 0.5 + 0.5 * (cos(angle) * (Double(x) / Double(width) - 0.5) + sin(angle) * (Double(y) / Double(height) - 0.5))
                let base = [a.0 + (b.0 - a.0) * t, a.1 + (b.1 - a.1) * t, a.2 + (b.2 - a.2) * t]
                for c in 0..<3 {
                    image[x, y, c] = UInt8(clamping: Int((base[c] + Double(noise[flat: (y * width + x) * 3 + c])).rounded()))
                }
            }
        }
        // One to three objects, painted back to front.
        let objects = 1 + random.nextInt(below: options.maxObjects)
        for _ in 0..<objects {
            // The default draws exactly what the first version drew (the same data for the same seed).
            let kind = random.nextInt(below: options.classByShape ? options.classes : classes.count)
            let value = options.classByShape ? UInt8(kind + 1) : classes[kind].label
            let colour = options.classByShape ? (uniform(30, 225), uniform(30, 225), uniform(30, 225)) : classes[kind].colour
            let shape = options.classByShape ? kind : [0, 1, 4][kind]
            let size = uniform(options.minSize, options.maxSize) * Double(min(width, height))
            let cx = uniform(size * 0.6, Double(width) - size * 0.6), cy = uniform(size * 0.6, Double(height) - size * 0.6)
            let jitter = (uniform(-35, 35), uniform(-35, 35), uniform(-35, 35))
            let tone = [colour.0 + jitter.0, colour.1 + jitter.1, colour.2 + jitter.2]
            let spin = uniform(0, 2 * .pi)
            for y in 0..<height {
                for x in 0..<width {
                    let dx = Double(x) - cx, dy = Double(y) - cy
                    // The first version's box was 0.9 × 0.7 of the size; kept for its data.
                    let inside = !options.classByShape && kind == 1
                        ? abs(dx) <= size * 0.9 && abs(dy) <= size * 0.7
                        : SyntheticVOC.inside(shape: shape, dx: dx, dy: dy, size: size, spin: spin)
                    guard inside else { continue }
                    label[x, y, 0] = value
                    let stripe = 12 * sin(Double(x + y) * 0.5)
                    for c in 0..<3 {
                        image[x, y, c] = UInt8(clamping: Int((tone[c] + stripe + Double(noise[flat: (y * width + x) * 3 + c])).rounded()))
                    }
                }
            }
        }
        // Void band: pixels within 1 pixel of a different class become 255 (both sides of the edge).
        var withVoid = label
        for y in 0..<height {
            for x in 0..<width {
                let own = label[x, y, 0]
                var edge = false
                for (ox, oy) in [(-1, 0), (1, 0), (0, -1), (0, 1)] {
                    let nx = x + ox, ny = y + oy
                    if nx >= 0 && ny >= 0 && nx < width && ny < height && label[nx, ny, 0] != own { edge = true }
                }
                if edge { withVoid[x, y, 0] = VOCClasses.void }
            }
        }
        return (image, withVoid)
    }
}
