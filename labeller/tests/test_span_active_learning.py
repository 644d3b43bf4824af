"""The fast active-learning loop of a span project, on the real database and the real base encoder
(all-MiniLM-L6-v2, offline): encoding stores each item's word vectors, the refresh fits the word
tagger on the labelled spans and ranks the pool, and the expert is served the model's spans."""
from pathlib import Path

import numpy as np
import pytest

from active_learning import encoding, refresh, span_refresh
from labeller import suggestions
from labeller.models import ActiveLearningState, Item, ItemVector, ItemWordVectors, JobStatus
from labeller.services import annotation_submit, project_create
from ml import token_model
from ml.encoder_cache import base_encoder
from ml.spans import read_conll_file

pytestmark = pytest.mark.django_db

BTC = Path(__file__).resolve().parents[2] / "datasets" / "btc" / "btc.train.conll"
ENTITY_LABELS = [
    {"key": "PER", "name": "Person", "shortcut": "1", "color": "#4f46e5"},
    {"key": "ORG", "name": "Organisation", "shortcut": "2", "color": "#059669"},
    {"key": "LOC", "name": "Location", "shortcut": "3", "color": "#dc2626"},
]
NAMES = ["Anna", "Maria", "John", "Peter", "Laura", "David", "Sarah", "Thomas", "Emma", "James", "Olivia", "Lucas"]
CITIES = ["London", "Paris", "Berlin", "Madrid", "Rome", "Vienna", "Lisbon", "Dublin", "Prague", "Oslo", "Athens", "Warsaw"]
# Emoji of one and of several code points (a ZWJ family, a flag) before the entities: code-point
# offsets past them are what the suggestions must get right.
EMOJI = ["😀", "👩\u200d👩\u200d👧", "🇫🇷", "🎉", "👍🏽", "🌍"]


def patterned(i: int) -> tuple[str, list[dict]]:
    """'<emoji> <name> flew to <city> today' with its PER and LOC spans."""
    emoji, name, city = EMOJI[i % len(EMOJI)], NAMES[i % len(NAMES)], CITIES[(i * 5) % len(CITIES)]
    text = f"{emoji} {name} flew to {city} today"
    start, place = text.index(name), text.index(city)
    return text, [{"start": start, "end": start + len(name), "label": "PER"},
                  {"start": place, "end": place + len(city), "label": "LOC"}]


def span_project(owner, expert, **fields):
    from labeller.models import Role
    from labeller.services import membership_set

    project = project_create(user=owner, labels=ENTITY_LABELS, name="Tweets", task_type="spans", **fields)
    membership_set(project=project, user=expert, role=Role.EXPERT)
    return project


def encode(project) -> int:
    ActiveLearningState.objects.filter(project=project).update(encode_status=JobStatus.QUEUED)
    return encoding.encode_pending(project_id=project.id)


@pytest.fixture
def tweets(owner, expert, add_items):
    """40 BTC tweets and 12 patterned emoji texts, labelled with their spans; 20 BTC tweets and 6
    patterned emoji texts open. Encoded by the real base model."""
    project = span_project(owner, expert, eval_share=0, diversity=False)
    btc = read_conll_file(BTC, limit=60)
    made = [patterned(i) for i in range(18)]
    labelled = btc[:40] + made[:12]
    open_ = btc[40:] + made[12:]
    items = add_items(project, [text for text, _ in labelled + open_])
    assert encode(project) == len(items)
    for item, (_, spans) in zip(items, labelled):
        annotation_submit(item=item, user=expert, labels=spans)
    return project, items[:len(labelled)], items[len(labelled):]


def test_encoding_stores_the_sentence_vector_and_a_word_matrix_with_a_row_per_word(owner, expert, add_items):
    project = span_project(owner, expert)
    texts = [text for text, _ in read_conll_file(BTC, limit=12)] + [patterned(1)[0], "   "]
    items = add_items(project, texts)
    assert encode(project) == len(items)
    version = base_encoder("").version
    state = ActiveLearningState.objects.get(project=project)
    assert state.encoder_version == version and state.encode_done == len(items)
    for item, text in zip(items, texts):
        stored = ItemWordVectors.objects.get(item=item)
        assert stored.encoder_version == version
        assert stored.n_words == len(token_model.words_of(text)), text
        assert len(bytes(stored.vectors)) == stored.n_words * 384 * 2  # float16
        assert len(bytes(ItemVector.objects.get(item=item).vector)) == 384 * 2
    # A second run finds nothing left to encode.
    assert encode(project) == 0


def test_a_span_project_is_encoded_with_the_base_encoder(owner, expert):
    project = span_project(owner, expert)
    assert encoding.encoder_for(project) is base_encoder(project.base_model_path)


def test_items_with_a_sentence_vector_but_no_word_vectors_get_them(owner, expert, add_items):
    project = span_project(owner, expert)
    items = add_items(project, ["Anna flew to Paris", "Nothing here"])
    encode(project)
    ItemWordVectors.objects.filter(item=items[0]).delete()
    assert encode(project) == 1
    assert ItemWordVectors.objects.filter(project=project).count() == 2 == ItemVector.objects.filter(project=project).count()


