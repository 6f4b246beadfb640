// The affine (asymmetric) and symmetric uniform quantizers of docs/arcq.md §1, with ARCQ's remainder codes (§3).
import TensorCore

/// How the rounding remainder of a clipped value is taken (docs/arcq.md §3).
public enum RemainderMode: String, Sendable, Codable, CaseIterable {
    /// `R = x/s − rnd(x/s)`, taken before clamping: the reference code's behaviour.
    case unclamped
    /// `R = x/s − x_c`, so clipped values carry their true residual; `D` is clamped to the code
    /// range `[−2^(b−1), 2^(b−1)]` (ours).
    case clamped
}

/// A uniform quantizer with `b` bits: `Q = 2^b − 1` steps, scale `s`, zero point `z ∈ [0, Q]`.
///
/// `q(x) = clamp(rnd(x/s) + z, 0, Q)`; the centred integer is `x_c = q(x) − z` and the
/// dequantized value `s·x_c`. Ranges always include 0 (ours: the float 0 is then exactly the
/// centred integer 0, so zero padding is exact in the centred domain).
public struct AffineQuantizer: Sendable, Equatable, Hashable {
    /// Bit width `b`, 2...8 (1...16 accepted; detq's options check 2...8).
    public let bits: Int
    /// The step `s` (at least 1e-5).
    public let scale: Float
    /// The code of the float 0, in `[0, Q]`.
    public let zeroPoint: Int32

    /// The largest code, `Q = 2^b − 1`.
    @inlinable public var maximumCode: Int32 { Int32((1 << bits) - 1) }
    /// `Q` as a Float.
    @inlinable public var steps: Float { Float((1 << bits) - 1) }
    /// The largest remainder code magnitude, `2^(b−1)`.
    @inlinable public var remainderBound: Float { Float(1 << (bits - 1)) }

    /// A quantizer with explicit parameters.
    public init(bits: Int, scale: Float, zeroPoint: Int32) {
        precondition((1...16).contains(bits), "AffineQuantizer: \(bits) bits")
        precondition(scale > 0 && scale.isFinite, "AffineQuantizer: scale \(scale) must be positive and finite")
        precondition(zeroPoint >= 0 && zeroPoint <= Int32((1 << bits) - 1),
                     "AffineQuantizer: zero point \(zeroPoint) outside [0, \((1 << bits) - 1)]")
        self.bits = bits
        self.scale = scale
        self.zeroPoint = zeroPoint
    }

    /// The quantizer for the range `[low, high]`, widened to include 0.
    ///
    /// Affine: `s = max((u − l)/Q, 1e-5)`, `z = rnd(−l/s)`. Symmetric: `z = 2^(b−1)` and
    /// `s = max(max(|l|, |u|)/(2^(b−1) − 1), 1e-5)` (codes `−2^(b−1)…2^(b−1)−1` around 0);
    /// at 1 bit the symmetric step is the magnitude itself.
    public init(bits: Int, low: Float, high: Float, symmetric: Bool = false) {
        precondition((1...16).contains(bits), "AffineQuantizer: \(bits) bits")
        let lower = min(low.isFinite ? low : 0, 0)
        let upper = max(high.isFinite ? high : 0, 0)
        let maximum = Float((1 << bits) - 1)
        if symmetric {
            let magnitude = max(-lower, upper)
            let half = Float(max(1, (1 << (bits - 1)) - 1))
            self.init(bits: bits, scale: max(magnitude / half, 1e-5), zeroPoint: Int32(1 << (bits - 1)))
        } else {
            let scale = max((upper - lower) / maximum, 1e-5)
            let zero = min(max(roundHalfEven(-lower / scale), 0), maximum)
            self.init(bits: bits, scale: scale, zeroPoint: Int32(zero))
        }
    }

    /// The centred integer `x_c = clamp(rnd(x/s) + z, 0, Q) − z`, as a Float (exact).
    @inlinable
    public func centred(_ x: Float) -> Float {
        let code = min(max(roundHalfEven(x / scale) + Float(zeroPoint), 0), steps)
        return code - Float(zeroPoint)
    }

    /// The centred integer and ARCQ's remainder code `D = rnd(Q·R)` of `x`.
    ///
    /// `unclamped`: `R = x/s − rnd(x/s)`, so `D ∈ [−2^(b−1), 2^(b−1)]`. `clamped`:
    /// `R = x/s − x_c` and `D` is clamped to that range.
    @inlinable
    public func centredAndRemainder(_ x: Float, mode: RemainderMode) -> (centred: Float, remainder: Float) {
        let quotient = x / scale
        let rounded = roundHalfEven(quotient)
        let code = min(max(rounded + Float(zeroPoint), 0), steps)
        let centred = code - Float(zeroPoint)
        switch mode {
        case .unclamped:
            return (centred, roundHalfEven(steps * (quotient - rounded)))
        case .clamped:
            let bound = remainderBound
            return (centred, min(max(roundHalfEven(steps * (quotient - centred)), -bound), bound))
        }
    }

