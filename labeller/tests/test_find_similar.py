"""Find similar over the stored vectors: nearest first, the item itself left out, the filters, the
per-process cache that notices new vectors, typed text through the real encoder, and never another
project's items."""
import numpy as np
import pytest
from django.utils import timezone

from active_learning import similar
from core.errors import DomainError
from labeller.models import ActiveLearningState, Item, ItemVector
from labeller.services import annotation_submit
from ml.encoder import to_float16_bytes
from ml.encoder_cache import base_encoder

from .test_active_learning import store_vectors

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def empty_cache():
    similar.vector_cache_clear()  # ids are reused after each test's rollback
    yield
    similar.vector_cache_clear()


def fan(n, dim=8):
    """n unit vectors at growing angles from the first axis: row i is the i-th nearest to row 0."""
    angles = np.linspace(0, np.pi / 2, n)
    rows = np.zeros((n, dim))
    rows[:, 0], rows[:, 1] = np.cos(angles), np.sin(angles)
    return rows


@pytest.fixture
def fanned(project, add_items):
    items = add_items(project, [f"item {i}" for i in range(10)])
    store_vectors(project, items, fan(10))
    return project, items


def ids(found):
    return [item.id for item, _ in found]


def test_it_finds_the_nearest_items_to_an_item_best_first_without_the_item_itself(fanned):
    project, items = fanned
    found = similar.similar_items(project=project, item=items[0], k=3)
    assert ids(found) == [items[1].id, items[2].id, items[3].id]
    assert found[0][1] > found[1][1] > found[2][1]


def test_it_keeps_only_items_above_the_threshold(fanned):
    project, items = fanned
    found = similar.similar_items(project=project, item=items[0], k=10, min_similarity=0.85)
    assert all(s >= 0.85 for _, s in found) and ids(found) == [i.id for i in items[1:4]]


def test_it_never_returns_another_projects_items(fanned, make_project, add_items):
    project, items = fanned
    other = make_project(name="Other")
    twins = add_items(other, [f"twin {i}" for i in range(10)])
    store_vectors(other, twins, fan(10))
    found = similar.similar_items(project=project, item=items[0], k=20)
    assert set(ids(found)) == {i.id for i in items[1:]}
    with pytest.raises(DomainError):
        similar.similar_items(project=project, item=twins[0], k=3)


def test_the_unlabelled_filter_skips_labelled_neighbours_and_looks_further(fanned, expert):
    project, items = fanned
    for item in items[1:4]:
        annotation_submit(item=item, user=expert, labels=["card_arrival"])
    found = similar.similar_items(project=project, item=items[0], k=2, unlabelled_only=True)
    assert ids(found) == [items[4].id, items[5].id]


def test_the_labelling_filter_also_leaves_out_evaluation_review_and_skipped_items(fanned, expert, expert2):
    project, items = fanned
    Item.objects.filter(id=items[1].id).update(is_eval=True)
    Item.objects.filter(id=items[2].id).update(needs_review=True)
    annotation_submit(item=items[3], user=expert, labels=[], skipped=True)
    found = similar.similar_items(project=project, item=items[0], k=2, open_to_labelling_by=expert)
    assert ids(found) == [items[4].id, items[5].id]
    assert ids(similar.similar_items(project=project, item=items[0], k=1, open_to_labelling_by=expert2)) == [items[3].id]
    assert items[1].id in ids(similar.similar_items(project=project, item=items[0], k=2, unlabelled_only=True))


def test_the_cached_matrix_takes_in_new_vectors_once_the_encoder_says_it_stored_some(fanned):
    project, items = fanned
    similar.similar_items(project=project, item=items[0], k=1)
    assert similar.vector_cache_bytes() == 10 * 8 * 4 + 10 * 8
    twin = Item.objects.create(project=project, data={"text": "twin of 0"})
    ItemVector.objects.create(item=twin, project=project, encoder_version="test-encoder",
                              vector=to_float16_bytes(fan(1))[0])
    assert ids(similar.similar_items(project=project, item=items[0], k=1)) == [items[1].id]  # not told yet
    ActiveLearningState.objects.filter(project=project).update(encode_done=11, encode_heartbeat_at=timezone.now())
    assert ids(similar.similar_items(project=project, item=items[0], k=1)) == [twin.id]


def test_it_says_why_when_there_is_nothing_to_search(fanned):
    project, items = fanned
    new = Item.objects.create(project=project, data={"text": "not encoded yet"})
    with pytest.raises(DomainError, match="no stored vector yet"):
        similar.similar_items(project=project, item=new, k=3)
    ActiveLearningState.objects.filter(project=project).update(encoder_version="")
    with pytest.raises(DomainError, match="not been encoded yet"):
        similar.similar_items(project=project, item=items[0], k=3)


def test_it_finds_the_items_nearest_to_typed_text_with_the_real_encoder(project, add_items):
    texts = ["My card has not arrived yet", "What exchange rate do you use?", "Someone stole my wallet"]
    items = add_items(project, texts)
    encoder = base_encoder(project.base_model_path)
    store_vectors(project, items, encoder.encode(texts), version=encoder.version)
    found = similar.similar_items(project=project, text="the rate for converting euros to dollars", k=3)
    assert ids(found)[0] == items[1].id
    assert len(found) == 3
