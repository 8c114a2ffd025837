"""``python manage.py demo_study``: the demo on shapes-VQA, one study per task with the
paper's conditions, a model simulation study on the fusion dataset (vital signs + a
patient's record), and one simulation study over each of MultiViz's own VQA, MM-IMDb and
MOSEI samples that is here (``import_multiviz``), open, and the links to use them. Safe to
run again: it reuses what is there (bundles, studies, the researcher account and its password)."""

import secrets
from pathlib import Path

from django.conf import settings
from django.contrib.auth.models import User
from django.core.management.base import BaseCommand, CommandError
from django.urls import reverse

from viz_engine.bundles.format import MULTIVIZ_STAGES, BundleError, read_json, sha256_file
from viz_engine.bundles.precompute import build_bundle, default_bundle_dir, progress
from viz_engine.bundles.sources import MODELS

from ...demo import Step
from ...models import Bundle, Study
from ...services import create_study, import_bundle, import_multiviz, multiviz_results_dir

# (task, model, counted items, practice items, title, instructions); the simulation bundle
# also holds the transformer views (T), shown by one extra condition beside the paper's seven
TRANSFORMER_CONDITION = ("MultiViz + transformer views", ["U", "C", "Rl", "Rg", "P", "T"], {})
DEMO = [
    ("simulation", "shapes_vqa_early", 20, 2, "Demo · model simulation",
     "Each item shows a scene, a question about it, and explanations of a model's answer. "
     "Pick the answer you think the MODEL gave (not necessarily the right one)."),
    ("concept", "shapes_vqa_early", 8, 1, "Demo · concept assignment",
     "Each item shows one feature of the model: what drives it in one example and the examples "
     "that activate it most and least. Say in a few words what the feature stands for, and how sure you are."),
    ("error", "shapes_vqa_late", 10, 1, "Demo · error categorization",
     "Each item is a question the model got wrong. Decide where it went wrong: perceiving one modality, "
     "relating words to the image, or turning what it saw into an answer."),
    ("simulation", "fusion_interaction", 8, 1, "Demo · model simulation, vital signs + record",
     "Each item shows a patient's vital signs over 24 hours and their record, with explanations of a "
     "model's prediction. Pick the answer you think the MODEL gave (not necessarily the right one)."),
]


# MultiViz's own results (its authors' explanations of the paper's models), one simulation
# study per dataset: (folder, title, extra classes for the choices). vqa554 is vendored in
# fixtures/multiviz/; the others come from MULTIVIZ_RESULTS_DIR when it holds them.
MM_IMDB_GENRES = ("Drama,Comedy,Romance,Thriller,Crime,Action,Adventure,Horror,Documentary,Mystery,Sci-Fi,Fantasy,"
                  "Family,Biography,War,History,Music,Animation,Musical,Western,Sport,Short,Film-Noir")
MULTIVIZ_DEMO = [
    ("vqa554", "MultiViz's own · VQA 2.0 (LXMERT)", "wood,metal,plastic,marble"),
    ("1029", "MultiViz's own · MM-IMDb (LRTF)", MM_IMDB_GENRES),
    ("mosei3", "MultiViz's own · CMU-MOSEI (MulT)", ""),
]
MULTIVIZ_INSTRUCTIONS = ("The item shows a datapoint and the explanations MultiViz's authors made of the paper's "
                         "model on it. Pick the answer you think the MODEL gave (not necessarily the right one).")


