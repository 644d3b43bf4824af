"""Signals other apps listen to, so the labelling core does not import them."""
from django.dispatch import Signal

# Sent inside annotation_submit's transaction after an expert's labels are saved (not for skips),
# with `item` and `annotation`. The feedback app settles reviews with it.
annotation_recorded = Signal()
