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

    /// A matrix with the given counts (row = truth, column = prediction).
    public init(classCount: Int, counts: [Int64]) {
        precondition(counts.count == classCount * classCount, "\(counts.count) counts for \(classCount) classes")
        self.classCount = classCount
        self.counts = counts
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
            let union = truthCount(k) + predictedCount(k) - self[k, k]
            return union == 0 ? nil : Double(self[k, k]) / Double(union)
        }
    }

    /// Mean IoU over the classes that occur (in the labels or the predictions).
    public var meanIoU: Double { ConfusionMatrix.mean(intersectionOverUnion) }

    /// Pixels of class k in the labels (row sums).
    func truthCount(_ k: Int) -> Int64 { (0..<classCount).reduce(Int64(0)) { $0 + self[k, $1] } }
    /// Pixels predicted as class k (column sums).
    func predictedCount(_ k: Int) -> Int64 { (0..<classCount).reduce(Int64(0)) { $0 + self[$1, k] } }

    /// Accuracy per class, TP / (TP + FN) (mmsegmentation's per-class Acc); nil where the class
    /// does not occur in the labels.
    public var classAccuracy: [Double?] {
        (0..<classCount).map { k in
            let truth = truthCount(k)
            return truth == 0 ? nil : Double(self[k, k]) / Double(truth)
        }
    }

    /// Dice (F1) per class, 2TP / (2TP + FP + FN); nil where the class is neither present nor predicted.
    public var dice: [Double?] {
        (0..<classCount).map { k in
            let denominator = truthCount(k) + predictedCount(k)
            return denominator == 0 ? nil : 2 * Double(self[k, k]) / Double(denominator)
        }
    }

    static func mean(_ values: [Double?]) -> Double {
        let present = values.compactMap { $0 }
        return present.isEmpty ? 0 : present.reduce(0, +) / Double(present.count)
    }

    /// Mean class accuracy (mAcc) over the classes that occur in the labels.
    public var meanAccuracy: Double { ConfusionMatrix.mean(classAccuracy) }
    /// Mean Dice (mDice) over the classes that occur or are predicted.
    public var meanDice: Double { ConfusionMatrix.mean(dice) }

    /// IoU of foreground (any class but 0) against background: how well objects are found,
    /// whatever class they are given.
    public var foregroundIoU: Double {
        var truePositive: Int64 = 0, union: Int64 = 0
        for t in 0..<classCount {
            for p in 0..<classCount where t != 0 || p != 0 {
                union += self[t, p]
                if t != 0 && p != 0 { truePositive += self[t, p] }
            }
        }
        return union == 0 ? 0 : Double(truePositive) / Double(union)
    }

    /// Rows divided by their sums (the fraction of each true class predicted as each class).
    public var rowNormalized: [[Double]] {
        (0..<classCount).map { k in
            let truth = truthCount(k)
            return (0..<classCount).map { truth == 0 ? 0 : Double(self[k, $0]) / Double(truth) }
        }
    }
}
