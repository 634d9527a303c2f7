import Foundation
import XCTest

/// `workbench bench` runs on tiny experiments of both heads (a smoke test: no timing asserts).
final class BenchCommandTests: XCTestCase {
    func testBenchSmoke() throws {
        let folder = try CommandLine.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let cases = [
            ("Experiments/voc2007-seed.yaml", ["model.base_channels=2", "data.image_size=32", "train.batch_size=2"], false),
            ("Experiments/ddpm-mnist-quick.yaml", ["model.base_channels=4", "data.image_size=8", "train.batch_size=2",
                                                   "diffusion.timesteps=10", "sample.steps=5", "model.channel_multipliers=[1,2]", "model.groups=2"], true),
        ]
        for (experiment, overrides, diffusion) in cases {
            let result = try CommandLine.run(["bench", experiment, "--steps", "1", "--warmup", "0", "--json", "--profile",
                                              "--sampling-images", "1", "--gemm-size", "256"] + overrides.flatMap { ["--set", $0] })
            XCTAssertEqual(result.status, 0, result.error)
            let report = try JSONSerialization.jsonObject(with: Data(result.output.utf8)) as! [String: Any]
            for key in ["train_ms_per_step", "train_ms_per_image", "infer_ms_per_image", "conv_gflops", "sgemm_gflops", "peak_rss_mb",
                        "conv_to_sgemm_ratio", "gemm_gflops", "conv_to_gemm_ratio"] {
                XCTAssertNotNil(report[key] as? Double, "\(experiment): \(key)")
            }
            XCTAssertEqual(report["gemm_size"] as? Double, 256)
            XCTAssertFalse((report["profile"] as? [Any] ?? []).isEmpty, "profile rows")
            XCTAssertFalse((report["inference_profile"] as? [Any] ?? []).isEmpty, "inference profile rows")
            if diffusion {
                XCTAssertNotNil(report["sample_ddpm1000_images_per_second"] as? Double)
                XCTAssertNotNil(report["sample_ddim50_images_per_second"] as? Double)
            }
        }
    }

    /// A reference size that would allocate gigabytes (or is no size) is an error before any work.
    func testGemmSizeOutOfRangeIsAClearError() throws {
        for size in ["0", "100000"] {
            let result = try CommandLine.run(["bench", "Experiments/voc2007-seed.yaml", "--gemm-size", size, "--steps", "1"])
            XCTAssertEqual(result.status, 1)
            XCTAssertTrue(result.error.contains("--gemm-size \(size)") && result.error.contains("16 to 8192"), result.error)
        }
    }
}
