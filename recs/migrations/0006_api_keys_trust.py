from django.db import migrations, models


def keys_become_publishable(apps, schema_editor):
    """Keys made before the trust model were rendered into pages with read and write: they
    become publishable (write-only, own shopper only). A key without write is revoked."""
    ApiKey = apps.get_model("recs", "ApiKey")
    for key in ApiKey.objects.all():
        key.kind = "publishable"
        if "write" in key.scopes:
            key.scopes = ["write"]
        else:
            key.scopes, key.is_active = [], False
        key.save(update_fields=["kind", "scopes", "is_active"])


class Migration(migrations.Migration):
    dependencies = [
        ("recs", "0005_experiment_logs"),
    ]

    operations = [
        migrations.RenameModel("StorefrontKey", "ApiKey"),
        migrations.AddField(
            model_name="apikey",
            name="kind",
            field=models.CharField(
                choices=[
                    ("publishable", "publishable (in pages; events of the page's own shopper)"),
                    ("secret", "secret (server to server; never in a page)"),
                ],
                default="publishable",
                help_text="Publishable keys go into pages and can only send the page's own "
                "shopper's events; secret keys stay on servers.",
                max_length=12,
            ),
        ),
        migrations.RunPython(keys_become_publishable, migrations.RunPython.noop),
    ]
