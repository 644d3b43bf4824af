"""Predict API throughput, span projects (head and fine-tuned versions) against classification,
on the same batches of texts.

Set-up (printed with its times): a fresh database; a classification project (Banking77 intents,
a head version trained by the registry's services and promoted, as benchmarks/predict.py does);
a span project over the Broad Twitter Corpus's PER/ORG/LOC with a word head fitted on
--span-train BTC training tweets (as conftest's btc_head_version), stored as the registry stores
head versions and promoted; and a second span project whose champion is a fine-tuned token
classifier (ml.token_finetune), stored as the registry stores fine-tuned span versions and served
as they are (its encoder in ONNX Runtime by default). The fine-tuned model is trained here on
--finetune-train BTC tweets for one epoch (default 64: throughput does not depend on how good it
is; the forward pass is the same whatever the weights), or loaded from --finetuned-from (a folder
that token_finetune.save wrote, e.g. a registry version's artefact folder). A project token with
the predict scope for each.

Then POST /predict with batches of --batch (default 64) items through Django's test client (the
same view and service, in this process; no gunicorn), alternating one batch of each project for
--rounds rounds, so that whatever else the machine runs slows them alike. Printed: items/s of
each and their ratios to classification (target: span within 20 % of classification), and the
model's share of a batch (the predictor alone, timed in process). All projects answer the same
texts (--texts: BTC test tweets, default, or Banking77 test queries).

    .venv/bin/python benchmarks/predict_spans.py                    # SQLite in /tmp/bench-spans
    .venv/bin/python benchmarks/predict_spans.py --rounds 3 --intents 10 --per-intent 5 --finetune-train 16   # smoke
    .venv/bin/python benchmarks/predict_spans.py --database-url postgres://postgres@127.0.0.1:5432/labelloop_bench_spans

Figures go to benchmarks/out/predict_spans.json (or --json).
"""
from __future__ import annotations

import os
import sys
from pathlib import Path

sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import argparse  # noqa: E402
import json  # noqa: E402
import time  # noqa: E402

from benchmarks import _common, _serving  # noqa: E402

BTC = ROOT / "datasets" / "btc"
SPAN_LABELS = [{"key": "PER", "name": "Person"}, {"key": "ORG", "name": "Organisation"}, {"key": "LOC", "name": "Location"}]
TARGET_RATIO = 0.8  # span items/s at least 80 % of classification's


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--database-url", default=None, help="default: SQLite in --data-dir")
    p.add_argument("--data-dir", default="/tmp/bench-spans")
    p.add_argument("--batch", type=int, default=64, help="items per request (default 64)")
    p.add_argument("--rounds", type=int, default=10, help="classification + span batches timed (default 10)")
    p.add_argument("--intents", type=int, default=20, help="Banking77 intents of the classification project (default 20)")
    p.add_argument("--per-intent", type=int, default=10, help="labelled queries per intent (default 10)")
    p.add_argument("--span-train", type=int, default=200, help="BTC training tweets of the span head (default 200)")
    p.add_argument("--finetune-train", type=int, default=64,
                   help="BTC training tweets the fine-tuned span model is trained on, one epoch (default 64)")
    p.add_argument("--finetuned-from", default=None,
                   help="a saved fine-tuned span model's folder (token_finetune.save) to serve instead of training one")
    p.add_argument("--texts", default="btc", choices=["btc", "banking77"], help="what both projects answer (default btc)")
    p.add_argument("--json", default="predict_spans.json", help="file name in benchmarks/out")
    _common.add_dataset_flag(p)
    args = p.parse_args()
    _common.use_dataset(args)
    return args


def champion(version, folder, checksum: str, owner):
    """`version` with its artefact folder and checksum recorded, promoted to serve its project."""
    from django.conf import settings

    from models_registry import promotion, serving
    from models_registry.models import ModelVersion

    ModelVersion.objects.filter(id=version.id).update(
        artefact_path=str(folder.relative_to(settings.LABELLOOP_ARTEFACT_DIR)), checksum=checksum)
    version.refresh_from_db()
    promotion.version_promote(version=version, user=owner, reason="benchmark champion", override=True)
    serving.forget_aliases()
    return version


