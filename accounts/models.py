from django.contrib.auth.models import AbstractUser
from django.db import models


class User(AbstractUser):
    """A person who signs in to the dashboard. E-mail is the login; allauth fills `username` itself."""

    email = models.EmailField("e-mail address", unique=True)

    def __str__(self) -> str:
        return self.email or self.username
