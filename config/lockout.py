"""Login lockout (django-axes): which address a client has, and the answer to a refused login (too
many failures for this username from this address): 429 with Retry-After, JSON `{"detail": …}` for
the API, the login page's message otherwise."""
from django.conf import settings
from django.http import HttpResponse, JsonResponse
from django.shortcuts import render


def lockout_response(request, original_response=None, credentials=None) -> HttpResponse:
    minutes = max(1, round(settings.AXES_COOLOFF_TIME.total_seconds() / 60))
    message = f"Too many failed logins for this username from this address; try again in {minutes} minutes."
    if request.path.startswith("/api/"):
        response = JsonResponse({"detail": message}, status=429)
    else:
        response = render(request, "registration/login.html", {"lockout": message}, status=429)
    response["Retry-After"] = str(int(settings.AXES_COOLOFF_TIME.total_seconds()))
    return response


def client_address(request) -> str:
    """The client's address: REMOTE_ADDR, or behind LABELLOOP_PROXY_COUNT trusted proxies the address
    the outermost of them saw (the Nth from the right of X-Forwarded-For; entries further left are
    whatever the client wrote and are never trusted)."""
    count = settings.LABELLOOP_PROXY_COUNT
    forwarded = [part.strip() for part in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",") if part.strip()]
    if count and len(forwarded) >= count:
        return forwarded[-count]
    return request.META.get("REMOTE_ADDR", "")
