"""New projects start with ml.gates.DEFAULT_GUARDRAILS. Existing projects keep the gate they had:
filling the defaults in would change, without anyone asking, which of their next versions may be
promoted, and silently stop their auto-promotion (a project evaluating on fewer than 30 items would
never auto-promote again). So a project that has no policy row yet, and would otherwise pick up the
new default the first time its policy is read, gets its row now with the empty list it had. Its
admins can turn the defaults on from the settings page."""
import ml.gates
from django.db import migrations, models


def keep_no_guardrails(apps, schema_editor):
    Project = apps.get_model("labeller", "Project")
    TrainingPolicy = apps.get_model("models_registry", "TrainingPolicy")
    missing = Project.objects.exclude(id__in=TrainingPolicy.objects.values("project_id")).values_list("id", flat=True)
    TrainingPolicy.objects.bulk_create([TrainingPolicy(project_id=pk, guardrails=[]) for pk in missing.iterator()],
                                       batch_size=500)


class Migration(migrations.Migration):

    dependencies = [
        ('models_registry', '0003_drop_version_parent'),
    ]

    operations = [
        migrations.RunPython(keep_no_guardrails, migrations.RunPython.noop),
        migrations.AlterField(
            model_name='trainingpolicy',
            name='guardrails',
            field=models.JSONField(blank=True, default=ml.gates.default_guardrails),
        ),
    ]
