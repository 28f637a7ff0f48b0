"""`sentimon demo` serves the console from its start (its own namespace), keeps it only while a terminal waits."""

from __future__ import annotations

import urllib.error
import urllib.request

import pytest

from sentimon.cli.demo import _Screen
from sentimon.core.host import free_port

pytestmark = pytest.mark.integration


def test_demo_screen_serves_the_console_of_the_demo_namespace(stack_settings, unique):
    settings = stack_settings.replace(console={"port": free_port()}, windows={"prefix": unique})
    with _Screen(live=False, serve=True) as screen:
        screen.ready(settings)
        assert screen._console_url == f"http://127.0.0.1:{settings.console.port}/"
        with urllib.request.urlopen(screen._console_url, timeout=10) as resp:
            assert resp.status == 200 and b"sentimon" in resp.read().lower()
        screen.linger()  # not a terminal: returns at once
    with pytest.raises(urllib.error.URLError):
        urllib.request.urlopen(screen._console_url, timeout=3)


def test_no_serve_starts_nothing(stack_settings):
    with _Screen(live=False, serve=False) as screen:
        screen.ready(stack_settings)
        assert screen._console_url is None
