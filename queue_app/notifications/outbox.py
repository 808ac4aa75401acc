"""The claim cycle shared by the outboxes (mail and SMS in notify.py, webhooks in webhooks.py).

A row is `pending` until its `next_attempt_at`; a worker claims it by flipping it to `sending`
with a lease in one conditional UPDATE (only the worker whose UPDATE hit the row gets it), does
the slow part outside any transaction, and writes the result only if the row is still its own.
A row left `sending` past its lease lost its worker: it counts an attempt and goes back to
pending. So any number of workers, threads or processes, can run at once.
"""
from datetime import datetime, timedelta

from sqlalchemy import case, select, update
from sqlalchemy.orm import Session

from queue_app.core.transaction import write_transaction


def recover_stuck(session: Session, model, now: datetime, max_attempts: int, reason: str) -> None:
    """Rows whose worker died mid-send (lease over) count an attempt and go back to pending."""
    with write_transaction(session):
        session.execute(
            update(model)
            .where(model.status == "sending", model.next_attempt_at <= now)
            .values(attempts=model.attempts + 1,
                    status=case((model.attempts + 1 >= max_attempts, "failed"), else_="pending"),
                    last_error=reason)
            .execution_options(synchronize_session=False)
        )


def due_ids(session: Session, model, now: datetime, batch: int) -> list[int]:
    """Ids of the rows due now, oldest first; ends the read so each claim is a short write."""
    due = session.scalars(
        select(model.id).where(model.status == "pending", model.next_attempt_at <= now)
        .order_by(model.next_attempt_at, model.id).limit(batch)
    ).all()
    session.commit()
    return list(due)


def claim(session: Session, model, row_id: int, now: datetime, lease: timedelta) -> bool:
    """pending -> sending, inside the caller's write transaction; False if another worker has it."""
    return session.execute(
        update(model)
        .where(model.id == row_id, model.status == "pending", model.next_attempt_at <= now)
        .values(status="sending", next_attempt_at=now + lease)
        .returning(model.id)
        .execution_options(synchronize_session=False)
    ).first() is not None


def settle(session: Session, model, row_id: int, values: dict) -> None:
    """Write a claimed row's outcome, inside the caller's write transaction. Only a row still
    `sending`: after a lease ran out another worker may have taken it."""
    session.execute(update(model).where(model.id == row_id, model.status == "sending")
                    .values(**values).execution_options(synchronize_session=False))


def backoff(attempts: int, first: timedelta, cap: timedelta) -> timedelta:
    """first, 2 x first, 4 x first ... after the 1st, 2nd, 3rd ... failure, at most `cap`."""
    return min(first * (2 ** max(attempts - 1, 0)), cap)
