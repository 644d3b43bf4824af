from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ("labeller", "0007_job_heartbeats"),
    ]

    operations = [
        migrations.AddField(
            model_name="label",
            name="archived",
            field=models.BooleanField(default=False),
        ),
    ]
