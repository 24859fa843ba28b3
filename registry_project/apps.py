"""The admin app with the registry's console site (dashboard, titles) as its default site."""

from django.contrib.admin.apps import AdminConfig


class ConsoleAdminConfig(AdminConfig):
    default_site = "registry.console.site.ConsoleSite"
