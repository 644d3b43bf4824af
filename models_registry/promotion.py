"""Promotion, rollback and the challenger: moving aliases, each move recorded with who, when and why."""
from __future__ import annotations

from django.db import transaction

from core.errors import Conflict, DomainError
from core.signals import send_on_commit
from labeller.models import Project

from .models import Alias, AliasMove, AliasName, ModelVersion, VersionStatus
from .signals import champion_changed


class PromotionRefused(DomainError):
    """The alias cannot move to this version (not ready, fails the gate without an override, ...)."""


class AlreadyChampion(PromotionRefused, Conflict):
    """The version is the champion now: promoting it again would record a move that moves nothing."""


def _move(*, project: Project, name: str, to_version: ModelVersion | None, user, reason: str, override: bool = False) -> AliasMove:
    alias = Alias.objects.select_for_update().filter(project=project, name=name).first()
    from_version = alias.version if alias else None
    if to_version is None:
        if alias:
            alias.delete()
    elif alias:
        alias.version = to_version
        alias.save(update_fields=["version"])
    else:
        Alias.objects.create(project=project, name=name, version=to_version)
    return AliasMove.objects.create(project=project, name=name, from_version=from_version, to_version=to_version,
                                    moved_by=user, reason=reason, override=override)


@transaction.atomic
def version_promote(*, version: ModelVersion, user, reason: str, override: bool = False) -> AliasMove:
    """Make `version` the champion. A version that failed a guardrail needs `override` and a reason."""
    champion = Alias.objects.select_for_update().filter(project=version.project, name=AliasName.CHAMPION).first()
    if champion and champion.version_id == version.id:  # locked: two clicks on Promote record one move
        raise AlreadyChampion(f"v{version.number} is already the champion", field="version")
    if version.status != VersionStatus.READY:
        raise PromotionRefused(f"v{version.number} is {version.status}, only a ready version can be promoted", field="version")
    gate = version.gate or {}
    if not gate.get("passed", False) and not override:
        failures = "; ".join(gate.get("failures", [])) or "not evaluated"
        raise PromotionRefused(f"v{version.number} fails the gate ({failures}); promote with an override and a reason",
                               field="version")
    if override and not reason.strip():
        raise PromotionRefused("an override needs a reason", field="reason")
    move = _move(project=version.project, name=AliasName.CHAMPION, to_version=version, user=user,
                 reason=reason or "promoted", override=override and not gate.get("passed", False))
    if Alias.objects.filter(project=version.project, name=AliasName.CHALLENGER, version=version).exists():
        _move(project=version.project, name=AliasName.CHALLENGER, to_version=None, user=user, reason=f"v{version.number} became champion")
    _champion_changed(version.project)
    return move


@transaction.atomic
def champion_rollback(*, project: Project, user, reason: str) -> AliasMove:
    """Move the champion back to the version it replaced (one click, recorded)."""
    last = AliasMove.objects.filter(project=project, name=AliasName.CHAMPION).exclude(to_version=None).first()
    if last is None or last.from_version is None:
        raise PromotionRefused("there is no earlier champion to roll back to", field="champion")
    move = _move(project=project, name=AliasName.CHAMPION, to_version=last.from_version, user=user,
                 reason=reason or f"rollback from v{last.to_version.number}")
    _champion_changed(project)
    return move


@transaction.atomic
def version_set_challenger(*, version: ModelVersion, user, reason: str) -> AliasMove:
    if version.status != VersionStatus.READY:
        raise PromotionRefused(f"v{version.number} is {version.status}, not ready", field="version")
    return _move(project=version.project, name=AliasName.CHALLENGER, to_version=version, user=user, reason=reason or "challenger")


def _champion_changed(project: Project) -> None:
    """A new champion re-scores the pool (active learning re-encodes with its embeddings)."""
    send_on_commit(champion_changed, sender=Alias, project_id=project.id)
