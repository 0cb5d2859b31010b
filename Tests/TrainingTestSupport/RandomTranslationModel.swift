// RandomTranslationModel: a small random encoder-decoder written to a directory the way a run writes
// one (model.safetensors, model-config.json, a byte-level BPE tokenizer.json with <s> and </s>), for
// the tests of translation in process and through the binary.
import Foundation
import Data
import Models
import Training
import Support

/// Writes a random pre-LN model (V = 260: bytes, <s>, </s>, two merges; weights perturbed so the
/// search has real choices to make) with its config and tokenizer into `dir`.
public func writeRandomTranslationModel(in dir: String, seed: UInt64) throws -> (EncoderDecoder, Tokenizer) {
    var trainer = BPETrainer(specials: ["<s>", "</s>"])
    trainer.add(Array("ab ab ab cd cd".utf8))
    let bpe = try trainer.train(vocabularySize: 260, specials: ["<s>", "</s>"])
    try bpe.serialized().write(to: URL(fileURLWithPath: dir + "/tokenizer.json"))
    let config = EncoderDecoderConfig(vocabularySize: 260, maxLength: 24, encoderLayers: 1, decoderLayers: 1, width: 16,
                                      heads: 2, ffnWidth: 32, normPlacement: .pre)
    let model = EncoderDecoder(config: config, maxBatch: 4)
    model.initialize(seed: seed)
    let key = CounterRandom.key(seed, 1)
    for i in 0..<model.parameters.count { model.parameters.pointer[i] += 0.5 * (CounterRandom.uniform(key: key, counter: UInt64(i)) - 0.5) }
    try Safetensors.write(dir + "/model.safetensors", layout: model.layout, buffer: model.parameters)
    try EncoderDecoderFile(config: config).write(dir + "/" + EncoderDecoderFile.fileName)
    return (model, try TokenizerFile.load(dir + "/tokenizer.json"))
}
