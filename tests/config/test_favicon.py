"""The demo's icon: every admin page links it, and a browser asking /favicon.ico gets it."""

import urllib.request

import pytest
from django.templatetags.static import static

pytestmark = pytest.mark.django_db

ICON_LINK = f'<link rel="icon" type="image/svg+xml" href="{static("favicon.svg")}">'


def test_favicon_ico_leads_to_the_icon(client, live_server):
    response = client.get("/favicon.ico")
    assert response.status_code in (301, 302) and response["Location"] == static("favicon.svg")
    # Followed on a live server: the test client's WhiteNoise serves collected files only.
    with urllib.request.urlopen(f"{live_server.url}/favicon.ico", timeout=10) as icon:
        assert icon.url == f"{live_server.url}{static('favicon.svg')}"
        assert icon.status == 200 and icon.headers["Content-Type"] == "image/svg+xml"
        assert icon.read().startswith(b"<svg")


@pytest.mark.parametrize("url", ["/admin/login/", "/admin/", "/admin/recs/health/"])
def test_admin_pages_link_the_icon(admin_client, url):
    if url == "/admin/login/":
        admin_client.logout()
    response = admin_client.get(url)
    assert response.status_code == 200
    assert ICON_LINK in response.content.decode()
