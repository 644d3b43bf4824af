"""Reads of the registry that other apps use."""
from __future__ import annotations

from labeller.models import Project

from .models import Alias, AliasName, ModelKind, ModelVersion, VersionStatus


def fine_tuned_champion(*, project: Project) -> ModelVersion | None:
    """The champion if it is a ready fine-tuned version: active learning then ranks with its embeddings."""
    alias = Alias.objects.filter(project=project, name=AliasName.CHAMPION, version__kind=ModelKind.FINETUNED,
                                 version__status=VersionStatus.READY).select_related("version").first()
    return alias.version if alias else None
