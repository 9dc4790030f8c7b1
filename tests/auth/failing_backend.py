"""An authentication backend that breaks, for the error-report test (it hides its own
``password``, as a backend should; the test checks the sign-in view's frames)."""

from django.views.decorators.debug import sensitive_variables


class BrokenBackend:
    @sensitive_variables("password")
    def authenticate(self, request, username=None, password=None, **kwargs):
        raise RuntimeError("the directory is down")

    def get_user(self, user_id):
        return None
