"""Signals other apps listen to, so the labelling core does not import them."""
from django.dispatch import Signal

# Sent inside annotation_submit's transaction after an expert's labels are saved (not for skips),
# with `item` and `annotation`. The feedback app settles reviews with it.
annotation_recorded = Signal()

# Sent by annotation_submit after its transaction, when an expert labelled an item for the first
# time (not a skip, not an edit), with `project`. Active learning counts them towards the next
# refresh; outside the submit's transaction, so experts never wait on the counter's row.
labels_recorded = Signal()

# Sent inside the transaction that added items to a project (an import, a prediction that
# abstained), with `project_id`. Active learning records an encode request in that same transaction,
# so the request commits with the items or not at all; the worker is messaged after commit.
items_added = Signal()
