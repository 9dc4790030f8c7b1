"""The login endpoints, at the paths the clients build from the site's URL.

Include them at the root of the URL configuration (the clients call ``{app url}/.auth/…`` and,
for v1, ``{app url}/login/…``)::

    path("", include("django_offline_sync.auth.urls")),
"""

from django.urls import path, re_path

from . import views

app_name = "offline_sync_auth"

_PROVIDER = r"(?P<provider>[A-Za-z0-9][A-Za-z0-9_-]{0,49})"

urlpatterns = [
    path(".auth/login", views.TokenLoginView.as_view(), name="token"),
    path(".auth/login/done", views.LoginDoneView.as_view(), name="done"),
    path(".auth/login/custom", views.CustomLoginView.as_view(), name="custom"),
    re_path(rf"^\.auth/login/{_PROVIDER}/callback$", views.ProviderCallbackView.as_view(), name="callback"),
    re_path(rf"^\.auth/login/{_PROVIDER}$", views.ProviderLoginView.as_view(), name="provider"),
    path(".auth/me", views.MeView.as_view(), name="me"),
    path(".auth/refresh", views.RefreshView.as_view(), name="refresh"),
    path(".auth/logout", views.LogoutView.as_view(), name="logout"),
    # Azure Mobile Services (v1) clients.
    path("login/done", views.LoginDoneView.as_view(), name="v1_done"),
    path("login/custom", views.CustomLoginView.as_view(), name="v1_custom"),
    re_path(rf"^login/{_PROVIDER}$", views.ProviderLoginView.as_view(), name="v1_provider"),
]
