// CounterRandom: a pure function of (key, counter) — the same value on every call — with the
// ranges and rough moments its users rely on.
import Testing
import Support

@Suite struct CounterRandomTests {
    @Test func valuesDependOnlyOnKeyAndCounter() {
        let key = CounterRandom.key(1234, 5, 6)
        #expect(key == CounterRandom.key(1234, 5, 6) && key != CounterRandom.key(1234, 5, 7) && key != CounterRandom.key(1234, 6, 5))
        let first = (0..<100).map { CounterRandom.bits(key: key, counter: UInt64($0)) }
        let again = (0..<100).reversed().map { CounterRandom.bits(key: key, counter: UInt64($0)) }.reversed()
        #expect(first == Array(again))
        #expect(Set(first).count == 100)
    }

    @Test func drawsStayInTheirRanges() {
        let key = CounterRandom.key(7)
        var sum = 0.0, squares = 0.0
        let n = 20_000
        for i in 0..<n {
            let u = CounterRandom.uniform(key: key, counter: UInt64(i))
            #expect(u >= 0 && u < 1)
            let b = CounterRandom.below(10, key: key, counter: UInt64(i))
            #expect((0..<10).contains(b))
            let z = Double(CounterRandom.normal(key: key, counter: UInt64(i)))
            sum += z; squares += z * z
        }
        #expect(abs(sum / Double(n)) < 0.05, "mean of standard normals")
        #expect(abs(squares / Double(n) - 1) < 0.05, "variance of standard normals")
    }
}
