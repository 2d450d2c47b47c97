"""Invite rows stop storing the v1 token (the mesh root key is inside it): they keep its digest, to find the row,
and the slug and broker URL it was minted with, to rebuild it from the mesh's encrypted keys."""

import hashlib

from django.db import migrations, models

from protocol import invites as invites_v1


def keep_what_rebuilds_the_token(apps, schema_editor):
    Invite = apps.get_model("meshes", "Invite")
    for invite in Invite.objects.all().iterator():
        payload = invites_v1.v1_decode(invite.token)
        invite.token_digest = hashlib.sha256(invite.token.encode("utf-8", "surrogatepass")).hexdigest()
        invite.token_mesh_slug = payload["mesh_slug"]
        invite.token_broker_url = payload["broker_url"]
        invite.save(update_fields=["token_digest", "token_mesh_slug", "token_broker_url"])


class Migration(migrations.Migration):
    dependencies = [("meshes", "0001_initial")]

    operations = [
        migrations.AddField("invite", "token_digest", models.CharField(max_length=64, null=True, editable=False)),
        migrations.AddField("invite", "token_mesh_slug", models.CharField(max_length=200, default="", editable=False)),
        migrations.AddField("invite", "token_broker_url", models.TextField(default="", editable=False)),
        migrations.RunPython(keep_what_rebuilds_the_token, migrations.RunPython.noop),
        migrations.RemoveField("invite", "token"),
        migrations.RemoveField("invite", "token_bytes"),
        migrations.AlterField("invite", "token_digest", models.CharField(max_length=64, unique=True, editable=False)),
        migrations.AlterField("invite", "token_mesh_slug", models.CharField(max_length=200, editable=False)),
        migrations.AlterField("invite", "token_broker_url", models.TextField(editable=False)),
    ]
