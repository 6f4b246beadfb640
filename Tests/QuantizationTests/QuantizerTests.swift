// Rounding, the affine quantizer and ARCQ's remainder codes (docs/arcq.md §1, §3).
import Foundation
import Testing
import TensorCore
@testable import Quantization

@Suite struct QuantizerTests {
    @Test func roundsHalfToEven() {
        #expect(roundHalfEven(Float(0.5)) == 0)
        #expect(roundHalfEven(Float(1.5)) == 2)
        #expect(roundHalfEven(Float(2.5)) == 2)
        #expect(roundHalfEven(Float(3.5)) == 4)
        #expect(roundHalfEven(Float(-0.5)) == 0)
        #expect(roundHalfEven(Float(-1.5)) == -2)
        #expect(roundHalfEven(Float(-2.5)) == -2)
        #expect(roundHalfEven(Float(2.5000002)) == 3)
        for k in -20...20 {
            let tie = Float(k) + 0.5
            let expected = Float(k % 2 == 0 ? k : k + 1)
            #expect(roundHalfEven(tie) == expected, "\(tie)")
        }
    }

    /// The quantizer rounds ties to even: with s = 1, z = 8, x = 2.5 gives the centred 2.
    @Test func quantizerRoundsTiesToEven() {
        let quantizer = AffineQuantizer(bits: 4, scale: 1, zeroPoint: 8)
        #expect(quantizer.centred(2.5) == 2)
        #expect(quantizer.centred(3.5) == 4)
        #expect(quantizer.centred(-2.5) == -2)
        #expect(quantizer.centred(100) == 7)
        #expect(quantizer.centred(-100) == -8)
    }

    /// Integer division rounding against a Double twin (exact for these magnitudes), ties included.
    @Test func roundDivisionMatchesDoubleTwin() {
        var generator = SeededGenerator(seed: 7)
        for _ in 0..<20_000 {
            let denominator = Int64(generator.next() % 300) + 1
            let numerator = Int64(generator.next() % 2_000_001) - 1_000_000
            let expected = (Double(numerator) / Double(denominator)).rounded(.toNearestOrEven)
            #expect(Double(roundDivHalfEven(numerator, denominator)) == expected, "\(numerator)/\(denominator)")
        }
        #expect(roundDivHalfEven(5, 2) == 2)
        #expect(roundDivHalfEven(7, 2) == 4)
        #expect(roundDivHalfEven(-5, 2) == -2)
        #expect(roundDivHalfEven(-7, 2) == -4)
    }

    /// The executor's division (a Double reciprocal, stepped by the exact remainder) and
    /// `roundDivHalfEven` against plain floor division: exact ties, numerators one off a
    /// multiple, magnitudes on both sides of 2^50 (where the executor's turns to integer
    /// division) and, for `roundDivHalfEven` alone, past a Double's 2^53; for odd denominators,
    /// the rounded product alone (`oddQuotientBelowBound`) below 2^50, on quotients as close to a
    /// half as they get.
    @Test func halfEvenDivisionEqualsIntegerDivision() {
        func reference(_ n: Int64, _ d: Int64) -> Int64 {
            var q = n / d, r = n % d
            if r < 0 { q -= 1; r += d }
            return 2 * r > d || (2 * r == d && q & 1 != 0) ? q + 1 : q
        }
        var generator = SeededGenerator(seed: 11)
        var mismatches: [String] = []
        for trial in 0..<30_000 {
            let denominator = trial % 5 == 0 ? Int64(generator.next() % 65_025) + 1 : Int64(generator.next() % (1 << 20)) + 1
            let bound: UInt64 = trial % 4 == 0 ? 1 << 54 : trial % 4 == 1 ? 1 << 24 : 1 << 50
            var numerator = Int64(generator.next() % bound) * (generator.next() % 2 == 0 ? 1 : -1)
            switch trial % 3 {
            // a tie for an even denominator; for an odd one, a quotient as close to a half as it gets
            case 0: numerator = (numerator / denominator) * denominator + denominator / 2 + (trial % 2 == 0 ? 0 : 1)
            case 1: numerator = (numerator / denominator) * denominator + (generator.next() % 2 == 0 ? 1 : -1)
            default: break
            }
            let expected = reference(numerator, denominator)
            let division = HalfEvenDivision(divisor: denominator)
            if roundDivHalfEven(numerator, denominator) != expected
                || (numerator.magnitude < 1 << 53 && division(Double(numerator)) != Double(expected))
                || (denominator % 2 == 1 && numerator.magnitude < 1 << 50
                    && division.oddQuotientBelowBound(Double(numerator)) != Double(expected)) {
                mismatches.append("\(numerator)/\(denominator)")
            }
        }
        #expect(mismatches.isEmpty, "\(mismatches.prefix(5))")
        let two = HalfEvenDivision(divisor: 2)
        #expect(two(-0x1p50 + 1) == -0x1p49)
        #expect(two(0x1p50 - 1) == 0x1p49)
        #expect(two(0x1p50 + 1) == 0x1p49)  // integer division's side of the bound; ties to the even 2^49
        #expect(two(-5) == -2 && two(-3) == -2 && two(5) == 2 && two(7) == 4)
    }

