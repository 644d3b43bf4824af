"""The predict service: route each item to the champion or the challenger, score, log every
prediction with its version, and send what the model is unsure of to the expert queue."""
from __future__ import annotations

import secrets

from django.db import transaction

from labeller.models import Item, ItemSource, Project, label_keys_cell, search_text_of
from labeller.signals import items_added
from labeller.task_types import Decision, TaskType, task_type_for
from models_registry import serving

from .models import ApiToken, Prediction, ServedAs, ServingPolicy


def serving_policy_for(project: Project) -> ServingPolicy:
    return ServingPolicy.for_project(project)


def predict(*, project: Project, items: list[dict], caller, top_k: int = 3) -> list[dict]:
    """`items`: validated [{"data", "external_id", "key"}]. Answers in the same order."""
    versions = serving.serving_versions(project)
    champion, challenger = versions.get("champion"), versions.get("challenger")
    if champion is None:
        raise serving.NoModel("the project has no champion yet; train and promote a version first", field="model")
    policy = serving_policy_for(project)
    token = caller if isinstance(caller, ApiToken) else None
    texts = [str(item["data"][project.text_field]) for item in items]
    keys = [item.get("key") or item.get("external_id") or secrets.token_hex(8) for item in items]

    sides = {ServedAs.CHAMPION: [], ServedAs.CHALLENGER: []}
    for i, key in enumerate(keys):
        to_challenger = challenger is not None and goes_to(project, key, policy)
        sides[ServedAs.CHALLENGER if to_challenger else ServedAs.CHAMPION].append(i)

    rows: list[Prediction | None] = [None] * len(items)
    shadow_rows = []
    for served_as, version in ((ServedAs.CHAMPION, champion), (ServedAs.CHALLENGER, challenger)):
        positions = sides[served_as]
        if not positions:
            continue
        answers, outside = serving.judged_answers(serving.predictor_for(version), [texts[i] for i in positions], top_k)
        for i, answer, out in zip(positions, answers, outside):
            rows[i] = _row(project, version, served_as, token, items[i], keys[i], answer, out, policy)
    if policy.shadow and challenger is not None and sides[ServedAs.CHAMPION]:
        positions = sides[ServedAs.CHAMPION]
        answers, outside = serving.judged_answers(serving.predictor_for(challenger), [texts[i] for i in positions], top_k)
        for i, answer, out in zip(positions, answers, outside):
            shadow_rows.append(_row(project, challenger, ServedAs.SHADOW, token, items[i], keys[i], answer, out, policy))

    with transaction.atomic():
        abstained = [row for row in rows if row.abstain]
        if abstained:
            _queue_for_experts(project, abstained)
        Prediction.objects.bulk_create(rows + shadow_rows)
    task_type = task_type_for(project)
    return [_public(row, task_type) for row in rows]


def goes_to(project: Project, key: str, policy: ServingPolicy) -> bool:
    return serving.goes_to_challenger(project.id, key, policy.challenger_percent)


def _row(project, version, served_as, token, item, key, answer, out_of_scope, policy) -> Prediction:
    """A prediction to log. It abstains (the item goes to the experts) when the model is unsure, or
    when the query lies outside every label it knows: an expert can then add the missing label."""
    return Prediction(project=project, version=version, served_as=served_as, token=token,
                      external_id=item.get("external_id") or "", caller_key=key[:200], data=item["data"],
                      labels=answer.labels, confidence=answer.confidence, top=answer.top, out_of_scope=out_of_scope,
                      abstain=answer.confidence < policy.abstain_below or out_of_scope)


def _public(row: Prediction, task_type: TaskType) -> dict:
    """A logged prediction as the API answers it; the task type shapes the answer itself (a span
    project's spans, a classification's label and top-k)."""
    return {
        "prediction_id": str(row.id),
        **task_type.served(Decision(row.labels, row.confidence, row.top)),
        "confidence": row.confidence,
        "abstain": row.abstain,
        "out_of_scope": row.out_of_scope,
        "model_version": row.version.number,
        "served_as": row.served_as,
        **({"external_id": row.external_id} if row.external_id else {}),
    }


def items_for(project: Project, wanted: list[tuple[dict, str]], *, source: str) -> list[Item]:
    """The queue item for each (data, external_id): the project's item with that external id, else
    a new one (from `source`, an ItemSource); a few queries for the whole list. Items from live
    traffic are never drawn into the evaluation set (it must stay unbiased)."""
    external_ids = {external_id for _, external_id in wanted if external_id}
    by_external_id = {item.external_id: item for item in Item.objects.filter(project=project, external_id__in=external_ids)}
    missing = {external_id: data for data, external_id in wanted if external_id and external_id not in by_external_id}
    if missing:
        # A concurrent writer may create the same external id: skip it, then read what stands.
        Item.objects.bulk_create([Item(project=project, external_id=e, data=d, priority=1.0, source=source,
                                       search_text=search_text_of(d, project.text_field)) for e, d in missing.items()],
                                 ignore_conflicts=True)
        by_external_id.update((item.external_id, item) for item in Item.objects.filter(project=project, external_id__in=missing))
    anonymous = Item.objects.bulk_create([Item(project=project, data=data, priority=1.0, source=source,
                                               search_text=search_text_of(data, project.text_field))
                                          for data, external_id in wanted if not external_id])
    if missing or anonymous:
        items_added.send(sender=Item, project_id=project.id)
    fresh = iter(anonymous)
    return [by_external_id[external_id] if external_id else next(fresh) for _, external_id in wanted]


def _queue_for_experts(project: Project, rows: list[Prediction]) -> None:
    items = items_for(project, [(row.data, row.external_id) for row in rows], source=ItemSource.PREDICTION)
    for row, item in zip(rows, items):
        row.item = item
    items_note_predictions(rows, task_type_for(project))


def items_note_predictions(rows: list[Prediction], task_type: TaskType) -> None:
    """Copy each prediction's answer onto its item: the data manager's prediction columns (the
    label keys the answer uses: a span project's entity types)."""
    latest = {row.item_id: row for row in rows if row.item_id}
    Item.objects.bulk_update([Item(id=item_id, predicted=label_keys_cell(task_type.label_keys(row.labels)),
                                   confidence=row.confidence)
                              for item_id, row in latest.items()], ["predicted", "confidence"], batch_size=1000)
