import CMPI
import Foundation
import Tensor

/// A `ProcessGroup` over Open MPI's MPI_COMM_WORLD. Collectives are non-blocking calls polled to
/// completion, so that a rank that died or hangs turns into a clear error after `timeout` seconds
/// instead of a silent hang (`mpirun` itself also ends the job when a rank exits abnormally).
public final class MPIProcessGroup: ProcessGroup {
    public let rank: Int
    public let size: Int
    public private(set) var hosts: [String] = []
    public let library: String
    /// Seconds a collective inside a training step may wait for the other ranks.
    public let timeout: Double
    public private(set) var exchangeSeconds = 0.0
    public private(set) var exchangedBytes = 0

    /// The group of the processes `mpirun` started, or nil when this process was not started by
    /// `mpirun` with more than one rank. Throws when MPI is asked for but cannot start.
    public static func fromEnvironment() throws -> MPIProcessGroup? {
        let environment = ProcessInfo.processInfo.environment
        guard let world = environment["OMPI_COMM_WORLD_SIZE"] ?? environment["PMI_SIZE"], let ranks = Int(world), ranks > 1 else {
            return nil
        }
        var timeout = 120.0
        if let text = environment["WORKBENCH_MPI_TIMEOUT"] {
            guard let value = Double(text), value > 0, value.isFinite else {
                throw DataParallelError("WORKBENCH_MPI_TIMEOUT=\(text): expected a positive number of seconds")
            }
            timeout = value
        }
        return try MPIProcessGroup(timeout: timeout)
    }

    init(timeout: Double) throws {
        var error = [CChar](repeating: 0, count: 512)
        if wb_mpi_load(&error, error.count) != 0 {
            throw DataParallelError("started by mpirun, but \(String(cString: error))")
        }
        var rank: Int32 = 0, size: Int32 = 0
        guard wb_mpi_init(&rank, &size) == 0 else { throw DataParallelError("MPI_Init_thread failed; check the mpirun command line") }
        self.rank = Int(rank)
        self.size = Int(size)
        self.timeout = timeout
        var text = [CChar](repeating: 0, count: 512)
        _ = wb_mpi_library_version(&text, text.count)
        library = String(cString: text).split(separator: ",").first.map { $0.trimmingCharacters(in: .whitespacesAndNewlines) } ?? "MPI"
        var name = [CChar](repeating: 0, count: 300)
        _ = wb_mpi_processor_name(&name, name.count)
        hosts = allGatherBytes(Array(String(cString: name).utf8), what: "the start-up").map { String(decoding: $0, as: UTF8.self) }
    }

    /// Polls `request` until it completes; after `limit` seconds the whole run stops with a message.
    private func wait(_ request: inout UnsafeMutableRawPointer?, what: String, limit: Double?) {
        let started = Date()
        defer { exchangeSeconds += Date().timeIntervalSince(started) }
        var done: Int32 = 0
        var polls = 0
        while true {
            guard wb_mpi_test(&request, &done) == 0 else { abort("MPI failed while waiting for \(what)") }
            if done != 0 { return }
            polls += 1
            // Spin briefly (most exchanges inside a step finish in microseconds), then sleep so that a
            // waiting rank leaves its core to the others.
            if polls > 2000 { usleep(polls > 20000 ? 1000 : 50) }
            if let limit, polls % 64 == 0, Date().timeIntervalSince(started) > limit {
                abort("rank \(rank) of \(size): no answer from the other ranks for \(Int(limit)) s while waiting for \(what); a rank died or hangs (WORKBENCH_MPI_TIMEOUT sets the limit)")
            }
        }
    }

    private func checkedCount(_ bytes: Int, _ what: String) -> Int32 {
        guard let count = Int32(exactly: bytes) else {
            abort("rank \(rank): \(what) needs \(bytes) bytes in one message, more than MPI's 2 GiB limit; use a smaller train.batch_size or model")
        }
        return count
    }

    /// Every rank's values concatenated in rank order, gathered straight into the result's storage
    /// (gradient partials are tens of MB per step: no intermediate copies).
    private func gather<T>(_ local: UnsafeBufferPointer<T>, what: String) -> (values: [T], counts: [Int]) {
        var length = Int64(local.count)
        var lengths = [Int64](repeating: 0, count: size)
        var request: UnsafeMutableRawPointer?
        lengths.withUnsafeMutableBytes { out in
            _ = wb_mpi_iallgather(&length, 8, out.baseAddress, &request)
            wait(&request, what: what, limit: timeout)
        }
        let stride = MemoryLayout<T>.stride
        let counts = lengths.map { checkedCount(Int($0) * stride, what) }
        var displacements = [Int32](repeating: 0, count: size)
        var total = 0
        for r in 0..<size {
            displacements[r] = checkedCount(total, what)
            total += Int(counts[r])
        }
        exchangedBytes += total + 8 * size
        let values = [T](unsafeUninitializedCapacity: total / stride) { buffer, initialized in
            _ = wb_mpi_iallgatherv(local.baseAddress, counts[rank], buffer.baseAddress, counts, displacements, &request)
            wait(&request, what: what, limit: timeout)
            initialized = total / stride
        }
        return (values, lengths.map { Int($0) })
    }

    public func allGather(_ local: [Double]) -> [Double] {
        local.withUnsafeBufferPointer { gather($0, what: "a batch sum").values }
    }

    public func allGather(_ local: UnsafeBufferPointer<Float>) -> [Float] { gather(local, what: "a gradient sum").values }

    public func allGatherBytes(_ bytes: [UInt8], what: String) -> [[UInt8]] {
        let (values, counts) = bytes.withUnsafeBufferPointer { gather($0, what: what) }
        var offset = 0
        return counts.map { count in
            defer { offset += count }
            return Array(values[offset..<(offset + count)])
        }
    }

    public func broadcast(_ bytes: [UInt8]?, from root: Int, what: String, timeout limit: Double?) -> [UInt8] {
        var length = Int64(bytes?.count ?? 0)
        var request: UnsafeMutableRawPointer?
        _ = wb_mpi_ibcast(&length, 8, Int32(root), &request)
        wait(&request, what: what, limit: limit)
        var buffer = bytes ?? [UInt8](repeating: 0, count: Int(length))
        let count = checkedCount(Int(length), what)
        buffer.withUnsafeMutableBytes { data in
            _ = wb_mpi_ibcast(data.baseAddress, count, Int32(root), &request)
            wait(&request, what: what, limit: limit)
        }
        return buffer
    }

    public func abort(_ message: String) -> Never {
        FileHandle.standardError.write(Data("workbench (rank \(rank)): \(message)\n".utf8))
        wb_mpi_abort(1)
        exit(1)
    }

    public func finalize() { _ = wb_mpi_finalize() }
}

/// A data-parallel run that cannot start or continue, with what to do about it.
public struct DataParallelError: Error, CustomStringConvertible {
    public let message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}
