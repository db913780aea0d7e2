"""Fewer indexes on the event log: each costs every insert a random b-tree write, and the write
path inserts thousands of rows a second. user_id stays reachable through (user_id, occurred_at);
no query looks events up by product or order.

The single-column indexes are dropped by name as the database reports them (on PostgreSQL with
their varchar_pattern_ops twins), not by altering the fields: on SQLite an AlterField copies the
whole table, which on a large log takes minutes.
"""

from django.db import migrations, models

UNINDEXED = ("user_id", "product_sku", "order_id")
# PostgreSQL's varchar_pattern_ops twins serve LIKE 'prefix%', which no query of the log uses.
UNLIKED = ("event_id", "session_id")


def drop_single_column_indexes(apps, schema_editor):
    event = apps.get_model("recs", "Event")
    table = event._meta.db_table
    with schema_editor.connection.cursor() as cursor:
        constraints = schema_editor.connection.introspection.get_constraints(cursor, table)
    for name, info in constraints.items():
        if not info["index"] or info["unique"] or info["primary_key"]:
            continue
        columns = list(info["columns"])
        unliked = name.endswith("_like") and columns in ([column] for column in UNLIKED)
        if columns in ([column] for column in UNINDEXED) or unliked:
            schema_editor.execute(f"DROP INDEX {schema_editor.quote_name(name)}")


def recreate_single_column_indexes(apps, schema_editor):
    event = apps.get_model("recs", "Event")
    for column in UNINDEXED:
        schema_editor.add_index(
            event, models.Index(fields=[column], name=f"recs_event_{column}_idx")
        )
    if schema_editor.connection.vendor == "postgresql":
        for column in UNLIKED:
            pattern_ops = models.Index(
                fields=[column], name=f"recs_event_{column}_like", opclasses=["varchar_pattern_ops"]
            )
            schema_editor.add_index(event, pattern_ops)


class Migration(migrations.Migration):
    dependencies = [
        ("recs", "0008_erased_sessions"),
    ]

    operations = [
        migrations.RemoveIndex(model_name="event", name="recs_event_product_a7478e_idx"),
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AlterField(
                    model_name="event",
                    name=name,
                    field=models.CharField(blank=True, max_length=length),
                )
                for name, length in (("order_id", 64), ("product_sku", 32), ("user_id", 64))
            ],
            database_operations=[
                migrations.RunPython(drop_single_column_indexes, recreate_single_column_indexes)
            ],
        ),
    ]
