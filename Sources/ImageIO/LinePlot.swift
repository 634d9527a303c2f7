import Foundation

/// A small line chart rendered to an RGB image: axes, tick labels, a title and one colour per
/// series, so loss curves can be looked at as PNG files without any plotting library.
public struct LinePlot {
    public struct Series {
        public var name: String
        public var points: [(x: Double, y: Double)]
        public init(name: String, points: [(x: Double, y: Double)]) {
            self.name = name
            self.points = points
        }
    }

    public var title: String
    public var xLabel: String
    public var series: [Series]
    /// Plot y on a log10 scale (for losses that fall over decades).
    public var logY = false
    public var width = 640
    public var height = 400

    public init(title: String, xLabel: String, series: [Series], logY: Bool = false) {
        self.title = title
        self.xLabel = xLabel
        self.series = series
        self.logY = logY
    }

    static let colours: [(UInt8, UInt8, UInt8)] = [(31, 119, 180), (255, 127, 14), (44, 160, 44), (214, 39, 40), (148, 103, 189)]

    public func render() -> Image {
        var canvas = Canvas(width: width, height: height)
        // The legend sits above the plot, in rows, so it never covers a curve.
        let perRow = max(1, (width - 80) / 200)
        let legendRows = (series.count + perRow - 1) / perRow
        let left = 80, right = width - 20, top = 40 + 16 * legendRows, bottom = height - 50
        canvas.text(title, x: left, y: 12, scale: 2)
        canvas.text(xLabel, x: (left + right) / 2 - xLabel.count * 4, y: height - 18, scale: 2)
        for (index, line) in series.enumerated() {
            let colour = LinePlot.colours[index % LinePlot.colours.count]
            let x = left + (index % perRow) * 200, y = 32 + (index / perRow) * 16
            canvas.fill(x, y + 3, x + 14, y + 6, colour: colour)
            canvas.text(String(line.name.prefix(22)), x: x + 20, y: y, scale: 2)
        }
        let transform: (Double) -> Double = logY ? { log10(max($0, 1e-12)) } : { $0 }
        let all = series.flatMap(\.points).filter { $0.y.isFinite && $0.x.isFinite }
        canvas.rectangle(left, top, right, bottom, colour: (0, 0, 0))
        guard let first = all.first else { return canvas.image }
        var (xMin, xMax, yMin, yMax) = (first.x, first.x, transform(first.y), transform(first.y))
        for point in all {
            xMin = min(xMin, point.x); xMax = max(xMax, point.x)
            yMin = min(yMin, transform(point.y)); yMax = max(yMax, transform(point.y))
        }
        if xMax == xMin { (xMin, xMax) = (xMin - 1, xMax + 1) }
        if yMax == yMin { (yMin, yMax) = (yMin - (yMin == 0 ? 1 : abs(yMin) * 0.1), yMax + (yMax == 0 ? 1 : abs(yMax) * 0.1)) }
        let pad = (yMax - yMin) * 0.05
        yMin -= pad; yMax += pad
        func px(_ x: Double) -> Int { left + Int(((x - xMin) / (xMax - xMin) * Double(right - left)).rounded()) }
        func py(_ y: Double) -> Int { bottom - Int(((transform(y) - yMin) / (yMax - yMin) * Double(bottom - top)).rounded()) }
        // Ticks at round numbers, labelled with just enough digits to tell them apart; x ticks at
        // whole numbers when x counts steps.
        let integerX = all.allSatisfy { $0.x == $0.x.rounded() }
        for (value, label) in LinePlot.ticks(from: yMin, to: yMax, integer: false) {
            let yPixel = bottom - Int(((value - yMin) / (yMax - yMin) * Double(bottom - top)).rounded())
            canvas.line(left - 4, yPixel, left, yPixel, colour: (0, 0, 0))
            canvas.line(left + 1, yPixel, right - 1, yPixel, colour: (230, 230, 230))
            canvas.text(logY ? LinePlot.format(pow(10, value)) : label, x: 4, y: yPixel - 5, scale: 2)
        }
        for (value, label) in LinePlot.ticks(from: xMin, to: xMax, integer: integerX) {
            let xPixel = px(value)
            canvas.line(xPixel, bottom, xPixel, bottom + 4, colour: (0, 0, 0))
            canvas.text(label, x: xPixel - label.count * 4, y: bottom + 8, scale: 2)
        }
        for (index, line) in series.enumerated() {
            let colour = LinePlot.colours[index % LinePlot.colours.count]
            let points = line.points.filter { $0.y.isFinite }
            for (a, b) in zip(points, points.dropFirst()) {
                canvas.line(px(a.x), py(a.y), px(b.x), py(b.y), colour: colour)
            }
            if points.count == 1 { canvas.rectangle(px(points[0].x) - 2, py(points[0].y) - 2, px(points[0].x) + 2, py(points[0].y) + 2, colour: colour) }
        }
        return canvas.image
    }

