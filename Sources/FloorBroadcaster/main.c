// The floor of the fan-out benchmark: the least a server can do for `socketio-bench fanout`.
//
// One thread, epoll, and just enough Engine.IO and Socket.IO for the benchmark's client:
// the WebSocket handshake, the open packet, the namespace CONNECT, and for every event a
// sender emits one frame encoded once and written with one write() per connected client,
// then the sender's ack. No JSON parsing, no storage, no heartbeat (the open packet asks for
// none within a run). What a real server costs beyond this is its own.
//
// Usage: floor-broadcaster [--host 127.0.0.1] [--port 3000]   (or HOST, PORT)

#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

enum { MAX_INPUT = 1 << 20, MAX_EVENTS = 256 };

struct buffer {
    uint8_t *bytes;
    size_t length, capacity;
};

struct connection {
    int fd;
    int upgraded;  // past the HTTP handshake
    int joined;    // sent its namespace CONNECT
    int writable;  // EPOLLOUT asked for
    struct buffer input, output;
    struct connection *next_joined, *previous_joined;
};

static struct connection *joined;  // every client that gets broadcasts
static int epoll_fd;
static unsigned long broadcast_count;

// MARK: buffers

static void append(struct buffer *buffer, const void *bytes, size_t length) {
    if (buffer->length + length > buffer->capacity) {
        size_t capacity = buffer->capacity ? buffer->capacity : 256;
        while (capacity < buffer->length + length) capacity *= 2;
        buffer->bytes = realloc(buffer->bytes, capacity);
        if (!buffer->bytes) abort();
        buffer->capacity = capacity;
    }
    memcpy(buffer->bytes + buffer->length, bytes, length);
    buffer->length += length;
}

static void consume(struct buffer *buffer, size_t length) {
    memmove(buffer->bytes, buffer->bytes + length, buffer->length - length);
    buffer->length -= length;
}

// MARK: SHA-1 and base64, for Sec-WebSocket-Accept

static uint32_t rotate(uint32_t value, int bits) { return (value << bits) | (value >> (32 - bits)); }

