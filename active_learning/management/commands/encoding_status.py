"""One line per project whose items are still being encoded, for `./labelloop run` to print at
start: until encoding finishes the queue has no priorities and the screen no suggestions."""
from django.core.management.base import BaseCommand

from active_learning.selectors import encoding_in_progress


class Command(BaseCommand):
    help = "Say which projects are still encoding their items in the background."

    def add_arguments(self, parser):
        parser.add_argument("--base-url", default="", help="Prefix for the project page links, e.g. http://127.0.0.1:8000")

    def handle(self, *args, base_url="", **options):
        for row in encoding_in_progress():
            self.stdout.write(
                f"Encoding {row['pending']} item{'' if row['pending'] == 1 else 's'} of project {row['project_id']} ({row['name']}) in the background: "
                f"the queue is ranked and the model suggests once it is done. Progress: {base_url}/projects/{row['project_id']}/"
            )
