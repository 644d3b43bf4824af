"""The settings page: project admins change the name and guidelines, the queue, active learning,
the training policy and the serving policy, each section on its own; a bad value is refused with
the API's words, naming the field, and nothing is saved; experts and viewers get 403 and outsiders
404 on every settings route."""
import html
import json
import re

import pytest

from feedback.models import ServingPolicy
from labeller.models import Project
from ml.gates import DEFAULT_GUARDRAILS
from models_registry import schedules
from models_registry.models import TrainingPolicy

pytestmark = pytest.mark.django_db


def settings_url(project, suffix=""):
    return f"/projects/{project.id}/settings{suffix}"


def shown_messages(response) -> list[str]:
    return [html.unescape(m) for m in re.findall(r'<p class="message [a-z ]*">(.*?)</p>', response.content.decode(), re.S)]


@pytest.fixture
def admin_client(client, owner):
    client.force_login(owner)
    return client


def training_form(**changes):
    form = {"primary_metric": "accuracy", "kinds": ["head"], "retrain_after_labels": "0", "schedule": "",
            "guardrails": json.dumps(DEFAULT_GUARDRAILS)}
    form.update(changes)
    return form


def test_the_admin_sees_every_section_and_the_project_page_links_to_it(admin_client, project):
    page = admin_client.get(settings_url(project)).content.decode()
    for section in ("general", "queue", "active-learning", "training", "serving"):
        assert f'id="{section}"' in page
    assert settings_url(project) in admin_client.get(f"/projects/{project.id}/").content.decode()


def test_the_name_description_and_guidelines_round_trip(admin_client, project):
    response = admin_client.post(settings_url(project, "/general"),
                                 {"name": "Bank intents", "description": "Support queries", "guidelines": "# Rules\nBe kind."},
                                 follow=True)
    assert shown_messages(response) == ["Settings saved."]
    project.refresh_from_db()
    assert (project.name, project.description, project.guidelines) == ("Bank intents", "Support queries", "# Rules\nBe kind.")
    page = admin_client.get(settings_url(project)).content.decode()
    assert 'value="Bank intents"' in page and "# Rules\nBe kind.</textarea>" in page


def test_a_blank_name_is_refused_naming_the_field(admin_client, project):
    response = admin_client.post(settings_url(project, "/general"), {"name": "", "description": "", "guidelines": ""}, follow=True)
    assert shown_messages(response) == ["name: This field may not be blank."]
    project.refresh_from_db()
    assert project.name == "Intents"


def test_the_queue_settings_round_trip_and_a_short_hold_is_refused(admin_client, project):
    saved = admin_client.post(settings_url(project, "/queue"), {"labels_per_item": "3", "hold_seconds": "120"}, follow=True)
    assert shown_messages(saved) == ["Settings saved."]
    project.refresh_from_db()
    assert (project.labels_per_item, project.hold_seconds) == (3, 120)
    response = admin_client.post(settings_url(project, "/queue"), {"labels_per_item": "21", "hold_seconds": "5"}, follow=True)
    assert shown_messages(response) == ["labels_per_item: Ensure this value is less than or equal to 20.",
                                        "hold_seconds: Ensure this value is greater than or equal to 10."]
    project.refresh_from_db()
    assert (project.labels_per_item, project.hold_seconds) == (3, 120)


def test_the_active_learning_settings_round_trip_and_unchecked_boxes_turn_diversity_and_the_warm_up_off(admin_client,
                                                                                                         project):
    admin_client.post(settings_url(project, "/active-learning"), {"strategy": "entropy", "refresh_every": "25", "eval_share": "0.2",
                                                                  "suggestion_mode": "off", "suggestion_holdout": "0.1"})
    project.refresh_from_db()
    assert (project.strategy, project.diversity, project.warm_up, project.refresh_every, project.eval_share,
            project.suggestion_mode, project.suggestion_holdout) == ("entropy", False, False, 25, 0.2, "off", 0.1)
    page = admin_client.get(settings_url(project)).content.decode()
    assert '<option value="entropy" selected>' in page and 'value="0.2"' in page


