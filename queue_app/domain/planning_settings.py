"""Saving a branch's planning rules (planning.check_rules validates them; planning_rules reads them)."""
from sqlalchemy.orm import Session

from queue_app.domain import planning
from queue_app.domain.transaction import write_transaction
from queue_app.models import Branch


def update_planning_rules(session: Session, branch: Branch, values: dict) -> planning.PlanningRules:
    """Merge validated `values` into the branch's planning rules; raises Invalid (nothing saved) on a bad one."""
    clean = planning.check_rules(values)
    with write_transaction(session):
        branch.planning_rules = {**(branch.planning_rules or {}), **clean}
    return planning.planning_rules(branch)
