// ByteLevel: GPT-2's byte ↔ printable-character map (bytes_to_unicode) and its pre-tokenisation
// pattern, written by hand over bytes and Unicode scalars (no regex engine).
import Foundation

public enum ByteLevel {
    /// GPT-2's bytes_to_unicode: printable Latin-1 bytes map to themselves, the other 68 bytes to
    /// U+0100 onwards, in byte order.
    public static let byteToScalar: [Unicode.Scalar] = {
        var table = [Unicode.Scalar](repeating: "\0", count: 256)
        var next: UInt32 = 256
        for b in 0..<256 {
            let printable = (33...126).contains(b) || (161...172).contains(b) || (174...255).contains(b)
            if printable { table[b] = Unicode.Scalar(UInt32(b))! } else { table[b] = Unicode.Scalar(next)!; next += 1 }
        }
        return table
    }()

    /// Inverse of `byteToScalar`.
    public static let scalarToByte: [UInt32: UInt8] = {
        var map: [UInt32: UInt8] = [:]
        for (b, s) in byteToScalar.enumerated() { map[s.value] = UInt8(b) }
        return map
    }()

    /// The printable form of a byte string (how vocab.json and tokenizer.json spell tokens).
    public static func printable(_ bytes: some Sequence<UInt8>) -> String {
        var s = String.UnicodeScalarView()
        for b in bytes { s.append(byteToScalar[Int(b)]) }
        return String(s)
    }

    /// The bytes a printable token stands for; nil when a character is not in the map.
    public static func bytes(ofPrintable token: String) -> [UInt8]? {
        var out: [UInt8] = []
        for s in token.unicodeScalars {
            guard let b = scalarToByte[s.value] else { return nil }
            out.append(b)
        }
        return out
    }

    // Character classes of the pattern. Invalid UTF-8 bytes count as "other" (neither letter,
    // number nor space), which keeps every byte inside exactly one piece.
    @usableFromInline static let letter: UInt8 = 1, number: UInt8 = 2, space: UInt8 = 3, other: UInt8 = 4

    @usableFromInline static let asciiClass: [UInt8] = (0..<128).map { b -> UInt8 in
        switch b {
        case 0x41...0x5A, 0x61...0x7A: return letter
        case 0x30...0x39: return number
        case 0x09...0x0D, 0x20: return space
        default: return other
        }
    }

    @inline(__always) static func classify(_ s: UInt32) -> UInt8 {
        if s < 128 { return asciiClass[Int(s)] }
        guard let scalar = Unicode.Scalar(s) else { return other }
        let p = scalar.properties
        if p.isWhitespace { return space }
        switch p.generalCategory {
        case .uppercaseLetter, .lowercaseLetter, .titlecaseLetter, .modifierLetter, .otherLetter: return letter
        case .decimalNumber, .letterNumber, .otherNumber: return number
        default: return other
        }
    }

    /// Decodes one scalar at `i`: (value, byte length, class). Invalid sequences are 1 byte, "other".
    @inline(__always) static func scalar(at i: Int, _ p: UnsafePointer<UInt8>, _ n: Int) -> (length: Int, cls: UInt8) {
        let b0 = p[i]
        if b0 < 0x80 { return (1, asciiClass[Int(b0)]) }
        var length = 0, value: UInt32 = 0, minimum: UInt32 = 0
        if b0 & 0xE0 == 0xC0 { length = 2; value = UInt32(b0 & 0x1F); minimum = 0x80 }
        else if b0 & 0xF0 == 0xE0 { length = 3; value = UInt32(b0 & 0x0F); minimum = 0x800 }
        else if b0 & 0xF8 == 0xF0 { length = 4; value = UInt32(b0 & 0x07); minimum = 0x10000 }
        else { return (1, other) }
        guard i + length <= n else { return (1, other) }
        for k in 1..<length {
            let b = p[i + k]
            guard b & 0xC0 == 0x80 else { return (1, other) }
            value = value << 6 | UInt32(b & 0x3F)
        }
        guard value >= minimum, value <= 0x10FFFF, !(0xD800...0xDFFF).contains(value) else { return (1, other) }
        return (length, classify(value))
    }

    /// Calls `body(start, end)` for each piece of GPT-2's pattern
    /// `'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+` over `bytes`.
    /// Pieces are contiguous and cover every byte.
    @inline(__always)
    public static func split(_ bytes: UnsafeRawBufferPointer, _ body: (Int, Int) -> Void) {
        let n = bytes.count
        guard n > 0 else { return }
        let p = bytes.baseAddress!.assumingMemoryBound(to: UInt8.self)
        var i = 0
        while i < n {
            let start = i
            let c = p[i]
            // 's 't 'm 'd 're 've 'll
            if c == 0x27, i + 1 < n {
                let d = p[i + 1]
                if d == 0x73 || d == 0x74 || d == 0x6D || d == 0x64 { body(i, i + 2); i += 2; continue }
                if i + 2 < n {
                    let e = p[i + 2]
                    if (d == 0x72 && e == 0x65) || (d == 0x76 && e == 0x65) || (d == 0x6C && e == 0x6C) {
                        body(i, i + 3); i += 3; continue
                    }
                }
            }
            var (len, cls) = scalar(at: i, p, n)
            var j = i
            if c == 0x20, i + 1 < n {
                // ` ?X+`: a single ASCII space joins a following letter, number or other run.
                let (nlen, ncls) = scalar(at: i + 1, p, n)
                if ncls != space { j = i + 1; len = nlen; cls = ncls }
            }
            if cls != space {
                j += len
                while j < n {
                    let (l, k) = scalar(at: j, p, n)
                    if k != cls { break }
                    j += l
                }
                body(start, j); i = j; continue
            }
            // Whitespace run: `\s+(?!\S)` leaves the last space for the next piece when a
            // non-space follows and the run is longer than one character; else `\s+`.
            var last = i
            j = i
            while j < n {
                let (l, k) = scalar(at: j, p, n)
                if k != space { break }
                last = j
                j += l
            }
            if j < n, last > i { j = last }
            body(start, j); i = j
        }
    }
}
