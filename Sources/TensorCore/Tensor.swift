// The tensor value type every detq module computes with: contiguous Float32, row-major.

/// A contiguous, row-major Float32 tensor.
///
/// Activations are `[N, C, H, W]`, conv weights `[O, I/groups, kH, kW]`, linear weights
/// `[out, in]` — torchvision's layouts, so checkpoint keys map by name with no transposes.
/// Storage is a Swift array (copy on write); kernels reach it through the unsafe buffer
/// accessors below.
public struct Tensor: Sendable, Equatable {
    /// The extent of each axis; the product equals `scalars.count`.
    public private(set) var shape: [Int]
    /// The values in row-major order.
    public var scalars: [Float]

    /// A tensor with the given shape and values; `scalars.count` must equal the shape's product.
    public init(shape: [Int], scalars: [Float]) {
        precondition(shape.allSatisfy { $0 >= 0 }, "Tensor: negative extent in shape \(shape)")
        precondition(shape.reduce(1, *) == scalars.count,
                     "Tensor: shape \(shape) needs \(shape.reduce(1, *)) values, got \(scalars.count)")
        self.shape = shape
        self.scalars = scalars
    }

    /// A tensor of `shape` filled with `value`.
    public init(repeating value: Float, shape: [Int]) {
        self.init(shape: shape, scalars: [Float](repeating: value, count: shape.reduce(1, *)))
    }

    /// A tensor of `shape` filled with zeros.
    public init(zeros shape: [Int]) {
        self.init(repeating: 0, shape: shape)
    }

    /// A rank-0 tensor.
    public init(scalar: Float) {
        self.init(shape: [], scalars: [scalar])
    }

    /// A tensor whose values are written by `body` into uninitialized storage of `shape`'s size.
    /// `body` must write every element.
    public init(shape: [Int], unsafeUninitialized body: (UnsafeMutableBufferPointer<Float>) -> Void) {
        let count = shape.reduce(1, *)
        let values = [Float](unsafeUninitializedCapacity: count) { buffer, initialized in
            body(buffer)
            initialized = count
        }
        self.init(shape: shape, scalars: values)
    }

    /// Number of elements.
    @inlinable public var count: Int { scalars.count }
    /// Number of axes.
    @inlinable public var rank: Int { shape.count }

    /// The same values viewed with another shape of equal element count; one axis may be -1.
    public func reshaped(_ newShape: [Int]) -> Tensor {
        var resolved = newShape
        if let inferred = newShape.firstIndex(of: -1) {
            let known = newShape.enumerated().filter { $0.offset != inferred }.map(\.element).reduce(1, *)
            precondition(known > 0 && count % known == 0, "reshaped: cannot infer \(newShape) from \(shape)")
            resolved[inferred] = count / known
        }
        precondition(resolved.reduce(1, *) == count, "reshaped: \(shape) cannot become \(newShape)")
        var copy = self
        copy.shape = resolved
        return copy
    }

    /// Calls `body` with a pointer to the contiguous values.
    @inlinable
    public func withUnsafeBufferPointer<R>(_ body: (UnsafeBufferPointer<Float>) throws -> R) rethrows -> R {
        try scalars.withUnsafeBufferPointer(body)
    }

    /// Calls `body` with a mutable pointer to the contiguous values.
    @inlinable
    public mutating func withUnsafeMutableBufferPointer<R>(
        _ body: (inout UnsafeMutableBufferPointer<Float>) throws -> R
    ) rethrows -> R {
        try scalars.withUnsafeMutableBufferPointer(body)
    }

    /// Row-major strides of `shape`, in elements.
    public var strides: [Int] {
        var result = [Int](repeating: 1, count: shape.count)
        var stride = 1
        for axis in shape.indices.reversed() {
            result[axis] = stride
            stride *= shape[axis]
        }
        return result
    }

    /// The element at a full multi-index (for tests and slow paths).
    public subscript(index: Int...) -> Float {
        get { scalars[flatIndex(index)] }
        set { scalars[flatIndex(index)] = newValue }
    }

    private func flatIndex(_ index: [Int]) -> Int {
        precondition(index.count == shape.count, "Tensor subscript: \(index.count) indices for shape \(shape)")
        var flat = 0
        for (axis, i) in index.enumerated() {
            precondition(i >= 0 && i < shape[axis], "Tensor subscript: index \(index) out of shape \(shape)")
            flat = flat * shape[axis] + i
        }
        return flat
    }
}

/// A height/width pair for kernel sizes, strides, paddings and dilations.
/// Integer literals mean the same value on both axes, as torch's `_pair`.
public struct Size2: Sendable, Hashable, ExpressibleByIntegerLiteral, CustomStringConvertible {
    public var h: Int
    public var w: Int
    public init(_ h: Int, _ w: Int) { self.h = h; self.w = w }
    public init(_ both: Int) { self.init(both, both) }
    public init(integerLiteral value: Int) { self.init(value, value) }
    public var description: String { "(\(h), \(w))" }
}