    /// About five ticks between `low` and `high` at multiples of 1, 2 or 5 × 10ᵏ (at least 1 when
    /// `integer`), each labelled with the digits its spacing needs.
    static func ticks(from low: Double, to high: Double, integer: Bool) -> [(value: Double, label: String)] {
        guard high > low, (high - low).isFinite else { return [] }
        let raw = (high - low) / 4
        let power = pow(10, floor(log10(raw)))
        var step = [1.0, 2.0, 5.0, 10.0].map { $0 * power }.first { $0 >= raw } ?? 10 * power
        if integer { step = max(step, 1) }
        let decimals = max(0, Int(-floor(log10(step))))
        var values: [Double] = []
        var value = (low / step).rounded(.up) * step
        while value <= high + step * 1e-9 && values.count < 12 {
            values.append(value)
            value += step
        }
        return values.map { value in
            let magnitude = abs(value)
            let label = magnitude != 0 && (magnitude >= 1e6 || decimals > 4)
                ? String(format: "%.\(max(1, min(4, decimals - Int(-floor(log10(magnitude))))))e", value)
                : String(format: "%.\(decimals)f", value == 0 ? 0 : value)
            return (value, label)
        }
    }

    static func format(_ value: Double) -> String {
        let magnitude = abs(value)
        if magnitude != 0 && (magnitude < 0.01 || magnitude >= 100_000) { return String(format: "%.1e", value) }
        if magnitude >= 100 { return String(format: "%.0f", value) }
        return String(format: "%.3g", value)
    }
}

/// Pixel drawing on an RGB image with a 3×5 bitmap font.
struct Canvas {
    var image: Image

    init(width: Int, height: Int) { image = Image(width: width, height: height, channels: 3, fill: 255) }

    mutating func set(_ x: Int, _ y: Int, _ colour: (UInt8, UInt8, UInt8)) {
        guard x >= 0 && y >= 0 && x < image.width && y < image.height else { return }
        image[x, y, 0] = colour.0
        image[x, y, 1] = colour.1
        image[x, y, 2] = colour.2
    }

    /// Bresenham line, two pixels thick.
    mutating func line(_ x0: Int, _ y0: Int, _ x1: Int, _ y1: Int, colour: (UInt8, UInt8, UInt8)) {
        var x = x0, y = y0
        let dx = abs(x1 - x0), dy = -abs(y1 - y0), sx = x0 < x1 ? 1 : -1, sy = y0 < y1 ? 1 : -1
        var error = dx + dy
        while true {
            set(x, y, colour)
            set(x, y + 1, colour)
            if x == x1 && y == y1 { break }
            let e2 = 2 * error
            if e2 >= dy { error += dy; x += sx }
            if e2 <= dx { error += dx; y += sy }
        }
    }

    mutating func rectangle(_ x0: Int, _ y0: Int, _ x1: Int, _ y1: Int, colour: (UInt8, UInt8, UInt8)) {
        for x in x0...x1 { set(x, y0, colour); set(x, y1, colour) }
        for y in y0...y1 { set(x0, y, colour); set(x1, y, colour) }
    }

