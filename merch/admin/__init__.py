"""The merchandiser's admin, one module per domain (catalog, merchandising, experiments).

Django's admin autodiscovery imports merch.admin only: importing the modules here is what
registers their ModelAdmins. Nothing is re-exported; import from the domain module.
"""

from merch.admin import catalog, experiments, merchandising  # noqa: F401