def new_span_version(owner, name: str, kind: str, base_model: str):
    """A new span project, its version 1 of `kind` (ready, no artefact yet) and that version's folder."""
    from labeller.services import project_create
    from models_registry import artefacts
    from models_registry.models import ModelVersion, VersionStatus

    project = project_create(user=owner, labels=SPAN_LABELS, name=name, task_type="spans")
    version = ModelVersion.objects.create(project=project, number=1, kind=kind, base_model=base_model,
                                          status=VersionStatus.READY)
    return project, version, artefacts.version_folder(version)


def span_project(owner, train: int, base_model: str):
    """A span project with a word head over BTC's first `train` training tweets, promoted."""
    from ml import token_model
    from ml.encoder_cache import base_encoder
    from ml.spans import read_conll_file
    from models_registry import artefacts

    project, version, folder = new_span_version(owner, "bench-spans", "head", base_model)
    examples = read_conll_file(BTC / "btc.train.conll", limit=train)
    texts = [text for text, _ in examples]
    words = token_model.encode_words(base_encoder(project.base_model_path), texts)
    tag_names = token_model.tag_set([label["key"] for label in SPAN_LABELS])
    head = token_model.fit_word_head(words.vectors, token_model.gold_word_tags(texts, [s for _, s in examples]), tag_names)
    checksum = artefacts.save_head(head, folder, {"version": 1, "task_type": "spans"})
    return project, champion(version, folder, checksum, owner)


def finetuned_span_project(owner, train: int, saved: str | None, base_model: str):
    """A span project whose champion is a fine-tuned token classifier: trained here on `train`
    BTC training tweets for one epoch, or the one saved in the folder `saved`."""
    import json
    import shutil

    from ml import token_finetune, token_model
    from ml.encoder_cache import base_encoder
    from ml.finetune import MANIFEST_FILE
    from ml.spans import read_conll_file

    project, version, folder = new_span_version(owner, "bench-spans-finetuned", "finetuned", base_model)
    if saved:
        shutil.copytree(saved, folder, dirs_exist_ok=True)
        checksum = json.loads((folder / MANIFEST_FILE).read_text())["checksum"]
        token_finetune.load(folder, checksum)  # refuses a folder whose files do not match its manifest
    else:
        examples = read_conll_file(BTC / "btc.train.conll", limit=train)
        tagger = token_finetune.load_base(project.base_model_path or base_encoder(project.base_model_path).model_path,
                                          token_model.tag_set([label["key"] for label in SPAN_LABELS]))
        token_finetune.fine_tune(tagger, examples, [], config=token_finetune.TokenFineTuneConfig(epochs=1))
        checksum = token_finetune.save(tagger, folder, extra={"version": 1, "task_type": "spans"})
    return project, champion(version, folder, checksum, owner)


def request_texts(kind: str) -> list[str]:
    if kind == "btc":
        from ml.spans import read_conll_file

        return [text for text, _ in read_conll_file(BTC / "btc.test.conll")]
    return _serving.request_texts()[0]


