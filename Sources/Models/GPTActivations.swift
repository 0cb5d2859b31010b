// GPTActivations: every activation the GPT's forward keeps for backward, plus the per-layer
// gradient scratch backward reuses, carved from one allocation. It is not part of the model's state.
import Kernels

/// Buffers for up to `batch` sequences of `contextLength` tokens (shapes at B = batch, T = context).
final class GPTActivations {
    struct Block {
        let ln1, ln1Mean, ln1Rstd: UnsafeMutablePointer<Float>   // (B,T,C), (B,T), (B,T)
        let qkv: UnsafeMutablePointer<Float>                     // (B,T,3C)
        let att: UnsafeMutablePointer<Float>                     // (B,H,T,T) softmax probabilities
        let attDropped: UnsafeMutablePointer<Float>?             // (B,H,T,T) only with dropout
        let atty, attProj, residual2: UnsafeMutablePointer<Float> // (B,T,C) each
        let ln2, ln2Mean, ln2Rstd: UnsafeMutablePointer<Float>   // (B,T,C), (B,T), (B,T)
        let fch, fchGelu: UnsafeMutablePointer<Float>            // (B,T,4C) each
        let fcProj, residual3: UnsafeMutablePointer<Float>       // (B,T,C) each
    }
    /// Gradient scratch shared by all layers (backward runs one layer at a time).
    struct Scratch {
        let dresidual, dln, datty, dproj: UnsafeMutablePointer<Float> // (B,T,C) each
        let dqkv: UnsafeMutablePointer<Float>                         // (B,T,3C)
        let datt: UnsafeMutablePointer<Float>                         // (B,H,T,T)
        let dfch: UnsafeMutablePointer<Float>                         // (B,T,4C)
    }

    let encoded: UnsafeMutablePointer<Float>                      // (B,T,C)
    let blocks: [Block]
    let lnf, lnfMean, lnfRstd: UnsafeMutablePointer<Float>        // (B,T,C), (B,T), (B,T)
    let logits: UnsafeMutablePointer<Float>                       // (B,T,V) logits → probs → dlogits
    let losses: UnsafeMutablePointer<Float>                       // (B,T)
    let scratch: Scratch
    private let storage: FlatBuffer

    var bytes: Int { storage.bytes }

    init(config c: GPTConfig, batch B: Int) {
        func carve(_ arena: inout Arena) -> (UnsafeMutablePointer<Float>, [Block], [UnsafeMutablePointer<Float>], Scratch) {
            let T = c.contextLength, C = c.width, H = c.heads, V = c.vocabularySize
            let BT = B * T, BTC = B * T * C, att = B * H * T * T
            let encoded = arena.take(BTC)
            let blocks = (0..<c.layers).map { _ in
                Block(ln1: arena.take(BTC), ln1Mean: arena.take(BT), ln1Rstd: arena.take(BT),
                      qkv: arena.take(3 * BTC), att: arena.take(att),
                      attDropped: c.dropout > 0 ? arena.take(att) : nil,
                      atty: arena.take(BTC), attProj: arena.take(BTC), residual2: arena.take(BTC),
                      ln2: arena.take(BTC), ln2Mean: arena.take(BT), ln2Rstd: arena.take(BT),
                      fch: arena.take(4 * BTC), fchGelu: arena.take(4 * BTC),
                      fcProj: arena.take(BTC), residual3: arena.take(BTC))
            }
            let tail = [arena.take(BTC), arena.take(BT), arena.take(BT), arena.take(BT * V), arena.take(BT)]
            let scratch = Scratch(dresidual: arena.take(BTC), dln: arena.take(BTC), datty: arena.take(BTC),
                                  dproj: arena.take(BTC), dqkv: arena.take(3 * BTC), datt: arena.take(att),
                                  dfch: arena.take(4 * BTC))
            return (encoded, blocks, tail, scratch)
        }
        var counting = Arena()
        _ = carve(&counting)
        storage = FlatBuffer(count: counting.used)
        var arena = Arena(buffer: storage)
        let (encoded, blocks, tail, scratch) = carve(&arena)
        self.encoded = encoded; self.blocks = blocks; self.scratch = scratch
        lnf = tail[0]; lnfMean = tail[1]; lnfRstd = tail[2]; logits = tail[3]; losses = tail[4]
    }
}
