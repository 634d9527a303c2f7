import Foundation

/// A labelled heat map of a square matrix with values in [0, 1] (a row-normalised confusion
/// matrix): white to dark blue, each cell's value as a percentage, row labels on the left and
/// column labels as indices along the top (with the legend "true class ↓ / predicted →").
public struct MatrixPlot {
    public var title: String
    public var labels: [String]
    public var values: [[Double]]

    public init(title: String, labels: [String], values: [[Double]]) {
        self.title = title
        self.labels = labels
        self.values = values
    }

    public func render() -> Image {
        let n = values.count
        let cell = n <= 12 ? 36 : (n <= 24 ? 28 : 16)
        let labelWidth = ((labels.map(\.count).max() ?? 4) + 4) * 8 + 16
        let left = labelWidth, top = 70
        let width = max(left + n * cell + 20, title.count * 8 + 20), height = top + n * cell + 30
        var canvas = Canvas(width: width, height: height)
        canvas.text(title, x: 10, y: 10, scale: 2)
        canvas.text("rows: true class   columns: predicted class (index)", x: 10, y: 34, scale: 1)
        for (j, _) in values.enumerated() {
            let label = "\(j)"
            canvas.text(label, x: left + j * cell + cell / 2 - label.count * 4 + 1, y: top - 16, scale: 2)
        }
        for (i, row) in values.enumerated() {
            let name = i < labels.count ? "\(i) \(labels[i])" : "\(i)"
            canvas.text(name, x: 8, y: top + i * cell + cell / 2 - 5, scale: 2)
            for (j, raw) in row.enumerated() {
                let value = raw.isFinite ? min(max(raw, 0), 1) : 0
                let colour = (UInt8(255 - 247 * value), UInt8(255 - 207 * value), UInt8(255 - 148 * value))
                let x0 = left + j * cell, y0 = top + i * cell
                canvas.fill(x0, y0, x0 + cell - 1, y0 + cell - 1, colour: colour)
                if cell >= 28 && value >= 0.005 {
                    let text = String(Int((value * 100).rounded()))
                    canvas.text(text, x: x0 + cell / 2 - text.count * 4 + 1, y: y0 + cell / 2 - 5, scale: 2,
                                colour: value > 0.5 ? (255, 255, 255) : (0, 0, 0))
                }
            }
        }
        canvas.rectangle(left - 1, top - 1, left + n * cell, top + n * cell, colour: (0, 0, 0))
        return canvas.image
    }
}
