"""The provider's claims: e-mail and names, and a client whose id_tokens expire at once."""

import datetime as dt

from django.utils import timezone
from oauth2_provider.oauth2_validators import OAuth2Validator

SHORT_LIVED_CLIENT = "short-lived"


class Validator(OAuth2Validator):
    def get_additional_claims(self, request):
        user = request.user
        return {
            "email": user.email,
            "preferred_username": user.username,
            "given_name": user.first_name,
            "family_name": user.last_name,
        }

    def get_id_token_dictionary(self, token, token_handler, request):
        claims, expiration = super().get_id_token_dictionary(token, token_handler, request)
        if request.client.name == SHORT_LIVED_CLIENT:
            expiration = timezone.now() + dt.timedelta(seconds=1)
            claims["exp"] = int(expiration.timestamp())
        return claims, expiration
