// BLEU: corpus-level BLEU as sacreBLEU computes it — the 13a tokenisation of mteval-v13a.pl,
// clipped 1–4-gram precisions against one or more references, brevity penalty against the closest
// reference length, sacreBLEU's smoothing methods and its signature.
import Foundation

/// A text file that cannot be used, named with the reason.
public struct TextFileError: Error, CustomStringConvertible {
    public let path: String, message: String
    public init(path: String, message: String) { self.path = path; self.message = message }
    public var description: String { "\(path): \(message)" }
}

public enum BLEU {
    /// The sacreBLEU release whose `corpus_bleu` Loom reproduces (checked against it on Multi30k,
    /// docs/benchmarks.md); the signature names it as its `version`.
    public static let sacreBLEUVersion = "2.6.0"

    /// Precision smoothing, sacreBLEU's four methods (Chen & Cherry 2014): `exp` (the default, as in
    /// sacreBLEU and mteval-v13a: the k-th zero count gives precision 1/(2^k · total)), `floor` (a
    /// zero count gives value/total; value 0.1), `add-k` (value, 1, added to the count and total of
    /// every order from 2 on) and `none` (a zero count gives BLEU 0).
    public enum Smoothing: String, Sendable, CaseIterable {
        case none, floor, addK = "add-k", exp
        /// sacreBLEU's default value (floor 0.1, add-k 1); nil for the methods without one.
        public var defaultValue: Double? {
            switch self {
            case .floor: return 0.1
            case .addK: return 1
            case .none, .exp: return nil
            }
        }
    }

    /// sacreBLEU's signature of a corpus score with these settings (13a tokenisation, mixed case,
    /// no effective order): `nrefs:1|case:mixed|eff:no|tok:13a|smooth:exp|version:2.6.0`; a
    /// method with a value shows it, `smooth:floor[0.10]`.
    public static func signature(references: Int, smoothing: Smoothing = .exp, value: Double? = nil) -> String {
        var smooth = smoothing.rawValue
        if let v = value ?? smoothing.defaultValue { smooth += String(format: "[%.2f]", v) }
        return "nrefs:\(references)|case:mixed|eff:no|tok:13a|smooth:\(smooth)|version:\(sacreBLEUVersion)"
    }

    /// The sufficient statistics of a corpus (they add over sentences).
    public struct Statistics: Equatable, Sendable {
        public var correct = [Int](repeating: 0, count: 4)
        public var total = [Int](repeating: 0, count: 4)
        public var hypothesisLength = 0, referenceLength = 0
        public init() {}
        public static func += (a: inout Statistics, b: Statistics) {
            for n in 0..<4 { a.correct[n] += b.correct[n]; a.total[n] += b.total[n] }
            a.hypothesisLength += b.hypothesisLength; a.referenceLength += b.referenceLength
        }
    }

    public struct Score: Sendable, CustomStringConvertible {
        /// 0…100.
        public var score: Double
        /// Modified n-gram precisions, 0…100.
        public var precisions: [Double]
        public var brevityPenalty: Double
        public var statistics: Statistics
        public var ratio: Double { Double(statistics.hypothesisLength) / Double(max(statistics.referenceLength, 1)) }
        /// sacreBLEU's text line: `BLEU = 27.31 58.9/33.0/20.6/13.2 (BP = 1.000 ratio = 1.012 hyp_len = … ref_len = …)`.
        public var description: String { formatted(width: 2) }
        /// The text line with the score to `width` decimals (sacreBLEU's `--width`).
        public func formatted(width: Int) -> String {
            let p = precisions.map { String(format: "%.1f", $0) }.joined(separator: "/")
            return String(format: "BLEU = %.\(width)f %@ (BP = %.3f ratio = %.3f hyp_len = %d ref_len = %d)", score, p,
                          brevityPenalty, ratio, statistics.hypothesisLength, statistics.referenceLength)
        }
    }

    // MARK: 13a tokenisation

