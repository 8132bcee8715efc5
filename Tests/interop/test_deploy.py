"""The deployment files: docker-compose.yml is valid (Debian's docker-compose checks it;
no Docker engine runs here), and the Dockerfile builds with the README's own script."""

import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def test_compose_file_is_valid():
    compose = shutil.which("docker-compose")
    if compose is None:
        pytest.fail("docker-compose is missing: scripts/test.sh installs it")
    result = subprocess.run([compose, "-f", str(ROOT / "docker-compose.yml"), "config"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    config = result.stdout
    assert "mysql:8" in config
    assert "DATABASE_URL: mysql://chat:chatpw@mysql:3306/chat" in config
    assert "condition: service_healthy" in config
    assert "3000:3000" in config or "published: 3000" in config
    # A cluster: Redis, three nodes sharing it and the database, HAProxy in front.
    assert "image: redis:7" in config and "image: haproxy:2.6" in config
    for node in ("chat1", "chat2", "chat3"):
        assert f"  {node}:" in config
    assert config.count("REDIS_URL: redis://redis:6379") == 3


def test_the_balancer_configuration_is_valid_and_sticky():
    haproxy = shutil.which("haproxy")
    assert haproxy, "haproxy is missing: scripts/test.sh installs it"
    path = ROOT / "deploy" / "haproxy.cfg"
    result = subprocess.run([haproxy, "-c", "-f", str(path)], capture_output=True, text=True, timeout=30)
    assert result.returncode == 0, result.stdout + result.stderr
    text = path.read_text()
    assert "cookie SERVERID insert" in text and "timeout tunnel" in text


def test_dockerfile_builds_with_the_readme_script():
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert "RUN scripts/build.sh" in dockerfile  # the same build the README's run command does
    assert "FROM swift:" in dockerfile and "FROM debian:bookworm-slim" in dockerfile
    assert "scripts/build.sh" in (ROOT / "scripts" / "run.sh").read_text()
