// SHA-256 against the FIPS 180-4 / NIST test vectors, and across update boundaries.
import Testing
import Foundation
import Support

struct SHA256Tests {
    @Test func knownVectors() {
        #expect(SHA256.hash(Data()).hex == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
        #expect(SHA256.hash(Data("abc".utf8)).hex == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        #expect(SHA256.hash(Data("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq".utf8)).hex
                == "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1")
        #expect(SHA256.hash(Data(repeating: UInt8(ascii: "a"), count: 1_000_000)).hex
                == "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0")
    }

    @Test func piecewiseUpdatesEqualOneShot() {
        let bytes = (0..<1000).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ 7) }
        let whole = SHA256.hash(Data(bytes))
        for cut in [1, 63, 64, 65, 500, 999] {
            var h = SHA256()
            h.update(Data(bytes[..<cut])); h.update(Data(bytes[cut...]))
            #expect(h.finalize() == whole, "split at \(cut)")
        }
    }
}
