"""Gunicorn settings shared by `./labelloop run`, the image and compose (`-c config/gunicorn.conf.py`);
the bind address, worker count and threads stay on each command line."""
import logging

timeout = 600  # an import of a large file is one request
# gunicornc's control socket is one path per user: a second server on the machine (tests, a run
# beside compose) would take it over. Nothing here uses it.
control_socket_disable = True


def post_worker_init(worker):
    """Load the served models in each worker as it starts (not in the master: torch and fork do
    not mix), so no caller waits 6-8 s for the first prediction. Nothing to do before a first
    promotion; a failure is logged and the models load on demand as before."""
    from django.db import connections

    from models_registry.serving import serving_warm

    try:
        warmed = serving_warm()
    except Exception:  # the database is not there yet, say: serve anyway
        logging.getLogger("gunicorn.error").warning("preloading the served models failed", exc_info=True)
        return
    finally:
        connections.close_all()  # opened in this thread before any request; requests open their own
    if warmed:
        worker.log.info("Worker %s preloaded %d served model version(s)", worker.pid, warmed)
