# The table as it was before it was synced: a plain model with an integer id.

from django.db import migrations, models


class Migration(migrations.Migration):

    initial = True

    dependencies = []

    operations = [
        migrations.CreateModel(
            name="Asset",
            fields=[
                ("id", models.BigAutoField(primary_key=True, serialize=False)),
                ("name", models.CharField(max_length=100)),
                ("serial", models.CharField(blank=True, default="", max_length=50)),
            ],
        ),
    ]
