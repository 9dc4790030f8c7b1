"""Start the test OpenID Connect provider: ``python -m tests.auth.provider.serve <config.json>``.

The config names the users and the OAuth applications to create (``{"users": [{"username",
"password", "email", ...}], "clients": [{"client_id", "client_secret", "name", "redirect_uris"}]}``)
and the RSA private key file. The server binds a free loopback port, migrates its own SQLite
database, creates the users and applications, prints ``{"issuer": …}`` on one line and serves
until it is terminated.
"""

import json
import os
import sys
from pathlib import Path


def main() -> None:
    config = json.loads(Path(sys.argv[1]).read_text())
    from django.core.servers.basehttp import ThreadedWSGIServer, WSGIRequestHandler

    class QuietHandler(WSGIRequestHandler):
        def log_message(self, format, *args):  # keep the test output clean
            pass

    server = ThreadedWSGIServer(("127.0.0.1", 0), QuietHandler, allow_reuse_address=False)
    issuer = f"http://127.0.0.1:{server.server_port}/o"
    os.environ["OIDC_PROVIDER_ISSUER"] = issuer
    os.environ["OIDC_PROVIDER_DB"] = config["database"]
    os.environ["OIDC_PROVIDER_KEY"] = Path(config["key_file"]).read_text()
    os.environ["DJANGO_SETTINGS_MODULE"] = "tests.auth.provider.settings"

    import django

    django.setup()
    from django.contrib.auth.models import User
    from django.core.management import call_command
    from django.core.wsgi import get_wsgi_application
    from oauth2_provider.models import Application

    call_command("migrate", verbosity=0, interactive=False)
    for user in config["users"]:
        User.objects.create_user(**user)
    for client in config["clients"]:
        Application.objects.create(
            name=client["name"],
            client_id=client["client_id"],
            client_secret=client["client_secret"],
            hash_client_secret=True,
            client_type=Application.CLIENT_CONFIDENTIAL,
            authorization_grant_type=Application.GRANT_AUTHORIZATION_CODE,
            redirect_uris=" ".join(client["redirect_uris"]),
            algorithm=Application.RS256_ALGORITHM,
            skip_authorization=True,
        )
    server.set_app(get_wsgi_application())
    print(json.dumps({"issuer": issuer}), flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
