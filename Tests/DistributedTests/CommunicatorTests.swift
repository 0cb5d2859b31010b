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
}
