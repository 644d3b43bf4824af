"""The label audit (active_learning.label_errors.labels_audit): one set of out-of-sample
probabilities refits the consensus and finds likely label errors, each flag with its evidence;
it runs by itself after enough new labels, and multi-label projects get flags too. The real
encoder's vectors of Banking77 queries."""
import pytest

from active_learning.label_errors import label_errors_refresh, labels_audit_if_due
from labeller.item_table import item_row, items_table_page
from labeller.models import Item, LabelReliability
from labeller.services import annotation_submit, items_mark_for_review
from tests.test_label_errors_flags import WRONG, label_with_slips
from tests.test_label_errors_service import INTENTS, intents_project, rows_and_vectors  # noqa: F401

pytestmark = pytest.mark.django_db


def test_a_flag_carries_its_evidence_the_most_similar_labelled_items_with_their_labels(
        make_project, expert, owner, outsider, client, rows_and_vectors):  # noqa: F811
    rows, vectors = rows_and_vectors
    project, items = intents_project(make_project, rows, vectors)
    label_with_slips(project, items, rows, expert)
    label_errors_refresh(project=project)
    wrong = {items[i].id for i in WRONG}
    slip = Item.objects.filter(project=project, likely_mislabelled=True, id__in=wrong).first()
    similar = slip.label_error["similar"]
    labelled = set(Item.objects.filter(project=project, annotation_count__gt=0).values_list("id", flat=True))
    assert len(similar) == 3 and {n["item"] for n in similar} <= labelled - {slip.id}
    assert [n["similarity"] for n in similar] == sorted((n["similarity"] for n in similar), reverse=True)
    assert all(len(n["labels"]) == 1 and n["labels"][0] in INTENTS for n in similar)

    # The data manager's row and the item page show it.
    row = next(item_row(r) for r in items_table_page(project=project, filters={"likely_mislabelled": True},
                                                      limit=200).rows if r.id == slip.id)
    assert row["likely_mislabelled"]["similar"] == similar and row["likely_mislabelled"]["given"] == slip.label_error["given"]
    client.force_login(owner)
    page = client.get(f"/projects/{project.id}/items/{slip.id}").content.decode()
    assert 'id="label-error"' in page and f'href="/projects/{project.id}/items/{similar[0]["item"]}"' in page
    assert slip.label_error["suggested"][0] in page
    client.force_login(outsider)
    assert client.get(f"/projects/{project.id}/items/{slip.id}").status_code == 404


def test_a_multi_label_project_gets_likely_label_errors_too(make_project, expert, rows_and_vectors):  # noqa: F811
    rows, vectors = rows_and_vectors
    project, items = intents_project(make_project, rows, vectors, task_type="multi_label")
    for i, (item, row) in enumerate(zip(items, rows)):
        item.project = project
        # A slip swaps the intent for another; every other item carries its one true intent.
        given = INTENTS[(INTENTS.index(row["category"]) + 1 + i % 3) % 4] if i in WRONG else row["category"]
        annotation_submit(item=item, user=expert, labels=[given])
    found = label_errors_refresh(project=project)
    assert found.checked == len(rows)
    flagged = {item_id for item_id, in Item.objects.filter(project=project, likely_mislabelled=True).values_list("id")}
    wrong = {items[i].id: rows[i]["category"] for i in WRONG}
    assert len(flagged & set(wrong)) >= 0.7 * len(wrong) and len(flagged & set(wrong)) >= 0.6 * len(flagged)
    hits = Item.objects.filter(id__in=flagged & set(wrong))
    assert sum(wrong[slip.id] in slip.label_error["suggested"] for slip in hits) >= 0.6 * len(hits)
    assert all(len(slip.label_error["similar"]) == 3 for slip in hits)
    assert LabelReliability.for_project(project).method == ""  # no consensus fit: the majority rule stays


