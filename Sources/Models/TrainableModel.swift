// TrainableModel: what the trainer needs of any model — one flat parameter buffer and a gradient
// buffer of the same layout, its precision, hooks that backward calls, initialisation. Forward and
// backward stay out of it: each model's have their own shape-specific signature (see the tasks).
import Kernels

public protocol TrainableModel: AnyObject {
    var layout: ParameterLayout { get }
    var parameters: FlatBuffer { get }
    var gradients: FlatBuffer { get }
    /// Bytes of activations and backward scratch (the memory plan).
    var activationBytes: Int { get }
    /// Called after backward finishes each layout group (in reverse), so all-reduce can start.
    var onGroupReady: ((Int) -> Void)? { get set }
    /// Called between the layers of backward, so communication in flight can progress.
    var onBackwardProgress: (() -> Void)? { get set }
    func initialize(seed: UInt64)
    /// How the matrix products run (`bf16` keeps a bf16 copy of the weights).
    var precision: Precision { get }
    /// Call after anything but `initialize` changed `parameters` (an optimizer update, a loaded
    /// checkpoint, a broadcast): refreshes the bf16 copy of the weights; no-op in fp32.
    func parametersDidChange()
    /// A short name written into saved files ("gpt", "transformer", "bert").
    var kind: String { get }
}

extension GPT: TrainableModel { public var kind: String { "gpt" } }
extension EncoderDecoder: TrainableModel { public var kind: String { "transformer" } }
extension BERT: TrainableModel { public var kind: String { "bert" } }