def test_the_refresh_fits_the_word_tagger_ranks_the_pool_and_suggests_spans_at_code_point_offsets(tweets):
    project, labelled, pool = tweets
    report = refresh.refresh_run(project=project)
    assert (report.labelled, report.pool, report.cold_start) == (len(labelled), len(pool), False)
    state = ActiveLearningState.objects.get(project=project)
    assert state.head_version == 1 and state.head_trained_on == len(labelled)

    served = list(Item.objects.filter(project=project, is_done=False).order_by("-priority"))
    assert len({item.priority for item in served}) == len(pool)
    for item in served:  # every open item is at the head of the queue here: all have a suggestion
        suggestion, text = item.suggestion, item.text()
        assert suggestion["head_version"] == 1 and 0 <= suggestion["confidence"] <= 1
        starts = {start for start, _ in token_model.words_of(text)}
        ends = {end for _, end in token_model.words_of(text)}
        for span in suggestion["spans"]:
            assert span["text"] == text[span["start"]:span["end"]] and span["start"] in starts and span["end"] in ends
            assert span["label"] in {"PER", "ORG", "LOC"} and 0 < span["confidence"] <= 1
    # Without diversity the least sure text comes first: the queue's score is the sum of the word
    # margins over the root of the words, and the text's confidence 1 - their mean.
    scores = [(1 - item.suggestion["confidence"]) * len(token_model.words_of(item.text())) ** 0.5 for item in served]
    assert all(a >= b - 1e-3 for a, b in zip(scores, scores[1:])), scores

    # The patterned emoji texts: the name and the city are found, past the emoji's code points.
    found = {(item.text()[s["start"]:s["end"]], s["label"]) for item in served if item.text()[0] in "".join(EMOJI)
             for s in item.suggestion["spans"]}
    expected = {(piece, label) for text, spans in (patterned(i) for i in range(12, 18))
                for piece, label in ((text[s["start"]:s["end"]], s["label"]) for s in spans)}
    assert len(found & expected) >= len(expected) // 2, (found, expected)


def test_the_pool_is_scored_with_each_words_casing_the_same_when_streamed_in_small_chunks(tweets, monkeypatch):
    project, _, pool = tweets
    refresh.refresh_run(project=project)
    from ml.heads import LinearHead

    state = ActiveLearningState.objects.get(project=project)
    head = LinearHead.from_bytes(bytes(state.head))
    assert head.coef.shape[1] == 384 + token_model.CASINGS  # the word vector and the word's casing
    pool_ids = [item.id for item in pool]
    whole = span_refresh.pool_uncertainty(project, state.encoder_version, head, pool_ids)
    monkeypatch.setattr(span_refresh, "STREAM_ITEMS", 3)
    assert np.allclose(span_refresh.pool_uncertainty(project, state.encoder_version, head, pool_ids), whole)
    assert whole.min() > 0


def test_a_project_with_no_entity_labelled_yet_gets_a_cold_start(owner, expert, add_items):
    project = span_project(owner, expert, eval_share=0)
    items = add_items(project, [text for text, _ in read_conll_file(BTC, limit=15)])
    encode(project)
    for item in items[:3]:
        annotation_submit(item=item, user=expert, labels=[])  # texts without entities
    report = refresh.refresh_run(project=project)
    assert report.cold_start and report.pool == 12
    assert ActiveLearningState.objects.get(project=project).head is None
    assert not Item.objects.filter(project=project, suggestion__isnull=False).exists()


def test_evaluation_items_are_never_trained_on(tweets):
    project, labelled, _ = tweets
    Item.objects.filter(id=labelled[0].id).update(is_eval=True)
    assert labelled[0].id not in refresh.training_labels(project)
    assert refresh.refresh_run(project=project).labelled == len(labelled) - 1


def test_the_next_item_carries_the_models_spans_computed_now_when_none_is_stored(tweets, client_for, expert):
    project, _, _ = tweets
    refresh.refresh_run(project=project)
    stored = {item.id: item.suggestion for item in Item.objects.filter(project=project, is_done=False)}
    body = client_for(expert).post(f"/api/projects/{project.id}/queue/next", {}, format="json").json()
    assert body["suggestion"] == stored[body["id"]] and isinstance(body["suggestion"]["spans"], list)

    # Not precomputed (the item was below the head of the queue): made from the stored word vectors,
    # without evidence (it is found in the refresh, for the head of the queue only).
    Item.objects.filter(project=project).update(suggestion=None)
    item = Item.objects.select_related("project").get(id=body["id"])
    without_evidence = {**stored[body["id"]], "spans": [{k: v for k, v in span.items() if k != "evidence"}
                                                        for span in stored[body["id"]]["spans"]]}
    assert suggestions.suggestion_for_item(item=item) == without_evidence


