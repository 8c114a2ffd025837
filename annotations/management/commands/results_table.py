"""``python manage.py results_table STUDY_ID... [--format latex|csv] [-o FILE]``: the paper's
Table 2 across several studies of one task (a column group per study's dataset, a row per
condition)."""

from django.core.management.base import BaseCommand, CommandError

from studies.management.output import write_document
from studies.models import Study
from studies.services import StudyError

from ...exports import results_table, results_table_csv, results_table_latex, table_studies


class Command(BaseCommand):
    help = ("Write the paper's Table 2 over several studies of one task: datasets as column groups, conditions as "
            "rows, accuracy (mean ± std) and Krippendorff's α per cell.")

    def add_arguments(self, parser):
        parser.add_argument("study_ids", nargs="+", metavar="STUDY_ID")
        parser.add_argument("--format", choices=("latex", "csv"), default="latex")
        parser.add_argument("-o", "--output", help="the file to write (default: standard output)")

    def handle(self, *args, study_ids, format, output, **options):
        try:
            studies = table_studies(Study.objects.select_related("bundle"), study_ids)
        except StudyError as exc:
            raise CommandError(str(exc)) from None
        table = results_table(studies)
        text = results_table_latex(table) if format == "latex" else results_table_csv(table)
        write_document(self, text, output, f"wrote the table of {len(studies)} studies to {output}")