def main() -> int:
    args = parse_args()
    _serving.configure(database_url=args.database_url, data_dir=args.data_dir)
    from django.conf import settings
    from django.test import Client

    from models_registry import serving

    load_start = os.getloadavg()
    print("== Labelloop predict throughput: span project vs classification (in process, Django test client) ==")
    print(f"machine: {os.cpu_count()} CPU cores; 1-min load average {load_start[0]:.2f}; database: {_common.describe_database()}")
    print(f"code: {_common.describe_code()}; serving runtime {settings.LABELLOOP_SERVE_RUNTIME}, "
          f"int8 {settings.LABELLOOP_SERVE_INT8}")

    print("\n-- set-up --")
    t = time.perf_counter()
    served = _serving.served_project(name="bench-classification", intents=args.intents, per_intent=args.per_intent)
    print(f"classification: {len(served.intents)} intents x {args.per_intent}, head v{served.version.number} "
          f"in {time.perf_counter() - t:.1f} s")
    t = time.perf_counter()
    spans, span_version = span_project(served.owner, args.span_train, served.version.base_model)
    print(f"spans: word head on {args.span_train} BTC tweets in {time.perf_counter() - t:.1f} s")
    t = time.perf_counter()
    tuned, tuned_version = finetuned_span_project(served.owner, args.finetune_train, args.finetuned_from,
                                                  served.version.base_model)
    made = f"loaded from {args.finetuned_from}" if args.finetuned_from else \
        f"fine-tuned on {args.finetune_train} BTC tweets, 1 epoch (its quality does not matter here)"
    print(f"spans, fine-tuned: {made}, in {time.perf_counter() - t:.1f} s")

    texts = request_texts(args.texts)
    rounds = min(args.rounds, len(texts) // args.batch)
    bodies = [{"items": [{"data": {"text": x}} for x in texts[i * args.batch:(i + 1) * args.batch]]} for i in range(rounds)]
    print(f"{rounds} rounds of {args.batch} {args.texts} texts (mean {sum(map(len, texts)) / len(texts):.0f} characters)")
    projects = {"classification": (served.project, served.version), "spans": (spans, span_version),
                "spans_finetuned": (tuned, tuned_version)}
    clients = {name: (Client(HTTP_AUTHORIZATION=f"Bearer {_serving.make_token(p, ['predict'], 'bench')}"),
                      f"/api/projects/{p.id}/predict") for name, (p, _) in projects.items()}

    def post(name: str, body: dict) -> float:
        client, path = clients[name]
        started = time.perf_counter()
        response = client.post(path, body, content_type="application/json")
        elapsed = time.perf_counter() - started
        assert response.status_code == 200, response.content[:300]
        return elapsed

    for name in clients:  # load each model, warm the caches
        for body in bodies[:2]:
            post(name, body)
    seconds = {name: [] for name in clients}
    model_seconds = {name: [] for name in clients}
    for body in bodies:
        for name in clients:
            seconds[name].append(post(name, body))
    for body in bodies:  # the predictor alone, for the model's share of a request
        batch_texts = [item["data"]["text"] for item in body["items"]]
        for name, (_, version) in projects.items():
            predictor = serving.predictor_for(version)
            started = time.perf_counter()
            serving.answers(predictor, batch_texts, 3)
            model_seconds[name].append(time.perf_counter() - started)

    figures = {"machine": {"cores": os.cpu_count(), "load_average_at_start": load_start[0],
                           "load_average_at_end": os.getloadavg()[0]},
               "database": _common.describe_database(), "code": _common.describe_code(),
               "runtime": settings.LABELLOOP_SERVE_RUNTIME, "batch": args.batch, "rounds": rounds, "texts": args.texts,
               "results": {}}
    print("\n-- results --")
    for name in clients:
        total = sum(seconds[name])
        items_s = rounds * args.batch / total
        model = sum(model_seconds[name]) / rounds * 1000
        figures["results"][name] = {"items_per_s": round(items_s, 1), "batch_ms": round(total / rounds * 1000, 1),
                                    "model_ms": round(model, 1)}
        print(f"  {name:<16} {items_s:7.1f} items/s  ({total / rounds * 1000:7.1f} ms per batch of {args.batch}; "
              f"model alone {model:7.1f} ms)")
    figures["runtimes"] = {name: getattr(serving.predictor_for(version), "runtime", settings.LABELLOOP_SERVE_RUNTIME)
                           for name, (_, version) in projects.items()}
    for name, key, what in (("spans", "ratio", "span head"), ("spans_finetuned", "ratio_finetuned", "span fine-tuned")):
        ratio = figures["results"][name]["items_per_s"] / figures["results"]["classification"]["items_per_s"]
        figures[key] = round(ratio, 3)
        verdict = "PASS" if ratio >= TARGET_RATIO else "MISS"
        print(f"  {what} / classification throughput: {ratio:.2f} ({verdict}: target >= {TARGET_RATIO:.2f}; "
              f"served with {figures['runtimes'][name]})")
    print(f"  1-min load average: {load_start[0]:.2f} at the start, {os.getloadavg()[0]:.2f} at the end")
    path = _serving.write_json(args.json, figures)
    print(f"figures written to {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
