import CKernels
import Foundation

/// Where a convolution's im2col columns read in the image, for products that read them in place
/// (`wb_convolution_columns`): the input row and column of every kernel offset and output position,
/// and each 32-column panel's read positions. They depend only on the image size, the kernel and
/// the padding, not on the batch or the channels, so they are made once per geometry; remaking
/// them in every call took a few per cent of a DDPM sampling step.
final class ConvolutionColumns: @unchecked Sendable {
    private let rowSources: UnsafeMutableBufferPointer<Int32>
    private let columnSources: UnsafeMutableBufferPointer<Int32>
    private let taps: UnsafeMutableBufferPointer<wb_panel_tap>
    private let geometry: Conv2dGeometry

    private init(_ g: Conv2dGeometry) {
        geometry = g
        rowSources = .allocate(capacity: g.kernelHeight * g.outHeight)
        _ = rowSources.initialize(from: g.rowSources().map { Int32($0) })
        columnSources = .allocate(capacity: g.kernelWidth * g.outWidth)
        _ = columnSources.initialize(from: g.columnSources().map { Int32($0) })
        var columns = Self.columns(g, rowSources, columnSources, taps: nil, image: nil)
        taps = .allocate(capacity: wb_convolution_panel_taps_count(&columns))
        taps.initialize(repeating: wb_panel_tap())
        wb_convolution_panel_taps(&columns, taps.baseAddress)
    }

    deinit {
        rowSources.deallocate()
        columnSources.deallocate()
        taps.deallocate()
    }

    /// The columns of one image of this geometry (valid while this object lives).
    func columns(of image: UnsafePointer<Float>) -> wb_convolution_columns {
        Self.columns(geometry, rowSources, columnSources, taps: taps.baseAddress, image: image)
    }

    private static func columns(_ g: Conv2dGeometry, _ rows: UnsafeMutableBufferPointer<Int32>,
                                _ columns: UnsafeMutableBufferPointer<Int32>, taps: UnsafePointer<wb_panel_tap>?,
                                image: UnsafePointer<Float>?) -> wb_convolution_columns {
        wb_convolution_columns(
            image: image, row_sources: rows.baseAddress, column_sources: columns.baseAddress, panel_taps: taps,
            height: Int32(g.inHeight), width: Int32(g.inWidth), kernel_height: Int32(g.kernelHeight),
            kernel_width: Int32(g.kernelWidth), out_height: Int32(g.outHeight), out_width: Int32(g.outWidth))
    }

    private nonisolated(unsafe) static var made: [Conv2dGeometry: ConvolutionColumns] = [:]
    private static let lock = NSLock()

    /// The tables for `g`'s images (at most 64 geometries are kept; a network has a few dozen).
    static func of(_ g: Conv2dGeometry) -> ConvolutionColumns {
        var key = g
        (key.batch, key.inChannels, key.outChannels) = (0, 0, 0)
        lock.lock()
        defer { lock.unlock() }
        if let tables = made[key] { return tables }
        if made.count >= 64 { made = [:] }
        let tables = ConvolutionColumns(key)
        made[key] = tables
        return tables
    }
}
