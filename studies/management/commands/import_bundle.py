"""``python manage.py import_bundle PATH``: validate a finished bundle and record it."""

from django.core.management.base import BaseCommand, CommandError

from viz_engine.bundles.format import BundleError

from ...services import import_bundle


class Command(BaseCommand):
    help = "Import a precomputed bundle (refused, with nothing written, if partial or tampered)."

    def add_arguments(self, parser):
        parser.add_argument("path")
        parser.add_argument("--name", help="default: the folder's name")

    def handle(self, *args, path, name, **options):
        try:
            bundle = import_bundle(path, name=name)
        except BundleError as exc:
            raise CommandError(f"import refused: {exc}") from None
        self.stdout.write(self.style.SUCCESS(f"imported {bundle}"))
