"""Storefront-key authentication and the permissions built on it."""

from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework import authentication, exceptions, permissions

from recs.keys import StorefrontKey, authenticate_key


class StorefrontKeyAuthentication(authentication.BaseAuthentication):
    """`Authorization: Bearer <key>` or `X-Aisle-Key: <key>`; request.auth is the StorefrontKey."""

    def authenticate(self, request):
        header = request.headers.get("Authorization", "")
        plaintext = request.headers.get("X-Aisle-Key", "")
        if header.lower().startswith("bearer "):
            plaintext = header[7:].strip()
        if not plaintext:
            return None
        key = authenticate_key(plaintext)
        if key is None:
            raise exceptions.AuthenticationFailed("Unknown or revoked storefront key.")
        return (key, key)

    def authenticate_header(self, request):
        return 'Bearer realm="aisle"'


def _scoped(scope: str) -> type[permissions.BasePermission]:
    class HasScopeOrIsStaff(permissions.BasePermission):
        message = f"This needs a storefront key with the {scope!r} scope, or a staff login."

        def has_permission(self, request, view):
            if isinstance(request.auth, StorefrontKey):
                return request.auth.has_scope(scope)
            user = request.user
            return bool(user and user.is_authenticated and user.is_staff)

    HasScopeOrIsStaff.__name__ = f"Has{scope.title()}ScopeOrIsStaff"
    return HasScopeOrIsStaff


HasWriteScopeOrIsStaff = _scoped("write")
HasReadScopeOrIsStaff = _scoped("read")


class StorefrontKeyScheme(OpenApiAuthenticationExtension):
    """Describes the key to the generated OpenAPI schema."""

    target_class = StorefrontKeyAuthentication
    name = "storefrontKey"

    def get_security_definition(self, auto_schema):
        return {
            "type": "http",
            "scheme": "bearer",
            "description": "A storefront key from the admin.",
        }
