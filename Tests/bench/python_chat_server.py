"""The same chat on python-socketio (AsyncServer on aiohttp), for the benchmark's
comparison: `chat message` (text, clientOffset) is stored (in memory: the most favourable
store it could have), broadcast as (text, id, {username}) to everyone, and acked; a
duplicate clientOffset is acked without a broadcast; a client with `auth.serverOffset`
gets the messages after it."""

import os

import socketio
from aiohttp import web

sio = socketio.AsyncServer(
    async_mode="aiohttp",
    cors_allowed_origins="*",
    ping_interval=int(os.environ.get("PING_INTERVAL", "25000")) / 1000,
    ping_timeout=int(os.environ.get("PING_TIMEOUT", "20000")) / 1000,
)
app = web.Application()
sio.attach(app)

messages: list[tuple[str, int, str | None]] = []
offsets: set[str] = set()
usernames: dict[str, str | None] = {}


def server_offset(auth) -> int:
    try:
        return int((auth or {}).get("serverOffset", 0))
    except (TypeError, ValueError):
        return 0


@sio.event
async def connect(sid, environ, auth):
    usernames[sid] = (auth or {}).get("username")
    after = server_offset(auth)
    for text, id, username in messages[after:]:
        await sio.emit("chat message", (text, id, {"username": username}), to=sid)


@sio.event
async def disconnect(sid, *args):
    usernames.pop(sid, None)


@sio.on("chat message")
async def chat_message(sid, text=None, client_offset=None):
    if not isinstance(text, str) or not text or not isinstance(client_offset, str):
        return {"error": "invalid message"}
    if client_offset in offsets:
        return None
    offsets.add(client_offset)
    id = len(messages) + 1
    username = usernames.get(sid)
    messages.append((text, id, username))
    await sio.emit("chat message", (text, id, {"username": username}))
    return None


if __name__ == "__main__":
    web.run_app(app, host=os.environ.get("HOST", "127.0.0.1"), port=int(os.environ.get("PORT", "3000")), print=None)
