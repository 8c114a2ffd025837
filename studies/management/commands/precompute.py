"""``python manage.py precompute``: compute exactly the bundle a study needs.

Checks everything first (names, stages, the output folder, the model), then computes only
what is missing, item by item, on Celery workers when a broker is configured and in this
process otherwise, with a progress bar; interrupted, it resumes where it stopped.
"""

import json
import time
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from viz_engine.bundles.format import MULTIVIZ_STAGES, STAGES, BundleError, sha256_file
from viz_engine.bundles.precompute import (
    chunks,
    compute_chunk,
    default_bundle_dir,
    finalize,
    load_context,
    missing_items,
    plan_bundle,
    progress,
)
from viz_engine.bundles.recipes import RECIPES, parse_method_overrides, parse_param_overrides
from viz_engine.bundles.selection import TASKS

from ...models import Bundle
from ...services import import_bundle
from ...tasks import precompute_chunk
from ...workers import in_process
from .import_bundle import OWNER_HELP, bundle_owner


def methods_line(recipe: dict) -> str:
    """``recipe paper-vqa: U image lime, text lime · C dime + second_order_gradient · …``."""
    parts = []
    for stage, m in (recipe.get("methods") or {}).items():
        if isinstance(m, dict):
            m = ", ".join(f"{k} {v}" for k, v in m.items())
        elif isinstance(m, list):
            m = " + ".join(m)
        parts.append(f"{stage} {m}")
    return f"recipe {recipe.get('name', 'default')}: " + " · ".join(parts)


