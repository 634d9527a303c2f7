import Foundation
import Tensor

/// The processes of a data-parallel run (ranks 0..<size, rank 0 writes the run folder), with the
/// collective operations training needs. `MPIProcessGroup` implements it over Open MPI.
public protocol ProcessGroup: PartialSumExchange {
    var rank: Int { get }
    var size: Int { get }
    /// The host of each rank, in rank order.
    var hosts: [String] { get }
    /// What carries the messages, for the manifest (e.g. "Open MPI v4.1.4").
    var library: String { get }
    /// Seconds a rank waits for the others inside a step before it declares the run broken.
    var timeout: Double { get }
    /// Seconds spent in collectives so far (including waiting for slower ranks), and bytes received.
    var exchangeSeconds: Double { get }
    var exchangedBytes: Int { get }
    /// Every rank's `bytes` concatenated in rank order; `what` names the operation in a timeout message.
    func allGatherBytes(_ bytes: [UInt8], what: String) -> [[UInt8]]
    /// Rank `root`'s bytes on every rank (the others pass nil). Without `timeout` it waits as long as
    /// the root takes (a worker waiting while rank 0 evaluates); with it, a silent root is an error.
    func broadcast(_ bytes: [UInt8]?, from root: Int, what: String, timeout: Double?) -> [UInt8]
    /// Ends every rank of the run with `message` on this one's standard error.
    func abort(_ message: String) -> Never
    func finalize()
}

extension ProcessGroup {
    /// The split of every batch that this group's ranks use.
    public var split: BatchReduction.Split { BatchReduction.Split(rank: rank, ranks: size) }
}
