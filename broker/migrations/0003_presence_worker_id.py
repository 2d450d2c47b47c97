from django.db import migrations, models


class Migration(migrations.Migration):
    """One word for a broker process: a worker (the column was `node_id`)."""

    dependencies = [("broker", "0002_lean_hot_tables")]

    operations = [
        migrations.RemoveIndex(model_name="presence", name="presence_node_live_idx"),
        migrations.RenameField(model_name="presence", old_name="node_id", new_name="worker_id"),
        migrations.AddIndex(
            model_name="presence",
            index=models.Index(fields=["worker_id", "disconnected_at"], name="presence_worker_live_idx"),
        ),
    ]
