from django.contrib import admin

from .models import Alias, AliasMove, DatasetSnapshot, ModelVersion, TrainingPolicy


@admin.register(ModelVersion)
class ModelVersionAdmin(admin.ModelAdmin):
    list_display = ["project", "number", "kind", "status", "triggered_by", "training_seconds", "created_at"]
    list_filter = ["status", "kind"]
    readonly_fields = ["snapshot", "metrics", "gate", "checksum", "artefact_path"]


@admin.register(DatasetSnapshot)
class DatasetSnapshotAdmin(admin.ModelAdmin):
    list_display = ["project", "content_hash", "n_train", "n_validation", "n_evaluation", "created_at"]

    def has_change_permission(self, request, obj=None):
        return False  # immutable


@admin.register(AliasMove)
class AliasMoveAdmin(admin.ModelAdmin):
    list_display = ["project", "name", "from_version", "to_version", "moved_by", "override", "moved_at", "reason"]

    def has_change_permission(self, request, obj=None):
        return False


admin.site.register(Alias)
admin.site.register(TrainingPolicy)
