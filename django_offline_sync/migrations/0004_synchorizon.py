from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('offline_sync', '0003_sync_import'),
    ]

    operations = [
        migrations.CreateModel(
            name='SyncHorizon',
            fields=[
                ('table', models.CharField(max_length=255, primary_key=True, serialize=False, verbose_name='table')),
                ('horizon', models.DateTimeField(verbose_name='horizon')),
                ('purged', models.BigIntegerField(default=0, verbose_name='tombstones purged')),
                ('purged_at', models.DateTimeField(blank=True, null=True, verbose_name='last purge')),
            ],
            options={
                'verbose_name': 'sync horizon',
                'verbose_name_plural': 'sync horizons',
                'db_table': 'offline_sync_horizon',
            },
        ),
    ]
