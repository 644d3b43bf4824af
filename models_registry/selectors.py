"""Reads of the registry: which versions the project's aliases point at."""
from __future__ import annotations

from django.db.models import QuerySet

from labeller.models import Project

from .models import Alias, AliasName, ModelVersion, VersionStatus


def _ready_aliases(project: Project) -> QuerySet[Alias]:
    # Promotion takes only ready versions; the filter keeps a version that cannot load from ever
    # being served, whatever moved the alias.
    return Alias.objects.filter(project=project, version__status=VersionStatus.READY).select_related("version", "version__project")


def aliased_versions(*, project: Project) -> dict[str, ModelVersion]:
    """{"champion": v, "challenger": v}, each present only if the alias points at a ready version."""
    return {alias.name: alias.version for alias in _ready_aliases(project)}


def champion_for(*, project: Project, kind: str | None = None) -> ModelVersion | None:
    """The project's champion, or None if it has none (or, with `kind`, none of that kind)."""
    aliases = _ready_aliases(project).filter(name=AliasName.CHAMPION)
    if kind is not None:
        aliases = aliases.filter(version__kind=kind)
    alias = aliases.first()
    return alias.version if alias else None
