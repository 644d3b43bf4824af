"""Feedback sources on the same footing as annotators: a source's accuracy is how likely what it
said is true under the experts' consensus (labeller.consensus), and a trusted source the estimate
puts below the floor is routed to review instead of becoming training data."""
import pytest
from django.utils import timezone

from feedback.models import FeedbackEvent, FeedbackKind, FeedbackStatus
from feedback.review import route_pending, source_estimates, source_reliability
from feedback.tokens import token_create
from labeller.consensus import consensus_refresh
from labeller.models import Annotation, Item
from labeller.services import annotation_submit

pytestmark = pytest.mark.django_db


@pytest.fixture
def judged(make_project, add_items, expert, expert2):
    """Six items two experts labelled (agreeing on five); the trusted "crm" corrected each of them
    with a label the experts did not give, the untrusted "shop" with the experts' label."""
    project = make_project(labels_per_item=2)
    items = add_items(project, [f"text {i}" for i in range(6)])
    crm, _ = token_create(project=project, name="crm", scopes=["feedback"], trusted=True)
    shop, _ = token_create(project=project, name="shop", scopes=["feedback"])
    for i, item in enumerate(items):
        item.project = project
        annotation_submit(item=item, user=expert, labels=["card_arrival"])
        annotation_submit(item=Item.objects.get(id=item.id), user=expert2,
                          labels=["exchange_rate" if i == 0 else "card_arrival"])
        for token, label, agrees in ((crm, "lost_card", False), (shop, "card_arrival", i != 0)):
            FeedbackEvent.objects.create(project=project, token=token, item=item, kind=FeedbackKind.CORRECTION,
                                         label=label, status=FeedbackStatus.REVIEWED, expert_agrees=agrees,
                                         end_user="u1", occurred_at=timezone.now())
    return project, crm, shop


def post_correction(project, token, text):
    return FeedbackEvent.objects.create(project=project, token=token, kind=FeedbackKind.CORRECTION, label="lost_card",
                                        data={"text": text}, end_user="u2", occurred_at=timezone.now())


def test_before_a_fit_a_sources_estimate_is_its_agreement_with_the_experts_majority(judged):
    project, crm, shop = judged
    estimates = source_estimates(project=project)
    assert estimates[crm.prefix] == {"accuracy": 0.0, "basis": 6}
    # Item 0's experts split 1-1: the majority rule's alphabetical tie-break picks card_arrival.
    assert estimates[shop.prefix] == {"accuracy": 1.0, "basis": 6}


def test_after_a_fit_the_estimate_reads_the_consensus_posterior(judged):
    project, crm, shop = judged
    consensus_refresh(project=project)
    estimates = source_estimates(project=project)  # a new fit is a new cache key
    assert estimates[shop.prefix]["accuracy"] >= 0.99 and estimates[crm.prefix]["accuracy"] <= 0.01
    assert estimates[shop.prefix]["basis"] == estimates[crm.prefix]["basis"] == 6
    rows = {r["name"]: r for r in source_reliability(project=project)}
    assert rows["shop"]["estimated_accuracy"] == estimates[shop.prefix]["accuracy"] and rows["shop"]["estimate_basis"] == 6
    assert rows["crm"]["demoted"] is False  # the default floor needs 20 judged events


@pytest.mark.parametrize("kind, agrees, expected", [
    (FeedbackKind.CORRECTION, True, 0.7), (FeedbackKind.CORRECTION, False, 0.15),
    (FeedbackKind.CONFIRMATION, True, 0.7), (FeedbackKind.REJECTION, True, 0.85), (FeedbackKind.REJECTION, False, 0.3),
])
def test_a_judged_event_counts_as_the_probability_that_what_it_said_is_true(kind, agrees, expected, project):
    from feedback.review import _claim_probability
    from labeller.task_types import task_type_for

    # The consensus is card_arrival at 0.7 of three labels; the model had predicted card_arrival
    # (or, where the event should disagree, exchange_rate).
    consensus = ["card_arrival"]
    predicted = ["card_arrival"] if (kind == FeedbackKind.REJECTION) != agrees else ["exchange_rate"]
    label = "card_arrival" if agrees else "lost_card"
    event = FeedbackEvent(project=project, kind=kind, label=label, predicted_labels=predicted)
    assert _claim_probability(event, consensus, 0.7, 3, task_type_for(project)) == pytest.approx(expected)


def test_a_trusted_source_the_estimate_puts_below_the_floor_is_routed_to_review(judged, settings):
    project, crm, shop = judged
    accepted = post_correction(project, crm, "still trusted")
    route_pending(project_id=project.id)
    accepted.refresh_from_db()
    assert accepted.status == FeedbackStatus.TRAINING  # 6 judged events: below the basis of 20

    settings.LABELLOOP_TRUSTED_SOURCE_MIN_BASIS = 5
    demoted = post_correction(project, crm, "no longer trusted")
    route_pending(project_id=project.id)
    demoted.refresh_from_db()
    assert demoted.status == FeedbackStatus.REVIEW and demoted.item.needs_review
    assert not Annotation.objects.filter(item=demoted.item).exists()
    assert {r["name"]: r["demoted"] for r in source_reliability(project=project)} == {"crm": True, "shop": False}


def test_the_annotator_page_shows_each_sources_estimate_and_a_demotion(judged, settings, client, owner, outsider):
    project, crm, shop = judged
    settings.LABELLOOP_TRUSTED_SOURCE_MIN_BASIS = 5
    client.force_login(owner)
    page = client.get(f"/projects/{project.id}/annotators").content.decode()
    assert "on 6 judged events" in page and "demoted: its feedback goes to review" in page
    client.force_login(outsider)
    assert client.get(f"/projects/{project.id}/annotators").status_code == 404
