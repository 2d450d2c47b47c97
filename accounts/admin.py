from django.contrib import admin
from django.contrib.auth.admin import UserAdmin

from accounts.models import User


@admin.register(User)
class ClaudemeshUserAdmin(UserAdmin):
    list_display = ("email", "username", "is_active", "is_staff", "date_joined", "last_login")
    search_fields = ("email", "username", "first_name", "last_name")
    ordering = ("-date_joined",)
