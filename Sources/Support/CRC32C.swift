// CRC32C: the Castagnoli CRC-32 (polynomial 0x1EDC6F41, reflected 0x82F63B78), the checksum of
// TFRecord framing (TensorBoard event files), with the record format's masking.
import Foundation

public enum CRC32C {
    /// The 256-entry table of the reflected polynomial (one byte at a time).
    private static let table: [UInt32] = (0..<256).map { byte -> UInt32 in
        var crc = UInt32(byte)
        for _ in 0..<8 { crc = crc & 1 != 0 ? (crc >> 1) ^ 0x82F6_3B78 : crc >> 1 }
        return crc
    }

    /// The CRC32C of `bytes`, continuing from `crc` (the checksum of the bytes before; 0 to start).
    public static func checksum(_ bytes: UnsafeRawBufferPointer, continuing crc: UInt32 = 0) -> UInt32 {
        var c = ~crc
        table.withUnsafeBufferPointer { t in
            for b in bytes { c = t[Int((c ^ UInt32(b)) & 0xFF)] ^ (c >> 8) }
        }
        return ~c
    }

    public static func checksum<Bytes: Sequence>(_ bytes: Bytes) -> UInt32 where Bytes.Element == UInt8 {
        Array(bytes).withUnsafeBytes { checksum($0) }
    }

    /// TFRecord's masked form of a CRC (rotated right by 15 bits plus a constant), so that a CRC
    /// stored inside checksummed data does not checksum to a fixed value.
    public static func masked(_ crc: UInt32) -> UInt32 {
        ((crc >> 15) | (crc << 17)) &+ 0xA282_EAD8
    }
}
