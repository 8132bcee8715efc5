# Shared by scripts/run.sh and scripts/test.sh: idempotent installs of what they need.

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

# Installs the named Debian packages that are not installed yet.
ensure_apt() {
    local missing=()
    for package in "$@"; do
        dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || missing+=("$package")
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    echo "==> installing ${missing[*]}"
    local sudo=""
    [ "$(id -u)" -ne 0 ] && sudo="sudo"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

# Creates (once) the Python virtualenv with the real Socket.IO clients and test tools.
ensure_test_venv() {
    local venv="$ROOT/.venv-test"
    local requirements="$ROOT/Tests/interop/requirements.txt"
    if [ ! -x "$venv/bin/python" ]; then
        echo "==> creating $venv"
        python3 -m venv "$venv"
    fi
    if ! cmp -s "$requirements" "$venv/.requirements"; then
        echo "==> installing Python test requirements"
        "$venv/bin/pip" install -q --disable-pip-version-check -r "$requirements"
        cp "$requirements" "$venv/.requirements"
    fi
}

# The official Socket.IO browser client, socket.io.min.js 4.8.1, as shipped inside the
# PyPI wheel nicegui==3.18.0. Fetched at setup time and checked, never committed.
CLIENT_BUNDLE="$ROOT/.cache/socket.io.min.js"
CLIENT_BUNDLE_SHA256="b0e735814f8dcfecd6cdb8a7ce95a297a7e1e5f2727a29e6f5901801d52fa0c5"

ensure_client_bundle() {
    if [ -f "$CLIENT_BUNDLE" ] && echo "$CLIENT_BUNDLE_SHA256  $CLIENT_BUNDLE" | sha256sum -c --status; then
        return 0
    fi
    echo "==> fetching socket.io.min.js 4.8.1"
    local scratch
    scratch="$(mktemp -d)"
    python3 -m pip download --no-deps --quiet --disable-pip-version-check -d "$scratch" nicegui==3.18.0
    mkdir -p "$(dirname "$CLIENT_BUNDLE")"
    python3 - "$scratch"/nicegui-3.18.0-*.whl "$CLIENT_BUNDLE.tmp" <<'PY'
import sys, zipfile
with zipfile.ZipFile(sys.argv[1]) as wheel:
    data = wheel.read("nicegui/static/socket.io.min.js")
open(sys.argv[2], "wb").write(data)
PY
    rm -rf "$scratch"
    if ! echo "$CLIENT_BUNDLE_SHA256  $CLIENT_BUNDLE.tmp" | sha256sum -c --status; then
        echo "socket.io.min.js: checksum mismatch" >&2
        rm -f "$CLIENT_BUNDLE.tmp"
        return 1
    fi
    mv "$CLIENT_BUNDLE.tmp" "$CLIENT_BUNDLE"
}
