"""``python manage.py import_study file.json --owner USERNAME``: recreate a study exported by
``export_study`` (its bundle must be imported here first), all or nothing."""

import json
from pathlib import Path

from django.contrib.auth.models import User
from django.core.management.base import BaseCommand, CommandError

from studies.services import StudyError

from ...transfer import import_study


def read_document(path: str) -> dict:
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise CommandError(f"cannot read {path}: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise CommandError(f"{path} is not UTF-8 text (a study exported with manage.py export_study)") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise CommandError(f"{path} is not JSON ({exc.msg} at line {exc.lineno}, column {exc.colno})") from None


class Command(BaseCommand):
    help = "Import a study exported with export_study; refused, with nothing written, if anything does not fit."

    def add_arguments(self, parser):
        parser.add_argument("path", help="the JSON document written by export_study")
        parser.add_argument("--owner", required=True, help="the username of the researcher who will own it here")

    def handle(self, *args, path, owner, **options):
        user = User.objects.filter(username=owner).first()
        if user is None:
            raise CommandError(f"there is no user {owner!r} here; create the account first (manage.py createsuperuser)")
        document = read_document(path)
        notes: list[str] = []
        try:
            study = import_study(document, user, notes=notes)
        except StudyError as exc:
            raise CommandError(f"import refused, nothing written: {exc}") from None
        for note in notes:
            self.stdout.write(f"note: {note}")
        self.stdout.write(self.style.SUCCESS(
            f"imported study {study.pk} {study.title!r}: {study.conditions.count()} conditions, "
            f"{study.items.count()} items, {study.enrolments.count()} enrolments, owned by {user.username}"))
