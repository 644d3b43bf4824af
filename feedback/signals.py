"""Settle a review when an expert labels (or relabels) an item that product feedback put in review."""
from django.dispatch import receiver

from labeller.signals import annotation_recorded

from .review import review_settle


@receiver(annotation_recorded)
def settle_review(sender, item, annotation, **kwargs):
    review_settle(item=item, labels=annotation.labels)  # also re-scores a review the expert edits
