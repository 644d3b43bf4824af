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
