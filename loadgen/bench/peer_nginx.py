"""Locust's side of bench-peer against its nginx (loadgen/bench/bench-peer.sh).

The same requests, in the same order, as loadgen/bench/peer-nginx.toml: GET
/login (sets the session cookie), GET /me, GET /me, each needing the session
cookie (nginx answers 401 without it). FastHttpUser counts a non-2xx answer
as a failure, as clw-cli's default `expect = "2xx"` does; each iteration
starts with an empty cookie jar, as clw-cli's does.
"""

from locust import FastHttpUser, task


class NginxCookieFlow(FastHttpUser):
    """One virtual user: /login, /me, /me, again and again, no wait."""

    @task
    def login_me_me(self):
        self.client.cookiejar.clear()
        self.client.get("/login", name="login")
        self.client.get("/me", name="me")
        self.client.get("/me", name="me-again")
