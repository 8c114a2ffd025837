"""``python manage.py prepare_demo``: the whole demo — the studies of ``demo_study`` and the
engine demo of the home page, quick ones first — recording each step's progress for the
home page, which answers while this runs (scripts/demo.sh starts it in the background).
One at a time per data folder: a second run while one is going says so and leaves. Run
again after an interruption, it resumes: what is built is reused, a bundle's precompute
goes on from its last computed item."""

import os
import signal

from studies.demo import Step, engine_demo_path, prepare, preparation_lock
from viz_engine.demo import build_engine_demo

from .demo_study import Command as DemoStudyCommand


class Command(DemoStudyCommand):
    help = "Build the demo (its studies, then the engine demo) with its progress on the home page; one at a time."

    def add_arguments(self, parser):
        super().add_arguments(parser)
        parser.add_argument("--background", action="store_true",
                            help="yield the CPU to the server (nice 10) and stop on the terminal's Ctrl-C with it")

    def handle(self, *args, base_url, background=False, **options):
        if background:
            # a job started with & in a script ignores Ctrl-C: stop with the server it was started beside
            signal.signal(signal.SIGINT, signal.default_int_handler)
            os.nice(10)  # pages first: the 2-core machine answers while the bundles are computed
        with preparation_lock() as mine:
            if not mine:
                self.stdout.write("The demo is already being prepared by another process; its progress is on "
                                  f"{base_url}/")
                return
            researcher, password = self._researcher()
            # MultiViz's own samples (imported in seconds), the home page's engine demo, then the bundles
            steps = self.study_steps(researcher)
            quick = sum(s.key.startswith("multiviz-") for s in steps)
            steps.insert(quick, Step("engine-demo", "Engine demo (this page)", self._engine_demo))
            studies = prepare(steps, log=self.stdout.write)
            self.print_links(studies, researcher, password, base_url)

    @staticmethod
    def _engine_demo(report) -> list:
        path = engine_demo_path()
        if not path.exists():
            build_engine_demo(path, n_items=4, log=report)
        return []
