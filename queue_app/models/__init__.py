"""Models, one module per aggregate. Importing this package registers every table."""
from queue_app.accounts.models import ROLES, Staff, staff_branch
from queue_app.booking.models import APPOINTMENT_STATES, Appointment, BookingSlot
from queue_app.catalogue.models import COUNTER_STATES, WEEKDAYS, Branch, Counter, CounterService, Service
from queue_app.core.models import Base, UTCDateTime, utcnow
from queue_app.customers.models import (
    SEGMENTS,
    AuditEntry,
    ChurnAlert,
    ContactProof,
    Customer,
    CustomerStanding,
    Feedback,
)
from queue_app.kiosks.models import KioskDevice, KioskPairingCode
from queue_app.notifications.models import NOTIFICATION_STATES, Notification
from queue_app.planning.models import ArrivalForecast, StaffingPlan
from queue_app.tickets.models import ACTIVE_STATES, TICKET_STATES, Ticket, TicketEvent, TicketSequence
from queue_app.webhooks.models import WEBHOOK_DELIVERY_STATES, WebhookAttempt, WebhookDelivery, WebhookEndpoint

__all__ = [
    "APPOINTMENT_STATES", "Appointment", "ArrivalForecast", "StaffingPlan", "BookingSlot", "ACTIVE_STATES", "Base", "Branch", "COUNTER_STATES", "Counter", "CounterService", "Customer",
    "AuditEntry", "ChurnAlert", "ContactProof", "CustomerStanding", "Feedback", "SEGMENTS",
    "KioskDevice", "KioskPairingCode", "NOTIFICATION_STATES", "Notification", "ROLES", "Service", "Staff", "TICKET_STATES", "Ticket", "TicketEvent",
    "TicketSequence", "UTCDateTime", "WEEKDAYS", "staff_branch", "utcnow",
    "WEBHOOK_DELIVERY_STATES", "WebhookAttempt", "WebhookDelivery", "WebhookEndpoint",
]
