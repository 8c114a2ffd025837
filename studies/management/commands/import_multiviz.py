"""``python manage.py import_multiviz DIR [DIR ...] --name NAME``: MultiViz's own precomputed
visualizations (its website's results folders) as one bundle of one dataset."""

from django.core.management.base import BaseCommand, CommandError

from viz_engine.bundles.format import BundleError
from viz_engine.importers.multiviz import TASKS

from ...services import import_multiviz
from .import_bundle import OWNER_HELP, bundle_owner


class Command(BaseCommand):
    help = ("Import folders of MultiViz's own results (<id>.json with its images and videos) as one bundle; "
            "refused, with nothing recorded, if a file is malformed or an asset missing.")

    def add_arguments(self, parser):
        parser.add_argument("folders", nargs="+", metavar="DIR", help="MultiViz results folders, one dataset")
        parser.add_argument("--name", required=True, help="the bundle's name (as /api/bundles/ lists it)")
        parser.add_argument("--class-names", default="",
                            help="more classes, comma-separated, beside those the files name (a simulation "
                                 "item's choices are drawn from all of them: 4 by default, the prediction among them)")
        parser.add_argument("--allow-missing", action="store_true",
                            help="leave out the views whose asset is missing (the bundle records which)")
        parser.add_argument("--task", default="simulation", choices=TASKS)
        parser.add_argument("--model", help="the model's name (default: MultiViz's model of that dataset)")
        parser.add_argument("--out", help="bundle folder (default: MULTIVIZ_DATA_DIR/bundles/multiviz-NAME)")
        parser.add_argument("--owner", help=OWNER_HELP)

    def handle(self, *args, folders, name, class_names, allow_missing, task, model, out, owner, **options):
        user = bundle_owner(owner)
        extra = [c.strip() for c in class_names.split(",") if c.strip()]
        try:
            bundle = import_multiviz(folders, name, user, class_names=extra, allow_missing=allow_missing, task=task,
                                     model=model, out=out)
        except BundleError as exc:
            raise CommandError(f"import refused: {exc}") from None
        except OSError as exc:
            raise CommandError(f"import refused: {exc}") from None
        missing = bundle.manifest.get("multiviz", {}).get("missing_assets", [])
        whose = f", owned by {user.username}" if user else ", with no owner (superusers only)"
        self.stdout.write(self.style.SUCCESS(f"imported {bundle}{whose}"))
        self.stdout.write(f"  task {bundle.task}; stages {' '.join(bundle.stages)}; "
                          f"{len(bundle.class_names)} classes: {', '.join(bundle.class_names[:12])}"
                          f"{' …' if len(bundle.class_names) > 12 else ''}")
        if missing:
            self.stdout.write(self.style.WARNING(f"  left out for {len(missing)} missing asset(s):"))
            for m in missing:
                self.stdout.write(f"    {m['file']}: {m['field']} → {m['asset']} ({m['left_out']})")
