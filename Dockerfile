# syntax=docker/dockerfile:1
# Build with the official Swift image, using the same script as the README's run command.
FROM swift:6.3-bookworm AS build
WORKDIR /src
COPY . .
RUN scripts/build.sh --static-swift-stdlib \
    && cp "$(swift build -c release --show-bin-path)/chat-server" /chat-server

# Run on a slim image with the MariaDB client library and SQLite.
FROM debian:bookworm-slim
RUN apt-get update \
    && apt-get install -y --no-install-recommends libmariadb3 libsqlite3-0 libstdc++6 ca-certificates tzdata \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY --from=build /chat-server /app/chat-server
COPY --from=build /src/web /app/web
COPY --from=build /src/migrations /app/migrations
COPY --from=build /src/.cache /app/.cache
ENV HOST=0.0.0.0 PORT=3000 DATA_DIR=/data WEB_DIR=/app/web MIGRATIONS_DIR=/app/migrations
VOLUME /data
EXPOSE 3000
CMD ["/app/chat-server"]
