"""User API tokens moved from rest_framework.authtoken (plain text, never expiring) to
django-rest-knox (hashed, expiring). The old table held every token in plain text: drop it, and
forget its migrations so that adding the app back would create it afresh. Old tokens stop working;
clients get a new one from POST /api/auth/token."""
from django.db import migrations

DROP = [
    "DROP TABLE IF EXISTS authtoken_token",
    "DELETE FROM django_migrations WHERE app = 'authtoken'",
]


class Migration(migrations.Migration):
    dependencies = [("labeller", "0003_review_queue")]

    operations = [migrations.RunSQL(DROP, reverse_sql=migrations.RunSQL.noop)]
