// Round half to even, for floats and for integer division: the one rounding rule of docs/arcq.md.

/// `rnd(x)`: the nearest integer, ties to the even one (`2.5 → 2`, `3.5 → 4`, `−2.5 → −2`).
/// Swift's plain `rounded()` sends ties away from zero; every quantizer in detq uses this.
@inlinable
public func roundHalfEven(_ x: Float) -> Float {
    // Below 2^22, adding and removing 1.5·2^23 rounds to an integer in the FPU's
    // round-to-nearest-even mode, without a call to rintf (x86-64's baseline has no roundss).
    if abs(x) < 4_194_304 {
        let magic: Float = 12_582_912
        return (x + magic) - magic
    }
    return x.rounded(.toNearestOrEven)
}

/// `rnd(x)` in Double, ties to even.
@inlinable
public func roundHalfEven(_ x: Double) -> Double {
    x.rounded(.toNearestOrEven)
}

/// `rnd(numerator / denominator)` computed exactly on integers, ties to even.
///
/// `denominator` must be positive. ARCQ's integer compensation is
/// `roundDivHalfEven(Q_a·(X_c ⊛ D_w) + Q_w·(D_a ⊛ W_c), Q_a·Q_w)`.
@inlinable
public func roundDivHalfEven(_ numerator: Int64, _ denominator: Int64) -> Int64 {
    precondition(denominator > 0, "roundDivHalfEven: denominator \(denominator) must be positive")
    // Floor division first: numerator = quotient·denominator + remainder, 0 ≤ remainder < denominator.
    var quotient = numerator / denominator
    var remainder = numerator % denominator
    if remainder < 0 {
        quotient -= 1
        remainder += denominator
    }
    let twice = 2 * remainder
    if twice > denominator || (twice == denominator && quotient & 1 != 0) { quotient += 1 }
    return quotient
}

/// `roundDivHalfEven(n, d)` for one positive `d` and many `n` held as Doubles (integers, exact
/// below 2^53), without a 64-bit division per call: while `|n| < 2^50`, `rnd(n·(1/d))` is within
/// one of the answer and the remainder `n − q·d` (exact: integers below 2^53) steps it there,
/// ties to the even quotient; larger numerators take `roundDivHalfEven`. Equal to it for every
/// such input (tested on ties, numerators next to a multiple, and both sides of the bound).
public struct HalfEvenDivision: Sendable {
    public let divisor: Int64
    @usableFromInline let reciprocal: Double
    /// Numerators below this use the reciprocal (none for divisors from 2^50 on).
    @usableFromInline let bound: Double

    public init(divisor: Int64) {
        precondition(divisor > 0, "HalfEvenDivision: divisor \(divisor) must be positive")
        self.divisor = divisor
        reciprocal = 1 / Double(divisor)
        bound = divisor < 1 << 50 ? 0x1p50 : 0
    }

    @inlinable @inline(__always)
    public func callAsFunction(_ numerator: Double) -> Double {
        guard abs(numerator) < bound else { return Double(roundDivHalfEven(Int64(numerator), divisor)) }
        return quotientBelowBound(numerator)
    }

    /// The reciprocal's path alone, without branches: equal to the call for every integer
    /// `numerator` with `|numerator| < bound`, meaningless past it.
    @inlinable @inline(__always)
    func quotientBelowBound(_ numerator: Double) -> Double {
        let magic = 6_755_399_441_055_744.0  // 1.5·2^52: (x + magic) − magic rounds x to an integer, ties to even
        let d = Double(divisor), half = 0.5 * d
        let quotient = (numerator * reciprocal + magic) - magic
        let remainder = numerator - quotient * d
        // Odd: half of it is not an integer.
        let halves = 0.5 * quotient
        let odd = halves != (halves + magic) - magic
        let up: Double = remainder > half || (remainder == half && odd) ? 1 : 0
        let down: Double = remainder < -half || (remainder == -half && odd) ? 1 : 0
        return quotient + up - down
    }

    /// `quotientBelowBound` for an odd divisor, where no quotient is a tie: `n/d` lies at least
    /// `1/(2d)` from every half-integer, and below the bound `n·(1/d)` is within `|n|·2^−52/d
    /// ≤ 1/(4d)` of it, so rounding that product alone is exact. Meaningless for an even divisor.
    @inline(__always)
    func oddQuotientBelowBound(_ numerator: Double) -> Double {
        let magic = 6_755_399_441_055_744.0
        return (numerator * reciprocal + magic) - magic
    }
}
