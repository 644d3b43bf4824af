"""The labelling loop, wired in one place: what happens after what.

    labels recorded  → count them; every `refresh_every` labels, request a refresh
    items added      → encode them (then the encoder requests a refresh itself)
    champion changed → re-encode the pool with the champion's embeddings (then refresh)
    refresh finished → explain the suggestions at the head of the queue; retrain if due; after
                       enough new labels, refit the consensus and look for label errors

The apps below send these signals after commit and import nothing of this one.
"""
from django.dispatch import receiver

from core.enqueue import enqueue
from labeller.models import Project
from labeller.signals import items_added, labels_recorded
from models_registry.signals import champion_changed
from models_registry.training import retrain_if_due

from . import explaining
from .encoding import encode_request
from .label_errors import labels_audit_if_due
from .refresh import refresh_after_label
from .signals import refresh_finished


@receiver(labels_recorded)
def count_labels(sender, project, **kwargs):
    refresh_after_label(project=project)


@receiver(items_added)
def encode_new_items(sender, project_id, **kwargs):
    encode_request(project_id=project_id)


@receiver(champion_changed)
def encode_with_new_champion(sender, project_id, **kwargs):
    encode_request(project_id=project_id)


@receiver(refresh_finished)
def explain_and_maybe_retrain(sender, project_id, **kwargs):
    enqueue(explaining.explain_suggestions, project_id)
    project = Project.objects.get(id=project_id)
    retrain_if_due(project=project)  # the "retrain after N labels" trigger
    labels_audit_if_due(project=project)  # the consensus and label-error flags, every LABELLOOP_LABEL_AUDIT_EVERY labels
