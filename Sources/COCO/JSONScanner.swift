// A strict byte-level JSON reader (RFC 8259) for the two COCO file shapes; Foundation's decoders are slow on Linux.
import Foundation

/// A pull reader over the bytes of one JSON document. The shape readers (instances, results) walk
/// the document with it and build records directly, without an intermediate tree.
///
/// Strict: anything that is not RFC 8259 JSON (trailing commas, comments, `NaN`, leading zeros,
/// control characters in strings, bad escapes, trailing data, invalid UTF-8 in a decoded string)
/// is `COCOError.malformedJSON` with line and column. Values that are valid JSON but not what a
/// field needs are `COCOError.invalidField`, naming the field; the field name is built only on
/// error (an autoclosure). Duplicate keys: the last one wins, as in Python's `json`.
struct JSONScanner {
    let base: UnsafePointer<UInt8>
    let count: Int
    let file: String
    var position = 0

    /// The half-open byte range of a key's raw text (between the quotes) and whether it holds escapes.
    struct Key {
        let start: Int
        let end: Int
        let escaped: Bool
    }

    init(_ bytes: UnsafeBufferPointer<UInt8>, file: String) {
        // An empty buffer has no base address; point at a dummy byte that is never read.
        self.base = bytes.baseAddress ?? UnsafePointer(JSONScanner.emptyByte)
        self.count = bytes.count
        self.file = file
    }

    nonisolated(unsafe) private static let emptyByte: UnsafeMutablePointer<UInt8> = {
        let pointer = UnsafeMutablePointer<UInt8>.allocate(capacity: 1)
        pointer.initialize(to: 0)
        return pointer
    }()

    // MARK: Errors

    /// A `malformedJSON` error at `offset` (default: the current position), with 1-based line and column.
    func malformed(_ message: String, at offset: Int? = nil) -> COCOError {
        let end = min(offset ?? position, count)
        var line = 1
        var lineStart = 0
        for index in 0..<end where base[index] == UInt8(ascii: "\n") {
            line += 1
            lineStart = index + 1
        }
        return .malformedJSON(file: file, line: line, column: end - lineStart + 1, message: message)
    }

    /// The error for a value of the wrong JSON type (or malformed JSON if the value is not JSON at all).
    mutating func mistyped(_ field: String, expected: String) -> COCOError {
        let start = position
        do {
            try skipValue()
        } catch {
            return error
        }
        position = start
        return .invalidField(file: file, field: field, expected: expected)
    }

    // MARK: Structure

    @inline(__always)
    mutating func skipWhitespace() {
        while position < count {
            let byte = base[position]
            // JSON whitespace: space, tab, line feed, carriage return.
            guard byte == 0x20 || byte == 0x0A || byte == 0x0D || byte == 0x09 else { return }
            position += 1
        }
    }

    /// The next non-whitespace byte, or 0 at the end of input (0 never starts a JSON value).
    @inline(__always)
    mutating func peek() -> UInt8 {
        skipWhitespace()
        return position < count ? base[position] : 0
    }

    /// Requires the end of the document (only whitespace may follow the top-level value).
    mutating func expectEnd() throws(COCOError) {
        if peek() != 0 || position < count { throw malformed("extra data after the top-level value") }
    }

    /// Consumes `{`; a different value is `invalidField(field, "an object")`.
    mutating func beginObject(_ field: @autoclosure () -> String) throws(COCOError) {
        guard peek() == UInt8(ascii: "{") else { throw mistyped(field(), expected: "an object") }
        position += 1
    }

    /// Consumes `[`; a different value is `invalidField(field, expected)`.
    mutating func beginArray(_ field: @autoclosure () -> String, expected: @autoclosure () -> String = "an array") throws(COCOError) {
        guard peek() == UInt8(ascii: "[") else { throw mistyped(field(), expected: expected()) }
        position += 1
    }

