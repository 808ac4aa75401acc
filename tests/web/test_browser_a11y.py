"""Accessibility in a real browser: axe-core on the kiosk, booking, booking-management and tracking
pages and the display in each language, and on the staff console and the manager pages; the
kiosk's large-type and high-contrast mode, and the keyboard.

axe-core is vendored (tests/vendor/axe-core, from the npm registry) and evaluated in the page
through Playwright, which the pages' Content-Security-Policy does not apply to; the app never
serves it. A serious or critical violation fails the test with axe's own description.
"""
import re
from datetime import timedelta

from browser import WAIT_MS, open_page, save_screenshot
from helpers import add_appointment, axe_violations, now_minute
from playwright.sync_api import expect

LANGUAGES = ("en", "zh_Hant", "zh_Hans")
PHONE = {"viewport": {"width": 360, "height": 740}, "is_mobile": True, "has_touch": True, "device_scale_factor": 2}
KIOSK = {"viewport": {"width": 1080, "height": 1920}, "has_touch": True}


def test_kiosk_passes_axe_in_each_language_and_in_its_large_high_contrast_mode(server, chromium, seeded, axe_source,  # noqa: F811
                                                                                 app, tmp_path):
    add_appointment(app, "AXEKSK23", now_minute())
    errors: list[str] = []
    violations: list[str] = []
    kiosk = open_page(chromium, errors, **KIOSK)
    kiosk.goto(f"{server.base}/kiosk/demo?device={seeded['kiosk_token']}")
    for language in LANGUAGES:
        kiosk.goto(f"{server.base}/kiosk/demo?lang={language}")
        expect(kiosk.locator("html")).to_have_attribute("lang", language.replace("_", "-"))
        violations += axe_violations(kiosk, axe_source)
        kiosk.locator("#booking-button").click()
        expect(kiosk.locator("#checkin-screen")).to_be_visible()
        violations += axe_violations(kiosk, axe_source)
        kiosk.locator("#checkin-back").click()
        expect(kiosk.locator("#start-screen")).to_be_visible()
        expect(kiosk.locator("html")).to_have_attribute("lang", language.replace("_", "-"))  # same visitor
        kiosk.locator(".service-tile").first.click()
        expect(kiosk.locator("#t-label")).to_have_text(re.compile(r"^A\d{3}$"))
        violations += axe_violations(kiosk, axe_source)
        save_screenshot(kiosk, tmp_path, f"a11y-kiosk-ticket-{language}.png")
        kiosk.locator("#done-button").click()
        # The next visitor starts in the branch's language (a visitor's choice reloads the page).
        expect(kiosk.locator("html")).to_have_attribute("lang", "en")
        expect(kiosk.locator("#start-screen")).to_be_visible()
        kiosk.wait_for_load_state()

    # Large type and high contrast: toggles on the start screen, announced as pressed.
    kiosk.goto(f"{server.base}/kiosk/demo")
    large = kiosk.get_by_role("button", name="Larger text")
    contrast = kiosk.get_by_role("button", name="High contrast")
    base_size = kiosk.evaluate("parseFloat(getComputedStyle(document.querySelector('.service-name')).fontSize)")
    large.click()
    contrast.click()
    expect(large).to_have_attribute("aria-pressed", "true")
    expect(contrast).to_have_attribute("aria-pressed", "true")
    expect(kiosk.locator("html")).to_have_class(re.compile(r"\bmode-large\b.*\bmode-contrast\b|\bmode-contrast\b.*\bmode-large\b"))
    large_size = kiosk.evaluate("parseFloat(getComputedStyle(document.querySelector('.service-name')).fontSize)")
    assert large_size >= base_size * 1.25
    assert kiosk.evaluate("getComputedStyle(document.body).backgroundColor") == "rgb(0, 0, 0)"
    violations += axe_violations(kiosk, axe_source)
    save_screenshot(kiosk, tmp_path, "a11y-kiosk-large-contrast.png")
    # The mode survives a language change (the same visitor), and the axe check holds in Chinese.
    kiosk.get_by_role("link", name="繁體中文").click()
    expect(kiosk.locator("html")).to_have_attribute("lang", "zh-Hant")
    expect(kiosk.get_by_role("button", name="放大文字")).to_have_attribute("aria-pressed", "true")
    kiosk.locator("#booking-button").click()
    violations += axe_violations(kiosk, axe_source)
    # Larger text still fits the screen's width (no sideways scrolling on a kiosk).
    assert kiosk.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    save_screenshot(kiosk, tmp_path, "a11y-kiosk-checkin-large-contrast-zh-hant.png")
    kiosk.locator("#checkin-back").click()
    kiosk.locator(".service-tile").first.click()
    violations += axe_violations(kiosk, axe_source)
    # The next visitor (after the ticket screen) gets the standard screen in the branch's language.
    kiosk.locator("#done-button").click()
    expect(kiosk.locator("html")).to_have_attribute("lang", "en")
    expect(kiosk.get_by_role("button", name="Larger text")).to_have_attribute("aria-pressed", "false")
    expect(kiosk.locator("html")).not_to_have_class(re.compile(r"\bmode-(large|contrast)\b"))
    assert violations == [], "\n".join(violations)
    assert errors == []


