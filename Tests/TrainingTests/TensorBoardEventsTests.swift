// TensorBoard events files read back by a small TFRecord + protobuf reader (TestSupport's
// TensorBoardEventReader): framing and both CRCs check, the version record comes first, and each
// event's step, tags and values are those that were logged (through RunDirectory.log, the funnel
// training writes through).
import Testing
import Foundation
import Support
import Training
import TestSupport

@Suite struct TensorBoardEventsTests {
    @Test func loggedRecordsReadBackAsEvents() throws {
        let dir = try makeScratchDirectory("tb")
        let run = try RunDirectory(creating: dir + "/run")
        run.tensorboard = try TensorBoardEvents(directory: dir + "/run/tensorboard")
        let losses = [4.25, 3.5, 2.875], rates = [1e-4, 3e-4, 2.5e-4], norms = [1.5, Double.nan, 0.75]
        for i in 0..<3 {
            run.log(["step": (i + 1) * 10, "train_loss": losses[i], "lr": rates[i], "tokens": (i + 1) * 7680,
                     "grad_norm": norms[i]])
        }
        run.log(["step": 30, "train_loss": 2.5, "lr": rates[2], "val_loss": 3.125])
        run.close()

        let files = try FileManager.default.contentsOfDirectory(atPath: dir + "/run/tensorboard")
        #expect(files.count == 1)
        let name = try #require(files.first)
        #expect(name.hasPrefix("events.out.tfevents.") && name.contains(".\(getpid())."))
        let events = try readEvents(dir + "/run/tensorboard/" + name)
        #expect(events.count == 5)
        #expect(events[0].fileVersion == "brain.Event:2" && events[0].values.isEmpty && events[0].wallTime != nil)
        for i in 0..<3 {
            let e = events[i + 1]
            #expect(e.step == Int64((i + 1) * 10))
            let values = Dictionary(e.values.map { ($0.tag, $0.value) }) { a, _ in a }
            #expect(Set(values.keys) == ["train/loss", "train/lr", "train/tokens", "train/grad_norm"])
            #expect(values["train/loss"] == Float(losses[i]))
            #expect(values["train/lr"] == Float(rates[i]))
            #expect(values["train/tokens"] == Float((i + 1) * 7680))
            if norms[i].isNaN { #expect(values["train/grad_norm"]!.isNaN) } else { #expect(values["train/grad_norm"] == Float(norms[i])) }
            #expect(abs((e.wallTime ?? 0) - Date().timeIntervalSince1970) < 3600)
        }
        #expect(events[4].step == 30 && events[4].values.map(\.tag) == ["val/loss"] && events[4].values[0].value == 3.125)
    }

    /// A resumed run writes a second file that starts with SessionLog.START at its first step.
    @Test func resumingStartsANewFileWithASessionStart() throws {
        let dir = try makeScratchDirectory("tb")
        let first = try TensorBoardEvents(directory: dir, wallTime: 1_700_000_000)
        try first.log(["step": 10, "train_loss": 2.0])
        first.close()
        let second = try TensorBoardEvents(directory: dir, resumingAt: 11, wallTime: 1_700_000_100)
        try second.log(["step": 20, "train_loss": 1.5])
        second.close()
        #expect(first.path != second.path)
        #expect((first.path as NSString).lastPathComponent.hasPrefix("events.out.tfevents.1700000000."))
        // TensorBoard reads a directory's files in name order: the resumed file comes after.
        #expect(first.path < second.path)
        let resumed = try readEvents(second.path)
        #expect(resumed.count == 3)
        #expect(resumed[0].fileVersion == "brain.Event:2")
        #expect(resumed[1].sessionStatus == 1 && resumed[1].step == 11 && resumed[1].values.isEmpty)
        #expect(resumed[2].step == 20 && resumed[2].values.map(\.tag) == ["train/loss"] && resumed[2].values[0].value == 1.5)
        #expect(try readEvents(first.path).count == 2)
    }

    /// A damaged byte is caught by the reader's CRC checks (the framing is what guards the data).
    @Test func aFlippedByteFailsTheCRC() throws {
        let dir = try makeScratchDirectory("tb")
        let w = try TensorBoardEvents(directory: dir)
        try w.log(["step": 1, "train_loss": 2.0])
        w.close()
        var bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: w.path)))
        bytes[bytes.count - 6] ^= 0x01
        try Data(bytes).write(to: URL(fileURLWithPath: w.path))
        #expect(throws: EventFileReadError.self) { try readEvents(w.path) }
    }

    @Test func validationRecordsCarryTheValidationLossAndAccuracy() {
        let training = TensorBoardEvents.scalars(of: ["step": 5, "train_loss": 1.0, "lr": 0.5, "tokens_per_s": 100.0])
        #expect(training?.step == 5 && training?.values.map(\.tag) == ["train/loss", "train/lr", "train/tokens_per_s"])
        let validation = TensorBoardEvents.scalars(of: ["step": 5, "train_loss": 1.0, "lr": 0.5, "val_loss": 2.0])
        #expect(validation?.values.map(\.tag) == ["val/loss"] && validation?.values.first?.value == 2.0)
        #expect(TensorBoardEvents.scalars(of: ["train_loss": 1.0]) == nil)
        let masked = TensorBoardEvents.scalars(of: ["step": 5, "val_loss": 2.0, "val_accuracy": 0.25, "covers": 3])
        #expect(masked?.values.map(\.tag) == ["val/loss", "val/accuracy"] && masked?.values.last?.value == 0.25)
    }
}