    /// Moves to the next member of an object begun with `beginObject`: returns its key (the `:` is
    /// consumed) or nil after the closing `}`. `first` must start true for each object.
    @inline(__always)
    mutating func nextKey(_ first: inout Bool) throws(COCOError) -> Key? {
        let byte = peek()
        if first {
            first = false
            if byte == UInt8(ascii: "}") { position += 1; return nil }
        } else if byte == UInt8(ascii: ",") {
            position += 1
        } else if byte == UInt8(ascii: "}") {
            position += 1
            return nil
        } else {
            throw malformed("expected ',' or '}' in an object")
        }
        guard peek() == UInt8(ascii: "\"") else { throw malformed("expected a string key in an object") }
        let key = try scanString()
        guard peek() == UInt8(ascii: ":") else { throw malformed("expected ':' after an object key") }
        position += 1
        return key
    }

    /// Moves to the next element of an array begun with `beginArray`: true if an element follows,
    /// false after the closing `]`. `first` must start true for each array.
    @inline(__always)
    mutating func nextElement(_ first: inout Bool) throws(COCOError) -> Bool {
        let byte = peek()
        if first {
            first = false
            if byte == UInt8(ascii: "]") { position += 1; return false }
            return true
        }
        if byte == UInt8(ascii: ",") { position += 1; return true }
        if byte == UInt8(ascii: "]") { position += 1; return false }
        throw malformed("expected ',' or ']' in an array")
    }

    /// Whether `key` spells `name` (after decoding escapes, so `"image\u005fid"` is `image_id`).
    @inline(__always)
    func key(_ key: Key, is name: StaticString) -> Bool {
        let length = name.utf8CodeUnitCount
        if !key.escaped {
            return key.end - key.start == length && memcmp(base + key.start, name.utf8Start, length) == 0
        }
        guard let decoded = try? decodeString(key.start, key.end) else { return false }
        return decoded.elementsEqual(UnsafeBufferPointer(start: name.utf8Start, count: length))
    }

    /// The key's text, for messages.
    func keyText(_ key: Key) -> String {
        let bytes = (try? decodeString(key.start, key.end)) ?? []
        return String(decoding: bytes, as: UTF8.self)
    }

    // MARK: Values

    /// Skips one value of any type, checking that it is valid JSON.
    mutating func skipValue(depth: Int = 0) throws(COCOError) {
        guard depth < 1000 else { throw malformed("nesting deeper than 1000 levels") }
        switch peek() {
        case UInt8(ascii: "{"):
            position += 1
            var first = true
            while try nextKey(&first) != nil { try skipValue(depth: depth + 1) }
        case UInt8(ascii: "["):
            position += 1
            var first = true
            while try nextElement(&first) { try skipValue(depth: depth + 1) }
        case UInt8(ascii: "\""):
            _ = try scanString()
        case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"):
            _ = try scanNumber()
        case UInt8(ascii: "t"): try expectLiteral("true")
        case UInt8(ascii: "f"): try expectLiteral("false")
        case UInt8(ascii: "n"): try expectLiteral("null")
        case 0: throw malformed("unexpected end of input, expected a value")
        default: throw malformed("expected a value")
        }
    }

    private mutating func expectLiteral(_ literal: StaticString) throws(COCOError) {
        let length = literal.utf8CodeUnitCount
        guard count - position >= length, memcmp(base + position, literal.utf8Start, length) == 0 else {
            throw malformed("invalid literal, expected \(literal)")
        }
        position += length
    }

    /// Reads a number (integer or not) as the nearest Double, like Python's `float`/`int` then NumPy's cast.
    @inline(__always)
    mutating func readDouble(_ field: @autoclosure () -> String) throws(COCOError) -> Double {
        let byte = peek()
        guard byte == UInt8(ascii: "-") || (byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9")) else {
            throw mistyped(field(), expected: "a number")
        }
        return try scanNumber().doubleValue(base)
    }

