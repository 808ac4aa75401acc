"""What a delivery driver tells the outbox sender (notify.py `send_due`) about one message."""
from dataclasses import dataclass


class PermanentFailure(Exception):
    """Retrying cannot help (e.g. the recipient address is refused): the row becomes `failed`."""


class RecipientOptedOut(PermanentFailure):
    """The gateway refused the number because it opted out at the carrier (replied STOP there,
    Twilio error 21610): the row fails, and the sender puts the number on our opt-out list."""


@dataclass(frozen=True)
class Accepted:
    """A gateway took the message: its id there (delivery status callbacks name it) and first status."""

    provider: str
    message_id: str | None
    status: str = "queued"
