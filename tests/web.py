"""Helpers for tests that drive the web pages as a browser would: read pages, carry CSRF, log in."""
from __future__ import annotations

import re

from flask import Flask
from flask.testing import FlaskClient
from werkzeug.test import TestResponse


def page(response: TestResponse) -> str:
    return response.get_data(as_text=True)


def token_of(html: str) -> str:
    found = re.search(r'name="csrf_token" (?:type="hidden" )?value="([^"]+)"', html)
    assert found, "no CSRF token in the page"
    return found.group(1)


def log_in(app: Flask, login: str, password: str) -> FlaskClient:
    client = app.test_client()
    form = page(client.get("/login"))
    response = client.post("/login", data={"csrf_token": token_of(form), "login": login, "password": password})
    assert response.status_code == 302, page(response)
    return client
