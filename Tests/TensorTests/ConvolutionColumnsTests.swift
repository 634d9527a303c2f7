import CKernelsEmulated
import Foundation
@testable import Tensor
import XCTest

/// The GEMMs' packing of a convolution's columns straight from the image (wb_bf16_pack_b_columns,
/// and the float32 AVX-512 kernel's pack_b_columns) against packing the written-out im2col matrix:
/// the same bytes, for the emulated kernels on every CPU and for the real ones where the CPU has them.
final class ConvolutionColumnsTests: XCTestCase {
    /// Zero and reflect padding, strides, 1- to 5-wide kernels, planes narrower than a panel (its
    /// columns span several output rows: the element-wise path), as wide (32: one run per row) and
    /// wider, odd inner sizes (an odd last pair), and 5 to 40 output channels (edge tiles).
    static let shapes: [(kernel: Int, stride: Int, padding: Int, mode: PaddingMode, inChannels: Int, outChannels: Int, height: Int, width: Int)] = [
        (3, 1, 1, .zeros, 3, 5, 32, 32), (3, 1, 1, .reflect, 4, 8, 16, 16), (3, 2, 1, .zeros, 5, 7, 9, 13),
        (5, 1, 2, .reflect, 3, 6, 7, 11), (3, 1, 0, .zeros, 6, 9, 8, 6), (1, 1, 1, .zeros, 7, 6, 5, 4),
        (3, 1, 1, .zeros, 2, 40, 4, 4), (3, 2, 1, .reflect, 3, 12, 33, 70), (3, 1, 1, .zeros, 11, 33, 20, 37),
    ]

    typealias PackedCount = (Int32, Int32) -> Int
    typealias PackA = (Int32, Int32, Int32, UnsafePointer<Float>?, Int32, UnsafeMutablePointer<Float>?) -> Void
    typealias Packed = (Int32, Int32, Int32, Float, UnsafePointer<Float>?, Int32, UnsafePointer<Float>?, Int32, Float,
                        UnsafeMutablePointer<Float>?, Int32) -> Void
    typealias PackedColumns = (Int32, Int32, Int32, UnsafePointer<Float>?, UnsafePointer<wb_convolution_columns>?, Int32,
                               UnsafeMutablePointer<Float>?, Int32) -> Void

    func testEmulatedKernelsReadColumnsToTheWrittenOutBytes() {
        check("emulated float32", emu_wb_gemm_packed_a_count, emu_wb_gemm_pack_a, emu_wb_gemm_packed, emu_wb_gemm_packed_columns)
        check("emulated vdpbf16ps", emu_wb_gemm_bf16_packed_a_count, emu_wb_gemm_bf16_pack_a, emu_wb_gemm_bf16_packed,
              emu_wb_gemm_bf16_packed_columns)
        check("emulated AMX", emu_wb_gemm_amx_packed_a_count, emu_wb_gemm_amx_pack_a, emu_wb_gemm_amx_packed,
              emu_wb_gemm_amx_packed_columns)
    }

    func testHardwareKernelsReadColumnsToTheWrittenOutBytes() throws {
        try XCTSkipUnless(BLAS.avx512Available, "needs AVX-512")
        check("float32", wb_gemm_packed_a_count, wb_gemm_pack_a, wb_gemm_packed, wb_gemm_packed_columns)
        try XCTSkipUnless(BLAS.bf16Available, "needs AVX512_BF16")
        check("vdpbf16ps", wb_gemm_bf16_packed_a_count, wb_gemm_bf16_pack_a, wb_gemm_bf16_packed, wb_gemm_bf16_packed_columns)
        try XCTSkipUnless(BLAS.amxAvailable, "needs AMX")
        check("AMX", wb_gemm_amx_packed_a_count, wb_gemm_amx_pack_a, wb_gemm_amx_packed, wb_gemm_amx_packed_columns)
    }