def test_an_evaluation_share_the_api_refuses_is_refused_here_in_its_words(admin_client, client_for, owner, project):
    api = client_for(owner).patch(f"/api/projects/{project.id}/", {"eval_share": 0.9}, format="json")
    response = admin_client.post(settings_url(project, "/active-learning"), {"strategy": "margin", "refresh_every": "10",
                                                                             "eval_share": "0.9", "suggestion_mode": "off",
                                                                             "suggestion_holdout": "0"}, follow=True)
    assert shown_messages(response) == [f"eval_share: {api.json()['eval_share'][0]}"]


def test_an_unknown_section_is_refused(admin_client, project):
    response = admin_client.post(settings_url(project, "/billing"), {"name": "x"}, follow=True)
    assert shown_messages(response) == ["section: unknown section 'billing'"]


def test_the_training_policy_round_trips_with_its_schedule(admin_client, project):
    guardrails = [{"type": "min_eval_items", "value": 50}, {"type": "min_recall", "label": "lost_card", "value": 0.9}]
    response = admin_client.post(settings_url(project, "/training"), training_form(
        primary_metric="macro_f1", guardrails=json.dumps(guardrails), auto_promote="on", retrain_after_labels="40",
        schedule="0 3 * * 1"), follow=True)
    assert shown_messages(response) == ["Training policy saved."]
    policy = TrainingPolicy.objects.get(project=project)
    assert (policy.primary_metric, policy.guardrails, policy.auto_promote, policy.kinds, policy.retrain_after_labels) == (
        "macro_f1", guardrails, True, ["head"], 40)
    assert schedules.schedule_of(project) == "0 3 * * 1"
    page = response.content.decode()
    assert 'value="0 3 * * 1"' in page and "evaluated on at least 50 items" in page and "recall of lost_card at least 0.9" in page


def test_a_new_project_shows_the_default_guardrails(admin_client, project):
    page = admin_client.get(settings_url(project)).content.decode()
    assert "evaluated on at least 30 items" in page and 'id="default_guardrails"' not in page


def test_a_project_without_guardrails_can_take_the_defaults_with_one_tick(admin_client, project):
    TrainingPolicy.objects.update_or_create(project=project, defaults={"guardrails": []})
    assert "no guardrails" in admin_client.get(settings_url(project)).content.decode()
    admin_client.post(settings_url(project, "/training"), training_form(guardrails="[]", default_guardrails="on"))
    assert TrainingPolicy.objects.get(project=project).guardrails == DEFAULT_GUARDRAILS


@pytest.mark.parametrize("changes, problem", [
    ({"guardrails": json.dumps([{"type": "min_recall", "label": "nope", "value": 0.9}])},
     "guardrails[0].label: unknown label 'nope'"),
    ({"guardrails": json.dumps([{"type": "min_eval_items", "value": 2.5}])},
     "guardrails[0].value: must be a whole number of items between 1 and 1000000"),
    ({"guardrails": json.dumps(["min_primary"])}, 'guardrails[0]: Expected a dictionary of items but got type "str".'),
    ({"guardrails": "[{"}, "guardrails: not valid JSON (Expecting property name enclosed in double quotes, line 1 column 3)"),
    ({"schedule": "61 * * * *"}, "schedule: minute '61': Invalid end range: 61 > 59."),
    ({"retrain_after_labels": "-1"}, "retrain_after_labels: Ensure this value is greater than or equal to 0."),
    ({"primary_metric": "vibes"}, 'primary_metric: "vibes" is not a valid choice.'),
    ({"kinds": ["head", "gpt"]}, 'kinds[1]: "gpt" is not a valid choice.'),
])
def test_a_bad_training_policy_is_refused_naming_the_field_and_nothing_is_saved(admin_client, project, changes, problem):
    before = TrainingPolicy.for_project(project).guardrails
    response = admin_client.post(settings_url(project, "/training"), training_form(**{"retrain_after_labels": "7", **changes}),
                                 follow=True)
    assert shown_messages(response) == [problem]
    policy = TrainingPolicy.objects.get(project=project)
    assert policy.guardrails == before and policy.retrain_after_labels == 0 and schedules.schedule_of(project) is None


