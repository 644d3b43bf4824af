"""Create the demo project (2,000 Banking77 queries, 77 intents) when the database is empty.

The demo user's password is LABELLOOP_DEMO_PASSWORD, or a random one printed once: no deployment
ever has a known password. `./labelloop run` passes `demo` for a server on the loopback address.
"""
import json
import os
import secrets
from pathlib import Path

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand
from django.db import transaction

from labeller.importing import items_import
from labeller.label_defaults import PALETTE, SHORTCUTS
from labeller.models import Project
from labeller.services import project_create

DEMO_DIR = Path(__file__).resolve().parents[2] / "demo"
GUIDELINES = """Choose the **one intent** the customer's message is about.

- Read the whole message; label what the customer *wants*, not every topic mentioned.
- If two intents fit, prefer the more specific one (e.g. `card_payment_wrong_exchange_rate` over `exchange_rate`).
- Skip (Ctrl+Space) a message that is not about banking at all.
"""


class Command(BaseCommand):
    help = "Create the demo user and project if the database has no project yet."

    def handle(self, *args, **options):
        if Project.objects.exists():
            self.stdout.write("Projects exist; demo not created.")
            return
        username = os.environ.get("LABELLOOP_DEMO_USER", "demo")
        password = os.environ.get("LABELLOOP_DEMO_PASSWORD") or secrets.token_urlsafe(12)
        intents = json.loads((DEMO_DIR / "banking77_categories.json").read_text())
        labels = [
            {
                "key": intent,
                "name": intent.replace("_", " ").capitalize(),
                "color": PALETTE[i % len(PALETTE)],
                # A shortcut while free keys last, as on the new project page (1-9, 0, then a-z).
                "shortcut": SHORTCUTS[i] if i < len(SHORTCUTS) else "",
            }
            for i, intent in enumerate(intents)
        ]
        with transaction.atomic():
            User = get_user_model()
            user = User.objects.filter(username=username).first()
            if user is None:
                user = User.objects.create_superuser(username=username, email="", password=password)
            project = project_create(
                user=user,
                labels=labels,
                name="Banking77 intents (demo)",
                description="Online-banking customer queries; label each with one of 77 intents.",
                guidelines=GUIDELINES,
                text_field="text",
            )
            with open(DEMO_DIR / "banking77_sample.csv", "rb") as stream:
                result = items_import(project=project, stream=stream, filename="banking77_sample.csv")
        self.stdout.write(f"Demo project {project.id} created with {result.created} items; log in as {username} / {password}"
                          + ("" if "LABELLOOP_DEMO_PASSWORD" in os.environ else " (a random password, shown only now)."))
