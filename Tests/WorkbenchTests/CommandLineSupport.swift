import Foundation
import XCTest

/// Runs the built `workbench` executable, as a user would.
struct CommandLine {
    static var packageRoot: URL {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    }

    static var executable: URL {
        // The test bundle sits in the products folder next to the executable (on Linux the bundle is
        // the running executable itself), also when the build folder is not `.build`.
        let bundles = [Bundle.main] + Bundle.allBundles
        for bundle in bundles where bundle.bundlePath.hasSuffix(".xctest") {
            return bundle.bundleURL.deletingLastPathComponent().appendingPathComponent("workbench")
        }
        return packageRoot.appendingPathComponent(".build/debug/workbench")
    }

    struct StaleExecutable: Error, CustomStringConvertible {
        let description: String
    }

    /// The executable must exist and be newer than every source file, or these tests would check
    /// an old build (`swift build --build-tests` builds it; the test target also depends on it).
    static let freshness: Swift.Result<Void, StaleExecutable> = {
        let manager = FileManager.default
        guard let built = (try? manager.attributesOfItem(atPath: executable.path))?[.modificationDate] as? Date else {
            return .failure(StaleExecutable(description: "\(executable.path) is missing; run `swift build --build-tests` first"))
        }
        let sources = packageRoot.appendingPathComponent("Sources")
        let files = manager.enumerator(at: sources, includingPropertiesForKeys: [.contentModificationDateKey])
        while let file = files?.nextObject() as? URL {
            let modified = (try? file.resourceValues(forKeys: [.contentModificationDateKey]))?.contentModificationDate
            if let modified, modified > built {
                return .failure(StaleExecutable(description: "\(executable.path) is older than \(file.path); run `swift build --build-tests` first"))
            }
        }
        return .success(())
    }()

    struct Result {
        var status: Int32
        var output: String
        var error: String
        /// True when the process died of a signal (a trap: SIGILL, SIGSEGV, SIGTRAP…) rather than exiting.
        var crashed = false
    }

    @discardableResult
    static func run(_ arguments: [String], in folder: URL? = nil, environment: [String: String] = [:]) throws -> Result {
        try freshness.get()
        let process = Process()
        process.executableURL = executable
        process.arguments = arguments
        process.currentDirectoryURL = folder ?? packageRoot
        var env = ProcessInfo.processInfo.environment
        for (key, value) in environment { env[key] = value }
        process.environment = env
        let out = Pipe(), err = Pipe()
        process.standardOutput = out
        process.standardError = err
        try process.run()
        let outData = out.fileHandleForReading.readDataToEndOfFile()
        let errData = err.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return Result(status: process.terminationStatus, output: String(decoding: outData, as: UTF8.self),
                      error: String(decoding: errData, as: UTF8.self), crashed: process.terminationReason == .uncaughtSignal)
    }

    static func temporaryFolder() throws -> URL {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("workbench-test-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        return url
    }

    /// The golden fixtures of the layer tests (shared rather than copied twice).
    static func nnFixture(_ name: String) -> URL {
        packageRoot.appendingPathComponent("Tests/NNTests/Fixtures/\(name)")
    }
}