    /// `s = max((u − l)/Q, 1e-5)`, `z = rnd(−l/s)`; ranges widen to include 0; 0 is exact.
    @Test func affineParametersFollowTheDefinition() {
        let quantizer = AffineQuantizer(bits: 4, low: -1, high: 2)
        #expect(quantizer.scale == Float(3) / 15)
        #expect(quantizer.zeroPoint == 5)
        #expect(quantizer.centred(0) == 0)
        let positive = AffineQuantizer(bits: 8, low: 0.5, high: 3)
        #expect(positive.zeroPoint == 0)
        #expect(positive.scale == Float(3) / 255)
        let tiny = AffineQuantizer(bits: 4, low: 0, high: 0)
        #expect(tiny.scale == 1e-5)
        let symmetric = AffineQuantizer(bits: 4, low: -0.5, high: 2, symmetric: true)
        #expect(symmetric.zeroPoint == 8)
        #expect(symmetric.scale == Float(2) / 7)
        for bits in 2...8 {
            for (low, high) in [(-3.7, 1.2), (0.0, 5.0), (-2.0, -0.1)] as [(Float, Float)] {
                #expect(AffineQuantizer(bits: bits, low: low, high: high).centred(0) == 0)
            }
        }
    }

    /// `D = rnd(Q·R)` stays in `[−2^(b−1), 2^(b−1)]` in both modes, and with D the value is
    /// reconstructed to within half a remainder step (unclipped values).
    @Test func remainderCodesStayInRange() {
        var generator = SeededGenerator(seed: 3)
        for bits in 2...8 {
            let quantizer = AffineQuantizer(bits: bits, low: -1.3, high: 2.1)
            let bound = Float(1 << (bits - 1))
            var seenBound = false
            for _ in 0..<5000 {
                let x = -2 + 5 * generator.nextUniform()
                for mode in RemainderMode.allCases {
                    let (centred, remainder) = quantizer.centredAndRemainder(x, mode: mode)
                    #expect(remainder >= -bound && remainder <= bound, "bits \(bits) x \(x) D \(remainder)")
                    #expect(remainder == remainder.rounded())
                    if abs(remainder) == bound { seenBound = true }
                    let code = roundHalfEven(x / quantizer.scale) + Float(quantizer.zeroPoint)
                    if code >= 0 && code <= quantizer.steps {
                        let reconstructed = quantizer.scale * (centred + remainder / quantizer.steps)
                        #expect(abs(reconstructed - x) <= quantizer.scale / quantizer.steps * 0.5 + 1e-5)
                    }
                }
            }
            #expect(seenBound, "bits \(bits): the code range edge 2^(b−1) is reachable")
        }
    }

