import pytest
from helpers import TEST_CONFIG, make_app


def test_pages_forbid_inline_scripts_sniffing_and_framing(client, seeded):
    response = client.get("/login")
    policy = response.headers["Content-Security-Policy"]
    assert "script-src 'self';" in policy and "frame-ancestors 'none'" in policy
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["X-Frame-Options"] == "DENY"
    assert response.headers["Referrer-Policy"] == "strict-origin-when-cross-origin"
    api = client.get("/api/v1/branches")
    assert api.headers["X-Content-Type-Options"] == "nosniff"


def test_only_the_lobby_display_may_be_embedded(client, seeded):
    display = client.get("/display/demo")
    assert "frame-ancestors *" in display.headers["Content-Security-Policy"]
    assert "X-Frame-Options" not in display.headers


def test_token_pages_keep_their_stricter_referrer_policy(client, api):
    ticket = api.issue("A")
    assert client.get(f"/t/{ticket['token']}").headers["Referrer-Policy"] == "no-referrer"


def test_no_template_has_inline_script_code():
    import re
    from pathlib import Path

    root = Path(__file__).resolve().parents[2] / "templates"
    for template in root.rglob("*.html"):
        for tag in re.findall(r"<script\b[^>]*>", template.read_text()):
            assert "src=" in tag or "application/json" in tag, f"{template.name}: {tag}"


def test_production_refuses_to_start_without_a_secret_key(tmp_path, monkeypatch):
    monkeypatch.setenv("QUEUE_APP_ENV", "production")
    monkeypatch.delenv("QUEUE_APP_SECRET_KEY", raising=False)
    config = {k: v for k, v in TEST_CONFIG.items() if k != "SECRET_KEY"}
    from queue_app import create_app

    with pytest.raises(RuntimeError, match="QUEUE_APP_SECRET_KEY"):
        create_app({**config, "SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path / 'p.sqlite'}"})
    monkeypatch.setenv("QUEUE_APP_SECRET_KEY", "a-real-secret")
    app = make_app(tmp_path / "p.sqlite")
    assert app.config["SESSION_COOKIE_SECURE"] is True
