"""A 500 MB, 200,000-row CSV uploaded in one go through Django's whole request stack.

Builds the file (Banking77 texts padded with a long `notes` field to reach --mb), then POSTs it as
multipart to /api/projects/<id>/imports with Django's test client, in process: URL routing,
authentication, the multipart parser streaming the upload to a temporary file, the serializer's
size check and the streamed import. Prints the upload size, rows/s and peak RSS. The test client
builds the whole multipart body in memory, so that RSS is the client's, not the server's: for the
server's memory, upload the same file to gunicorn with curl (docs/benchmarks.md has the commands).

    .venv/bin/python benchmarks/import_upload.py                 # 200,000 rows, 500 MB, SQLite
    .venv/bin/python benchmarks/import_upload.py --database-url postgres://postgres@127.0.0.1:5432/labelloop_bench
"""
from __future__ import annotations

import sys
from pathlib import Path

sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import argparse  # noqa: E402
import csv  # noqa: E402
import os  # noqa: E402
import resource  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rows", type=int, default=200_000)
    p.add_argument("--mb", type=int, default=500)
    p.add_argument("--database-url", default=None)
    p.add_argument("--train", default=str(ROOT / "datasets" / "banking77" / "train.csv"),
                   help="a CSV with a text column whose rows are cycled into the upload")
    args = p.parse_args()
    work = Path(tempfile.mkdtemp(prefix="labelloop-upload-"))
    os.environ["LABELLOOP_DATA_DIR"] = str(work / "data")
    os.environ["ALLOWED_HOSTS"] = "testserver"  # Django's test client
    if args.database_url:
        os.environ["DATABASE_URL"] = args.database_url
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    import django

    django.setup()
    from django.core.management import call_command
    from django.test import Client

    from labeller.models import Item
    from labeller.services import project_create

    call_command("migrate", verbosity=0)
    with open(args.train, encoding="utf-8") as f:
        texts = [r["text"] for r in csv.DictReader(f)]
    pad = max(0, args.mb * 1024 * 1024 // args.rows - 80)
    path = work / "big.csv"
    with open(path, "w", encoding="utf-8", newline="") as out:
        writer = csv.writer(out)
        writer.writerow(["external_id", "text", "notes"])
        for i in range(args.rows):
            writer.writerow([f"row-{i}", texts[i % len(texts)], ("lorem ipsum " * (pad // 12 + 1))[:pad]])
    size = path.stat().st_size
    from django.contrib.auth import get_user_model

    user = get_user_model().objects.create_user("uploader")
    project = project_create(user=user, labels=[{"key": "a", "name": "A"}], name="upload")
    client = Client()
    client.force_login(user)
    started = time.perf_counter()
    with open(path, "rb") as f:
        response = client.post(f"/api/projects/{project.id}/imports", {"file": f})
    seconds = time.perf_counter() - started
    body = response.json() if response.headers.get("Content-Type", "").startswith("application/json") else {"raw": response.content[:500]}
    if "raw" in body:
        print(response.status_code, body["raw"])
    print(f"upload {size / 1024 / 1024:.0f} MB, {args.rows} rows -> HTTP {response.status_code}, created {body.get('created')}, "
          f"errors {body.get('error_count')}, duplicates {body.get('duplicate_count')}")
    print(f"{seconds:.1f} s = {args.rows / seconds:.0f} rows/s, {size / seconds / 1024 / 1024:.1f} MB/s; "
          f"peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB; "
          f"items in the database: {Item.objects.filter(project=project).count()}")


if __name__ == "__main__":
    main()