    /// The dequantized value `s·x_c`.
    @inlinable
    public func dequantized(_ x: Float) -> Float {
        scale * centred(x)
    }

    /// The smallest and largest centred integers, `−z` and `Q − z`.
    public var centredRange: ClosedRange<Int32> { -zeroPoint...(maximumCode - zeroPoint) }
}

extension AffineQuantizer {
    /// Centred integers (and remainder codes when `remainders` is given) of `values`,
    /// written into `centred` (and `remainders`), in parallel over large inputs.
    public func quantize(_ values: UnsafeBufferPointer<Float>, centred: UnsafeMutableBufferPointer<Float>,
                         remainders: UnsafeMutableBufferPointer<Float>?, mode: RemainderMode) {
        precondition(centred.count >= values.count, "quantize: output shorter than input")
        let count = values.count
        guard count > 0, let source = values.baseAddress, let target = centred.baseAddress else { return }
        let codes = remainders?.baseAddress
        let quantizer = self
        parallelQuantize(count) { range in
            // The branch-free loop first; the exact functions take what it leaves: its tail, or the
            // whole chunk when one value was beyond its rounding.
            let exact = quantizer.quantizeRoundingByMagic(source, target, codes, range, mode: mode)
            if let codes {
                for i in exact {
                    let (c, d) = quantizer.centredAndRemainder(source[i], mode: mode)
                    target[i] = c
                    codes[i] = d
                }
            } else {
                for i in exact { target[i] = quantizer.centred(source[i]) }
            }
        }
    }

    /// `centred` and `centredAndRemainder` over the whole blocks of eight in `range`, with
    /// `roundHalfEven`'s magic-number rounding and `min`/`max` as lane selects (no branch). That
    /// rounding is exact for magnitudes below 2^22, and every value rounded here is `x/s` or a
    /// remainder argument, so the result equals the exact functions' wherever those stay below
    /// 2^22. Returns what the exact functions must still do: the last `count mod 8` values, or
    /// all of `range` (outputs to be overwritten) when a value was not below 2^22. A NaN gives
    /// NaN on both paths alike.
    @inline(__always)
    func quantizeRoundingByMagic(_ source: UnsafePointer<Float>, _ target: UnsafeMutablePointer<Float>,
                                 _ codes: UnsafeMutablePointer<Float>?, _ range: Range<Int>,
                                 mode: RemainderMode) -> Range<Int> {
        typealias Lanes = SIMD8<Float>
        // Swift's min(x, y) is `y < x ? y : x` and max(x, y) `y >= x ? y : x`, lane by lane.
        @inline(__always) func smallest(_ x: Lanes, _ y: Lanes) -> Lanes { x.replacing(with: y, where: y .< x) }
        @inline(__always) func largestOf(_ x: Lanes, _ y: Lanes) -> Lanes { x.replacing(with: y, where: y .>= x) }
        @inline(__always) func magnitude(_ x: Lanes) -> Lanes { x.replacing(with: -x, where: x .< 0) }
        @inline(__always) func rounded(_ x: Lanes) -> Lanes { (x + Lanes(repeating: 12_582_912)) - Lanes(repeating: 12_582_912) }
        let zero = Lanes(repeating: Float(zeroPoint)), steps = Lanes(repeating: steps)
        let bound = Lanes(repeating: remainderBound), scale = Lanes(repeating: scale), nothing = Lanes(repeating: 0)
        var largest = nothing
        let blocks = range.count / 8
        for block in 0..<blocks {
            let i = range.lowerBound + 8 * block
            let quotient = UnsafeRawPointer(source + i).loadUnaligned(as: Lanes.self) / scale
            let whole = rounded(quotient)
            let centred = smallest(largestOf(whole + zero, nothing), steps) - zero
            UnsafeMutableRawPointer(target + i).storeBytes(of: centred, as: Lanes.self)
            largest = largestOf(largest, magnitude(quotient))
            guard let codes else { continue }
            let remainder: Lanes
            switch mode {
            case .unclamped:
                remainder = rounded(steps * (quotient - whole))
            case .clamped:
                let argument = steps * (quotient - centred)
                largest = largestOf(largest, magnitude(argument))
                remainder = smallest(largestOf(rounded(argument), -bound), bound)
            }
            UnsafeMutableRawPointer(codes + i).storeBytes(of: remainder, as: Lanes.self)
        }
        return largest.max() < 4_194_304 ? (range.lowerBound + 8 * blocks)..<range.upperBound : range
    }
}

/// `parallelChunks` for elementwise quantization loops (about 64k values a chunk).
@inlinable
func parallelQuantize(_ count: Int, _ body: (Range<Int>) -> Void) {
    parallelChunks(count, minimumPerChunk: 65_536, body)
}