class Command(BaseCommand):
    help = "Precompute a bundle of MultiViz stages (U, C, Rl, Rg, P) for a study; resumable."

    def add_arguments(self, parser):
        parser.add_argument("--dataset", default="shapes_vqa", help="built-in name (shapes_vqa, shapes_vqa_grounded, fusion) or package.module:callable "
                                                           "returning a dataset source (docs/datasets.md)")
        parser.add_argument("--model", default="shapes_vqa_early", help="built-in name or package.module:callable")
        parser.add_argument("--task", default="simulation", choices=TASKS)
        parser.add_argument("--items", type=int, default=20, help="datapoints (features for a concept study)")
        parser.add_argument("--seed", type=int, default=0)
        parser.add_argument("--stages", nargs="+", default=list(MULTIVIZ_STAGES),
                            help=f"any of {' '.join(STAGES)} (T: transformer views; default: the five MultiViz stages)")
        parser.add_argument("--params", type=json.loads, default=None,
                            help='stage parameters as JSON, over the defaults, e.g. \'{"U": {"text": '
                                 '"integrated_gradients"}}\' (any registered attribution method)')
        parser.add_argument("--recipe", default="default", choices=list(RECIPES),
                            help="each stage's methods: default, paper-vqa (LIME, DIME + per-word second-order "
                                 "gradients, LIME toward features, top-5 P) or paper-fusion (first-order gradients, "
                                 "second-order gradients of the 10 words with the largest gradient)")
        parser.add_argument("--method", action="append", default=[], metavar="STAGE=METHOD",
                            help="override a stage's method, e.g. U=gradient, U.text=lime, C=dime+emap, Rl=lime "
                                 "(repeatable)")
        parser.add_argument("--param", action="append", default=[], metavar="STAGE.KEY=VALUE",
                            help="override a stage's parameter, e.g. U.n_samples=200, C.reference=30, Rl.features=5, "
                                 "P.points=1000 (repeatable)")
        parser.add_argument("--split", default="test", help="the split the items come from")
        parser.add_argument("--p-split", help="the split P is fitted on, disjoint from the items' (default: train)")
        parser.add_argument("--keep-yes-no", action="store_true", help="do not leave out yes/no questions")
        parser.add_argument("--out", help="bundle folder (default: under MULTIVIZ_DATA_DIR/bundles)")
        parser.add_argument("--chunk", type=int, default=5, help="items per Celery task")
        parser.add_argument("--stall-timeout", type=float, default=600,
                            help="give up (resumably) after this many seconds without progress")
        parser.add_argument("--import", dest="do_import", action="store_true", help="import the finished bundle")
        parser.add_argument("--name", help="name of the imported bundle (default: the folder's name)")
        parser.add_argument("--owner", help="with --import: " + OWNER_HELP)

    def handle(self, *args, **o):
        if o["owner"] and not o["do_import"]:
            raise CommandError("--owner names who owns the imported bundle: add --import")
        owner = bundle_owner(o["owner"])  # a typo is told before hours of computing
        out = o["out"] or default_bundle_dir(settings.DATA_DIR, o["dataset"], o["model"], o["task"], o["items"], o["seed"])
        if not o["out"] and o["recipe"] != "default":  # beside the default recipe's bundle, not over it
            out = out.with_name(f"{out.name}-{o['recipe']}")
        try:
            # --params (JSON), then each --param and --method over it
            overrides = {stage: dict(values) for stage, values in (o["params"] or {}).items()}
            for stage, values in parse_param_overrides(o["param"]).items():
                overrides.setdefault(stage, {}).update(values)
            for stage, values in parse_method_overrides(o["method"]).items():
                overrides.setdefault(stage, {}).update(values)
            plan = plan_bundle(out, dataset=o["dataset"], model=o["model"], task=o["task"], n_items=o["items"],
                               seed=o["seed"], stages=o["stages"], split=o["split"], p_split=o["p_split"],
                               exclude_yes_no=not o["keep_yes_no"], params=overrides, recipe=o["recipe"],
                               log=self.stdout.write)
            self.stdout.write("methods: " + methods_line(plan.get("recipe") or {}))
            todo = missing_items(out)
            done, total = progress(out)
            self.stdout.write(f"bundle {out}: {done}/{total} items done, {len(todo)} to compute "
                              f"({'Celery workers' if not in_process() else 'in this process'})")
            if todo:
                if in_process():
                    self._in_process(out, todo, done, total)
                else:
                    self._on_workers(out, todo, done, total, o["chunk"], o["stall_timeout"])
            manifest = finalize(out)
        except BundleError as exc:
            raise CommandError(str(exc)) from None
        self.stdout.write(self.style.SUCCESS(f"bundle complete: {len(plan['items'])} items, "
                                             f"{len(manifest['files'])} files in {out}"))
        if o["do_import"]:
            already = Bundle.objects.filter(manifest_sha256=sha256_file(Path(out) / "manifest.json")).first()
            if already:
                self.stdout.write(f"already imported as bundle {already.name!r} (id {already.pk})")
                return
            try:
                bundle = import_bundle(out, name=o["name"], owner=owner)
            except BundleError as exc:
                raise CommandError(f"import refused: {exc}") from None
            self.stdout.write(self.style.SUCCESS(f"imported as bundle {bundle.name!r} (id {bundle.pk})"))

    def _in_process(self, out, todo, done, total):
        ctx = load_context(out)
        with tqdm(total=total, initial=done, unit="item", desc="precompute") as bar:
            compute_chunk(ctx, todo, on_item=lambda _i: bar.update(1))

    def _on_workers(self, out, todo, done, total, chunk, stall_timeout):
        results = [precompute_chunk.delay(str(out), ids) for ids in chunks(todo, chunk)]
        last_change, last_done = time.monotonic(), done
        with tqdm(total=total, initial=done, unit="item", desc="precompute") as bar:
            while True:
                now_done, _ = progress(out)
                if now_done != last_done:
                    bar.update(now_done - last_done)
                    last_done, last_change = now_done, time.monotonic()
                failed = [r for r in results if r.ready() and r.failed()]
                if failed:
                    raise CommandError(f"a worker failed: {failed[0].result!r}; fix it and run the command again")
                if now_done == total:
                    return
                if time.monotonic() - last_change > stall_timeout:
                    raise CommandError(f"no progress for {stall_timeout:.0f} s: are Celery workers running "
                                       f"(celery -A config worker)? Run the command again to resume.")
                time.sleep(0.5)