def labelled_span_similarities(project, labelled_items, vector: np.ndarray, label: str) -> dict[str, float]:
    """Every labelled span of `label`: its text -> the highest cosine similarity of its word
    vectors' mean to `vector` (computed here from the stored rows, apart from the refresh)."""
    from labeller.models import Annotation

    best: dict[str, float] = {}
    for item in labelled_items:
        row = ItemWordVectors.objects.get(item=item)
        matrix = np.frombuffer(bytes(row.vectors), dtype=np.float16).reshape(row.n_words, -1).astype(np.float32)
        words = token_model.words_of(item.text())[:row.n_words]
        for span in Annotation.objects.get(item=item).labels:
            rows = [i for i, (a, b) in enumerate(words) if a < span["end"] and b > span["start"]]
            if span["label"] != label or not rows:
                continue
            mean = matrix[rows].mean(axis=0)
            similarity = float(mean @ vector / np.linalg.norm(mean) / np.linalg.norm(vector))
            text = item.text()[span["start"]:span["end"]]
            best[text.casefold()] = max(best.get(text.casefold(), -2.0), similarity)
    return best


def test_each_suggested_span_comes_with_the_nearest_labelled_spans_of_its_label_as_evidence(tweets):
    project, labelled, _ = tweets
    refresh.refresh_run(project=project)
    labelled_ids = {item.id for item in labelled}
    checked = 0
    for item in Item.objects.filter(project=project, is_done=False).exclude(suggestion=None):
        row = ItemWordVectors.objects.get(item=item)
        matrix = np.frombuffer(bytes(row.vectors), dtype=np.float16).reshape(row.n_words, -1).astype(np.float32)
        words = token_model.words_of(item.text())[:row.n_words]
        for span in item.suggestion["spans"]:
            evidence = span["evidence"]
            assert 1 <= len(evidence) <= 3
            assert all(e["label"] == span["label"] and e["item"] in labelled_ids for e in evidence)
            labelled_text = {e["item"]: Item.objects.get(id=e["item"]).text() for e in evidence}
            for e in evidence:  # the span's text with its context, as it stands in the labelled item
                assert e["before"].lstrip("…") + e["text"] + e["after"].rstrip("…") in labelled_text[e["item"]]
            similarities = [e["similarity"] for e in evidence]
            assert similarities == sorted(similarities, reverse=True)
            assert len({e["text"].casefold() for e in evidence}) == len(evidence)  # one per distinct text
            # The nearest: no other labelled span of the label is nearer than the last one shown.
            rows = [i for i, (a, b) in enumerate(words) if a < span["end"] and b > span["start"]]
            every = labelled_span_similarities(project, labelled, matrix[rows].mean(axis=0), span["label"])
            nearest = sorted(every.values(), reverse=True)[:len(evidence)]
            assert similarities == pytest.approx(nearest, abs=2e-3)
            checked += 1
        if checked >= 6:
            break
    assert checked

    # The patterned texts: a suggested city is explained by labelled cities, a name by names.
    for item in Item.objects.filter(project=project, is_done=False).exclude(suggestion=None):
        for span in item.suggestion["spans"]:
            if span["text"] in CITIES and span["label"] == "LOC":
                assert {e["text"] for e in span["evidence"]} <= set(CITIES), span
            if span["text"] in NAMES and span["label"] == "PER":
                assert {e["text"] for e in span["evidence"]} <= set(NAMES), span


def test_the_evidence_is_served_with_the_next_item_and_not_to_an_outsider(tweets, client_for, expert, outsider):
    project, _, _ = tweets
    refresh.refresh_run(project=project)
    with_spans = next(item for item in Item.objects.filter(project=project, is_done=False).exclude(suggestion=None)
                      if item.suggestion["spans"])
    Item.objects.filter(id=with_spans.id).update(priority=10.0)  # served first
    body = client_for(expert).post(f"/api/projects/{project.id}/queue/next", {}, format="json").json()
    assert body["id"] == with_spans.id
    spans = body["suggestion"]["spans"]
    assert spans and all(span["evidence"] for span in spans)
    assert set(spans[0]["evidence"][0]) == {"item", "label", "text", "before", "after", "similarity"}
    assert client_for(outsider).post(f"/api/projects/{project.id}/queue/next", {}, format="json").status_code == 404


def test_labels_request_a_refresh_in_a_span_project(tweets, expert, django_capture_on_commit_callbacks, monkeypatch):
    project, _, pool = tweets
    sent = []
    monkeypatch.setattr(refresh.refresh_priorities, "apply_async", lambda args, **kw: sent.append(("refresh", *args)))
    ActiveLearningState.objects.filter(project=project).update(labels_since_refresh=0, refresh_requested=False)
    project.refresh_every = 2
    project.save(update_fields=["refresh_every"])
    with django_capture_on_commit_callbacks(execute=True):
        for item in pool[:2]:
            annotation_submit(item=item, user=expert, labels=[])
    assert ActiveLearningState.objects.get(project=project).refresh_requested
    assert sent == [("refresh", project.id)]
