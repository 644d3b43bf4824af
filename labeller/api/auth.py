"""User API tokens: POST /api/auth/token (username and password for a token), /api/auth/logout
(revoke the token the call is made with) and /api/auth/logout-all (revoke every token of the user).

Tokens are django-rest-knox's: only a SHA-512 digest is stored, each expires after
LABELLOOP_API_TOKEN_TTL_HOURS, and clients send `Authorization: Token <token>`.

The password is checked by `django.contrib.auth.authenticate` with the Django request, so
django-axes counts the failure and refuses a locked-out username (429, answered by its middleware)
exactly as on the login page and the admin login.
"""
from django.contrib.auth import authenticate
from drf_spectacular.utils import extend_schema
from knox import views as knox_views
from rest_framework import serializers, throttling
from rest_framework.exceptions import ValidationError
from rest_framework.permissions import AllowAny

# One answer for an unknown username, a wrong password and an inactive user: which one it was
# is not the caller's to learn.
BAD_CREDENTIALS = "Unable to log in with provided credentials."


class LoginRateThrottle(throttling.AnonRateThrottle):
    """Token requests per client address (LABELLOOP_LOGIN_RATE). django-axes locks out one
    username; this stops one password being tried against many usernames."""

    scope = "login"


class CredentialsSerializer(serializers.Serializer):
    username = serializers.CharField(max_length=150)
    password = serializers.CharField(max_length=4096, trim_whitespace=False, style={"input_type": "password"})


class UserTokenSerializer(serializers.Serializer):
    token = serializers.CharField(help_text="Send as `Authorization: Token <token>`; shown once.")
    expiry = serializers.DateTimeField()


class TokenObtain(knox_views.LoginView):
    authentication_classes = []
    permission_classes = [AllowAny]
    throttle_classes = [LoginRateThrottle]

    @extend_schema(request=CredentialsSerializer, responses=UserTokenSerializer)
    def post(self, request, format=None):
        credentials = CredentialsSerializer(data=request.data)
        credentials.is_valid(raise_exception=True)
        user = authenticate(request._request, **credentials.validated_data)
        if user is None:
            # Unknown user, wrong password, inactive, or locked out (then the middleware answers 429).
            raise ValidationError({"non_field_errors": [BAD_CREDENTIALS]})
        request.user = user  # knox's LoginView issues the token to request.user
        return super().post(request, format=format)


class TokenRevoke(knox_views.LogoutView):
    @extend_schema(request=None, responses={204: None})
    def post(self, request, format=None):
        return super().post(request, format=format)


class TokenRevokeAll(knox_views.LogoutAllView):
    @extend_schema(request=None, responses={204: None})
    def post(self, request, format=None):
        return super().post(request, format=format)