    /// Reads an integer-valued number (`7`, `7.0`, `7e0`) as Int; Python hashes 7.0 as 7, so ids
    /// written as floats still match.
    @inline(__always)
    mutating func readInteger(_ field: @autoclosure () -> String) throws(COCOError) -> Int {
        let byte = peek()
        guard byte == UInt8(ascii: "-") || (byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9")) else {
            throw mistyped(field(), expected: "an integer")
        }
        let start = position
        let number = try scanNumber()
        if let value = number.exactInteger { return value }
        let value = number.doubleValue(base)
        // 2^63 is exactly representable; every integral Double below it converts exactly.
        guard value == value.rounded(.towardZero), abs(value) < 9.223372036854775808e18 else {
            position = start
            throw COCOError.invalidField(file: file, field: field(), expected: "an integer")
        }
        return Int(value)
    }

    /// Reads `true`, `false` or an integer as a flag (nonzero is true), as Python's truth test does.
    mutating func readFlag(_ field: @autoclosure () -> String) throws(COCOError) -> Bool {
        switch peek() {
        case UInt8(ascii: "t"): try expectLiteral("true"); return true
        case UInt8(ascii: "f"): try expectLiteral("false"); return false
        case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"):
            return try readInteger(field()) != 0
        default:
            throw mistyped(field(), expected: "0, 1, true or false")
        }
    }

    /// Reads a string value, escapes decoded; invalid UTF-8 is malformed JSON.
    mutating func readString(_ field: @autoclosure () -> String) throws(COCOError) -> String {
        guard peek() == UInt8(ascii: "\"") else { throw mistyped(field(), expected: "a string") }
        let start = position
        let key = try scanString()
        let bytes = try decodeString(key.start, key.end)
        guard let text = String(validating: bytes, as: UTF8.self) else {
            throw malformed("invalid UTF-8 in a string", at: start)
        }
        return text
    }

    /// Reads a box: an array of exactly 4 numbers `[x, y, width, height]`.
    @inline(__always)
    mutating func readBox(_ field: @autoclosure () -> String) throws(COCOError) -> COCOBox {
        let expected = "an array of 4 numbers"
        try beginArray(field(), expected: expected)
        var values = (0.0, 0.0, 0.0, 0.0)
        var first = true
        var index = 0
        while try nextElement(&first) {
            let byte = peek()
            guard byte == UInt8(ascii: "-") || (byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9")) else {
                throw mistyped("\(field())[\(index)]", expected: "a number")
            }
            let value = try scanNumber().doubleValue(base)
            switch index {
            case 0: values.0 = value
            case 1: values.1 = value
            case 2: values.2 = value
            case 3: values.3 = value
            default: throw COCOError.invalidField(file: file, field: field(), expected: expected)
            }
            index += 1
        }
        guard index == 4 else { throw COCOError.invalidField(file: file, field: field(), expected: expected) }
        return COCOBox(x: values.0, y: values.1, width: values.2, height: values.3)
    }

    // MARK: Tokens

    /// Scans a string token at `position` (which holds `"`); returns the raw content range.
    @inline(__always)
    mutating func scanString() throws(COCOError) -> Key {
        position += 1
        let start = position
        var escaped = false
        while position < count {
            let byte = base[position]
            if byte == UInt8(ascii: "\"") {
                let key = Key(start: start, end: position, escaped: escaped)
                position += 1
                return key
            }
            if byte == UInt8(ascii: "\\") {
                escaped = true
                guard position + 1 < count else { break }
                switch base[position + 1] {
                case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"), UInt8(ascii: "b"),
                     UInt8(ascii: "f"), UInt8(ascii: "n"), UInt8(ascii: "r"), UInt8(ascii: "t"):
                    position += 2
                case UInt8(ascii: "u"):
                    guard position + 6 <= count, (2..<6).allSatisfy({ hexValue(base[position + $0]) != nil }) else {
                        throw malformed("invalid \\u escape in a string")
                    }
                    position += 6
                default:
                    throw malformed("invalid escape in a string")
                }
                continue
            }
            // Control characters must be escaped in JSON strings (Python's strict mode agrees).
            if byte < 0x20 { throw malformed("unescaped control character in a string") }
            position += 1
        }
        throw malformed("unterminated string", at: start - 1)
    }

