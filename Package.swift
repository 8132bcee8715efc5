// swift-tools-version:6.1
import PackageDescription

let package = Package(
    name: "swift-socketio-chat",
    platforms: [.macOS(.v13)],
    products: [
        .library(name: "EngineIO", targets: ["EngineIO"]),
        .library(name: "SocketIO", targets: ["SocketIO"]),
        .library(name: "Redis", targets: ["Redis"]),
        .library(name: "SocketIORedis", targets: ["SocketIORedis"]),
        .library(name: "SocketIOHummingbird", targets: ["SocketIOHummingbird"]),
        .library(name: "SocketIOVapor", targets: ["SocketIOVapor"]),
        .library(name: "SocketIOTesting", targets: ["SocketIOTesting"]),
        .library(name: "SocketIOAdmin", targets: ["SocketIOAdmin"]),
        .executable(name: "chat-server", targets: ["ChatServer"]),
        .executable(name: "eio-conformance", targets: ["EIOConformance"]),
        .executable(name: "sio-conformance", targets: ["SIOConformance"]),
        .executable(name: "socketio-testbed", targets: ["SocketIOTestbed"]),
        .executable(name: "socketio-hummingbird-sample", targets: ["HummingbirdSample"]),
        .executable(name: "socketio-vapor-sample", targets: ["VaporSample"]),
        .executable(name: "socketio-bench", targets: ["SocketIOBench"]),
        .executable(name: "floor-broadcaster", targets: ["FloorBroadcaster"]),
        .executable(name: "socketio-fuzz", targets: ["SocketIOFuzz"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-nio", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-atomics", from: "1.3.0"),
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-collections", from: "1.6.0"),
        .package(url: "https://github.com/HdrHistogram/hdrhistogram-swift", from: "0.2.0"),
        .package(url: "https://github.com/apple/swift-metrics", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.4.1"),
        .package(url: "https://github.com/swiftlang/swift-docc-plugin", from: "1.5.0"),
        .package(url: "https://github.com/apple/swift-nio-ssl", from: "2.37.6"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.13.0"),
        .package(url: "https://github.com/swift-extras/swift-extras-base64", from: "1.2.0"),
        // Hosts: Socket.IO mounted in a Hummingbird app. swift-configuration support is left
        // out (a trait), which nothing here uses.
        .package(url: "https://github.com/hummingbird-project/hummingbird", from: "2.28.1", traits: ["FullFoundation"]),
        .package(url: "https://github.com/apple/swift-http-types", from: "1.8.0"),
        .package(url: "https://github.com/apple/swift-nio-extras", from: "1.35.2"),
        // Socket.IO mounted in a Vapor app. Only SocketIOVapor, its sample and the test hosts
        // use it: chat-server's build (scripts/run.sh) never compiles it.
        .package(url: "https://github.com/vapor/vapor", from: "4.122.3"),
        // zlib (through Debian's zlib1g-dev): polling responses, and chat-server's own answers.
        .package(url: "https://github.com/adam-fowler/compress-nio", from: "1.5.0"),
    ],
    targets: [
        // HTTP responses and query strings, shared by the layers that answer HTTP.
        .target(
            name: "HTTPCommon",
            dependencies: [
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
            ]
        ),
        // Layer 1: the Engine.IO v4 transport (polling, WebSocket, upgrade, heartbeat).
        .target(
            name: "EngineIO",
            dependencies: [
                "HTTPCommon",
                .product(name: "ExtrasBase64", package: "swift-extras-base64"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOWebSocket", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Atomics", package: "swift-atomics"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "CompressNIO", package: "compress-nio"),
            ]
        ),
        // Layer 2: Socket.IO v5 (namespaces, events, acks, rooms, recovery) over EngineIO.
        .target(
            name: "SocketIO",
            dependencies: [
                "EngineIO",
                "HTTPCommon",
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "DequeModule", package: "swift-collections"),
                .product(name: "OrderedCollections", package: "swift-collections"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Atomics", package: "swift-atomics"),
                .product(name: "Metrics", package: "swift-metrics"),
            ]
        ),
        // A Redis client on SwiftNIO: a RESP2 codec, pipelined connections that come back.
        .target(
            name: "Redis",
            dependencies: [
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
            ]
        ),
        // The Socket.IO cluster adapter over Redis: broadcasts and recovery across nodes.
        .target(
            name: "SocketIORedis",
            dependencies: [
                "EngineIO", "SocketIO", "Redis",
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
            ]
        ),
        // A host: Socket.IO mounted in a Hummingbird 2 application, beside its routes and
        // behind its middleware; WebSockets run on the engine's own handlers.
        .target(
            name: "SocketIOHummingbird",
            dependencies: [
                "SocketIO", "EngineIO", "HTTPCommon",
                .product(name: "Atomics", package: "swift-atomics"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdCore", package: "hummingbird"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "NIOHTTPTypes", package: "swift-nio-extras"),
                .product(name: "NIOHTTPTypesHTTP1", package: "swift-nio-extras"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOWebSocket", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        // A host: Socket.IO mounted in a Vapor 4 application, as routes behind its middleware;
        // Vapor's upgrader hands WebSockets to the engine's own handlers.
        .target(
            name: "SocketIOVapor",
            dependencies: [
                "SocketIO", "EngineIO",
                .product(name: "Vapor", package: "vapor"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOWebSocket", package: "swift-nio"),
            ]
        ),
        // Unit tests of an app's handlers: an in-process client of a real SocketIOServer.
        .target(
            name: "SocketIOTesting",
            dependencies: [
                "SocketIO",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "NIOEmbedded", package: "swift-nio"),
            ]
        ),
        // The admin UI's server side (@socket.io/admin-ui's `instrument`), over SocketIO;
        // bcrypt from libxcrypt (libcrypt-dev, which libc6-dev depends on).
        .systemLibrary(name: "CCrypt", providers: [.apt(["libcrypt-dev"])]),
        .target(
            name: "SocketIOAdmin",
            dependencies: [
                "SocketIO", "CCrypt",
                .product(name: "Atomics", package: "swift-atomics"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        // Layer 3: the chat domain: handlers, ordering, group commit, the MessageStore protocol.
        .target(
            name: "Chat",
            dependencies: [
                "SocketIO",
                "HTTPCommon",
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Atomics", package: "swift-atomics"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "DequeModule", package: "swift-collections"),
                .product(name: "Metrics", package: "swift-metrics"),
            ]
        ),
        // Layer 4: the stores. MariaDB Connector/C and the system SQLite, on a thread pool.
        .systemLibrary(name: "CMariaDB", pkgConfig: "libmariadb", providers: [.apt(["libmariadb-dev"])]),
        .systemLibrary(name: "CSQLite", pkgConfig: "sqlite3", providers: [.apt(["libsqlite3-dev"])]),
        .target(
            name: "ChatStoreMySQL",
            dependencies: [
                "Chat", "CMariaDB",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
            ]
        ),
        .target(
            name: "ChatStoreSQLite",
            dependencies: [
                "Chat", "CSQLite",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
            ]
        ),
        .executableTarget(
            name: "ChatServer",
            dependencies: [
                "EngineIO", "HTTPCommon", "SocketIO", "SocketIOAdmin", "SocketIORedis", "SocketIOHummingbird", "Redis", "Chat", "ChatStoreMySQL",
                "ChatStoreSQLite",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdCore", package: "hummingbird"),
                .product(name: "HummingbirdTLS", package: "hummingbird"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "NIOHTTPTypesHTTP1", package: "swift-nio-extras"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "CompressNIO", package: "compress-nio"),
            ]
        ),
        // The hosts the test servers run on (--framework): the official suites pass on each.
        .target(
            name: "FrameworkHost",
            dependencies: [
                "EngineIO", "SocketIOHummingbird", "SocketIOVapor",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "Vapor", package: "vapor"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ]
        ),
        // The README's first example: Socket.IO in a Hummingbird app (run by the interop tests).
        .executableTarget(
            name: "HummingbirdSample",
            dependencies: [
                "SocketIO", "SocketIOHummingbird",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ]
        ),
        // The DocC article "Mounting in Vapor": Socket.IO in a Vapor app (run by the interop tests).
        .executableTarget(
            name: "VaporSample",
            dependencies: [
                "SocketIO", "SocketIOVapor",
                .product(name: "Vapor", package: "vapor"),
            ]
        ),
        // The reference configuration of the official engine.io-protocol test suite: an echo server.
        .executableTarget(
            name: "EIOConformance",
            dependencies: [
                "EngineIO", "FrameworkHost",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ]
        ),
        // The reference configuration of the official socket.io-protocol test suite.
        .executableTarget(
            name: "SIOConformance",
            dependencies: [
                "SocketIO", "SocketIORedis", "Redis", "EngineIO", "FrameworkHost",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ]
        ),
        // A server exercising the whole Socket.IO API, for the interop tests.
        .executableTarget(
            name: "SocketIOTestbed",
            dependencies: [
                "SocketIO", "SocketIORedis", "Redis", "FrameworkHost",
                "EngineIO",
                "HTTPCommon",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ]
        ),
        // The load generator of the benchmark command.
        .executableTarget(
            name: "SocketIOBench",
            dependencies: [
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOWebSocket", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Histogram", package: "hdrhistogram-swift"),
            ]
        ),
        // The fan-out benchmark's floor: one thread on epoll, one write per recipient, in C.
        .executableTarget(name: "FloorBroadcaster"),
        // libFuzzer targets for the network-facing decoders (scripts/fuzz.sh); a corpus
        // replayer when built normally.
        .target(name: "CFuzzerDriver"),
        .executableTarget(
            name: "SocketIOFuzz",
            dependencies: [
                "EngineIO", "SocketIO", "Redis", "CFuzzerDriver",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOEmbedded", package: "swift-nio"),
            ]
        ),
        .testTarget(
            name: "EngineIOTests",
            dependencies: [
                "EngineIO",
                "HTTPCommon",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "NIOEmbedded", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOWebSocket", package: "swift-nio"),
                .product(name: "CompressNIO", package: "compress-nio"),
            ]
        ),
        // A throwaway redis-server for tests.
        .target(
            name: "RedisTestSupport",
            dependencies: [
                "Redis",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ]
        ),
        .testTarget(
            name: "RedisTests",
            dependencies: [
                "Redis", "RedisTestSupport",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ]
        ),
        .testTarget(
            name: "ChatTests",
            dependencies: [
                "Chat", "ChatStoreMySQL", "ChatStoreSQLite", "SocketIO", "SocketIOTesting",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "NIOEmbedded", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ]
        ),
        .testTarget(
            name: "SocketIOHummingbirdTests",
            dependencies: [
                "EngineIO", "SocketIO", "SocketIOHummingbird",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdTesting", package: "hummingbird"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ]
        ),
        .testTarget(
            name: "SocketIOAdminTests",
            dependencies: [
                "SocketIO", "SocketIOAdmin", "SocketIOTesting",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
            ]
        ),
        .testTarget(
            name: "SocketIOTests",
            dependencies: [
                "SocketIO", "SocketIORedis", "Redis", "RedisTestSupport", "SocketIOTesting",
                "EngineIO",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOEmbedded", package: "swift-nio"),
            ]
        ),
    ]
)
