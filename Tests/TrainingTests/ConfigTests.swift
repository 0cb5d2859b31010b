// Config decoding: defaults, overrides, and errors that name the key at fault.
import Testing
import Foundation
import Training
import Kernels

let minimalYAML = """
model: {layers: 2, heads: 2, width: 16, context_length: 8}
data: {corpus: corpus.txt}
training: {steps: 10, batch_size: 4, micro_batch_size: 2}
"""

func configError(_ yaml: String, overrides: [String] = []) -> String {
    do { _ = try LoomConfig.parse(yaml: yaml, file: "test.yaml", overrides: overrides); return "no error" } catch {
        return "\(error)"
    }
}

@Suite struct ConfigTests {
    @Test func defaultsFillOptionalKeys() throws {
        let c = try LoomConfig.parse(yaml: minimalYAML, file: "test.yaml")
        #expect(c.model.dropout == 0 && c.optimizer.beta2 == 0.99 && c.schedule.kind == .cosine)
        #expect(c.training.microBatchSize == 2 && c.evaluation.batches == 200 && c.training.threadParallelism == .auto)
    }

    @Test func overridesSetAnyKeyByDottedPath() throws {
        let c = try LoomConfig.parse(yaml: minimalYAML, file: "test.yaml",
                                     overrides: ["training.steps=50", "optimizer.learning_rate=3e-4", "schedule.kind=constant"])
        #expect(c.training.steps == 50 && c.optimizer.learningRate == 3e-4 && c.schedule.kind == .constant)
    }

    @Test func resolvedConfigRoundTrips() throws {
        let c = try LoomConfig.parse(yaml: minimalYAML, file: "test.yaml", overrides: ["model.dropout=0.1"])
        #expect(try LoomConfig.parse(yaml: c.yaml(), file: "resolved.yaml") == c)
    }

    @Test func unknownKeysAreNamed() {
        #expect(configError(minimalYAML + "\nlogging: {intervall: 5}").contains("'logging.intervall': unknown key"))
        #expect(configError(minimalYAML, overrides: ["model.layerz=3"]).contains("'model.layerz'"))
        #expect(configError(minimalYAML + "\nextra: 1").contains("'extra'"))
    }

    @Test func wrongTypesAreNamed() {
        let e = configError(minimalYAML, overrides: ["training.steps=many"])
        #expect(e.contains("'training.steps'") && e.contains("integer"), "\(e)")
        #expect(configError("model: {layers: 2}\ndata: {corpus: x}").contains("'model.heads': required key is missing"))
    }

    @Test func invalidValuesAreNamed() {
        #expect(configError(minimalYAML, overrides: ["model.width=15"]).contains("'model.width': 15 is not divisible by model.heads = 2"))
        #expect(configError(minimalYAML, overrides: ["training.batch_size=5"]).contains("'training.batch_size'"))
        #expect(configError(minimalYAML, overrides: ["model.dropout=1.5"]).contains("'model.dropout'"))
        #expect(configError(minimalYAML, overrides: ["schedule.kind=linear-ish"]).contains("'schedule.kind'"))
        #expect(configError(minimalYAML, overrides: ["optimizer.learning_rate=-1"]).contains("'optimizer.learning_rate'"))
        #expect(configError(minimalYAML, overrides: ["schedule.cooldown_steps=-1"]).contains("'schedule.cooldown_steps'"))
        #expect(configError(minimalYAML, overrides: ["training.thread_parallelism=rows"]).contains("'training.thread_parallelism': must be auto, batch or kernel"))
        #expect(configError("- not\n- a mapping").contains("test.yaml"))
        #expect(configError(minimalYAML, overrides: ["novalue"]).contains("key.path=value"))
    }

    /// `evaluation.at_end` is a Bool, true unless set; a non-Bool names the key; the plateau
    /// schedule, which acts on validation passes, is refused without periodic ones.
    @Test func evaluationAtEndIsABoolDefaultingToTrue() throws {
        #expect(try LoomConfig.parse(yaml: minimalYAML, file: "test.yaml").evaluation.atEnd == true)
        let off = try LoomConfig.parse(yaml: minimalYAML + "\nevaluation: {interval: 0, at_end: false}", file: "test.yaml")
        #expect(off.evaluation.atEnd == false && off.evaluation.interval == 0)
        #expect(try LoomConfig.parse(yaml: off.yaml(), file: "resolved.yaml") == off)
        #expect(try LoomConfig.parse(yaml: minimalYAML, file: "test.yaml", overrides: ["evaluation.at_end=false"]).evaluation.atEnd == false)
        let e = configError(minimalYAML, overrides: ["evaluation.at_end=sometimes"])
        #expect(e.contains("'evaluation.at_end'") && e.contains("true or false"), "\(e)")
        #expect(configError(minimalYAML, overrides: ["evaluation.atend=false"]).contains("'evaluation.atend': unknown key"))
        let plateau = configError(minimalYAML, overrides: ["schedule.kind=plateau", "evaluation.interval=0"])
        #expect(plateau.contains("'schedule.kind'") && plateau.contains("evaluation.interval"), "\(plateau)")
        #expect(configError(minimalYAML, overrides: ["schedule.kind=plateau", "evaluation.interval=5"]) == "no error")
    }

    /// `kernels.gemm` is an enum: Loom's kernels by default, each engine by name, and anything
    /// else an error naming the key and the choices.
    @Test func gemmEngineIsAnEnumWithNamedChoices() throws {
        #expect(try LoomConfig.parse(yaml: minimalYAML, file: "test.yaml").kernels.gemm == .loom)
        for choice in GemmSelection.allCases {
            let c = try LoomConfig.parse(yaml: minimalYAML + "\nkernels: {gemm: \(choice.rawValue)}", file: "test.yaml")
            #expect(c.kernels.gemm == choice)
            #expect(try LoomConfig.parse(yaml: c.yaml(), file: "resolved.yaml") == c)
        }
        #expect(try LoomConfig.parse(yaml: minimalYAML, file: "test.yaml", overrides: ["kernels.gemm=auto"]).kernels.gemm == .auto)
        let e = configError(minimalYAML, overrides: ["kernels.gemm=mkl"])
        #expect(e.contains("test.yaml") && e.contains("'kernels.gemm'") && e.contains("'mkl'") && e.contains("auto, loom, openblas or onednn"), "\(e)")
        #expect(configError(minimalYAML, overrides: ["kernels.gemm=3"]).contains("'kernels.gemm'"))
        #expect(configError(minimalYAML, overrides: ["kernels.engine=onednn"]).contains("'kernels.engine': unknown key (known here: gemm)"))
    }

    @Test func missingCorpusIsAnError() throws {
        let c = try LoomConfig.parse(yaml: minimalYAML, file: "test.yaml", overrides: ["data.corpus=/nonexistent/corpus.txt"])
        #expect { try PreparedData(config: c) } throws: { "\($0)".contains("/nonexistent/corpus.txt") }
    }
}