static void sha1(const uint8_t *message, size_t length, uint8_t digest[20]) {
    uint32_t h[5] = {0x67452301, 0xEFCDAB89, 0x98BADCFE, 0x10325476, 0xC3D2E1F0};
    size_t padded = ((length + 8) / 64 + 1) * 64;
    uint8_t *data = calloc(padded, 1);
    memcpy(data, message, length);
    data[length] = 0x80;
    uint64_t bits = (uint64_t)length * 8;
    for (int i = 0; i < 8; i++) data[padded - 1 - i] = (uint8_t)(bits >> (8 * i));
    for (size_t chunk = 0; chunk < padded; chunk += 64) {
        uint32_t w[80];
        for (int i = 0; i < 16; i++) {
            const uint8_t *p = data + chunk + 4 * i;
            w[i] = (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
        }
        for (int i = 16; i < 80; i++) w[i] = rotate(w[i - 3] ^ w[i - 8] ^ w[i - 14] ^ w[i - 16], 1);
        uint32_t a = h[0], b = h[1], c = h[2], d = h[3], e = h[4];
        for (int i = 0; i < 80; i++) {
            uint32_t f, k;
            if (i < 20) { f = (b & c) | (~b & d); k = 0x5A827999; }
            else if (i < 40) { f = b ^ c ^ d; k = 0x6ED9EBA1; }
            else if (i < 60) { f = (b & c) | (b & d) | (c & d); k = 0x8F1BBCDC; }
            else { f = b ^ c ^ d; k = 0xCA62C1D6; }
            uint32_t t = rotate(a, 5) + f + e + k + w[i];
            e = d; d = c; c = rotate(b, 30); b = a; a = t;
        }
        h[0] += a; h[1] += b; h[2] += c; h[3] += d; h[4] += e;
    }
    free(data);
    for (int i = 0; i < 5; i++)
        for (int j = 0; j < 4; j++) digest[4 * i + j] = (uint8_t)(h[i] >> (24 - 8 * j));
}

static size_t base64(const uint8_t *bytes, size_t length, char *out) {
    static const char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    size_t o = 0;
    for (size_t i = 0; i < length; i += 3) {
        uint32_t v = (uint32_t)bytes[i] << 16;
        if (i + 1 < length) v |= (uint32_t)bytes[i + 1] << 8;
        if (i + 2 < length) v |= bytes[i + 2];
        out[o++] = alphabet[(v >> 18) & 63];
        out[o++] = alphabet[(v >> 12) & 63];
        out[o++] = i + 1 < length ? alphabet[(v >> 6) & 63] : '=';
        out[o++] = i + 2 < length ? alphabet[v & 63] : '=';
    }
    out[o] = 0;
    return o;
}

// MARK: writing

static void watch(struct connection *connection, int writable) {
    if (connection->writable == writable) return;
    struct epoll_event event = {.events = EPOLLIN | (writable ? EPOLLOUT : 0), .data.ptr = connection};
    epoll_ctl(epoll_fd, EPOLL_CTL_MOD, connection->fd, &event);
    connection->writable = writable;
}

/// One write() of `length` bytes; what the socket does not take waits for EPOLLOUT.
static void send_bytes(struct connection *connection, const uint8_t *bytes, size_t length) {
    if (connection->output.length > 0) {
        append(&connection->output, bytes, length);
        return;
    }
    ssize_t written = write(connection->fd, bytes, length);
    if (written < 0) {
        if (errno != EAGAIN && errno != EWOULDBLOCK) return;  // the read side sees the end
        written = 0;
    }
    if ((size_t)written < length) {
        append(&connection->output, bytes + written, length - (size_t)written);
        watch(connection, 1);
    }
}

static void flush_output(struct connection *connection) {
    ssize_t written = write(connection->fd, connection->output.bytes, connection->output.length);
    if (written > 0) consume(&connection->output, (size_t)written);
    if (connection->output.length == 0) watch(connection, 0);
}

/// A server's text frame (unmasked) around `payload`, into `frame`; returns its length.
static size_t text_frame(const char *payload, size_t length, uint8_t *frame) {
    size_t header;
    frame[0] = 0x81;
    if (length < 126) {
        frame[1] = (uint8_t)length;
        header = 2;
    } else if (length < 65536) {
        frame[1] = 126;
        frame[2] = (uint8_t)(length >> 8);
        frame[3] = (uint8_t)length;
        header = 4;
    } else {
        frame[1] = 127;
        for (int i = 0; i < 8; i++) frame[2 + i] = (uint8_t)((uint64_t)length >> (56 - 8 * i));
        header = 10;
    }
    memcpy(frame + header, payload, length);
    return header + length;
}

static void send_text(struct connection *connection, const char *payload, size_t length) {
    uint8_t *frame = malloc(length + 10);
    send_bytes(connection, frame, text_frame(payload, length, frame));
    free(frame);
}

// MARK: connections

static void close_connection(struct connection *connection) {
    if (connection->joined) {
        if (connection->previous_joined) connection->previous_joined->next_joined = connection->next_joined;
        else joined = connection->next_joined;
        if (connection->next_joined) connection->next_joined->previous_joined = connection->previous_joined;
    }
    close(connection->fd);
    free(connection->input.bytes);
    free(connection->output.bytes);
    free(connection);
}

/// The HTTP upgrade request, once its head is complete: 101 and the open packet, or a close.
static int handshake(struct connection *connection) {
    uint8_t *end = memmem(connection->input.bytes, connection->input.length, "\r\n\r\n", 4);
    if (!end) return connection->input.length < 16384;
    *end = 0;
    char *key = strcasestr((char *)connection->input.bytes, "\nSec-WebSocket-Key:");
    if (!key) return 0;
    key += strlen("\nSec-WebSocket-Key:");
    while (*key == ' ') key++;
    size_t key_length = strcspn(key, "\r\n ");
    char source[128];
    if (key_length > 60) return 0;
    memcpy(source, key, key_length);
    memcpy(source + key_length, "258EAFA5-E914-47DA-95CA-C5AB0DC85B11", 36);
    uint8_t digest[20];
    sha1((uint8_t *)source, key_length + 36, digest);
    char accept[32];
    base64(digest, 20, accept);
    char response[256];
    int length = snprintf(response, sizeof response,
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        "Sec-WebSocket-Accept: %s\r\n\r\n", accept);
    send_bytes(connection, (uint8_t *)response, (size_t)length);
    char open[160];
    length = snprintf(open, sizeof open,
        "0{\"sid\":\"floor%d\",\"upgrades\":[],\"pingInterval\":3600000,\"pingTimeout\":20000,\"maxPayload\":1000000}",
        connection->fd);
    send_text(connection, open, (size_t)length);
    consume(&connection->input, (size_t)(end + 4 - connection->input.bytes));
    connection->upgraded = 1;
    return 1;
}

/// `42<ack>["chat message","<text>",…]`: the text goes to every joined client as
/// `42["chat message","<text>",<n>]`, one frame encoded once, then the ack to the sender.
static void broadcast(struct connection *sender, const char *payload, size_t length) {
    size_t i = 2;
    size_t ack_start = i;
    while (i < length && payload[i] >= '0' && payload[i] <= '9') i++;
    size_t ack_length = i - ack_start;
    const char *name = memmem(payload + i, length - i, "\"chat message\",\"", 16);
    if (!name) return;
    const char *text = name + 15;  // the opening quote
    const char *close = text + 1;
    const char *limit = payload + length;
    while (close < limit && *close != '"') close += *close == '\\' ? 2 : 1;
    if (close >= limit) return;
    broadcast_count++;
    char message[1024];
    int message_length = snprintf(message, sizeof message, "42[\"chat message\",%.*s,%lu]",
        (int)(close + 1 - text), text, broadcast_count);
    if (message_length <= 0 || (size_t)message_length >= sizeof message) return;
    uint8_t frame[1100];
    size_t frame_length = text_frame(message, (size_t)message_length, frame);
    for (struct connection *client = joined; client; client = client->next_joined)
        send_bytes(client, frame, frame_length);
    if (ack_length > 0) {
        char ack[64];
        int length = snprintf(ack, sizeof ack, "43%.*s[]", (int)ack_length, payload + ack_start);
        send_text(sender, ack, (size_t)length);
    }
}

static void packet(struct connection *connection, const char *payload, size_t length) {
    if (length >= 2 && payload[0] == '4' && payload[1] == '0' && !connection->joined) {
        char answer[64];
        int answer_length = snprintf(answer, sizeof answer, "40{\"sid\":\"floor-socket%d\"}", connection->fd);
        send_text(connection, answer, (size_t)answer_length);
        connection->joined = 1;
        connection->next_joined = joined;
        connection->previous_joined = NULL;
        if (joined) joined->previous_joined = connection;
        joined = connection;
    } else if (length >= 2 && payload[0] == '4' && payload[1] == '2') {
        broadcast(connection, payload, length);
    }
    // `3` (pong) and everything else: nothing to do.
}

/// Every complete frame in the input; returns 0 to close.
static int frames(struct connection *connection) {
    for (;;) {
        uint8_t *bytes = connection->input.bytes;
        size_t available = connection->input.length;
        if (available < 2) return 1;
        int opcode = bytes[0] & 0x0F;
        int masked = bytes[1] & 0x80;
        uint64_t length = bytes[1] & 0x7F;
        size_t header = 2;
        if (length == 126) {
            if (available < 4) return 1;
            length = (uint64_t)bytes[2] << 8 | bytes[3];
            header = 4;
        } else if (length == 127) {
            if (available < 10) return 1;
            length = 0;
            for (int i = 0; i < 8; i++) length = length << 8 | bytes[2 + i];
            header = 10;
        }
        if (length > MAX_INPUT || !masked) return 0;
        if (available < header + 4 + length) return available < MAX_INPUT + 14;
        uint8_t *mask = bytes + header;
        uint8_t *payload = mask + 4;
        for (uint64_t i = 0; i < length; i++) payload[i] ^= mask[i & 3];
        if (opcode == 8) return 0;
        if (opcode == 1) packet(connection, (const char *)payload, (size_t)length);
        consume(&connection->input, header + 4 + (size_t)length);
    }
}

static int readable(struct connection *connection) {
    uint8_t chunk[16384];
    for (;;) {
        ssize_t count = read(connection->fd, chunk, sizeof chunk);
        if (count == 0) return 0;
        if (count < 0) return errno == EAGAIN || errno == EWOULDBLOCK;
        append(&connection->input, chunk, (size_t)count);
        if (!connection->upgraded && !handshake(connection)) return 0;
        if (connection->upgraded && !frames(connection)) return 0;
        if ((size_t)count < sizeof chunk) return 1;
    }
}

int main(int argc, char **argv) {
    const char *host = getenv("HOST") ? getenv("HOST") : "127.0.0.1";
    int port = getenv("PORT") ? atoi(getenv("PORT")) : 3000;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--port")) port = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--host")) host = argv[i + 1];
    }
    signal(SIGPIPE, SIG_IGN);
    int listener = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    int one = 1;
    setsockopt(listener, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in address = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    if (inet_pton(AF_INET, host, &address.sin_addr) != 1 ||
        bind(listener, (struct sockaddr *)&address, sizeof address) < 0 || listen(listener, 1024) < 0) {
        fprintf(stderr, "Error: cannot listen on %s:%d: %s\n", host, port, strerror(errno));
        return 1;
    }
    epoll_fd = epoll_create1(0);
    struct epoll_event event = {.events = EPOLLIN, .data.ptr = NULL};
    epoll_ctl(epoll_fd, EPOLL_CTL_ADD, listener, &event);
    struct epoll_event events[MAX_EVENTS];
    for (;;) {
        int count = epoll_wait(epoll_fd, events, MAX_EVENTS, -1);
        for (int i = 0; i < count; i++) {
            struct connection *connection = events[i].data.ptr;
            if (!connection) {
                int fd;
                while ((fd = accept4(listener, NULL, NULL, SOCK_NONBLOCK)) >= 0) {
                    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
                    struct connection *accepted = calloc(1, sizeof *accepted);
                    accepted->fd = fd;
                    struct epoll_event added = {.events = EPOLLIN, .data.ptr = accepted};
                    epoll_ctl(epoll_fd, EPOLL_CTL_ADD, fd, &added);
                }
                continue;
            }
            if ((events[i].events & EPOLLOUT) && connection->output.length > 0) flush_output(connection);
            if ((events[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR)) && !readable(connection)) close_connection(connection);
        }
    }
}
