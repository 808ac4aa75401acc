"""Booking mail and SMS: texts, an outbox written in the booking's transaction, delivery drivers."""
