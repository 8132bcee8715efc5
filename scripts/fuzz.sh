#!/usr/bin/env bash
# The fuzz command: builds the libFuzzer targets (Sources/SocketIOFuzz) optimised, with
# -sanitize=fuzzer, in .build-fuzz/, and runs each for SECONDS (default 60) from the seed
# corpus in Tests/fuzz/corpus/ plus worst-case seeds made here at the configured limits (a
# 1 MB object of 80,000 keys, a payload of 300,000 packets, …). A crash, or an input that
# takes longer than FUZZ_TIMEOUT seconds (default 1: a linear parser takes a few ms for
# the largest input), fails the command and leaves the input in .test-artifacts/fuzz/.
# Longer runs: scripts/fuzz.sh 3600
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
SECONDS_EACH="${1:-60}"
TIMEOUT="${FUZZ_TIMEOUT:-1}"

echo "==> fuzz build (release, -sanitize=fuzzer)"
swift build -c release --scratch-path "$ROOT/.build-fuzz" --product socketio-fuzz \
    -Xswiftc -sanitize=fuzzer -Xswiftc -DFUZZING -Xswiftc -use-ld=lld
BIN="$(swift build -c release --scratch-path "$ROOT/.build-fuzz" --show-bin-path)/socketio-fuzz"
ARTIFACTS="$ROOT/.test-artifacts/fuzz"
mkdir -p "$ARTIFACTS"
SEEDS="$(mktemp -d)"
trap 'rm -rf "$SEEDS"' EXIT

# Worst-case seeds at the limits, so that the fuzzer starts from the shapes that cost most
# (made here rather than committed: they are megabytes).
python3 - "$SEEDS" <<'PY'
import os, sys
root = sys.argv[1]
def seed(target, name, data):
    os.makedirs(os.path.join(root, target), exist_ok=True)
    with open(os.path.join(root, target, name), "wb") as f:
        f.write(data if isinstance(data, bytes) else data.encode())
def base36(n):
    digits = "0123456789abcdefghijklmnopqrstuvwxyz"
    out = ""
    while True:
        n, r = divmod(n, 36)
        out = digits[r] + out
        if n == 0:
            return out
keys = ",".join(f'"{base36(i)}":{i % 10}' for i in range(88_000))
seed("sio-packet", "object-keys", '2["e",{' + keys + "}]")
seed("sio-packet", "object-keys-nested", '2["e",{"inner":{' + keys + "}}]")
seed("sio-packet", "repeated-key", '2["e",{' + ",".join(['"k":1'] * 100_000) + "}]")
seed("sio-packet", "numbers", '2["e",[' + ",".join(map(str, range(150_000))) + "]]")
seed("sio-packet", "escapes", '2["e","' + "\\u00e9" * 150_000 + '"]')
seed("sio-packet", "long-number", '2["e",' + "7" * 900_000 + "]")
seed("sio-packet", "deep", '2["e",[' + ",".join(["[" * 60 + "]" * 60] * 8000) + "]]")
seed("sio-packet", "placeholders", '51-["e",{"_placeholder":true,"num":0},{' + keys[:500_000] + "}]\x00\x01\x02")
seed("sio-packet", "namespace", "0/" + "n" * 999_000 + ",")
# MessagePack at the limits: a map of 80,000 keys, one key 100,000 times, 150,000 elements,
# a 900 KB string, nesting a million deep, lengths that claim more than there is.
def mp_str(text):
    data = text.encode()
    return (bytes([0xA0 | len(data)]) if len(data) < 32 else b"\xd9" + bytes([len(data)]) if len(data) < 256 else b"\xdb" + len(data).to_bytes(4, "big")) + data
def mp_packet(data):
    return b"\x83" + mp_str("type") + b"\x02" + mp_str("nsp") + mp_str("/") + mp_str("data") + b"\x92" + mp_str("e") + data
