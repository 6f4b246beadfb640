// Tests the restricted unpickler on hand-made pickles (opcodes, memo, sharing, refusals).

import Testing
@testable import Checkpoints

@Suite("restricted unpickler")
struct UnpicklerTests {
    func unpickle(_ bytes: [UInt8]) throws -> PickleValue {
        var unpickler = Unpickler(path: "test.pkl", part: "data.pkl", bytes: bytes) { _ in .none }
        return try unpickler.load()
    }

    @Test("protocol 2 numbers: BININT, BININT1, BININT2, LONG1 (negative and wide), BINFLOAT")
    func numbers() throws {
        // [ -2, 255, 513, LONG1(-129), 2**70, 1.5 ] as Python's pickle.dumps(protocol=2) writes them.
        let bytes: [UInt8] = [0x80, 0x02, 0x5D, 0x28,
                              0x4A, 0xFE, 0xFF, 0xFF, 0xFF,
                              0x4B, 0xFF,
                              0x4D, 0x01, 0x02,
                              0x8A, 0x02, 0x7F, 0xFF,
                              0x8A, 0x09, 0, 0, 0, 0, 0, 0, 0, 0, 0x40,
                              0x47, 0x3F, 0xF8, 0, 0, 0, 0, 0, 0,
                              0x65, 0x2E]
        guard case let .list(list) = try unpickle(bytes) else { Issue.record("not a list"); return }
        let items = list.items
        #expect(items.count == 6)
        if case let .int(value) = items[0] { #expect(value == -2) } else { Issue.record("BININT") }
        if case let .int(value) = items[1] { #expect(value == 255) } else { Issue.record("BININT1") }
        if case let .int(value) = items[2] { #expect(value == 513) } else { Issue.record("BININT2") }
        if case let .int(value) = items[3] { #expect(value == -129) } else { Issue.record("LONG1") }
        if case let .bigInt(raw) = items[4] { #expect(raw == [0, 0, 0, 0, 0, 0, 0, 0, 0x40]) } else { Issue.record("wide LONG1") }
        if case let .float(value) = items[5] { #expect(value == 1.5) } else { Issue.record("BINFLOAT") }
    }

    @Test("the memo shares one object: a list appended to after BINGET is seen through both references")
    func memoSharing() throws {
        // d = {}; l = []; d['x'] = l; d['y'] = l (memo) ; then APPEND 7 to l via BINGET.
        let bytes: [UInt8] = [0x80, 0x02, 0x7D, 0x71, 0x00,
                              0x58, 0x01, 0, 0, 0, 0x78, 0x5D, 0x71, 0x01, 0x73,
                              0x58, 0x01, 0, 0, 0, 0x79, 0x68, 0x01, 0x73,
                              0x68, 0x01, 0x4B, 0x07, 0x61, 0x30,
                              0x2E]
        guard case let .dict(dict) = try unpickle(bytes), case let .list(x)? = dict["x"], case let .list(y)? = dict["y"] else {
            Issue.record("unexpected structure"); return
        }
        #expect(x === y)
        #expect(x.items.count == 1)
    }

    @Test("globals outside the allow-list are refused by name, via GLOBAL and STACK_GLOBAL")
    func forbiddenGlobals() {
        let global: [UInt8] = [0x80, 0x02, 0x63] + Array("builtins\neval\n".utf8) + [0x2E]
        #expect(checkpointErrorDescription { _ = try unpickle(global) } == "checkpoint test.pkl: forbidden global 'builtins.eval'")
        let stackGlobal: [UInt8] = [0x80, 0x04, 0x8C, 0x02] + Array("os".utf8) + [0x8C, 0x05] + Array("popen".utf8) + [0x93, 0x2E]
        #expect(checkpointErrorDescription { _ = try unpickle(stackGlobal) } == "checkpoint test.pkl: forbidden global 'os.popen'")
        // torch.storage._load_from_bytes would run torch.load on nested bytes: refused.
        let nested: [UInt8] = [0x80, 0x02, 0x63] + Array("torch.storage\n_load_from_bytes\n".utf8) + [0x2E]
        #expect(checkpointErrorDescription { _ = try unpickle(nested) }.contains("forbidden global 'torch.storage._load_from_bytes'"))
    }

    @Test("hostile nesting is bounded: deep tuples are refused, deep and cyclic lists are torn down without recursion")
    func hostileNesting() throws {
        let deepTuples: [UInt8] = [0x80, 0x02, 0x4E] + [UInt8](repeating: 0x85, count: 101) + [0x2E]
        #expect(checkpointErrorDescription { _ = try unpickle(deepTuples) }.contains("tuples nest deeper than 100 levels"))

        // A 300,000-deep chain of lists built with a constant stack through the memo, then a
        // list appended to itself; releasing either recursively would overflow the stack.
        var chain: [UInt8] = [0x80, 0x02, 0x5D, 0x71, 0x00, 0x68, 0x00]
        for _ in 0..<300_000 { chain += [0x5D, 0x71, 0x01, 0x61, 0x30, 0x68, 0x01] }
        chain += [0x30, 0x68, 0x00, 0x68, 0x00, 0x61, 0x2E]
        let arena = PickleArena()
        var unpickler = Unpickler(path: "deep.pkl", part: "data.pkl", bytes: chain, arena: arena) { _ in .none }
        guard case let .list(root) = try unpickler.load() else { Issue.record("not a list"); return }
        var depth = 0
        var cursor = root
        while case let .list(next)? = cursor.items.first { depth += 1; cursor = next }
        #expect(depth == 300_000)
        #expect(root.items.count == 2)
        arena.tearDown()
        #expect(root.items.isEmpty)
    }

    @Test("a persistent id the loader rejects is reported at the BINPERSID opcode's offset")
    func persistentIDProblem() {
        // NONE, NONE, BINPERSID (at byte 4), STOP
        let bytes: [UInt8] = [0x80, 0x02, 0x4E, 0x4E, 0x51, 0x2E]
        var unpickler = Unpickler(path: "ids.pkl", part: "data.pkl", bytes: bytes) { _ in
            throw PersistentIDProblem(problem: "persistent id is not a tuple")
        }
        #expect(checkpointErrorDescription { _ = try unpickler.load() }
            == "checkpoint ids.pkl: data.pkl at byte 4: persistent id is not a tuple")
    }

    @Test("malformed pickles throw: unknown opcode, underflow, missing STOP, bad memo, oversized length")
    func malformed() {
        let cases: [([UInt8], String)] = [
            ([0x80, 0x02, 0x82, 0x01, 0x2E], "unsupported pickle opcode 0x82"),
            ([0x80, 0x02, 0x2E], "stack underflow"),
            ([0x80, 0x02, 0x4E], "pickle ends before STOP"),
            ([0x80, 0x02, 0x68, 0x05, 0x2E], "memo entry 5 is not defined"),
            ([0x80, 0x02, 0x58, 0xFF, 0xFF, 0xFF, 0x7F, 0x2E], "runs past the end of the pickle"),
            ([0x80, 0x02, 0x4E, 0x28, 0x4B, 0x01, 0x65, 0x2E], "APPEND to a None"),
            ([0x80, 0x02, 0x4E, 0x4E, 0x52, 0x2E], "REDUCE on a non-callable"),
        ]
        for (bytes, problem) in cases {
            let message = checkpointErrorDescription { _ = try unpickle(bytes) }
            #expect(message.hasPrefix("checkpoint test.pkl: data.pkl at byte "), "\(message)")
            #expect(message.contains(problem), "\(message)")
        }
    }
}
