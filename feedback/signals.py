"""Settle a review when an expert labels (or relabels) an item that product feedback put in review;
forget a project's cached label keys when its labels change."""
from django.db.models.signals import post_delete, post_save
from django.dispatch import receiver

from labeller.models import Label
from labeller.signals import annotation_recorded

from .ingest import forget_label_keys
from .review import review_settle


@receiver(annotation_recorded)
def settle_review(sender, item, annotation, **kwargs):
    review_settle(item=item, labels=annotation.labels)  # also re-scores a review the expert edits


@receiver([post_save, post_delete], sender=Label)
def label_changed(sender, instance, **kwargs):
    forget_label_keys(instance.project_id)
