// Tests of the Communicator's derived collectives on one process and on ranks as threads.
import Testing
import Distributed
import TestSupport

@Suite struct CommunicatorTests {
    @Test func allGatherVariableReturnsEveryRanksBytesInRankOrder() throws {
        // Rank r sends r·3 bytes (rank 0 none), each byte naming its rank and position.
        let results = ThreadRanks.run(4) { job -> [[UInt8]] in
            job.allGatherVariable((0 ..< job.rank * 3).map { UInt8(job.rank * 16 + $0) })
        }
        let expected = (0..<4).map { r in (0 ..< r * 3).map { UInt8(r * 16 + $0) } }
        for (rank, result) in results.enumerated() {
            #expect(try result.get() == expected, "rank \(rank)")
        }
        #expect(SingleProcessCommunicator().allGatherVariable([7, 8, 9]) == [[7, 8, 9]])
    }

    @Test func allGatherVariableOfNothingIsEmptyOnEveryRank() throws {
        let results = ThreadRanks.run(3) { job in job.allGatherVariable([]) }
        for result in results { #expect(try result.get() == [[], [], []]) }
    }

    @Test func threadRanksSumAndBroadcastLikeMPI() throws {
        let results = ThreadRanks.run(3) { job -> [Double] in
            var values = [Double(job.rank + 1), 10 * Double(job.rank)]
            values.withUnsafeMutableBufferPointer { job.allReduceSum($0.baseAddress!, count: 2) }
            var root = UInt32(job.rank == 2 ? 77 : 0)
            job.broadcast(&root, bytes: 4, root: 2)
            return values + [Double(root)]
        }
        for result in results { #expect(try result.get() == [6, 30, 77]) }
    }

    @Test func slicesReduceScatterAllGatherGatherAndScatterLikeMPI() throws {
        // 3 ranks over 40 floats: slices of 16, 16 and 8. Rank r's buffer holds (r + 1)·i.
        let slices = ParameterSlices(count: 40, world: 3)
        #expect(slices.counts == [16, 16, 8])
        let results = ThreadRanks.run(3) { job -> [[Float]] in
            var buffer = (0..<40).map { Float((job.rank + 1) * $0) }
            var mine = [Float](repeating: -1, count: slices.counts[job.rank])
            // The bucket 10..<30 falls as 6, 14, 0 floats into the three slices.
            let bucket = 10..<30
            #expect(slices.counts(of: bucket) == [6, 14, 0])
            let offset = slices.offsetInSlice(of: bucket, rank: job.rank)
            buffer.withUnsafeBufferPointer { b in
                mine.withUnsafeMutableBufferPointer { m in
                    job.startReduceScatterSum(b.baseAddress! + bucket.lowerBound, counts: slices.counts(of: bucket),
                                              into: m.baseAddress! + offset, slot: 0)
                }
            }
            job.wait(slot: 0)
            let scattered = mine
            // Each rank's slice set to 100·rank + i, then gathered in place.
            let range = slices.range(job.rank)
            for i in range { buffer[i] = Float(100 * job.rank + i) }
            buffer.withUnsafeMutableBufferPointer { job.allGatherInPlace($0.baseAddress!, counts: slices.counts) }
            // Gather of the slices to rank 1, and a scatter of rank 2's whole buffer.
            var gathered = [Float](repeating: 0, count: 40)
            let part = Array(buffer[range])
            part.withUnsafeBufferPointer { p in
                gathered.withUnsafeMutableBufferPointer { job.gather(p.baseAddress!, counts: slices.counts, into: $0.baseAddress!, root: 1) }
            }
            let source = (0..<40).map { Float(-$0) }
            var received = [Float](repeating: 0, count: slices.counts[job.rank])
            source.withUnsafeBufferPointer { s in
                received.withUnsafeMutableBufferPointer {
                    job.scatter(job.rank == 2 ? s.baseAddress! : nil, counts: slices.counts, into: $0.baseAddress!, root: 2)
                }
            }
            return [scattered, buffer, gathered, received]
        }
        let everyGathered = (0..<40).map { i in Float(100 * (i / 16) + i) }
        for (rank, result) in results.enumerated() {
            let r = try result.get()
            // Sum over ranks of (r + 1)·i = 6·i, for the bucket's floats in this rank's slice.
            let range = slices.range(rank), inBucket = range.clamped(to: 10..<30)
            let expected = (0..<slices.counts[rank]).map { j -> Float in
                let i = range.lowerBound + j
                return inBucket.contains(i) ? Float(6 * i) : -1
            }
            #expect(r[0] == expected, "rank \(rank)'s reduce-scatter")
            #expect(r[1] == everyGathered, "rank \(rank)'s all-gather")
            #expect(r[2] == (rank == 1 ? everyGathered : [Float](repeating: 0, count: 40)), "rank \(rank)'s gather")
            #expect(r[3] == range.map { Float(-$0) }, "rank \(rank)'s scatter")
        }
    }

    @Test func oneProcessReduceScattersIntoItsWholeSlice() {
        let one = SingleProcessCommunicator()
        var buffer: [Float] = [1, 2, 3], into: [Float] = [0, 0, 0]
        buffer.withUnsafeBufferPointer { b in
            into.withUnsafeMutableBufferPointer { one.startReduceScatterSum(b.baseAddress!, counts: [3], into: $0.baseAddress!, slot: 0) }
        }
        #expect(into == buffer)
        buffer.withUnsafeMutableBufferPointer { one.allGatherInPlace($0.baseAddress!, counts: [3]) }
        #expect(buffer == [1, 2, 3])
    }
}
