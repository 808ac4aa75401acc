import re

from helpers import STAFF_EMAIL, csrf_token, login


def test_staff_pages_need_login(client, seeded):
    response = client.get("/staff")
    assert response.status_code == 302 and "/login" in response.headers["Location"]


def test_login_with_csrf_then_console_lists_counters(client, seeded):
    response = login(client)
    assert response.status_code == 302 and response.headers["Location"] == "/staff"
    console = client.get("/staff")
    assert console.status_code == 200 and b"Counter 1" in console.data


def test_login_refuses_wrong_password_and_missing_csrf(client, seeded):
    wrong = login(client, password="wrong-password")
    assert wrong.status_code == 400 and b"Wrong e-mail or password." in wrong.data
    no_csrf = client.post("/login", data={"email": STAFF_EMAIL, "password": "demo-password"})
    assert no_csrf.status_code == 400
    assert client.get("/staff").status_code == 302


def test_login_ignores_an_offsite_next(client, seeded):
    page = client.get("/login?next=https://evil.example/")
    response = client.post("/login?next=https://evil.example/", data={
        "email": STAFF_EMAIL, "password": "demo-password", "csrf_token": csrf_token(page.data)})
    assert response.headers["Location"] == "/staff"


def test_a_manager_lands_on_the_dashboard_and_an_admin_on_the_branch_list(client, seeded):
    manager = login(client, "manager@demo.test")
    assert manager.headers["Location"] == "/manage/branches/demo/dashboard"
    assert client.get(manager.headers["Location"]).status_code == 200
    client.post("/logout", data={"csrf_token": csrf_token(client.get("/staff").data)})
    assert login(client, "admin@demo.test").headers["Location"] == "/manage/"


def test_a_safe_next_still_wins_over_the_manager_landing(client, seeded):
    page = client.get("/login?next=/staff")
    response = client.post("/login?next=/staff", data={
        "email": "manager@demo.test", "password": "demo-password", "csrf_token": csrf_token(page.data)})
    assert response.headers["Location"] == "/staff"
    client.post("/logout", data={"csrf_token": csrf_token(client.get("/staff").data)})
    page = client.get("/login?next=//evil.example/")
    offsite = client.post("/login?next=//evil.example/", data={
        "email": "manager@demo.test", "password": "demo-password", "csrf_token": csrf_token(page.data)})
    assert offsite.headers["Location"] == "/manage/branches/demo/dashboard"


def test_manage_needs_the_manager_role(client, seeded):
    login(client)
    assert client.get("/manage/").status_code == 403
    client.post("/logout", data={"csrf_token": csrf_token(client.get("/staff").data)})
    login(client, "manager@demo.test")
    assert client.get("/manage/").status_code == 200


def test_ticket_page_shows_numbers_not_personal_data(client, api):
    ticket = api.issue("A", phone="+886912345678")
    page = client.get(f"/t/{ticket['token']}")
    assert page.status_code == 200 and b"A001" in page.data
    assert b"912345678" not in page.data
    assert client.get("/t/unknown-token").status_code == 404


def test_browsers_get_branded_error_pages_and_the_api_json(client, seeded):
    missing = client.get("/no-such-page")
    assert missing.status_code == 404 and b"Page not found" in missing.data and b"<html" in missing.data
    wrong = client.put("/login")
    assert wrong.status_code == 405 and b"This page cannot do that" in wrong.data
    assert "GET" in wrong.headers["Allow"]
    assert client.get("/api/v1/no-such-thing").json["error"]["code"] == "not_found"
    big = client.post("/login", data={"email": "x" * 300_000})
    assert big.status_code == 413 and b"too large" in big.data


def test_feedback_form_has_star_and_zero_to_ten_radios_and_still_posts(client, api):
    ticket = api.issue("A")
    api.call("POST", f"/counters/{api.counter_id('Counter 1')}/call-next", "staff1@demo.test")
    api.call("POST", f"/tickets/{ticket['id']}/finish", "staff1@demo.test")
    form = client.get(f"/t/{ticket['token']}/feedback")
    html = form.get_data(as_text=True)
    stars = re.search(r'<div class="star-rating">(.*?)</div>', html, re.DOTALL).group(1)
    assert re.findall(r'type="radio" name="rating" value="(\d)"', stars) == ["1", "2", "3", "4", "5"]
    assert all(f'<label for="rating-{n}"' in stars for n in range(1, 6)) and "5 stars" in stars
    scale = re.search(r'<div class="nps-scale">(.*?)</div>', html, re.DOTALL).group(1)
    assert re.findall(r'type="radio" name="nps" value="(\d+)"', scale) == [str(n) for n in range(11)]
    assert "<select" not in html  # no drop-down left
    sent = client.post(f"/t/{ticket['token']}/feedback", data={"rating": "5", "comment": "",
                                                               "csrf_token": csrf_token(form.data)})
    assert sent.status_code == 200 and "Thank you for your feedback" in sent.get_data(as_text=True)
