"""``python manage.py engine_demo``: compute the MultiViz stages of the built-in shapes-VQA
model on a few test questions and store them for the demo page (skipped when present)."""

from django.core.management.base import BaseCommand

from studies.demo import engine_demo_path
from viz_engine.demo import build_engine_demo


class Command(BaseCommand):
    help = "Compute the engine demo (U, C, Rℓ, Rg, P on shapes-VQA) for the demo page."

    def add_arguments(self, parser):
        parser.add_argument("--items", type=int, default=4, help="questions to explain")
        parser.add_argument("--force", action="store_true", help="recompute even if present")

    def handle(self, *args, items, force, **options):
        path = engine_demo_path()
        if path.exists() and not force:
            self.stdout.write(f"engine demo already at {path} (use --force to recompute)")
            return
        build_engine_demo(path, n_items=items, log=self.stdout.write)
        self.stdout.write(self.style.SUCCESS(f"engine demo written to {path}"))
