"""API-key authentication, shopper identity, and the permissions built on them.

Who may do what (README, "Security"):
- a secret key with the scope, or a staff login: anything in that scope, for any shopper;
- a publishable key: events only, and only for the shopper its signed shopper token names;
- a shopper token, or the shopper's own Django session and signed session cookie: that
  shopper's own recommendations;
- anyone else: recommendations that use only the page's context, never a shopper's history.
"""

from dataclasses import dataclass

from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework import authentication, exceptions, permissions

from recs.api_keys import ApiKey, authenticate_key
from recs.shopper_session import session_id_from_cookie
from recs.shopper_tokens import HEADER, InvalidShopperToken, read_shopper_token


class ApiKeyAuthentication(authentication.BaseAuthentication):
    """`Authorization: Bearer <key>` or `X-Aisle-Key: <key>`; request.auth is the ApiKey."""

    held_in_process = False

    def authenticate(self, request):
        header = request.headers.get("Authorization", "")
        plaintext = request.headers.get("X-Aisle-Key", "")
        if header.lower().startswith("bearer "):
            plaintext = header[7:].strip()
        if not plaintext:
            return None
        key = authenticate_key(plaintext, held_in_process=self.held_in_process)
        if key is None:
            raise exceptions.AuthenticationFailed("Unknown or revoked API key.")
        return (key, key)

    def authenticate_header(self, request):
        return 'Bearer realm="aisle"'


class HeldKeyAuthentication(ApiKeyAuthentication):
    """For the read API only: a key this process holds costs no Redis read here; the view
    confirms it against the keys' version its one round trip read (`confirm_held_key`)."""

    held_in_process = True


def is_staff(request) -> bool:
    user = getattr(request, "user", None)
    return bool(user and user.is_authenticated and getattr(user, "is_staff", False))


def secret_key(request) -> ApiKey | None:
    auth = getattr(request, "auth", None)
    return auth if isinstance(auth, ApiKey) and auth.is_secret else None


def acts_for_anyone(request) -> bool:
    """Whether the caller may name any shopper: a secret key, or a staff login without a key."""
    return secret_key(request) is not None or (
        not isinstance(request.auth, ApiKey) and is_staff(request)
    )


def requires_secret_scope(
    scope: str, *, staff_permission: str = ""
) -> type[permissions.BasePermission]:
    """A permission: a secret key with `scope`, or a staff login (holding `staff_permission`
    when one is named, as the admin screen for the same action asks)."""

    class HasSecretScope(permissions.BasePermission):
        message = f"This needs a secret API key with the {scope!r} scope, or a staff login."

        def has_permission(self, request, view):
            key = secret_key(request)
            if key is not None:
                return key.has_scope(scope)
            if isinstance(request.auth, ApiKey) or not is_staff(request):
                return False
            return not staff_permission or request.user.has_perm(staff_permission)

    HasSecretScope.__name__ = f"HasSecret{scope.title()}Scope"
    return HasSecretScope


class CanSendEvents(permissions.BasePermission):
    """A key with the write scope (publishable keys then need a shopper token), or staff."""

    message = "This needs an API key with the 'write' scope, or a staff login."

    def has_permission(self, request, view):
        if isinstance(request.auth, ApiKey):
            return request.auth.has_scope("write")
        return is_staff(request)


class ReadableByAnyone(permissions.BasePermission):
    """Anyone may read (throttled per address); a key presented for it must be allowed to."""

    message = (
        "A publishable key cannot read: it is public. Read with a shopper token, the "
        "shopper's own session, or a secret key with the 'read' scope."
    )

    def has_permission(self, request, view):
        if not isinstance(request.auth, ApiKey):
            return True
        if request.auth.is_secret:  # DRF makes a permission object per request
            self.message = "This secret key lacks the 'read' scope."
        return request.auth.has_scope("read")


@dataclass(frozen=True)
class Shopper:
    """Whom a request may personalise for: empty ids for nobody."""

    user_id: str = ""
    session_id: str = ""


def shopper_token_claims(request):
    """The claims of the request's shopper token, None without one; 401 for a bad one."""
    token = request.headers.get(HEADER, "")
    if not token:
        return None
    try:
        return read_shopper_token(token)
    except InvalidShopperToken as error:
        raise exceptions.AuthenticationFailed(str(error)) from error


def resolve_shopper(request, *, user_id: str = "", session_id: str = "") -> Shopper:
    """The shopper this request may act for, given the ids it names.

    Trusted callers get the ids they name. A shopper token or the shopper's own session gives
    its own ids; naming other ids then is a 403. Anyone else gets nobody: the ids are ignored,
    so an answer never tells a known id from an unknown one.
    """
    if acts_for_anyone(request):
        return Shopper(user_id, session_id)
    claims = shopper_token_claims(request)
    if claims is not None:
        _check_named(user_id, claims.user_id, "user_id")
        _check_named(session_id, claims.session_id, "session_id")
        return Shopper(claims.user_id, claims.session_id)
    own_session = session_id_from_cookie(request)
    user = getattr(request, "user", None)
    own_user = user.get_username() if user is not None and user.is_authenticated else ""
    if own_session or own_user:
        _check_named(user_id, own_user, "user_id")
        _check_named(session_id, own_session, "session_id")
        return Shopper(own_user, own_session)
    return Shopper()


def _check_named(named: str, proved: str, field: str) -> None:
    if named and named != proved:
        raise exceptions.PermissionDenied(
            f"{field} is not the caller's own; a shopper token or session only speaks for its "
            "own shopper."
        )


class ApiKeyScheme(OpenApiAuthenticationExtension):
    """Describes the key to the generated OpenAPI schema."""

    target_class = ApiKeyAuthentication
    name = "apiKey"

    def get_security_definition(self, auto_schema):
        return {
            "type": "http",
            "scheme": "bearer",
            "description": "An API key from the admin: secret (sk_...) on servers, publishable "
            "(pk_...) in pages.",
        }
