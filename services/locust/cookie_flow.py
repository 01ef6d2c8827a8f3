"""Locust's version of services/express-session/scenarios/express-login-logout.toml.

The same browser cookie flow against services/express-session, for comparing
clw-cli with Locust on one service: GET /login (read the CSRF field), POST
/login as a form (302 and the session cookie, redirect not followed), GET /me
with the cookie (200), POST /logout (302). Each iteration starts with an empty
cookie jar, as clw-cli's does (and k6's). Users are user-0..user-N with
clw-cli's default password.

Run (loopback only; see services/locust/README.md):

    python3 -m venv target/locust-venv && target/locust-venv/bin/pip install locust
    PORT=3000 node services/express-session/server.js &
    target/locust-venv/bin/locust -f services/locust/cookie_flow.py --headless \
        -u 10 -r 10 -t 20s --host http://127.0.0.1:3000
"""

import itertools
import re

from locust import FastHttpUser, task

CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')
PASSWORD = "clw-load-test"  # clw-cli's default [users] pool
_numbers = itertools.count()


class CookieFlowUser(FastHttpUser):
    """One virtual user: logs in, reads /me, logs out, again and again."""

    def on_start(self):
        self.username = f"user-{next(_numbers)}"

    @task
    def login_me_logout(self):
        # A fresh browser each iteration, as clw-cli's per-iteration jar.
        self.client.cookiejar.clear()
        with self.client.get("/login", name="login-form", catch_response=True) as resp:
            match = CSRF.search(resp.text or "")
            if resp.status_code != 200 or not match:
                resp.failure(f"no csrf_token in the form (status {resp.status_code})")
                return
        form = {"username": self.username, "password": PASSWORD, "csrf_token": match.group(1)}
        with self.client.post(
            "/login", data=form, name="login", allow_redirects=False, catch_response=True
        ) as resp:
            if resp.status_code != 302:
                resp.failure(f"expected 302, got {resp.status_code}")
                return
            resp.success()
        with self.client.get("/me", name="me", catch_response=True) as resp:
            if resp.status_code != 200:
                resp.failure(f"expected 200, got {resp.status_code}")
                return
        with self.client.post(
            "/logout", name="logout", allow_redirects=False, catch_response=True
        ) as resp:
            if resp.status_code != 302:
                resp.failure(f"expected 302, got {resp.status_code}")
            else:
                resp.success()
