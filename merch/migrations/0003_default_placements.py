"""Create the storefront's five standard placements (idempotent; merchandisers may add more)."""

from django.db import migrations

DEFAULT_PLACEMENTS = [
    # key, name, default_strategy, size, exclude_purchased
    ("home", "Home page", "auto", 8, True),
    ("product_detail", "Product page", "auto", 8, True),
    ("cart", "Cart", "bought_together", 6, True),
    ("category", "Category page", "auto", 8, True),
    ("post_purchase", "Order confirmation", "bought_together", 6, True),
]


def create_default_placements(apps, schema_editor):
    Placement = apps.get_model("merch", "Placement")
    for key, name, default_strategy, size, exclude_purchased in DEFAULT_PLACEMENTS:
        # get_or_create: a placement a merchandiser already set up is left as they set it.
        Placement.objects.get_or_create(
            key=key,
            defaults={
                "name": name,
                "default_strategy": default_strategy,
                "size": size,
                "exclude_purchased": exclude_purchased,
            },
        )


class Migration(migrations.Migration):
    dependencies = [
        ("merch", "0002_placements_and_merchandising_rules"),
    ]

    operations = [
        # Reversing keeps the rows: rules may point at them, and 0002's reversal drops the table.
        migrations.RunPython(create_default_placements, migrations.RunPython.noop),
    ]
