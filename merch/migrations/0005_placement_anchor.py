"""Placements say what their page is about (`anchor`), instead of the engine knowing the keys of
the standard placements: a placement a merchandiser adds gets the same per-page handling."""

from django.db import migrations, models

STANDARD_ANCHORS = {
    "product_detail": "product",
    "cart": "cart",
    "post_purchase": "cart",
    "category": "category",
}


def anchor_standard_placements(apps, schema_editor):
    Placement = apps.get_model("merch", "Placement")
    for key, anchor in STANDARD_ANCHORS.items():
        Placement.objects.filter(key=key).update(anchor=anchor)


class Migration(migrations.Migration):
    dependencies = [
        ("merch", "0004_experiments"),
    ]

    operations = [
        migrations.AddField(
            model_name="placement",
            name="anchor",
            field=models.CharField(
                choices=[
                    ("product", "The product shown (similar items lead)"),
                    ("cart", "The cart (bought-together items lead; cart items are not offered)"),
                    ("category", "The category shown (its best sellers lead)"),
                    ("none", "Nothing: the shopper's own interests"),
                ],
                default="none",
                help_text="What the page is about: under the Auto strategy its lists lead the blend.",
                max_length=20,
            ),
        ),
        migrations.RunPython(anchor_standard_placements, migrations.RunPython.noop),
    ]
