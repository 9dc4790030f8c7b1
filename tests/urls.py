from example_project.urls import urlpatterns  # noqa: F401