def test_kiosk_is_usable_with_the_keyboard_alone(server, chromium, seeded, app, tmp_path):  # noqa: F811
    """Tab reaches every control in order, each has a name, Enter and Space work them."""
    add_appointment(app, "KEYBRD23", now_minute())
    errors: list[str] = []
    kiosk = open_page(chromium, errors, **KIOSK)
    kiosk.goto(f"{server.base}/kiosk/demo?device={seeded['kiosk_token']}")
    reached = []
    for _ in range(20):
        kiosk.keyboard.press("Tab")
        focused = kiosk.evaluate("""() => {
            const el = document.activeElement;
            const copy = el.cloneNode(true);  // the name a screen reader reads: without aria-hidden parts
            copy.querySelectorAll("[aria-hidden=true]").forEach(node => node.remove());
            const name = (el.getAttribute("aria-label") || copy.textContent || "").trim().replace(/\\s+/g, " ");
            return {id: el.id, cls: el.className, tag: el.tagName, name: name,
                    visible: !!(el.offsetWidth || el.offsetHeight)};
        }""")
        assert focused["tag"] != "BODY", reached
        assert focused["name"] and focused["visible"], focused
        reached.append(focused["name"])
        if focused["id"] == "booking-button":
            break
    assert any("Accounts and deposits" in name for name in reached)
    assert any(name == "Larger text" for name in reached) and any(name == "High contrast" for name in reached)
    assert any(name == "繁體中文" for name in reached)
    # Enter on the focused "I have a booking", type the code, Enter checks in.
    kiosk.keyboard.press("Enter")
    expect(kiosk.locator("#checkin-screen")).to_be_visible()
    expect(kiosk.locator("#checkin-code")).to_be_focused()
    kiosk.keyboard.type("KEYBRD23")
    kiosk.keyboard.press("Enter")
    expect(kiosk.locator("#t-label")).to_have_text("B001")
    expect(kiosk.locator("#done-button")).to_be_focused()
    save_screenshot(kiosk, tmp_path, "a11y-kiosk-keyboard-ticket.png")
    kiosk.keyboard.press("Enter")  # Done
    expect(kiosk.locator("#start-screen")).to_be_visible()
    # A service tile with Space.
    kiosk.locator(".service-tile").first.focus()
    kiosk.keyboard.press(" ")
    expect(kiosk.locator("#t-label")).to_have_text("A001")
    assert errors == []


def test_booking_manage_and_tracking_pages_pass_axe_in_each_language(server, chromium, seeded, app, api,  # noqa: F811
                                                                       axe_source, tmp_path):
    add_appointment(app, "AXEMNG23", now_minute() + timedelta(days=2))
    ticket = api.issue("A")
    track_url = f"{server.base}/t/{ticket['token']}"
    errors: list[str] = []
    violations: list[str] = []
    phone = open_page(chromium, errors, **PHONE)
    for language in LANGUAGES:
        phone.goto(f"{server.base}/b/demo?lang={language}")
        expect(phone.locator("html")).to_have_attribute("lang", language.replace("_", "-"))
        phone.locator('input[name="service"]').first.check()
        slot = phone.locator("button.slot:not([disabled])").first
        expect(slot).to_be_visible()
        slot.click()
        violations += axe_violations(phone, axe_source)
        # Submitting empty shows the field errors: they are checked too.
        phone.locator("#book-button").click()
        violations += axe_violations(phone, axe_source)
        save_screenshot(phone, tmp_path, f"a11y-booking-{language}.png")

        phone.goto(f"{server.base}/a/AXEMNG23-manage-token?lang={language}")
        expect(phone.locator("#checkin-code")).to_have_text("AXEMNG23")
        violations += axe_violations(phone, axe_source)
        save_screenshot(phone, tmp_path, f"a11y-manage-{language}.png")

        phone.goto(f"{track_url.split('?')[0]}?lang={language}")
        expect(phone.locator("html")).to_have_attribute("data-live", "joined", timeout=WAIT_MS)
        violations += axe_violations(phone, axe_source)
        save_screenshot(phone, tmp_path, f"a11y-tracking-{language}.png")

        display = open_page(chromium, errors, viewport={"width": 1920, "height": 1080})
        display.goto(f"{server.base}/display/demo?lang={language}")
        expect(display.locator("html")).to_have_attribute("data-live", "joined", timeout=WAIT_MS)
        violations += axe_violations(display, axe_source)
        display.context.close()
    assert violations == [], "\n".join(violations)
    assert errors == []


def test_staff_console_and_manager_pages_pass_axe(server, chromium, seeded, axe_source, session, tmp_path):  # noqa: F811
    from helpers import sign_in

    from queue_app.core.models import utcnow
    from queue_app.demo.customers import seed_customer_history

    seed_customer_history(session, "demo", now=utcnow())  # the customer pages with content
    errors: list[str] = []
    violations: list[str] = []
    admin = open_page(chromium, errors, viewport={"width": 1366, "height": 900})
    admin.goto(f"{server.base}/login")
    violations += axe_violations(admin, axe_source)
    sign_in(admin, server.base, "admin@demo.test", seeded["password"])
    for path in ("/staff", "/manage/", "/manage/branches/demo/counters", "/manage/branches/demo/services",
                 "/manage/staff", "/manage/branches/demo/kiosks", "/manage/branches/demo/customers",
                 "/manage/branches/demo/edit", "/manage/audit", "/manage/?lang=zh_Hant"):
        admin.goto(server.base + path)
        violations += axe_violations(admin, axe_source)
    admin.goto(f"{server.base}/staff")
    admin.get_by_role("link", name=re.compile("Counter 1")).click()
    expect(admin.locator("html")).to_have_attribute("data-live", "joined", timeout=WAIT_MS)
    violations += axe_violations(admin, axe_source)
    save_screenshot(admin, tmp_path, "a11y-staff-console.png")
    assert violations == [], "\n".join(violations)
    assert errors == []
