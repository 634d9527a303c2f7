/// The Philox-4x32-10 counter-based generator (Salmon et al., "Parallel random numbers: as easy as
/// 1, 2, 3", SC 2011), the generator behind PyTorch's CUDA streams, JAX and cuRAND. A block of four
/// 32-bit outputs is a pure function of a 128-bit counter and a 64-bit key, so any element of a
/// random stream can be computed independently of the others and of thread scheduling.
public enum Philox4x32 {
    public typealias Block = (UInt32, UInt32, UInt32, UInt32)

    @inline(__always)
    static func mulhilo(_ a: UInt32, _ b: UInt32) -> (hi: UInt32, lo: UInt32) {
        let product = UInt64(a) &* UInt64(b)
        return (UInt32(truncatingIfNeeded: product >> 32), UInt32(truncatingIfNeeded: product))
    }

    /// Ten rounds over `counter` with `key`.
    @inline(__always)
    public static func block(counter: Block, key: (UInt32, UInt32)) -> Block {
        var c = counter
        var k = key
        for round in 0..<10 {
            if round > 0 {
                k.0 &+= 0x9E37_79B9
                k.1 &+= 0xBB67_AE85
            }
            let (hi0, lo0) = mulhilo(0xD251_1F53, c.0)
            let (hi1, lo1) = mulhilo(0xCD9E_8D57, c.2)
            c = (hi1 ^ c.1 ^ k.0, lo1, hi0 ^ c.3 ^ k.1, lo0)
        }
        return c
    }
}
