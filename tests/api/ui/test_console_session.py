"""Console sessions over real HTTP: the cookie's flags, a forged or stale cookie, a revoked user,
the sign-in form's own CSRF guard, and no open redirect after sign-in."""

from __future__ import annotations

import re
import time

import httpx
import pytest

from ..conftest import WEBHOOK_TOKEN, auth, fixture_payload


def _nonce(client: httpx.Client) -> str:
    page = client.get("/login")
    found = re.search(r'name="nonce" value="([^"]+)"', page.text)
    assert found, page.text
    return found.group(1)


def sign_in(client: httpx.Client, token: str, next_path: str = "/incidents") -> httpx.Response:
    return client.post("/login", data={"nonce": _nonce(client), "token": token, "next": next_path})


@pytest.fixture
def server(make_settings, live_server):
    return live_server(make_settings(worker_mode="thread"))


def test_cookie_flags_and_a_revoked_user(server):
    issued = httpx.post(
        f"{server.url}/v1/users", json={"name": "carol", "role": "responder"}, headers=auth("admin")
    ).json()
    with httpx.Client(base_url=server.url) as client:
        answer = sign_in(client, issued["token"])
        assert answer.status_code == 303 and answer.headers["location"] == "/incidents"
        cookie = answer.headers["set-cookie"].lower()
        assert "httponly" in cookie and "samesite=strict" in cookie
        page = client.get("/incidents")
        assert page.status_code == 200 and "carol (responder)" in page.text
        assert "default-src 'self'" in page.headers["content-security-policy"]
        # Disabling the user ends the console session on the next request.
        assert httpx.delete(f"{server.url}/v1/users/carol", headers=auth("admin")).status_code == 204
        # (The API commits the change as its request ends; allow it that moment.)
        deadline = time.monotonic() + 5
        while (after := client.get("/incidents", follow_redirects=False)).status_code == 200:
            assert time.monotonic() < deadline, "the disabled user's session still works"
            time.sleep(0.05)
        assert after.status_code == 303 and after.headers["location"].startswith("/login")


def test_forged_cookie_and_wrong_token(server):
    with httpx.Client(base_url=server.url) as client:
        assert sign_in(client, "test-viewer-token").status_code == 303
        value = client.cookies["opsagent_session"]
        body, _, signature = value.partition(".")
        client.cookies.set("opsagent_session", body[:-2] + "AA." + signature)
        assert client.get("/incidents", follow_redirects=False).status_code == 303
    with httpx.Client(base_url=server.url) as client:
        wrong = sign_in(client, "not-a-token")
        assert wrong.status_code == 401 and "Unknown or revoked token" in wrong.text


def test_sign_in_form_needs_its_nonce_and_never_redirects_off_site(server):
    with httpx.Client(base_url=server.url) as client:
        bare = client.post("/login", data={"token": "test-viewer-token"})
        assert bare.status_code == 400 and "expired" in bare.text
        for target in ("//evil.example.com/x", "https://evil.example.com/", "/\\evil"):
            answer = sign_in(client, "test-viewer-token", target)
            assert answer.status_code == 303 and answer.headers["location"] == "/incidents"


def test_posts_need_the_session_csrf_token_and_same_origin(server):
    with httpx.Client(base_url=server.url) as client:
        sign_in(client, "test-responder-token")
        page = client.get("/incidents")
        csrf = re.search(r'data-csrf="([^"]+)"', page.text).group(1)
        refused = client.post("/logout", data={"csrf": "nope"})
        assert refused.status_code == 403 and "CSRF" in refused.text
        cross = client.post("/logout", data={"csrf": csrf}, headers={"Origin": "https://evil.example.com"})
        assert cross.status_code == 403 and "another site" in cross.text
        out = client.post("/logout", data={"csrf": csrf}, headers={"Origin": server.url})
        assert out.status_code == 303 and out.headers["location"] == "/login"


def test_an_unknown_incident_is_a_page_not_json(server):
    with httpx.Client(base_url=server.url) as client:
        sign_in(client, "test-viewer-token")
        missing = client.get("/incidents/inc-nope")
        assert missing.status_code == 404 and "There is no incident" in missing.text
        assert missing.headers["content-type"].startswith("text/html")


def test_the_incident_page_says_when_the_kill_switch_is_on(server):
    posted = httpx.post(
        f"{server.url}/v1/alerts/alertmanager",
        json=fixture_payload(),
        headers={"Authorization": f"Bearer {WEBHOOK_TOKEN}"},
    ).json()
    page = f"/incidents/{posted['incident_ids'][0]}"
    with httpx.Client(base_url=server.url) as client:
        sign_in(client, "test-viewer-token")
        assert 'id="kill-switch"' not in client.get(page).text
        switched = httpx.put(
            f"{server.url}/v1/killswitch", json={"on": True, "reason": "db migration"}, headers=auth("admin")
        )
        assert switched.status_code == 200, switched.text
        shown = client.get(page).text
        assert 'id="kill-switch"' in shown and "db migration" in shown
