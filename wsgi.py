"""Entry point for WSGI servers: `gunicorn -w 1 --threads 32 wsgi:app`."""
from queue_app import create_app, freeze_start_up_objects

app = create_app()
freeze_start_up_objects()
