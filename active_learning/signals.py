"""Signals the active-learning loop sends; receivers.py decides what follows them."""
from django.dispatch import Signal

# Sent by the refresh task once a refresh has written its priorities, with `project_id`.
refresh_finished = Signal()