class Command(BaseCommand):
    help = "Build the demo studies (shapes-VQA, fusion) and print the researcher login and annotator links."

    def add_arguments(self, parser):
        parser.add_argument("--base-url", default="http://127.0.0.1:8000")

    def handle(self, *args, base_url, **options):
        researcher, password = self._researcher()
        studies = []
        for step in self.study_steps(researcher):
            studies += step.run(lambda _text: None)
        self.print_links(studies, researcher, password, base_url)

    def study_steps(self, researcher) -> list[Step]:
        """One step per demo study, the quick ones first (MultiViz's own samples are only
        imported; each shapes-VQA bundle fits P and measures C for a minute or more)."""
        steps = []
        for folder, title, classes in MULTIVIZ_DEMO:
            if self._multiviz_source(folder) is None:
                self.stdout.write(f"(MultiViz sample {folder} is not here: no study over it; set MULTIVIZ_RESULTS_DIR)")
                continue
            steps.append(Step(f"multiviz-{folder}", title, lambda report, entry=(folder, title, classes):
                              self._multiviz_study(researcher, *entry)))
        steps += [Step(f"{entry[0]}-{entry[1]}", entry[4], lambda report, entry=entry:
                       [self._demo_study(researcher, *entry, report=report)]) for entry in DEMO]
        return steps

    def _demo_study(self, researcher, task, model, counted, practice, title, instructions, report=None) -> Study:
        with_t = (task, model) == ("simulation", "shapes_vqa_early")
        bundle = self._bundle(task, model, counted + practice, researcher, with_t, report=report)
        study = Study.objects.filter(title=title, owner=researcher).first()
        if study is None:
            study = create_study(researcher, bundle, title=title, task=task, practice=practice,
                                 custom=[TRANSFORMER_CONDITION] if with_t else None,
                                 instructions=instructions, open_now=True)
            study.completion_code = f"DEMO-{task.upper()}"
            study.save(update_fields=["completion_code"])
        return study

    def print_links(self, studies, researcher, password, base_url) -> None:
        self.stdout.write(self.style.SUCCESS("\nThe demo is ready."))
        self.stdout.write(f"Researcher: {base_url}/studies/  (user {researcher.username!r}, password {password!r})")
        for study in studies:
            self.stdout.write(f"\n{study.title}: {study.conditions.count()} conditions")
            self.stdout.write(f"  results:   {base_url}{reverse('studies:study-detail', args=[study.pk])}")
            self.stdout.write(f"  annotate:  {base_url}{reverse('annotate:join', args=[study.invite_token])}")
        self.stdout.write("\nEach annotator link opens a new pseudonymous annotator in the least-filled group "
                          "(use a private window for another one).")

    def _multiviz_studies(self, researcher) -> list[Study]:
        """One simulation study per MultiViz sample that is here (importing only copies files)."""
        return [s for entry in MULTIVIZ_DEMO for s in self._multiviz_study(researcher, *entry)]

    def _multiviz_study(self, researcher, folder, title, classes) -> list[Study]:
        """The study over MultiViz's sample ``folder``, or none when the sample is not here."""
        source = self._multiviz_source(folder)
        if source is None:
            self.stdout.write(f"(MultiViz sample {folder} is not here: no study over it; set MULTIVIZ_RESULTS_DIR)")
            return []
        study = Study.objects.filter(title=title, owner=researcher).first()
        if study is None:
            try:
                bundle = Bundle.objects.filter(name=f"multiviz-{folder}").first() or import_multiviz(
                    [source], f"multiviz-{folder}", researcher, class_names=[c for c in classes.split(",") if c],
                    allow_missing=True)
            except BundleError as exc:  # a sample changed: the rest of the demo still runs
                self.stdout.write(self.style.WARNING(f"MultiViz sample {folder} not imported: {exc}"))
                return []
            if bundle.owner != researcher:
                bundle.shared_with.add(researcher)
            study = create_study(researcher, bundle, title=title, task="simulation", practice=0,
                                 instructions=MULTIVIZ_INSTRUCTIONS, open_now=True)
            study.completion_code = f"DEMO-MULTIVIZ-{folder.upper()}"
            study.save(update_fields=["completion_code"])
        return [study]

    @staticmethod
    def _multiviz_source(folder) -> Path | None:
        for source in (Path(settings.BASE_DIR) / "fixtures" / "multiviz" / folder, multiviz_results_dir() / folder):
            if source.is_dir():
                return source
        return None

    def _researcher(self):
        cred = Path(settings.DATA_DIR) / "demo" / "researcher-password.txt"
        user = User.objects.filter(username="researcher").first()
        if user and cred.exists():
            return user, cred.read_text().strip()
        password = secrets.token_urlsafe(9)
        user = user or User(username="researcher", is_staff=True)
        user.set_password(password)
        user.save()
        cred.parent.mkdir(parents=True, exist_ok=True)
        cred.write_text(password + "\n")
        return user, password

    def _bundle(self, task, model, n_items, researcher, with_t=False, report=None) -> Bundle:
        """The demo's bundle for ``task``, the demo researcher's (or shared with them);
        ``report(text)`` hears how far its precompute is."""
        dataset = MODELS[model][0]
        out = default_bundle_dir(settings.DATA_DIR, dataset, model, task, n_items, 0)
        stages = [*MULTIVIZ_STAGES, "T"] if with_t else list(MULTIVIZ_STAGES)
        if with_t:
            out = out.with_name(out.name + "-T")
        if (out / "manifest.json").exists() and "answer_types" not in read_json(out / "manifest.json"):
            # a bundle from before answer types (and before P named no class): build anew beside it
            out = out.with_name(out.name + "-typed")
        try:
            if not (out / "manifest.json").exists():
                self.stdout.write(f"precomputing the {task} bundle ({n_items} items, {model}) …")
                report = report or (lambda _text: None)

                def log(message):  # the plan's steps (P, C's specificity), then items done of all
                    done, total = progress(out)
                    report(f"{done} of {total} items computed" if total else message)

                report("planning: the model's features, P's sparse linear model, C's specificity")
                build_bundle(out, log=log, dataset=dataset, model=model, task=task, n_items=n_items, seed=0,
                             stages=stages)
            existing = Bundle.objects.filter(manifest_sha256=sha256_file(out / "manifest.json")).first()
            if existing is None:
                return import_bundle(out, owner=researcher)
            if existing.owner is None:
                existing.owner = researcher
                existing.save(update_fields=["owner"])
            elif existing.owner != researcher:
                existing.shared_with.add(researcher)
            return existing
        except BundleError as exc:
            raise CommandError(f"the demo's {task} bundle could not be built: {exc}") from None
