import NIOCore
import NIOWebSocket
import Testing

@testable import EngineIO

@Suite struct WebSocketMessageAssemblerTests {
    private func frame(_ opcode: WebSocketOpcode, _ text: String, fin: Bool = true) -> WebSocketFrame {
        WebSocketFrame(fin: fin, opcode: opcode, data: ByteBuffer(string: text))
    }

    @Test func anUnfragmentedMessagePassesStraightThrough() throws {
        var assembler = WebSocketMessageAssembler(maxMessageSize: 10, maxFragments: 4)
        let message = try assembler.receive(frame(.text, "4hello"))
        #expect(message == .init(opcode: .text, data: ByteBuffer(string: "4hello")))
    }

    @Test func fragmentsAreJoinedUnderTheFirstFramesOpcode() throws {
        var assembler = WebSocketMessageAssembler(maxMessageSize: 10, maxFragments: 4)
        #expect(try assembler.receive(frame(.binary, "ab", fin: false)) == nil)
        #expect(try assembler.receive(frame(.continuation, "cd", fin: false)) == nil)
        #expect(try assembler.receive(frame(.continuation, "ef")) == .init(opcode: .binary, data: ByteBuffer(string: "abcdef")))
        // And the next message starts afresh.
        #expect(try assembler.receive(frame(.text, "4x")) == .init(opcode: .text, data: ByteBuffer(string: "4x")))
    }

    @Test func limitsAndOutOfPlaceFramesFail() {
        var assembler = WebSocketMessageAssembler(maxMessageSize: 5, maxFragments: 2)
        #expect(throws: WebSocketMessageAssembler.Failure.unexpectedFrame) { try assembler.receive(frame(.continuation, "x")) }
        #expect(throws: WebSocketMessageAssembler.Failure.tooLarge) {
            _ = try assembler.receive(frame(.text, "abc", fin: false))
            _ = try assembler.receive(frame(.continuation, "def"))
        }
        #expect(throws: WebSocketMessageAssembler.Failure.tooManyFragments) {
            _ = try assembler.receive(frame(.text, "a", fin: false))
            _ = try assembler.receive(frame(.continuation, "b", fin: false))
            _ = try assembler.receive(frame(.continuation, "c"))
        }
        #expect(throws: WebSocketMessageAssembler.Failure.unexpectedFrame) {
            _ = try assembler.receive(frame(.text, "a", fin: false))
            _ = try assembler.receive(frame(.text, "b"))
        }
    }
}
