"""The demo branch every try-out and test starts from: services A, B and C, three counters, staff
and a kiosk."""
from flask import current_app
from sqlalchemy import select

from queue_app.catalogue import operations as catalogue
from queue_app.catalogue.models import Branch
from queue_app.core.extensions import db

DEMO_PASSWORD = "demo-password"
DEMO_BRANCH = "demo"


def seed_demo_data() -> str | None:
    """Demo branch, services, counters, staff and a kiosk; returns the kiosk token, or None if seeded before."""
    session = db.session
    if session.scalar(select(Branch.id).where(Branch.slug == DEMO_BRANCH)) is not None:
        return None
    weekday = [["09:00", "12:30"], ["13:30", "17:00"]]
    catalogue.create_branch(
        session, DEMO_BRANCH, "Demo Branch", "Asia/Taipei", country="TW",
        opening_hours={d: weekday for d in ("mon", "tue", "wed", "thu", "fri")} | {"sat": [["09:00", "12:00"]]},
    )
    # Names in the other shipped languages (the glossary's terms: queue_app/translations/glossary.json).
    catalogue.create_service(session, DEMO_BRANCH, "A", "Accounts and deposits", expected_minutes=6,
                             names={"zh_Hant": "帳戶與存款", "zh_Hans": "账户与存款"},
                             checklist="Photo ID\nAccount number or bank book")
    catalogue.create_service(session, DEMO_BRANCH, "B", "Loans and mortgages", expected_minutes=20,
                             names={"zh_Hant": "貸款與房貸", "zh_Hans": "贷款与房贷"},
                             checklist="Photo ID\nProof of income (last 3 months)\nProof of address")
    catalogue.create_service(session, DEMO_BRANCH, "C", "Cards and enquiries", expected_minutes=5,
                             names={"zh_Hant": "信用卡與諮詢", "zh_Hans": "信用卡与咨询"},
                             checklist="Photo ID\nThe card, if replacing one")
    for n, services in ((1, ["A", "C"]), (2, ["A", "B"]), (3, ["B", "C"])):
        catalogue.create_counter(session, DEMO_BRANCH, f"Counter {n}", services, state="open",
                                 names={"zh_Hant": f"{n} 號櫃檯", "zh_Hans": f"{n} 号柜台"})
    cost = current_app.config["PASSWORD_HASH_COST"]
    catalogue.create_staff(session, "admin@demo.test", DEMO_PASSWORD, "admin", [DEMO_BRANCH], name="Ada Admin",
                           hash_cost=cost)
    catalogue.create_staff(session, "manager@demo.test", DEMO_PASSWORD, "manager", [DEMO_BRANCH],
                           name="Max Manager", hash_cost=cost)
    for n in (1, 2, 3):
        catalogue.create_staff(session, f"staff{n}@demo.test", DEMO_PASSWORD, "staff", [DEMO_BRANCH],
                               name=f"Staff {n}", hash_cost=cost)
    _device, token = catalogue.create_kiosk_device(session, DEMO_BRANCH, "Lobby kiosk 1")
    return token
