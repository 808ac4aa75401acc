"""The audit log: who viewed or changed which customer record, role, counter, service or setting."""


def init_app(app) -> None:
    from queue_app.accounts.auth import current_actor_id
    from queue_app.audit import operations

    operations.watch()  # session hooks: changes to watched models are logged in their own transaction
    operations.actor_provider = current_actor_id
