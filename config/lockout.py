"""The answer to a login refused by django-axes (too many failures for this username from this
address): 429 with Retry-After, JSON `{"detail": …}` for the API, the login page's message otherwise."""
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
