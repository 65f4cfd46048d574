from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("dashboard", "0003_coverage_history"),
    ]

    operations = [
        migrations.AddField(
            model_name="cluster",
            name="allow_logs",
            field=models.BooleanField(
                default=False,
                help_text="Let signed-in users see the last lines of a crashed container's "
                "previous log in the cell detail (read when the cell is opened, never by the "
                "collector). Needs the optional RBAC rule: get pods/log.",
                verbose_name="show crash-loop logs",
            ),
        ),
    ]
