"""The project's annotator-quality page (project admins only): per annotator, how much they
labelled, how fast, how often they agree with the majority and with each other, and how often they
took the model's suggestion and were later overturned (automation bias); the same for the sources
of product feedback. It composes the labeller's and the feedback app's selectors and plots them.

Admins only, like the members page: it ranks named colleagues on speed and agreement, which is
personnel information; experts seeing each other's figures would invite racing the lead time and
echoing the majority, and viewers have no part in the labelling. (A "your own figures" view for
experts would be a separate, smaller page.)"""
from django.contrib.auth.decorators import login_required
from django.shortcuts import render
from django.views.decorators.http import require_safe

from feedback.selectors import feedback_source_quality
from labeller.selectors import annotator_quality
from labeller.suggestion_effect import suggestion_effect

from .access import admin_project
from .charts import Bars, bar_chart


def column(rows: list[dict], key: str) -> list:
    return [r[key] for r in rows]


def quality_charts(annotators: list[dict], sources: list[dict]) -> list[dict]:
    names = [a["username"] for a in annotators]
    charts = [
        bar_chart(names, [Bars("with the majority", column(annotators, "agreement_with_majority")),
                          Bars("with other annotators", column(annotators, "agreement_with_others"))],
                  title="Agreement on shared items", x_max=1),
        bar_chart(names, [Bars("suggestion accepted", column(annotators, "acceptance_rate")),
                          Bars("accepted, then overturned", column(annotators, "overturned_rate")),
                          Bars("own choice, then overruled", column(annotators, "overruled_rate"))],
                  title="The model's suggestions: accepted, and later overturned", x_max=1),
        bar_chart(names, [Bars("median seconds per item", column(annotators, "median_lead_time"))],
                  title="Median lead time (seconds)", value_format="{:.1f}"),
    ]
    if sources:
        charts.append(bar_chart(
            [s["name"] for s in sources],
            [Bars("agrees with experts", column(sources, "reliability")),
             Bars("confirmed the model", column(sources, "acceptance_rate")),
             Bars("confirmed, then overturned", column(sources, "overturned_rate"))],
            title="Feedback sources", x_max=1))
    return charts


def pair_matrix(names: list[str], pairwise: list[dict]) -> list[dict]:
    """Pairwise agreement as a table to shade: a row per annotator, a cell per other annotator
    (None on the diagonal and for pairs who never shared an item)."""
    # At most half-opaque, so the black figure stays readable on the darkest cell.
    found = {(p["annotator"], p["other"]): {**p, "shade": round(0.5 * (p["agreement"] or 0), 2)} for p in pairwise}
    return [{"name": name, "cells": [found.get((name, other)) for other in names]} for name in names]


@login_required
@require_safe
def annotators_page(request, project_id):
    project = admin_project(request, project_id)
    quality = annotator_quality(project=project)
    sources = feedback_source_quality(project=project)
    return render(request, "frontend/annotators.html", {
        "project": project,
        "annotators": quality["annotators"],
        "estimate": quality["estimate"],
        "pairs": pair_matrix([a["username"] for a in quality["annotators"]], quality["pairwise"]),
        "sources": sources,
        "charts": quality_charts(quality["annotators"], sources),
        "effect": suggestion_effect(project=project),
    })
