"""``python manage.py export_study <study id> [-o file.json]``: the whole study as one JSON
document (to move it to another installation with ``import_study``)."""

from django.core.management.base import BaseCommand, CommandError

from studies.management.output import write_document
from studies.models import Study
from studies.services import StudyError

from ...transfer import export_study_json


class Command(BaseCommand):
    help = ("Write a whole study (conditions, items, enrolments, responses, timestamps) as one JSON document; "
            "it holds every annotator's link, so keep it private.")

    def add_arguments(self, parser):
        parser.add_argument("study_id", type=int)
        parser.add_argument("-o", "--output", help="the file to write (default: standard output)")

    def handle(self, *args, study_id, output, **options):
        study = Study.objects.select_related("bundle", "owner").filter(pk=study_id).first()
        if study is None:
            raise CommandError(f"there is no study {study_id} here")
        try:
            text = export_study_json(study) + "\n"
        except StudyError as exc:
            raise CommandError(f"export refused: {exc}") from None
        write_document(self, text, output, f"exported study {study.pk} {study.title!r} to {output}")
