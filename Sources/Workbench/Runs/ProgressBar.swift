import Foundation

/// A progress line on standard error with rate and ETA (tqdm-like). On a terminal it redraws in
/// place; otherwise (CI, logs) it prints a line at most every 10 seconds.
public final class ProgressBar {
    let label: String
    let total: Int
    let unit: String
    let start: Date
    var lastPrint = Date.distantPast
    let interactive = isatty(STDERR_FILENO) != 0
    /// Units per item, for the rate (e.g. images per step).
    var processed = 0.0

    /// Where counting starts (a resumed run's step), so the rate and ETA cover this process's work only.
    let initial: Int

    /// `started`: when the work began, for a bar made at its first progress report (after the
    /// first batch), so that the rate counts that batch's time too.
    public init(label: String, total: Int, unit: String = "it", initial: Int = 0, started: Date = Date()) {
        self.start = started
        self.label = label
        self.total = total
        self.unit = unit
        self.initial = initial
    }

    /// Shows `done` of `total`, `amount` units processed so far, and extra text.
    public func update(_ done: Int, processed amount: Double? = nil, extra: String = "") {
        processed = amount ?? Double(done)
        let now = Date()
        let finished = done >= total
        guard finished || now.timeIntervalSince(lastPrint) >= (interactive ? 0.2 : 10) else { return }
        lastPrint = now
        let elapsed = now.timeIntervalSince(start)
        let measured = elapsed > 0.5 || (finished && elapsed > 0)
        let rate = measured ? String(format: "%.1f", processed / elapsed) : "-"
        let counted = done - initial
        let eta = finished ? "done in \(ProgressBar.clock(elapsed))"
            : "ETA " + (measured && counted > 0 ? ProgressBar.clock(elapsed / Double(counted) * Double(total - done)) : "-")
        let width = 24
        let filled = total > 0 ? min(width, width * done / total) : 0
        let bar = String(repeating: "█", count: filled) + String(repeating: "·", count: width - filled)
        let text = "\(label) \(bar) \(done)/\(total) \(rate) \(unit)/s \(eta) \(extra)"
        if interactive {
            FileHandle.standardError.write(Data(("\r\u{1B}[K" + text + (finished ? "\n" : "")).utf8))
        } else {
            FileHandle.standardError.write(Data((text + "\n").utf8))
        }
    }

    public static func clock(_ seconds: Double) -> String {
        guard seconds.isFinite else { return "?" }
        let s = Int(seconds.rounded())
        return s >= 3600 ? String(format: "%d:%02d:%02d", s / 3600, s / 60 % 60, s % 60) : String(format: "%d:%02d", s / 60, s % 60)
    }
}
