"""Sign-in the way the Azure Mobile Apps, Mobile Services and Datasync clients do it.

Add ``"django_offline_sync.auth"`` to ``INSTALLED_APPS``, put
``django_offline_sync.auth.authentication.ZumoTokenAuthentication`` first in
``REST_FRAMEWORK["DEFAULT_AUTHENTICATION_CLASSES"]`` and include
``django_offline_sync.auth.urls`` at the site root; configure providers in
``OFFLINE_SYNC["AUTH"]`` (``docs/auth.rst``).

Public modules: ``authentication`` (``ZumoTokenAuthentication``), ``tokens`` (``issue_token``,
``decode_token``), ``models`` (``ProviderIdentity``, ``RevokedToken``), ``urls``.
"""