    /// sacreBLEU's `Tokenizer13a` (mteval-v13a): drops `<skipped>`, joins `-\n`, unescapes
    /// `&quot; &amp; &lt; &gt;`, pads ASCII punctuation and symbols with spaces, splits `.` and `,`
    /// except between digits, splits `-` after a digit; then splits on whitespace.
    public static func tokenize13a(_ line: String) -> [String] {
        var s = rstripped(line)
        s = s.replacingOccurrences(of: "<skipped>", with: "")
        s = s.replacingOccurrences(of: "-\n", with: "")
        s = s.replacingOccurrences(of: "\n", with: " ")
        if s.contains("&") {
            s = s.replacingOccurrences(of: "&quot;", with: "\"").replacingOccurrences(of: "&amp;", with: "&")
                .replacingOccurrences(of: "&lt;", with: "<").replacingOccurrences(of: "&gt;", with: ">")
        }
        var a: [Unicode.Scalar] = [" "] + Array(s.unicodeScalars) + [" "]
        // 1. ([\{-\~\[-\` -\&\(-\+\:-\@\/]) → " \1 "
        var b: [Unicode.Scalar] = []
        b.reserveCapacity(a.count * 2)
        for c in a { if isSymbol(c) { b += [" ", c, " "] } else { b.append(c) } }
        // 2. ([^0-9])([\.,]) → "\1 \2 "  (non-overlapping, left to right, as re.sub)
        a = substitute(b) { x, y in !isDigit(x) && isPeriodOrComma(y) ? [x, " ", y, " "] : nil }
        // 3. ([\.,])([^0-9]) → " \1 \2"
        b = substitute(a) { x, y in isPeriodOrComma(x) && !isDigit(y) ? [" ", x, " ", y] : nil }
        // 4. ([0-9])(-) → "\1 \2 "
        a = substitute(b) { x, y in isDigit(x) && y == "-" ? [x, " ", y, " "] : nil }
        // ' '.join(line.split())
        var tokens: [String] = [], current = String.UnicodeScalarView()
        for c in a {
            if isPythonSpace(c) {
                if !current.isEmpty { tokens.append(String(current)); current = String.UnicodeScalarView() }
            } else {
                current.append(c)
            }
        }
        if !current.isEmpty { tokens.append(String(current)) }
        return tokens
    }

    /// One pass of a two-character pattern over `s`, matches not overlapping (Python's re.sub).
    private static func substitute(_ s: [Unicode.Scalar], _ rule: (Unicode.Scalar, Unicode.Scalar) -> [Unicode.Scalar]?) -> [Unicode.Scalar] {
        var out: [Unicode.Scalar] = []
        out.reserveCapacity(s.count + s.count / 4)
        var i = 0
        while i < s.count {
            if i + 1 < s.count, let r = rule(s[i], s[i + 1]) { out += r; i += 2 } else { out.append(s[i]); i += 1 }
        }
        return out
    }

    @inline(__always) static func isDigit(_ c: Unicode.Scalar) -> Bool { c.value >= 0x30 && c.value <= 0x39 }
    @inline(__always) static func isPeriodOrComma(_ c: Unicode.Scalar) -> Bool { c == "." || c == "," }
    /// { | } ~, [ \ ] ^ _ `, space ! " # $ % &, ( ) * +, : ; < = > ? @, and /.
    @inline(__always) static func isSymbol(_ c: Unicode.Scalar) -> Bool {
        switch c.value {
        case 0x7B...0x7E, 0x5B...0x60, 0x20...0x26, 0x28...0x2B, 0x3A...0x40, 0x2F: return true
        default: return false
        }
    }
    /// Python's `str.isspace` (what `str.split()` and `str.rstrip()` cut on).
    static func isPythonSpace(_ c: Unicode.Scalar) -> Bool {
        switch c.value {
        case 0x09...0x0D, 0x1C...0x20, 0x85, 0xA0, 0x1680, 0x2000...0x200A, 0x2028, 0x2029, 0x202F, 0x205F, 0x3000: return true
        default: return false
        }
    }
    static func rstripped(_ s: String) -> String {
        var scalars = Array(s.unicodeScalars)
        while let last = scalars.last, isPythonSpace(last) { scalars.removeLast() }
        var view = String.UnicodeScalarView()
        view.append(contentsOf: scalars)
        return String(view)
    }

    // MARK: Counting

    /// n-gram counts (n = 1…4) of a token list, keyed by the tokens joined with U+0001.
    static func ngrams(_ tokens: [String]) -> [[String: Int]] {
        (1...4).map { n in
            var counts: [String: Int] = [:]
            if tokens.count >= n {
                for i in 0...(tokens.count - n) { counts[tokens[i..<(i + n)].joined(separator: "\u{1}"), default: 0] += 1 }
            }
            return counts
        }
    }

