// Activation quantizers at the input of a quantized layer: static (calibrated) or dynamic ranges, per call index.

/// How a quantized layer quantizes its input (always per tensor, affine).
///
/// Static: `ranges[call mod ranges.count]` (one range, or one per call index of a shared head:
/// the pyramid level). Dynamic: the input's own min/max times the calibrated `clip` factors.
public struct ActivationQuantization: Sendable, Equatable {
    public var bits: Int
    public var mode: ActivationRangeMode
    /// Final (clipped) static ranges by call index; unused when dynamic.
    public var ranges: [ValueRange]
    /// Dynamic mode: factors on the input's min (`low`) and max (`high`); unused when static.
    public var clip: ValueRange

    public init(bits: Int, mode: ActivationRangeMode, ranges: [ValueRange], clip: ValueRange = ValueRange(low: 1, high: 1)) {
        precondition(mode == .dynamic || !ranges.isEmpty, "ActivationQuantization: static mode needs a range")
        self.bits = bits
        self.mode = mode
        self.ranges = ranges
        self.clip = clip
    }

    /// The quantizer of call `call` (counted from 0 within a forward) whose input spans `inputRange`.
    public func quantizer(call: Int, inputRange: ValueRange) -> AffineQuantizer {
        switch mode {
        case .static:
            let range = ranges[call % ranges.count]
            return AffineQuantizer(bits: bits, low: range.low, high: range.high)
        case .dynamic:
            return AffineQuantizer(bits: bits, low: inputRange.low * clip.low, high: inputRange.high * clip.high)
        }
    }

    /// `Q_a = 2^b − 1`.
    public var steps: Float { Float((1 << bits) - 1) }
}
