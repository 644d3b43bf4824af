"""POST /api/auth/token: a username and password for an API token.

The password is checked by `django.contrib.auth.authenticate` with the Django request, so
django-axes counts the failure and refuses a locked-out username (429, answered by its middleware)
exactly as on the login page and the admin login.
"""
from django.contrib.auth import authenticate
from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.authtoken.models import Token
from rest_framework.exceptions import ValidationError
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.views import APIView

BAD_CREDENTIALS = "Unable to log in with provided credentials."


class CredentialsSerializer(serializers.Serializer):
    username = serializers.CharField(max_length=150)
    password = serializers.CharField(max_length=4096, trim_whitespace=False, style={"input_type": "password"})


class TokenSerializer(serializers.Serializer):
    token = serializers.CharField()


class TokenObtain(APIView):
    authentication_classes = []
    permission_classes = [AllowAny]

    @extend_schema(request=CredentialsSerializer, responses=TokenSerializer)
    def post(self, request):
        credentials = CredentialsSerializer(data=request.data)
        credentials.is_valid(raise_exception=True)
        user = authenticate(request._request, **credentials.validated_data)
        if user is None:
            # Unknown user, wrong password, inactive, or locked out (then the middleware answers 429).
            raise ValidationError({"non_field_errors": [BAD_CREDENTIALS]})
        token, _ = Token.objects.get_or_create(user=user)
        return Response({"token": token.key})
