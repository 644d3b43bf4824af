"""The suggestion holdout (issue 17, part 3): a random share of served items is shown without the
model's suggestion, what it would have said is kept, and the annotator page compares the two."""
import pytest

from active_learning import refresh
from labeller.models import Annotation, Item
from labeller.services import annotation_submit
from labeller.suggestion_effect import suggestion_effect
from labeller.suggestion_holdout import is_withheld
from labeller.tests.test_active_learning import clustered  # noqa: F401 (a fixture)

pytestmark = pytest.mark.django_db


def test_the_holdout_withholds_about_its_share_the_same_way_every_time_and_never_an_evaluation_item(project, add_items, expert, expert2):
    items = add_items(project, [f"t{i}" for i in range(2000)])
    project.suggestion_holdout = 0.2
    withheld = [item for item in items if is_withheld(project=project, item=item, user=expert)]
    assert 0.17 < len(withheld) / len(items) < 0.23
    assert withheld == [item for item in items if is_withheld(project=project, item=item, user=expert)]
    assert {i.id for i in withheld} != {i.id for i in items if is_withheld(project=project, item=i, user=expert2)}
    for item in withheld:
        item.is_eval = True
    assert not any(is_withheld(project=project, item=item, user=expert) for item in withheld)
    project.suggestion_holdout = 0.0
    assert not any(is_withheld(project=project, item=item, user=expert) for item in items)


def test_a_withheld_item_is_served_without_its_suggestion_and_the_answer_keeps_what_the_model_would_have_said(
        clustered, client_for, expert2):  # noqa: F811
    project, items = clustered
    project.suggestion_holdout = 0.5
    project.eval_share = 0
    project.save()
    refresh.refresh_run(project=project)
    client = client_for(expert2)
    seen = {"shown": 0, "withheld": 0}
    for _ in range(12):
        body = client.post(f"/api/projects/{project.id}/queue/next", {}, format="json").json()
        item = Item.objects.select_related("project").get(id=body["id"])
        if is_withheld(project=project, item=item, user=expert2):
            assert body["suggestion"] is None
            seen["withheld"] += 1
            annotation = annotation_submit(item=item, user=expert2, labels=["card_arrival"])
            assert annotation.suggested_labels is None and annotation.suggestion_accepted is None
            assert annotation.withheld_suggestion and annotation.withheld_suggestion[0] in {"card_arrival", "exchange_rate", "lost_card"}
        else:
            assert body["suggestion"]["labels"]
            seen["shown"] += 1
            annotation = annotation_submit(item=item, user=expert2, labels=body["suggestion"]["labels"],
                                           suggested_labels=body["suggestion"]["labels"])
            assert annotation.withheld_suggestion is None and annotation.suggestion_accepted is True
    assert seen["shown"] and seen["withheld"]


def answer(item, user, labels, *, shown=None, withheld=None):
    return Annotation.objects.create(item=item, project=item.project, annotator=user, labels=labels,
                                     suggested_labels=shown, suggestion_accepted=None if shown is None else shown == labels,
                                     withheld_suggestion=withheld)


def test_the_effect_compares_agreement_with_the_model_shown_and_withheld_with_intervals(project, add_items, expert, expert2):
    items = add_items(project, [f"t{i}" for i in range(40)])
    a, b = ["card_arrival"], ["lost_card"]
    for item in items[:20]:  # shown: expert takes the suggestion every time, 10 of them wrong by expert2's answer
        wrong = item.id % 2 == 0
        answer(item, expert, a, shown=a)
        answer(item, expert2, b if wrong else a)
    for item in items[20:]:  # withheld: the model would have said `a`; expert agrees with it half the time
        agrees = item.id % 2 == 0
        answer(item, expert, a if agrees else b, withheld=a)
        answer(item, expert2, a if agrees else b)
    effect = suggestion_effect(project=project)
    mine = next(row for row in effect["annotators"] if row["username"] == "expert")
    assert mine["model_shown"]["rate"] == 1.0 and mine["model_shown"]["n"] == 20
    assert mine["model_withheld"]["rate"] == 0.5 and mine["model_withheld"]["n"] == 20
    assert mine["pull"]["difference"] == 0.5 and 0 < mine["pull"]["interval"][0] < 0.5 < mine["pull"]["interval"][1] <= 1
    assert mine["wrong_accepted"] == {"agree": 10, "n": 10, "rate": 1.0, "interval": mine["wrong_accepted"]["interval"]}
    assert mine["consensus_shown"]["rate"] == 0.5 and mine["consensus_withheld"]["rate"] == 1.0
    other = next(row for row in effect["annotators"] if row["username"] == "expert2")
    assert other["model_shown"]["n"] == 0 and other["pull"] is None
    assert effect["all"]["model_shown"]["n"] == 20


def test_the_holdout_is_a_setting_refused_outside_0_to_half(client_for, owner, project):
    client = client_for(owner)
    response = client.patch(f"/api/projects/{project.id}/", {"suggestion_holdout": 0.7}, format="json")
    assert response.status_code == 400 and "suggestion_holdout" in response.json()
    assert client.patch(f"/api/projects/{project.id}/", {"suggestion_holdout": 0.1}, format="json").status_code == 200
    project.refresh_from_db()
    assert project.suggestion_holdout == 0.1