    /// Clamped mode: a clipped value's remainder carries its true residual (up to the code range).
    @Test func clampedRemainderCarriesTheClippedResidual() {
        let quantizer = AffineQuantizer(bits: 4, scale: 1, zeroPoint: 8)
        let unclamped = quantizer.centredAndRemainder(7.2, mode: .unclamped)
        let clamped = quantizer.centredAndRemainder(7.2, mode: .clamped)
        #expect(unclamped.centred == 7 && clamped.centred == 7)
        #expect(unclamped.remainder == 3)
        #expect(clamped.remainder == 3)
        let far = quantizer.centredAndRemainder(9.4, mode: .clamped)
        #expect(far.centred == 7)
        #expect(far.remainder == 8)
        let farUnclamped = quantizer.centredAndRemainder(9.4, mode: .unclamped)
        #expect(farUnclamped.remainder == roundHalfEven(15 * (Float(9.4) - 9)))
    }

    /// The integer compensation equals the float formula `rnd(S1/Q_w + S2/Q_a)`: `Q_a·Q_w` is
    /// odd, so the quotient is never a tie and Double evaluates it on the right side.
    @Test func integerCompensationEqualsFloatFormula() {
        var generator = SeededGenerator(seed: 11)
        for (wbits, abits) in [(4, 4), (2, 3), (6, 5), (7, 7)] {
            let qw = Int64((1 << wbits) - 1), qa = Int64((1 << abits) - 1)
            for _ in 0..<20_000 {
                let s1 = Int64(generator.next() % 400_001) - 200_000
                let s2 = Int64(generator.next() % 400_001) - 200_000
                let integer = roundDivHalfEven(qa * s1 + qw * s2, qa * qw)
                let float = (Double(s1) / Double(qw) + Double(s2) / Double(qa)).rounded(.toNearestOrEven)
                #expect(Double(integer) == float, "W\(wbits)A\(abits) S1 \(s1) S2 \(s2)")
            }
        }
    }
}

@Suite struct RoundingTwinTests {
    /// The fast `roundHalfEven` equals Swift's `.rounded(.toNearestOrEven)` on random values of
    /// every magnitude, ties and the 2^22 boundary included.
    @Test func fastRoundingMatchesTheLibrary() {
        var generator = SeededGenerator(seed: 21)
        var values: [Float] = [0, -0, 0.5, -0.5, 4_194_303.5, -4_194_303.5, 4_194_304.5, 8_388_607.5, 1e9, -1e9, .infinity]
        for _ in 0..<100_000 {
            let magnitude = powf(2, Float(Int(generator.next() % 30)) - 6)
            values.append((generator.nextUniform() * 2 - 1) * magnitude)
            values.append(Float(Int(generator.next() % 2_000_000)) / 2 - 500_000)
        }
        for value in values {
            #expect(roundHalfEven(value) == value.rounded(.toNearestOrEven), "\(value)")
        }
    }
}

@Suite struct BufferQuantizationTests {
    /// The buffer `quantize` (eight lanes at a time, magic-number rounding, exact functions for
    /// the tail and for any chunk with a value beyond 2^22 steps) equals `centred` and
    /// `centredAndRemainder` value by value: ties, clipped values, both remainder modes, lengths
    /// that are not multiples of 8, NaN, infinities and values far beyond the range.
    @Test func bufferQuantizeEqualsTheScalarFunctions() {
        var generator = SeededGenerator(seed: 31)
        for (bits, scale, zeroPoint) in [(4, Float(0.1), Int32(3)), (8, 0.02, 128), (2, 1.5, 0), (6, 3e-5, 63), (4, 0.125, 8)] {
            let quantizer = AffineQuantizer(bits: bits, scale: scale, zeroPoint: zeroPoint)
            for (count, extreme) in [(1, false), (13, false), (1024, false), (203, true)] {
                var values = (0..<count).map { _ in (generator.nextUniform() * 2 - 1) * scale * Float(1 << bits) * 1.5 }
                // ties: quotients k + 0.5
                for i in stride(from: 0, to: count, by: 5) { values[i] = (Float(Int(generator.next() % 40)) - 20.5) * scale }
                if extreme {
                    values[7] = 5e6 * scale
                    values[9] = 4_194_305 * scale  // an odd quotient past 2^22 (exact at scale 1/8): magic rounding makes it even
                    values[100] = .nan
                    values[150] = -.infinity
                }
                for mode in RemainderMode.allCases {
                    var centred = [Float](repeating: 0, count: count), codes = [Float](repeating: 0, count: count)
                    var plain = [Float](repeating: 0, count: count)
                    values.withUnsafeBufferPointer { source in
                        centred.withUnsafeMutableBufferPointer { target in
                            codes.withUnsafeMutableBufferPointer { codes in
                                quantizer.quantize(source, centred: target, remainders: codes, mode: mode)
                            }
                        }
                        plain.withUnsafeMutableBufferPointer { target in
                            quantizer.quantize(source, centred: target, remainders: nil, mode: mode)
                        }
                    }
                    var mismatches: [String] = []
                    for (i, value) in values.enumerated() {
                        let (c, d) = quantizer.centredAndRemainder(value, mode: mode)
                        let same = { (a: Float, b: Float) in a == b || (a.isNaN && b.isNaN) }
                        if !same(centred[i], c) || !same(codes[i], d) || !same(plain[i], quantizer.centred(value)) {
                            mismatches.append("\(value): \(centred[i]), \(codes[i]), \(plain[i]) vs \(c), \(d)")
                        }
                    }
                    #expect(mismatches.isEmpty, "W\(bits) \(mode) n=\(count): \(mismatches.prefix(3))")
                }
            }
        }
    }
}

