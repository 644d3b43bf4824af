"""Under a fine-tuned champion the pool is re-encoded with its embeddings, and every refresh
refits the light head there on all the labels so far (a small real fine-tune, in process)."""
import numpy as np
import pytest

from active_learning import encoding, refresh, selectors
from labeller.models import ActiveLearningState, JobStatus
from labeller.services import annotation_submit
from ml.heads import LinearHead
from models_registry import promotion, training
from models_registry.artefacts import load_head
from models_registry.models import TrainingPolicy, VersionStatus
from tests.banking77 import banking77
from tests.helpers import expected_refresh_head

pytestmark = pytest.mark.django_db
SMALL_FINETUNE = {"epochs": 1, "small_data_epochs": 1, "batch_size": 8, "max_length": 32}


def encode_now(project):
    ActiveLearningState.objects.filter(project=project).update(encode_status=JobStatus.QUEUED)
    encoding.encode_pending(project_id=project.id)
    return selectors.state_for(project.id)


def test_with_a_fine_tuned_champion_each_refresh_refits_the_head_on_its_embeddings(labelled_project, owner, expert, add_items):
    project = labelled_project
    rows = banking77(24)[48:]  # 8 more queries per intent, unlabelled
    pool = add_items(project, [r["text"] for r in rows])
    TrainingPolicy.objects.update_or_create(project=project, defaults={"finetune": SMALL_FINETUNE})
    (version,) = training.retrain_request(project=project, kinds=["finetuned"])
    version = training.version_train(version=training.version_claim(version_id=version.id))
    assert version.status == VersionStatus.READY, version.error
    promotion.version_promote(version=version, user=owner, reason="first fine-tune", override=True)

    state = encode_now(project)  # what promotion asks a worker to do
    assert state.encoder_version.startswith(f"model-v{version.number}@")
    refresh.refresh_run(project=project)
    stored = LinearHead.from_bytes(bytes(selectors.state_for(project.id).head))
    expected, _ = expected_refresh_head(project, state.encoder_version)
    n = len(refresh.training_labels(project))
    np.testing.assert_allclose(stored.coef, expected.coef, atol=1e-4)
    assert not np.allclose(stored.coef, load_head(version).coef, atol=1e-2)  # not the champion's classifier

    # New labels after the champion's snapshot move the head at the next refresh.
    for item, row in zip(pool[:6], rows[:6]):
        item.project = project
        annotation_submit(item=item, user=expert, labels=[row["category"]])
    refresh.refresh_run(project=project)
    state = selectors.state_for(project.id)
    expected, _ = expected_refresh_head(project, state.encoder_version)
    assert state.head_trained_on == n + 6
    np.testing.assert_allclose(LinearHead.from_bytes(bytes(state.head)).coef, expected.coef, atol=1e-4)
