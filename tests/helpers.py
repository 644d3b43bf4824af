import time


def wait_for(predicate, *, timeout=60.0, interval=0.2, what="condition"):
    """Poll until `predicate()` is truthy; return its value."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def train_head(project):
    """Train a head version of `project` in this process; returns the ready version."""
    from models_registry import training

    (version,) = training.retrain_request(project=project, kinds=["head"])
    return training.version_train(version=training.version_claim(version_id=version.id))


class WebhookReceiver:
    """A local HTTP server that records the JSON bodies POSTed to it (alert webhooks) and the Host
    header each came with."""

    def __init__(self):
        import json
        import threading
        from http.server import BaseHTTPRequestHandler, HTTPServer

        received = self.received = []
        hosts = self.hosts = []

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                received.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
                hosts.append(self.headers["Host"])
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = HTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/hooks/labelloop"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()


def expected_refresh_head(project, encoder_version):
    """The head a refresh should store, computed here from what it reads: fit_head on the labelled
    items' stored vectors, self-trained on the open pool without evaluation items. Returns it with
    the labels-only head it started from."""
    from active_learning import refresh
    from labeller.models import Item
    from ml.heads import fit_head, self_train

    ids, vectors = refresh.project_vectors(project, encoder_version)
    row = {item_id: r for r, item_id in enumerate(ids.tolist())}
    labelled = refresh.training_labels(project)
    pool = Item.objects.filter(project=project, is_done=False, is_eval=False).order_by("id").values_list("id", flat=True)
    labelled_vectors, label_sets = vectors[[row[i] for i in labelled]], list(labelled.values())
    labels_alone = fit_head(labelled_vectors, label_sets, classes=list(project.labels.values_list("key", flat=True)))
    return self_train(labels_alone, labelled_vectors, label_sets, vectors[[row[i] for i in pool]]), labels_alone
