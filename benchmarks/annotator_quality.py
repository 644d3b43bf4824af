"""Annotator-quality benchmark: the page's figures for one project with many annotations.

Writes one project of --annotations annotations (default 100,000): --items-share items each
labelled by --per-item of --annotators annotators, a model suggestion on every label (accepted
about 70% of the time), then times, --repeat times each:
  - labeller.selectors.annotator_quality (per annotator counts, medians, agreement, overturned);
  - feedback.selectors.feedback_source_quality (no events here: its fixed cost);
  - the page's charts and template (frontend.annotator_views, rendered without a request);
  - labeller.consensus.consensus_refresh (the Dawid–Skene fit and its stored consensus: the label
    audit's cost beyond its head fits), then annotator_quality again, now resolving through the fit.

Run (from the repository root):
  .venv/bin/python benchmarks/annotator_quality.py
  .venv/bin/python benchmarks/annotator_quality.py --annotations 20000 --database-url sqlite:////tmp/aq.sqlite3

The database defaults to postgres://postgres@127.0.0.1:5432/labelloop_bench (DATABASE_URL if set).
Projects left by earlier runs ("bench-quality-...") are deleted first.
"""
import argparse
import os
import random
import sys
import time

# The repository root, not benchmarks/ (whose queue.py would shadow the standard library's).
_HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:] = [p for p in sys.path if os.path.abspath(p or os.curdir) != _HERE]
sys.path.insert(0, os.path.dirname(_HERE))

from benchmarks._common import delete_bench_projects, describe_database, setup_django, vacuum_analyze  # noqa: E402

PREFIX = "bench-quality-"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--annotations", type=int, default=100_000)
    parser.add_argument("--annotators", type=int, default=12)
    parser.add_argument("--per-item", type=int, default=3)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--database-url")
    args = parser.parse_args()
    setup_django(args.database_url)

    from django.contrib.auth import get_user_model
    from django.template.loader import render_to_string

    from feedback.selectors import feedback_source_quality
    from frontend.annotator_views import pair_matrix, quality_charts
    from labeller.consensus import consensus_refresh
    from labeller.models import Annotation, Item, Label, Membership, Project, Role
    from labeller.selectors import annotator_quality

    delete_bench_projects(PREFIX)
    rng = random.Random(1)
    labels = [f"label_{i}" for i in range(10)]
    project = Project.objects.create(name=f"{PREFIX}{int(time.time())}", labels_per_item=args.per_item)
    Label.objects.bulk_create(Label(project=project, key=key, name=key, order=i) for i, key in enumerate(labels))
    users = []
    for i in range(args.annotators):
        user, _ = get_user_model().objects.get_or_create(username=f"bench-quality-{i}")
        Membership.objects.get_or_create(project=project, user=user, defaults={"role": Role.EXPERT})
        users.append(user)
    n_items = args.annotations // args.per_item
    started = time.perf_counter()
    items = Item.objects.bulk_create((Item(project=project, data={"text": f"item {i}"}, annotation_count=args.per_item,
                                           is_done=True) for i in range(n_items)), batch_size=5000)
    rows = []
    for item in items:
        truth, suggestion = rng.choice(labels), rng.choice(labels)
        for user in rng.sample(users, args.per_item):
            answer = suggestion if rng.random() < 0.7 else (truth if rng.random() < 0.8 else rng.choice(labels))
            rows.append(Annotation(item=item, project=project, annotator=user, labels=[answer], suggested_labels=[suggestion],
                                   suggestion_accepted=answer == suggestion, lead_time=round(rng.expovariate(0.2), 2)))
    Annotation.objects.bulk_create(rows, batch_size=5000)
    vacuum_analyze(Item._meta.db_table, Annotation._meta.db_table)
    print(f"{describe_database()}; loaded {len(rows)} annotations on {n_items} items by {len(users)} annotators "
          f"in {time.perf_counter() - started:.1f} s")

    def timed(name, call):
        # Wall time, and this process's CPU time (steadier on a busy machine; excludes the database's).
        seconds, cpu = [], []
        for _ in range(args.repeat):
            t0, c0 = time.perf_counter(), time.process_time()
            result = call()
            seconds.append(time.perf_counter() - t0)
            cpu.append(time.process_time() - c0)
        print(f"{name}: wall best {min(seconds) * 1000:.0f} ms, worst {max(seconds) * 1000:.0f} ms; "
              f"CPU best {min(cpu) * 1000:.0f} ms; over {args.repeat}")
        return result

    quality = timed("annotator_quality", lambda: annotator_quality(project=project))
    sources = timed("feedback_source_quality", lambda: feedback_source_quality(project=project))
    timed("charts + template", lambda: render_to_string("frontend/annotators.html", {
        "project": project, "annotators": quality["annotators"], "sources": sources, "estimate": quality["estimate"],
        "pairs": pair_matrix([a["username"] for a in quality["annotators"]], quality["pairwise"]),
        "charts": quality_charts(quality["annotators"], sources)}))
    estimate = timed("consensus_refresh", lambda: consensus_refresh(project=project))
    print(f"  fitted {estimate.items_fitted} items, {len(estimate.annotators)} annotators")
    timed("annotator_quality after the fit", lambda: annotator_quality(project=project))
    delete_bench_projects(PREFIX)


if __name__ == "__main__":
    main()
