"""Saving a branch's planning rules (planning.check_rules validates them; planning_rules reads them)."""
from datetime import datetime

from sqlalchemy import delete
from sqlalchemy.orm import Session

from queue_app.catalogue.models import Branch
from queue_app.core.models import utcnow
from queue_app.core.transaction import write_transaction
from queue_app.planning import plan as planning
from queue_app.planning.models import ArrivalForecast, StaffingPlan
from queue_app.tickets import numbering


def update_planning_rules(session: Session, branch: Branch, values: dict,
                          now: datetime | None = None) -> tuple[planning.PlanningRules, bool]:
    """Merge validated `values` into the branch's planning rules; raises Invalid (nothing saved) on a bad one.

    A new interval puts the plan on another grid: the rows of today and later on the old grid
    (overrides included, they name intervals that no longer exist) are removed in the same
    transaction and the plan is recomputed at once. Returns the rules and whether that happened.
    """
    now = now or utcnow()
    clean = planning.check_rules(values)
    old_interval = planning.planning_rules(branch).interval_minutes
    regrid = "interval_minutes" in clean and clean["interval_minutes"] != old_interval
    with write_transaction(session):
        branch.planning_rules = {**(branch.planning_rules or {}), **clean}
        if regrid:
            today = numbering.local_day(now, branch.zone)
            for model in (StaffingPlan, ArrivalForecast):
                session.execute(delete(model).where(model.branch_id == branch.id, model.local_date >= today))
    if regrid:
        planning.plan_branch(session, branch, now)
    return planning.planning_rules(branch), regrid