def test_after_enough_new_labels_the_audit_runs_by_itself_and_fits_the_consensus_with_the_model(
        make_project, expert, expert2, rows_and_vectors, settings, eager_celery,
        django_capture_on_commit_callbacks):  # noqa: F811
    settings.LABELLOOP_LABEL_AUDIT_EVERY = 50
    rows, vectors = rows_and_vectors
    project, items = intents_project(make_project, rows, vectors, labels_per_item=2)
    assert labels_audit_if_due(project=project) is False  # nothing labelled yet
    label_with_slips(project, items, rows, expert)
    for item, row in list(zip(items, rows))[:40]:  # a second, careful expert on a third of them
        item.project = project
        annotation_submit(item=Item.objects.get(id=item.id), user=expert2, labels=[row["category"]])
    with django_capture_on_commit_callbacks(execute=True):
        assert labels_audit_if_due(project=project) is True
    estimate = LabelReliability.for_project(project)
    assert estimate.method == "dawid_skene_model_prior" and estimate.items_fitted == 40
    assert f"user:{expert2.id}" in estimate.annotators and estimate.labels_at == 160
    assert Item.objects.filter(project=project, likely_mislabelled=True).exists()
    with django_capture_on_commit_callbacks(execute=True):
        assert labels_audit_if_due(project=project) is False  # no new labels since


def test_a_mistake_made_often_enough_to_teach_the_heads_is_caught_by_a_second_opinion_from_the_settled_items(
        make_project, expert, expert2, owner, client, rows_and_vectors):  # noqa: F811
    rows, vectors = rows_and_vectors
    project, items = intents_project(make_project, rows, vectors)
    by_intent = {intent: [i for i, row in enumerate(rows) if row["category"] == intent] for intent in INTENTS}
    settled = {i for rows_of in by_intent.values() for i in rows_of[-4:]}  # four per intent, re-reviewed rightly
    # Half of pin_blocked given its most confusable neighbour, the same mistake each time: the
    # heads fitted on these labels learn it, so confident learning alone misses many of them.
    wrong = {i for i in by_intent["pin_blocked"][:15] if i not in settled}
    for i, (item, row) in enumerate(zip(items, rows)):
        item.project = project
        annotation_submit(item=item, user=expert, labels=["lost_or_stolen_card" if i in wrong else row["category"]])
    alone = label_errors_refresh(project=project)  # nothing settled yet: confident learning alone
    caught_alone = set(Item.objects.filter(project=project, likely_mislabelled=True).values_list("id", flat=True))
    assert alone.flagged == len(caught_alone)
    assert all(f.get("by") == "confident_learning" for f in Item.objects.filter(
        project=project, likely_mislabelled=True).values_list("label_error", flat=True))

    for i in settled:  # earlier flags a second expert re-reviewed and confirmed (the real flow)
        Item.objects.filter(id=items[i].id).update(likely_mislabelled=True, label_error={"given": [rows[i]["category"]]})
        items_mark_for_review(items=Item.objects.filter(id=items[i].id))
        annotation_submit(item=Item.objects.get(id=items[i].id), user=expert2, labels=[rows[i]["category"]])
    Item.objects.filter(project=project).exclude(id__in=[items[i].id for i in settled]).update(
        likely_mislabelled=False, label_error=None)

    label_errors_refresh(project=project)

    flags = {item.id: item.label_error for item in Item.objects.filter(project=project, likely_mislabelled=True)}
    wrong_ids = {items[i].id for i in wrong}
    second = {item_id: flag for item_id, flag in flags.items() if flag["by"] == "second_opinion"}
    assert second and set(second) <= wrong_ids  # every second-opinion flag is a real mistake
    assert all(flag["suggested"] == ["pin_blocked"] and flag["given"] == ["lost_or_stolen_card"]
               and flag["second_opinion"] >= 0.8 and len(flag["similar"]) == 3 for flag in second.values())
    assert len(set(flags) & wrong_ids) > len(caught_alone & wrong_ids)  # more mistakes found than without it
    assert not set(flags) & {items[i].id for i in settled}  # the settled items stay settled

    # The data manager's column and the item page say which opinion flagged it.
    slip = next(iter(second))
    row = next(item_row(r) for r in items_table_page(project=project, filters={"likely_mislabelled": True},
                                                      limit=200).rows if r.id == slip)
    assert row["likely_mislabelled"]["by"] == "second_opinion" and row["likely_mislabelled"]["second_opinion"] >= 0.8
    client.force_login(owner)
    page = client.get(f"/projects/{project.id}/items/{slip}").content.decode()
    assert 'id="label-error-by"' in page and "settled on re-review" in page