@Suite struct RescaleTests {
    /// The executor's rescale `s_a·s_w[o]·(A + C) + bias[o]` (branch-free reciprocal path, redone
    /// with the full division when a term passes 2^50) equals the formula with `roundDivHalfEven`,
    /// output by output: each combination of compensation terms, numerators next to a multiple,
    /// an odd count, and one run with a term past the bound.
    @Test func rescaleEqualsTheFormula() {
        var generator = SeededGenerator(seed: 5)
        let (qa, qw): (Int64, Int64) = (15, 7)
        let rescale = Rescale(activationScale: 0.013, qa: qa, qw: qw, compensated: true,
                              weightScales: [0.2, 0.031], bias: [0.5, -1.25])
        for huge in [false, true] {
            let count = 37
            var sums = (0..<count).map { _ in Double(Int64(generator.next() % 20_001) - 10_000) }
            var weightTerm = (0..<count).map { _ in Double(Int64(generator.next() % 4_001) - 2_000) }
            var activationTerm = (0..<count).map { _ in Double(Int64(generator.next() % 4_001) - 2_000) }
            // Numerators one off a multiple of Q_a·Q_w (odd, as every 2^b − 1 product: no ties).
            for p in stride(from: 0, to: count, by: 4) { weightTerm[p] = Double(7 * (p + 1)); activationTerm[p] = 1 }
            // A numerator past the bound where the reciprocal's path is off by one (found by search),
            // with a sum that cancels the quotient so that the output shows it.
            if huge {
                (weightTerm[20], activationTerm[20]) = (32_556_205_542_153_792, 0)
                sums[20] = -4_650_886_506_021_970 + 5
            }
            for (useWeight, useActivation) in [(true, true), (true, false), (false, true), (false, false)] {
                for channel in 0..<2 {
                    var output = [Float](repeating: .nan, count: count)
                    sums.withUnsafeBufferPointer { s in
                        weightTerm.withUnsafeBufferPointer { w in
                            activationTerm.withUnsafeBufferPointer { a in
                                output.withUnsafeMutableBufferPointer { out in
                                    rescale(channel: channel, count: count, sums: s.baseAddress!,
                                            weightTerm: useWeight ? w.baseAddress : nil,
                                            activationTerm: useActivation ? a.baseAddress : nil, into: out.baseAddress!)
                                }
                            }
                        }
                    }
                    let scale = 0.013 * Double([Float(0.2), 0.031][channel]), bias = [Float(0.5), -1.25][channel]
                    let expected = (0..<count).map { p -> Float in
                        let terms = Int64(qa) * (useWeight ? Int64(weightTerm[p]) : 0)
                            + Int64(qw) * (useActivation ? Int64(activationTerm[p]) : 0)
                        return Float(scale * (sums[p] + Double(roundDivHalfEven(terms, qa * qw)))) + bias
                    }
                    #expect(output == expected, "huge \(huge), terms \(useWeight)/\(useActivation), channel \(channel)")
                }
            }
        }
    }
}
