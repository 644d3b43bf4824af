"""Signals the registry sends, so the apps above it react without the registry importing them."""
from django.dispatch import Signal

# Sent after commit when a project's champion changed (promotion or rollback), with `project_id`.
# Active learning re-encodes the pool with the new champion's embeddings and refreshes.
champion_changed = Signal()
