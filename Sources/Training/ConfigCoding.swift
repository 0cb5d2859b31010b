// ConfigCoding: the decoding rules every config type shares (a YAML run config or model-config.json):
// an absent optional key keeps the property's initial value, so each default is written once, at
// the property; a closed set decodes as its enum, naming the allowed values when it is not one;
// a Float is written as its shortest decimal. The messages name the key; Config.swift and
// EncoderDecoderFile.swift add the file.
import Foundation

/// The allowed values of a closed set, as an error message says them: "a, b or c".
func choices<T: RawRepresentable & CaseIterable>(of type: T.Type) -> String where T.RawValue == String {
    let names = T.allCases.map(\.rawValue)
    guard names.count > 1, let last = names.last else { return names.joined() }
    return names.dropLast().joined(separator: ", ") + " or " + last
}

extension KeyedDecodingContainer {
    /// Replaces `value` by the key's value when the key is present; else `value` (the default) stays.
    func read<T: Decodable>(_ value: inout T, _ key: Key) throws {
        if let decoded = try decodeIfPresent(T.self, forKey: key) { value = decoded }
    }

    /// An enum of a closed set, from its name; a name outside the set is an error naming the choices.
    func read<T: RawRepresentable & CaseIterable & Decodable>(_ value: inout T, _ key: Key) throws
    where T.RawValue == String {
        guard let name = try decodeIfPresent(String.self, forKey: key) else { return }
        guard let decoded = T(rawValue: name) else {
            throw DecodingError.dataCorruptedError(forKey: key, in: self,
                                                   debugDescription: "must be \(choices(of: T.self)), got '\(name)'")
        }
        value = decoded
    }

    /// A whole number; a fraction is refused naming it ("must be an integer, got 8.5").
    func read(_ value: inout Int, _ key: Key) throws {
        guard contains(key) else { return }
        value = try integer(key)
    }

    /// A Float, read as the decimal written in the file (through Double, as the models take it).
    func read(_ value: inout Float, _ key: Key) throws {
        if let decoded = try decodeIfPresent(Double.self, forKey: key) { value = Float(decoded) }
    }

    /// A required whole number.
    func integer(_ key: Key) throws -> Int {
        if let n = try? decode(Int.self, forKey: key) { return n }
        if let x = try? decode(Double.self, forKey: key) {
            throw DecodingError.dataCorruptedError(forKey: key, in: self, debugDescription: "must be an integer, got \(x)")
        }
        return try decode(Int.self, forKey: key)   // rethrows: missing, or not a number
    }
}

/// Asks an encoder to write every key a schema accepts, also those it leaves out where they say
/// nothing (`vocabulary_size: 0`, an empty path): the list of known keys is such an encoding.
let listEveryKey = CodingUserInfoKey(rawValue: "loom.listEveryKey")!

extension Swift.Encoder {
    /// Whether to write a key whose value `says` something, or any key when every key is asked for.
    func lists(_ says: Bool) -> Bool { says || userInfo[listEveryKey] as? Bool == true }
}

extension KeyedEncodingContainer {
    /// A Float as its shortest decimal (0.1, not 0.10000000149011612), which reads back to the same Float.
    mutating func encode(decimal value: Float, forKey key: Key) throws {
        try encode(Double(value.description) ?? Double(value), forKey: key)
    }
}

/// What a decoding error says, for a file's error type to frame: the dotted key path and the problem.
func describe(_ error: DecodingError) -> (key: String?, message: String) {
    func dotted(_ path: [CodingKey]) -> String? { path.isEmpty ? nil : path.map(\.stringValue).joined(separator: ".") }
    switch error {
    case let .typeMismatch(type, context):
        return (dotted(context.codingPath), "must be \(typeName(type))")
    case let .valueNotFound(type, context):
        return (dotted(context.codingPath), "missing value, expected \(typeName(type))")
    case let .keyNotFound(key, context):
        return (dotted(context.codingPath + [key]), "required key is missing")
    case let .dataCorrupted(context):
        return (dotted(context.codingPath), context.debugDescription)
    @unknown default:
        return (nil, "\(error)")
    }
}

private func typeName(_ type: Any.Type) -> String {
    switch type {
    case is Int.Type: return "an integer"
    case is Double.Type, is Float.Type: return "a number"
    case is String.Type: return "a string"
    case is Bool.Type: return "true or false"
    default: return "a mapping"
    }
}
