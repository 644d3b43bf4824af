from django.contrib import admin

from .models import Annotation, ExportJob, Item, Label, Membership, Project


class LabelInline(admin.TabularInline):
    model = Label
    extra = 0


class MembershipInline(admin.TabularInline):
    model = Membership
    extra = 0
    raw_id_fields = ["user"]


@admin.register(Project)
class ProjectAdmin(admin.ModelAdmin):
    list_display = ["id", "name", "task_type", "labels_per_item", "spans_overlap", "created_at"]
    inlines = [LabelInline, MembershipInline]


@admin.register(Item)
class ItemAdmin(admin.ModelAdmin):
    list_display = ["id", "project", "external_id", "priority", "annotation_count", "is_done", "held_by"]
    list_filter = ["is_done"]
    raw_id_fields = ["project", "held_by"]
    show_full_result_count = False  # counting a million-row table on every page is slow


@admin.register(Annotation)
class AnnotationAdmin(admin.ModelAdmin):
    list_display = ["id", "item", "annotator", "labels", "skipped", "lead_time", "updated_at"]
    raw_id_fields = ["item", "project", "annotator"]


@admin.register(ExportJob)
class ExportJobAdmin(admin.ModelAdmin):
    list_display = ["id", "project", "format", "status", "written", "total", "created_at"]