seed("sio-msgpack", "map-keys", mp_packet(b"\xdf" + (80_000).to_bytes(4, "big") + b"".join(mp_str(base36(i)) + bytes([i % 10]) for i in range(80_000))))
seed("sio-msgpack", "repeated-key", mp_packet(b"\xdf" + (100_000).to_bytes(4, "big") + (mp_str("k") + b"\x01") * 100_000))
seed("sio-msgpack", "elements", mp_packet(b"\xdd" + (150_000).to_bytes(4, "big") + b"\x07" * 150_000))
seed("sio-msgpack", "long-string", mp_packet(mp_str("x" * 900_000)))
seed("sio-msgpack", "deep", mp_packet(b"\x91" * 1_000_000))
seed("sio-msgpack", "lying-lengths", mp_packet(b"\xdd\xff\xff\xff\xff" + b"\xdf\xff\xff\xff\xff" + b"\xc6\xff\xff\xff\xff"))
seed("eio-payload", "many-packets", "\x1e".join(["4a"] * 330_000))
seed("eio-payload", "binary", "b" + "QUJD" * 240_000)
query = "&".join(f"p{i}=%41{i}" for i in range(5_000))
seed("http-routing", "long-query", f"GET /socket.io/?EIO=4&transport=polling&{query} HTTP/1.1\r\nHost: x\r\n\r\n")
# A WebSocket with permessage-deflate: compressed messages (RSV1), fragmented, a deflate
# bomb far past the 4 KiB limit, a corrupt stream, and RSV1 on a continuation.
import zlib
def deflated(data):
    compressor = zlib.compressobj(9, zlib.DEFLATED, -15)
    return (compressor.compress(data) + compressor.flush(zlib.Z_SYNC_FLUSH))[:-4]
def frame(first, payload, mask=b"\x12\x34\x56\x78"):
    n = len(payload)
    size = bytes([0x80 | n]) if n < 126 else (bytes([0x80 | 126]) + n.to_bytes(2, "big") if n < 65536 else bytes([0x80 | 127]) + n.to_bytes(8, "big"))
    return bytes([first]) + size + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
upgrade = ("GET /socket.io/?EIO=4&transport=websocket HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n"
           "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
           "Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n\r\n").encode()
message = deflated(b"4" + b"hello deflate " * 40)
seed("http-routing", "deflate-messages", upgrade + frame(0xC1, message) + frame(0x41, message[:10]) + frame(0x80, message[10:])
     + frame(0xC1, deflated(b"4" + b"x" * 3_000_000)) )
seed("http-routing", "deflate-corrupt", upgrade + frame(0xC1, b"\xff\xff\xff\xff") + frame(0x01, b"4a") + frame(0xC0, b"4b"))
headers = "".join(f"X-H{i}: {i}\r\n" for i in range(3_000))
seed("http-routing", "many-headers", f"GET /socket.io/?EIO=4&transport=polling HTTP/1.1\r\nHost: x\r\n{headers}\r\n")
PY

run() {  # target, seconds, max_len, corpus directories...
    local target=$1 seconds=$2 max_len=$3
    shift 3
    local work
    work="$(mktemp -d)"
    echo "==> fuzzing $target for ${seconds}s (inputs up to $max_len bytes, ${TIMEOUT}s each at most)"
    FUZZ_TARGET=$target "$BIN" "$work" "$@" \
        -max_total_time="$seconds" -rss_limit_mb=2048 -max_len="$max_len" -timeout="$TIMEOUT" \
        -report_slow_units=1 -print_final_stats=1 -artifact_prefix="$ARTIFACTS/$target-" 2>"$ARTIFACTS/$target.log" || {
        echo "fuzz target $target failed (a crash, or an input slower than ${TIMEOUT}s); see $ARTIFACTS/$target.log" >&2
        tail -40 "$ARTIFACTS/$target.log" >&2
        exit 1
    }
    grep -E "stat::number_of_executed_units|stat::peak_rss_mb" "$ARTIFACTS/$target.log" | sed "s/^/    $target /"
    rm -rf "$work"
}

# Each decoder twice: small inputs, where mutation is fast and coverage grows, then the
# worst-case seeds at the 1 MB limit and their mutations, where a super-linear cost shows.
LARGE=$((SECONDS_EACH / 3))
for target in eio-payload sio-packet sio-msgpack; do
    run "$target" $((SECONDS_EACH - LARGE)) 65536 "Tests/fuzz/corpus/$target"
    run "$target" "$LARGE" 1000000 "$SEEDS/$target"
done
run http-routing "$SECONDS_EACH" 65536 "Tests/fuzz/corpus/http-routing" "$SEEDS/http-routing"
run resp "$((SECONDS_EACH / 2))" 65536 "Tests/fuzz/corpus/resp"
echo "fuzz: 5 targets, ${SECONDS_EACH}s each, no crash, no input slower than ${TIMEOUT}s"