    /// The bytes of a string's content with escapes decoded (UTF-8; `\u` pairs joined; a lone
    /// surrogate becomes U+FFFD).
    func decodeString(_ start: Int, _ end: Int) throws(COCOError) -> [UInt8] {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(end - start)
        var index = start
        while index < end {
            let byte = base[index]
            guard byte == UInt8(ascii: "\\") else {
                bytes.append(byte)
                index += 1
                continue
            }
            let kind = base[index + 1]
            index += 2
            switch kind {
            case UInt8(ascii: "b"): bytes.append(0x08)
            case UInt8(ascii: "f"): bytes.append(0x0C)
            case UInt8(ascii: "n"): bytes.append(0x0A)
            case UInt8(ascii: "r"): bytes.append(0x0D)
            case UInt8(ascii: "t"): bytes.append(0x09)
            case UInt8(ascii: "u"):
                var scalar = hex4(index)
                index += 4
                if (0xD800..<0xDC00).contains(scalar), index + 6 <= end,
                   base[index] == UInt8(ascii: "\\"), base[index + 1] == UInt8(ascii: "u") {
                    let low = hex4(index + 2)
                    if (0xDC00..<0xE000).contains(low) {
                        scalar = 0x10000 + ((scalar - 0xD800) << 10) + (low - 0xDC00)
                        index += 6
                    }
                }
                let character = Unicode.Scalar(scalar) ?? "\u{FFFD}"
                bytes.append(contentsOf: Array(String(Character(character)).utf8))
            default: bytes.append(kind)  // " \ /
            }
        }
        return bytes
    }

    private func hex4(_ index: Int) -> UInt32 {
        var value: UInt32 = 0
        for offset in 0..<4 { value = value << 4 | UInt32(hexValue(base[index + offset]) ?? 0) }
        return value
    }

    /// Scans a number token at `position` with the RFC 8259 grammar
    /// `-? (0 | [1-9][0-9]*) (. [0-9]+)? ([eE] [+-]? [0-9]+)?`.
    @inline(__always)
    mutating func scanNumber() throws(COCOError) -> NumberToken {
        let start = position
        var index = position
        var negative = false
        if base[index] == UInt8(ascii: "-") {
            negative = true
            index += 1
        }
        guard index < count, isDigit(base[index]) else { throw malformed("invalid number", at: index) }
        var mantissa: UInt64 = 0
        var digits = 0  // significant digits kept in `mantissa` (at most 19)
        var exponent = 0
        var truncated = false
        var isInteger = true
        if base[index] == UInt8(ascii: "0") {
            index += 1
        } else {
            while index < count, isDigit(base[index]) {
                let digit = UInt64(base[index] &- UInt8(ascii: "0"))
                if digits < 19 {
                    mantissa = mantissa &* 10 &+ digit
                    digits += 1
                } else {
                    exponent += 1
                    if digit != 0 { truncated = true }
                }
                index += 1
            }
        }
        if index < count, base[index] == UInt8(ascii: ".") {
            isInteger = false
            index += 1
            guard index < count, isDigit(base[index]) else { throw malformed("invalid number: no digit after '.'", at: index) }
            while index < count, isDigit(base[index]) {
                let digit = UInt64(base[index] &- UInt8(ascii: "0"))
                if digits < 19 {
                    mantissa = mantissa &* 10 &+ digit
                    if mantissa != 0 { digits += 1 }
                    exponent -= 1
                } else if digit != 0 {
                    truncated = true
                }
                index += 1
            }
        }
        if index < count, base[index] | 0x20 == UInt8(ascii: "e") {
            isInteger = false
            index += 1
            var exponentNegative = false
            if index < count, base[index] == UInt8(ascii: "+") || base[index] == UInt8(ascii: "-") {
                exponentNegative = base[index] == UInt8(ascii: "-")
                index += 1
            }
            guard index < count, isDigit(base[index]) else { throw malformed("invalid number: no digit in the exponent", at: index) }
            var value = 0
            while index < count, isDigit(base[index]) {
                // Saturate: beyond ±100000 every value is 0 or infinity anyway.
                if value < 100_000 { value = value * 10 + Int(base[index] &- UInt8(ascii: "0")) }
                index += 1
            }
            exponent += exponentNegative ? -value : value
        }
        position = index
        return NumberToken(start: start, end: index, negative: negative, mantissa: mantissa,
                           exponent: exponent, truncated: truncated, isInteger: isInteger)
    }
}

