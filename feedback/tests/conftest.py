"""A project that serves: Banking77 intents with a trained head version as its champion."""
import pytest
from rest_framework.test import APIClient

from feedback.tokens import token_create
from models_registry import registry, serving, training


def train_head(project):
    (version,) = training.retrain_request(project=project, kinds=["head"])
    return training.version_train(version=training.version_claim(version_id=version.id))


@pytest.fixture
def served_project(labelled_project, owner):
    version = train_head(labelled_project)
    registry.version_promote(version=version, user=owner, reason="first model", override=True)
    serving.forget_aliases()
    return labelled_project


@pytest.fixture
def token_client():
    """An API client that calls with a new project token: token_client(project, ["predict"], trusted=False)."""
    def make(project, scopes, trusted=False, name="checkout backend"):
        token, plain = token_create(project=project, name=name, scopes=scopes, trusted=trusted)
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {plain}")
        client.token = token
        return client

    return make
