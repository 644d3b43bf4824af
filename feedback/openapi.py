"""How the OpenAPI schema describes project tokens (`Authorization: Bearer ll_…`), beside the users'
`Token …` scheme that drf-spectacular describes itself. Loaded by FeedbackConfig.ready()."""
from drf_spectacular.extensions import OpenApiAuthenticationExtension


class ProjectTokenScheme(OpenApiAuthenticationExtension):
    target_class = "feedback.tokens.ProjectTokenAuthentication"
    name = "projectToken"

    def get_security_definition(self, auto_schema):
        return {
            "type": "http",
            "scheme": "bearer",
            "bearerFormat": "ll_…",
            "description": "A project token for product backends: `Authorization: Bearer ll_…`, created by a "
                           "project admin with the scopes it may use (predict, feedback).",
        }
