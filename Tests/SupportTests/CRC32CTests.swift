// CRC32C against published vectors (the "123456789" check value; RFC 3720 B.4's iSCSI vectors),
// across split updates, and TFRecord's mask against TensorBoard's own values.
import Testing
import Foundation
import Support

struct CRC32CTests {
    @Test func publishedVectors() {
        #expect(CRC32C.checksum(Array("123456789".utf8)) == 0xE306_9283)
        #expect(CRC32C.checksum([UInt8]()) == 0)
        // RFC 3720, B.4: 32 bytes of zeros, of 0xFF, ascending 0…31, descending 31…0.
        #expect(CRC32C.checksum([UInt8](repeating: 0, count: 32)) == 0x8A91_36AA)
        #expect(CRC32C.checksum([UInt8](repeating: 0xFF, count: 32)) == 0x62A8_AB43)
        #expect(CRC32C.checksum((0..<32).map { UInt8($0) }) == 0x46DD_794E)
        #expect(CRC32C.checksum((0..<32).reversed().map { UInt8($0) }) == 0x113F_DB5C)
    }

    @Test func splitUpdatesEqualOneShot() {
        let bytes = (0..<300).map { UInt8(truncatingIfNeeded: $0 &* 37 &+ 11) }
        let whole = CRC32C.checksum(bytes)
        for cut in [0, 1, 7, 150, 299] {
            let first = Array(bytes[..<cut]).withUnsafeBytes { CRC32C.checksum($0) }
            let both = Array(bytes[cut...]).withUnsafeBytes { CRC32C.checksum($0, continuing: first) }
            #expect(both == whole, "split at \(cut)")
        }
    }

    /// Masked values as TensorBoard's own writer computes them
    /// (`tensorboard.compat.tensorflow_stub.pywrap_tensorflow.masked_crc32c`).
    @Test func maskedValuesMatchTensorBoard() {
        #expect(CRC32C.masked(CRC32C.checksum(Array("123456789".utf8))) == 0xC78A_B0E5)
        #expect(CRC32C.masked(CRC32C.checksum([UInt8]())) == 0xA282_EAD8)
        // A TFRecord header's length field: UInt64 24, little-endian.
        #expect(CRC32C.masked(CRC32C.checksum([24, 0, 0, 0, 0, 0, 0, 0])) == 0x224B_7FA3)
    }
}