    /// C from the written-out matrix (Conv2dKernel.im2col) and from the image, whole and in two
    /// column blocks of whole panels (threads split C's columns so).
    func check(_ name: String, _ count: PackedCount, _ packA: PackA, _ packed: Packed, _ packedColumns: PackedColumns) {
        let random = RandomGenerator(seed: 31, purpose: "convolution columns")
        for (kernel, stride, padding, mode, c, o, h, w) in Self.shapes {
            let x = random.normal([1, c, h, w]), weight = random.normal([o, c, kernel, kernel])
            let g = Conv2dGeometry(input: x.shape, weight: weight.shape, stride: stride, padding: padding, paddingMode: mode)
            let (k, n) = (g.columnRows, g.columnCount)
            let rows = g.rowSources(), cols = g.columnSources()
            var matrix = [Float](repeating: .nan, count: k * n)
            matrix.withUnsafeMutableBufferPointer {
                Conv2dKernel.im2col(x.pointer, $0.baseAddress!, g, rows: rows, cols: cols, band: 0..<g.outHeight, parallel: false)
            }
            var panels = [Float](repeating: .nan, count: count(Int32(o), Int32(k)))
            packA(0, Int32(o), Int32(k), weight.pointer, Int32(k), &panels)
            var expected = [Float](repeating: .nan, count: o * n)
            packed(Int32(o), Int32(n), Int32(k), 1, panels, 0, matrix, Int32(n), 0, &expected, Int32(n))
            let rowTable = rows.map { Int32($0) }, columnTable = cols.map { Int32($0) }
            var whole = [Float](repeating: .nan, count: o * n), split = [Float](repeating: .nan, count: o * n)
            rowTable.withUnsafeBufferPointer { rowTable in
                columnTable.withUnsafeBufferPointer { columnTable in
                    var columns = wb_convolution_columns(
                        image: x.pointer, row_sources: rowTable.baseAddress, column_sources: columnTable.baseAddress,
                        panel_taps: nil, height: Int32(h), width: Int32(w), kernel_height: Int32(kernel), kernel_width: Int32(kernel),
                        out_height: Int32(g.outHeight), out_width: Int32(g.outWidth))
                    var taps = [wb_panel_tap](repeating: wb_panel_tap(), count: wb_convolution_panel_taps_count(&columns))
                    wb_convolution_panel_taps(&columns, &taps)
                    taps.withUnsafeBufferPointer { taps in
                        columns.panel_taps = taps.baseAddress
                        packedColumns(Int32(o), Int32(n), Int32(k), panels, &columns, 0, &whole, Int32(n))
                        let cut = min(n, 64)
                        split.withUnsafeMutableBufferPointer { c in
                            packedColumns(Int32(o), Int32(cut), Int32(k), panels, &columns, 0, c.baseAddress, Int32(n))
                            packedColumns(Int32(o), Int32(n - cut), Int32(k), panels, &columns, Int32(cut), c.baseAddress! + cut,
                                          Int32(n))
                        }
                    }
                }
            }
            let label = "\(name): kernel \(kernel) stride \(stride) padding \(padding) \(mode) \(c)→\(o) \(h)×\(w)"
            XCTAssertFalse(expected.contains { $0.isNaN }, label)
            XCTAssertEqual(whole.map(\.bitPattern), expected.map(\.bitPattern), label)
            XCTAssertEqual(split.map(\.bitPattern), expected.map(\.bitPattern), label + " in two column blocks")
        }
    }

    /// The forward convolution reads columns in place where it can, to the bytes of its column-buffer
    /// path, on every AVX-512 kernel this CPU has (images split across two threads as well).
    func testForwardGivesTheColumnBufferBytes() throws {
        try XCTSkipUnless(BLAS.backend == .avx512, "needs the AVX-512 GEMM")
        let random = RandomGenerator(seed: 32, purpose: "convolution columns")
        let savedThreads = Parallel.threadCount
        defer { Parallel.threadCount = savedThreads; Conv2dKernel.readsColumnsInPlace = true }
        let kernels: [BLAS.BF16Kernel?] = [nil] + BF16GemmTests.hardwareBF16Kernels  // nil: float32
        for kernel in kernels {
            for (size, stride, padding, mode, c, o, h, w) in Self.shapes {
                let x = random.normal([3, c, h, w]), weight = random.normal([o, c, size, size]), bias = random.normal([o])
                func forward(inPlace: Bool, threads: Int) -> Tensor {
                    Conv2dKernel.readsColumnsInPlace = inPlace
                    Parallel.threadCount = threads
                    let convolve = {
                        Conv2dKernel.forward(input: x, weight: weight, bias: bias, stride: stride, padding: padding, paddingMode: mode)
                    }
                    return kernel.map { BF16GemmTests.withBF16Kernel($0, convolve) } ?? convolve()
                }
                let expected = forward(inPlace: false, threads: 1).scalars.map(\.bitPattern)
                let label = "\(kernel.map(\.rawValue) ?? "float32") kernel \(size) stride \(stride) padding \(padding) \(mode) \(c)→\(o) \(h)×\(w)"
                XCTAssertEqual(forward(inPlace: true, threads: 1).scalars.map(\.bitPattern), expected, label)
                XCTAssertEqual(forward(inPlace: true, threads: 2).scalars.map(\.bitPattern), expected, label + ", 2 threads")
            }
        }
    }
}
