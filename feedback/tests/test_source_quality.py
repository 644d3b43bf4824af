"""Feedback sources on the annotator-quality page: the figures that apply to a source, by hand.

    source            events                                                 expert said
    shop (untrusted)  confirmation ×3, correction ×1                         agrees, disagrees, -, agrees
    crm (trusted)     correction ×2, both became training labels             -
    viewer (member)   rejection ×1                                           disagrees
"""
import pytest
from django.utils import timezone

from feedback.models import FeedbackEvent, FeedbackKind, FeedbackStatus
from feedback.selectors import feedback_source_quality
from feedback.tokens import token_create

pytestmark = pytest.mark.django_db


def add_sources(project, viewer):
    shop, _ = token_create(project=project, name="shop", scopes=["feedback"])
    crm, _ = token_create(project=project, name="crm", scopes=["feedback"], trusted=True)

    def event(kind, status, agrees=None, **who):
        FeedbackEvent.objects.create(project=project, kind=kind, status=status, expert_agrees=agrees, end_user="u1",
                                     label="card_arrival", occurred_at=timezone.now(), **who)

    event(FeedbackKind.CONFIRMATION, FeedbackStatus.REVIEWED, True, token=shop)
    event(FeedbackKind.CONFIRMATION, FeedbackStatus.REVIEWED, False, token=shop)
    event(FeedbackKind.CONFIRMATION, FeedbackStatus.AGREES, token=shop)
    event(FeedbackKind.CORRECTION, FeedbackStatus.REVIEWED, True, token=shop)
    event(FeedbackKind.CORRECTION, FeedbackStatus.TRAINING, token=crm)
    event(FeedbackKind.CORRECTION, FeedbackStatus.TRAINING, token=crm)
    event(FeedbackKind.REJECTION, FeedbackStatus.REVIEWED, False, user=viewer)
    return project


@pytest.fixture
def sources(project, viewer):
    return add_sources(project, viewer)


def test_each_source_has_its_reliability_acceptance_and_overturned_confirmations(sources):
    keys = ("events", "labels", "reviewed", "agreed", "reliability", "confirmations", "acceptance_rate",
            "confirmations_reviewed", "overturned", "overturned_rate")
    rows = {r["name"]: [r[k] for k in keys] for r in feedback_source_quality(project=sources)}
    assert rows == {
        "shop": [4, 0, 3, 2, 0.667, 3, 0.75, 2, 1, 0.5],
        "crm": [2, 2, 0, 0, None, 0, 0.0, 0, 0, None],
        "viewer (member)": [1, 0, 1, 0, 0.0, 0, 0.0, 0, 0, None],
    }


def test_a_project_without_feedback_lists_its_tokens_with_nothing_counted(project):
    token_create(project=project, name="idle", scopes=["feedback"])
    (row,) = feedback_source_quality(project=project)
    assert (row["name"], row["events"], row["acceptance_rate"], row["overturned_rate"]) == ("idle", 0, None, None)
