import Foundation

/// A confusion matrix over `classCount` classes: rows are true classes, columns predictions.
/// Void (255) and out-of-range label pixels are ignored.
public struct ConfusionMatrix: Equatable, Sendable {
    public let classCount: Int
    public private(set) var counts: [Int64]

    public init(classCount: Int) {
        self.classCount = classCount
        counts = Array(repeating: 0, count: classCount * classCount)
    }

    public subscript(truth: Int, predicted: Int) -> Int64 { counts[truth * classCount + predicted] }

    /// Adds one image's pixels (equal sizes, one channel each).
    public mutating func add(predicted: [UInt8], truth: [UInt8]) {
        precondition(predicted.count == truth.count, "prediction and label sizes differ")
        for (p, t) in zip(predicted, truth) where Int(t) < classCount {
            counts[Int(t) * classCount + min(Int(p), classCount - 1)] += 1
        }
    }

    public mutating func merge(_ other: ConfusionMatrix) {
        for i in counts.indices { counts[i] += other.counts[i] }
    }

    public var total: Int64 { counts.reduce(0, +) }

    /// Correct pixels over all counted pixels.
    public var pixelAccuracy: Double {
        let correct = (0..<classCount).reduce(Int64(0)) { $0 + self[$1, $1] }
        return total == 0 ? 0 : Double(correct) / Double(total)
    }

    /// IoU per class: TP / (TP + FP + FN); nil where the class is neither present nor predicted.
    public var intersectionOverUnion: [Double?] {
        (0..<classCount).map { k in
            let truth = (0..<classCount).reduce(Int64(0)) { $0 + self[k, $1] }
            let predicted = (0..<classCount).reduce(Int64(0)) { $0 + self[$1, k] }
            let union = truth + predicted - self[k, k]
            return union == 0 ? nil : Double(self[k, k]) / Double(union)
        }
    }

    /// Mean IoU over the classes that occur (in the labels or the predictions).
    public var meanIoU: Double {
        let present = intersectionOverUnion.compactMap { $0 }
        return present.isEmpty ? 0 : present.reduce(0, +) / Double(present.count)
    }
}
