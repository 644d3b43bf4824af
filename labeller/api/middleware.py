"""Refuse NUL characters in the URL path, the query string and the form fields of the pages:
PostgreSQL cannot store or even compare a string holding \\x00 (psycopg raises ValueError, a
500), and no name, key or filter here needs one. The API's bodies are checked by its parsers
(labeller.api.parsers); imported files by labeller.import_formats."""
from django.http import JsonResponse
from rest_framework.views import APIView

from .parsers import NUL_MESSAGE, first_nul


class RefuseNulMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        return self.get_response(request)

    def process_view(self, request, view_func, view_args, view_kwargs):
        where = "path" if "\x00" in request.path else first_nul(request.GET)
        api_view = isinstance(getattr(view_func, "cls", None), type) and issubclass(view_func.cls, APIView)
        # A page's form is read here, after the CSRF check has read it anyway; an API view reads
        # its body with its own parsers, after authentication (an upload is not parsed for nobody).
        if where is None and request.method == "POST" and not api_view:
            where = first_nul(request.POST)
        if where is not None:
            return JsonResponse({where: [NUL_MESSAGE]}, status=400)
        return None
