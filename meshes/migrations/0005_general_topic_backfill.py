"""Every mesh gets `general`, and every member still in it is subscribed (owners as lead), as platform.md's
0024_general_topic_backfill does. Idempotent."""

from django.db import migrations


def backfill(apps, schema_editor):
    Mesh = apps.get_model("meshes", "Mesh")
    Member = apps.get_model("meshes", "Member")
    Topic = apps.get_model("meshes", "Topic")
    TopicMember = apps.get_model("meshes", "TopicMember")
    for mesh in Mesh.objects.filter(archived_at=None).iterator():
        topic, _ = Topic.objects.get_or_create(mesh=mesh, name="general")
        held = set(TopicMember.objects.filter(topic=topic).values_list("member_id", flat=True))
        TopicMember.objects.bulk_create(
            TopicMember(topic=topic, member=member, role="lead" if member.role == "owner" else "member")
            for member in Member.objects.filter(mesh=mesh, revoked_at=None).exclude(pk__in=held)
        )


class Migration(migrations.Migration):
    dependencies = [("meshes", "0004_topics")]
    operations = [migrations.RunPython(backfill, migrations.RunPython.noop)]