def test_the_page_refuses_the_guardrails_the_api_refuses_in_the_same_words(admin_client, client_for, owner, project):
    guardrails = [{"type": "no_primary_drop", "value": 1.5}, {"type": "max_recall_drop", "value": 0.2, "min_support": 0}]
    api = client_for(owner).patch(f"/api/projects/{project.id}/training-policy", {"guardrails": guardrails}, format="json")
    response = admin_client.post(settings_url(project, "/training"), training_form(guardrails=json.dumps(guardrails)), follow=True)
    assert api.status_code == 400 and shown_messages(response) == api.json()["guardrails"]


def test_the_serving_policy_form_saves_and_comes_back_to_the_settings_page(admin_client, project):
    response = admin_client.post(f"/projects/{project.id}/monitoring/policy", {
        "abstain_below": "0.4", "challenger_percent": "10", "min_predictions": "50", "webhook_url": "", "return_to": "settings"})
    assert response.status_code == 302 and response.url == settings_url(project) + "#serving"
    assert shown_messages(admin_client.get(response.url)) == ["Serving policy saved."]
    policy = ServingPolicy.objects.get(project=project)
    assert (policy.abstain_below, policy.challenger_percent, policy.min_predictions) == (0.4, 10, 50)
    bad = admin_client.post(f"/projects/{project.id}/monitoring/policy", {
        "abstain_below": "2", "challenger_percent": "10", "min_predictions": "50", "return_to": "settings"}, follow=True)
    assert shown_messages(bad) == ["abstain_below: must be between 0 and 1"]
    assert 'id="serving"' in bad.content.decode()


def test_the_serving_policy_form_goes_nowhere_else_than_its_two_pages(admin_client, project):
    response = admin_client.post(f"/projects/{project.id}/monitoring/policy", {
        "abstain_below": "0.4", "challenger_percent": "10", "min_predictions": "50", "return_to": "https://evil.example"})
    assert response.url == f"/projects/{project.id}/monitoring"


ROUTES = [("get", ""), ("post", "/general"), ("post", "/queue"), ("post", "/active-learning"), ("post", "/training")]


@pytest.mark.parametrize("method, suffix", ROUTES)
@pytest.mark.parametrize("who", ["expert", "viewer"])
def test_experts_and_viewers_cannot_see_or_change_the_settings(client, request, project, method, suffix, who):
    client.force_login(request.getfixturevalue(who))
    response = getattr(client, method)(settings_url(project, suffix), {"name": "taken over"})
    assert response.status_code == 403
    assert Project.objects.get(id=project.id).name == "Intents"
    assert settings_url(project) not in client.get(f"/projects/{project.id}/").content.decode()


@pytest.mark.parametrize("method, suffix", ROUTES)
def test_outsiders_get_404_on_every_settings_route(client, outsider, project, method, suffix):
    client.force_login(outsider)
    assert getattr(client, method)(settings_url(project, suffix), {"name": "taken over"}).status_code == 404
    assert Project.objects.get(id=project.id).name == "Intents"


def test_the_out_of_scope_label_is_chosen_among_the_labels_and_an_unknown_one_is_refused_saving_nothing(admin_client, project):
    form = {"strategy": "margin", "refresh_every": "10", "eval_share": "0.1", "suggestion_mode": "highlight",
            "suggestion_holdout": "0"}
    page = admin_client.get(settings_url(project)).content.decode()
    assert '<select id="out_of_scope_label"' in page and '<option value="lost_card">' in page
    response = admin_client.post(settings_url(project, "/active-learning"), {**form, "out_of_scope_label": "lost_card"}, follow=True)
    assert shown_messages(response) == ["Settings saved."]
    project.refresh_from_db()
    assert project.out_of_scope_label == "lost_card"
    response = admin_client.post(settings_url(project, "/active-learning"), {**form, "out_of_scope_label": "weather"}, follow=True)
    assert shown_messages(response) == ["'weather' is not a label of this project"]
    project.refresh_from_db()
    assert project.out_of_scope_label == "lost_card"