/// A scanned number: `±mantissa × 10^exponent`, exact unless `truncated` (more than 19 significant digits).
struct NumberToken {
    let start: Int
    let end: Int
    let negative: Bool
    let mantissa: UInt64
    let exponent: Int
    let truncated: Bool
    let isInteger: Bool

    /// The value as Int when the token is a plain integer that fits, else nil.
    var exactInteger: Int? {
        guard isInteger, !truncated, exponent == 0 else { return nil }
        if mantissa <= UInt64(Int.max) { return negative ? -Int(mantissa) : Int(mantissa) }
        return negative && mantissa == UInt64(Int.max) + 1 ? Int.min : nil
    }

    /// The nearest Double (round half to even), as `strtod` and Python's `float` give it.
    @inline(__always)
    func doubleValue(_ base: UnsafePointer<UInt8>) -> Double {
        // Clinger's fast path: an exact mantissa (≤ 2^53) times an exact power of ten (≤ 10^22)
        // is one correctly rounded IEEE operation.
        if !truncated, mantissa <= 1 << 53, exponent >= -22, exponent <= 22 {
            let magnitude = Double(mantissa)
            let value = exponent >= 0 ? magnitude * exactPowersOfTen[exponent] : magnitude / exactPowersOfTen[-exponent]
            return negative ? -value : value
        }
        return parseWithStrtod(base + start, end - start)
    }
}

/// 10^0 … 10^22, all exactly representable as Double.
let exactPowersOfTen: [Double] = [
    1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11,
    1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22,
]

/// Whether the C library reads '.' as the decimal point (the "C" locale every process starts in;
/// nothing in detq calls `setlocale`). If not, numbers go through Swift's locale-free parser.
private let strtodReadsDecimalPoint: Bool = {
    guard let conventions = localeconv(), let point = conventions.pointee.decimal_point else { return false }
    return strcmp(point, ".") == 0
}()

/// Correctly rounded conversion of `length` bytes of a JSON number by the C library.
private func parseWithStrtod(_ text: UnsafePointer<UInt8>, _ length: Int) -> Double {
    guard strtodReadsDecimalPoint else {
        return Double(String(decoding: UnsafeBufferPointer(start: text, count: length), as: UTF8.self)) ?? .nan
    }
    return withUnsafeTemporaryAllocation(of: CChar.self, capacity: length + 1) { buffer in
        guard let pointer = buffer.baseAddress else { return .nan }
        text.withMemoryRebound(to: CChar.self, capacity: length) { source in
            pointer.update(from: source, count: length)
        }
        pointer[length] = 0
        return strtod(pointer, nil)
    }
}

@inline(__always)
private func isDigit(_ byte: UInt8) -> Bool { byte &- UInt8(ascii: "0") < 10 }

private func hexValue(_ byte: UInt8) -> UInt8? {
    switch byte {
    case UInt8(ascii: "0")...UInt8(ascii: "9"): return byte - UInt8(ascii: "0")
    case UInt8(ascii: "a")...UInt8(ascii: "f"): return byte - UInt8(ascii: "a") + 10
    case UInt8(ascii: "A")...UInt8(ascii: "F"): return byte - UInt8(ascii: "A") + 10
    default: return nil
    }
}