    mutating func fill(_ x0: Int, _ y0: Int, _ x1: Int, _ y1: Int, colour: (UInt8, UInt8, UInt8)) {
        for y in y0...y1 { for x in x0...x1 { set(x, y, colour) } }
    }

    mutating func text(_ string: String, x: Int, y: Int, scale: Int, colour: (UInt8, UInt8, UInt8) = (0, 0, 0)) {
        var cursor = x
        for character in string.uppercased() {
            if let rows = Canvas.font[character] {
                for (row, bits) in rows.enumerated() {
                    for (column, bit) in bits.enumerated() where bit == "#" {
                        fill(cursor + column * scale, y + row * scale, cursor + column * scale + scale - 1, y + row * scale + scale - 1,
                             colour: colour)
                    }
                }
            }
            cursor += 4 * scale
        }
    }

    static let font: [Character: [String]] = [
        "0": ["###", "#.#", "#.#", "#.#", "###"], "1": [".#.", "##.", ".#.", ".#.", "###"],
        "2": ["###", "..#", "###", "#..", "###"], "3": ["###", "..#", ".##", "..#", "###"],
        "4": ["#.#", "#.#", "###", "..#", "..#"], "5": ["###", "#..", "###", "..#", "###"],
        "6": ["###", "#..", "###", "#.#", "###"], "7": ["###", "..#", ".#.", ".#.", ".#."],
        "8": ["###", "#.#", "###", "#.#", "###"], "9": ["###", "#.#", "###", "..#", "###"],
        "A": [".#.", "#.#", "###", "#.#", "#.#"], "B": ["##.", "#.#", "##.", "#.#", "##."],
        "C": [".##", "#..", "#..", "#..", ".##"], "D": ["##.", "#.#", "#.#", "#.#", "##."],
        "E": ["###", "#..", "##.", "#..", "###"], "F": ["###", "#..", "##.", "#..", "#.."],
        "G": [".##", "#..", "#.#", "#.#", ".##"], "H": ["#.#", "#.#", "###", "#.#", "#.#"],
        "I": ["###", ".#.", ".#.", ".#.", "###"], "J": ["..#", "..#", "..#", "#.#", ".#."],
        "K": ["#.#", "#.#", "##.", "#.#", "#.#"], "L": ["#..", "#..", "#..", "#..", "###"],
        "M": ["#.#", "###", "###", "#.#", "#.#"], "N": ["##.", "#.#", "#.#", "#.#", "#.#"],
        "O": [".#.", "#.#", "#.#", "#.#", ".#."], "P": ["##.", "#.#", "##.", "#..", "#.."],
        "Q": [".#.", "#.#", "#.#", "##.", ".##"], "R": ["##.", "#.#", "##.", "#.#", "#.#"],
        "S": [".##", "#..", ".#.", "..#", "##."], "T": ["###", ".#.", ".#.", ".#.", ".#."],
        "U": ["#.#", "#.#", "#.#", "#.#", "###"], "V": ["#.#", "#.#", "#.#", "#.#", ".#."],
        "W": ["#.#", "#.#", "###", "###", "#.#"], "X": ["#.#", "#.#", ".#.", "#.#", "#.#"],
        "Y": ["#.#", "#.#", ".#.", ".#.", ".#."], "Z": ["###", "..#", ".#.", "#..", "###"],
        ".": ["...", "...", "...", "...", ".#."], "-": ["...", "...", "###", "...", "..."],
        "+": ["...", ".#.", "###", ".#.", "..."], ":": ["...", ".#.", "...", ".#.", "..."],
        "/": ["..#", "..#", ".#.", "#..", "#.."], "(": [".#.", "#..", "#..", "#..", ".#."],
        ")": [".#.", "..#", "..#", "..#", ".#."], "%": ["#.#", "..#", ".#.", "#..", "#.#"],
        "_": ["...", "...", "...", "...", "###"], "=": ["...", "###", "...", "###", "..."],
        ",": ["...", "...", "...", ".#.", "#.."], "[": ["##.", "#..", "#..", "#..", "##."], "]": [".##", "..#", "..#", "..#", ".##"],
    ]
}