    /// Statistics of one hypothesis against its references (already tokenised): n-gram matches
    /// clipped by the largest count in any reference; the reference length closest to the
    /// hypothesis length (ties: the shorter).
    public static func statistics(hypothesis: [String], references: [[String]]) -> Statistics {
        var st = Statistics()
        st.hypothesisLength = hypothesis.count
        var closest = -1, closestDiff = -1
        var maxRef = [[String: Int]](repeating: [:], count: 4)
        for ref in references {
            let diff = abs(hypothesis.count - ref.count)
            if closestDiff == -1 || diff < closestDiff || (diff == closestDiff && ref.count < closest) {
                closestDiff = diff; closest = ref.count
            }
            for (n, counts) in ngrams(ref).enumerated() {
                for (g, c) in counts where c > maxRef[n][g, default: 0] { maxRef[n][g] = c }
            }
        }
        st.referenceLength = max(closest, 0)
        for (n, counts) in ngrams(hypothesis).enumerated() {
            st.total[n] = max(hypothesis.count - n, 0)
            for (g, c) in counts { st.correct[n] += min(c, maxRef[n][g] ?? 0) }
        }
        return st
    }

    /// The score of accumulated statistics: BP · exp(Σ log p_n / 4), BP = exp(1 − r/c) when c < r,
    /// the precisions smoothed as sacreBLEU's `compute_bleu` does (`value` nil: the method's default).
    public static func score(_ st: Statistics, smoothing: Smoothing = .exp, value: Double? = nil) -> Score {
        var bp = 1.0
        if st.hypothesisLength < st.referenceLength {
            bp = st.hypothesisLength > 0 ? exp(1 - Double(st.referenceLength) / Double(st.hypothesisLength)) : 0
        }
        var precisions = [Double](repeating: 0, count: 4)
        if !st.correct.contains(where: { $0 > 0 }) {
            return Score(score: 0, precisions: precisions, brevityPenalty: bp, statistics: st)
        }
        let k = value ?? smoothing.defaultValue ?? 0
        var correct = st.correct.map(Double.init), total = st.total.map(Double.init)
        var smooth = 1.0
        for n in 0..<4 {
            if smoothing == .addK && n > 0 { correct[n] += k; total[n] += k }
            if total[n] == 0 { break }
            if correct[n] == 0 {
                switch smoothing {
                case .exp: smooth *= 2; precisions[n] = 100 / (smooth * total[n])
                case .floor: precisions[n] = 100 * k / total[n]
                case .none, .addK: break
                }
            } else {
                precisions[n] = 100 * correct[n] / total[n]
            }
        }
        // sacreBLEU's my_log: log(0) counts as −9999999999.
        let logs = precisions.map { $0 == 0 ? -9_999_999_999 : log($0) }
        return Score(score: bp * exp(logs.reduce(0, +) / 4), precisions: precisions, brevityPenalty: bp, statistics: st)
    }

    /// Corpus BLEU of `hypotheses` against reference sets (each set has one line per hypothesis).
    public static func corpus(hypotheses: [String], references: [[String]], smoothing: Smoothing = .exp,
                              value: Double? = nil) -> Score {
        precondition(references.allSatisfy { $0.count == hypotheses.count }, "BLEU.corpus: every reference set needs one line per hypothesis")
        var st = Statistics()
        for (i, h) in hypotheses.enumerated() {
            st += statistics(hypothesis: tokenize13a(h), references: references.map { tokenize13a($0[i]) })
        }
        return score(st, smoothing: smoothing, value: value)
    }

    /// Lines of a UTF-8 text file split at "\n" only (a final newline ends the last line; "\r" is
    /// stripped with the other trailing whitespace by the tokeniser). Errors name the file.
    public static func readLines(_ path: String) throws -> [String] {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw TextFileError(path: path, message: "cannot read the file")
        }
        guard let text = String(data: data, encoding: .utf8) else {
            throw TextFileError(path: path, message: "not UTF-8 text")
        }
        var lines = text.unicodeScalars.split(separator: "\n", omittingEmptySubsequences: false).map { String(String.UnicodeScalarView($0)) }
        if lines.last == "" { lines.removeLast() }
        return lines
    }
}
