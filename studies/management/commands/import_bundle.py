"""``python manage.py import_bundle PATH --owner USERNAME``: validate a finished bundle and
record it, owned by that researcher."""

from django.contrib.auth.models import User
from django.core.management.base import BaseCommand, CommandError

from viz_engine.bundles.format import BundleError

from ...services import import_bundle

OWNER_HELP = ("the username of the researcher who will own the bundle (default: no owner, so only "
              "superusers see it until it is given or shared in the admin)")


def bundle_owner(username: str | None):
    """The user named ``username`` (None for None); a clear error before anything is computed."""
    if username is None:
        return None
    user = User.objects.filter(username=username).first()
    if user is None:
        raise CommandError(f"--owner: there is no user {username!r} here; create the account first")
    return user


class Command(BaseCommand):
    help = "Import a precomputed bundle (refused, with nothing written, if partial or tampered)."

    def add_arguments(self, parser):
        parser.add_argument("path")
        parser.add_argument("--name", help="default: the folder's name")
        parser.add_argument("--owner", help=OWNER_HELP)

    def handle(self, *args, path, name, owner, **options):
        user = bundle_owner(owner)
        try:
            bundle = import_bundle(path, name=name, owner=user)
        except BundleError as exc:
            raise CommandError(f"import refused: {exc}") from None
        whose = f", owned by {user.username}" if user else ", with no owner (superusers only)"
        self.stdout.write(self.style.SUCCESS(f"imported {bundle}{whose}"))
