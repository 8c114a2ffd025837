"""Bundles of precomputed visualizations as the platform knows them.

A :class:`Bundle` is a validated, finished bundle folder (``viz_engine.bundles``); its
:class:`BundleItem` rows carry each item's record and its stage sections, so the platform
can hand out exactly the sections a condition allows. Assets stay on disk in the folder.
"""

from django.db import models
from django.utils import timezone

from viz_engine.bundles.format import STAGES

from .task_registry import task_choices, task_spec


class Bundle(models.Model):
    """A bundle belongs to the researcher who imported it (``--owner``) and is shared like a
    study; whoever may see a study built over it sees it too. One with no owner (imported
    before bundles had owners, or without ``--owner``) is otherwise seen by superusers only."""

    name = models.CharField(max_length=200, unique=True)
    owner = models.ForeignKey("auth.User", on_delete=models.SET_NULL, null=True, blank=True,
                              related_name="bundles", help_text="who imported it; empty: superusers only")
    shared_with = models.ManyToManyField("auth.User", blank=True, related_name="shared_bundles",
                                         help_text="other researchers who may see this bundle and build studies on it")
    path = models.CharField(max_length=1000, help_text="the bundle folder on the server")
    manifest_sha256 = models.CharField(max_length=64, unique=True)
    dataset = models.CharField(max_length=200)
    model = models.CharField(max_length=200)
    task = models.CharField(max_length=20)
    stages = models.JSONField(help_text="the stages computed, e.g. ['U', 'C', 'Rl', 'Rg', 'P']")
    class_names = models.JSONField()
    manifest = models.JSONField()
    imported_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-imported_at"]

    def __str__(self):
        return f"{self.name} ({self.dataset} · {self.model} · {len(self.manifest.get('items', []))} items)"

    @property
    def recipe_name(self) -> str:
        """The recipe that chose each stage's methods (``default`` for bundles from before recipes)."""
        return (self.manifest.get("recipe") or {}).get("name", "default")

    @property
    def c_specificity_note(self) -> str:
        """One line on whether this bundle's C maps follow the word (measured at precompute);
        empty when the bundle has no C stage."""
        if "C" not in (self.stages or []):
            return ""
        check = self.manifest.get("c_specificity")
        if not check:
            return "C specificity not measured (no phrase–object references for this dataset)."

        def pts(c):
            return f"{100 * c['value']:+.0f} points [{100 * c['lo']:+.0f}, {100 * c['hi']:+.0f}]"

        return (f"C maps move with the word: {pts(check['over_other_object'])} over another object's phrase; "
                f"within one question, {pts(check['over_non_referring'])} over \"?\" "
                f"({check['n_pairs']} pairs, object top-1).")


class BundleItem(models.Model):
    bundle = models.ForeignKey(Bundle, on_delete=models.CASCADE, related_name="items")
    item_id = models.CharField(max_length=64)
    position = models.PositiveIntegerField(help_text="order in the bundle's selection")
    label = models.CharField(max_length=200)
    prediction = models.CharField(max_length=200)
    correct = models.BooleanField()
    feature = models.IntegerField(null=True, blank=True, help_text="the feature of a concept item")
    record = models.JSONField(help_text="item.json: the datapoint as shown, label, prediction, probabilities")
    sections = models.JSONField(help_text="stage -> section (U, C, Rl, Rg, P)")

    class Meta:
        ordering = ["bundle", "position"]
        constraints = [models.UniqueConstraint(fields=["bundle", "item_id"], name="unique_item_per_bundle")]

    def __str__(self):
        return f"{self.bundle.name}/{self.item_id}"

    def section(self, stage: str) -> dict | None:
        return self.sections.get(stage)


class LiveSOGResult(models.Model):
    """A second-order gradient an annotator asked for: cached per (item, words), at most
    ``MULTIVIZ_LIVE_SOG_KEEP`` word sets per item (the least recently shown go first)."""

    item = models.ForeignKey(BundleItem, on_delete=models.CASCADE, related_name="live_sog")
    positions = models.CharField(max_length=200, help_text="sorted word positions, comma-separated")
    result = models.JSONField()
    heatmap_png = models.BinaryField()
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(default=timezone.now, help_text="when it was last shown (kept by recency)")

    class Meta:
        constraints = [models.UniqueConstraint(fields=["item", "positions"], name="one_live_sog_per_words")]


class DebuggingReport(models.Model):
    """One run of the model debugging report of a bundle's model (paper 3.4, D.5).

    A row rather than only a file: the Celery task that fills it may run on another
    machine, and the page must read its state (queued, running with its progress, done,
    failed with the reason) at any moment, survive a reload and keep earlier runs. The
    report itself is ``result``; its pictures are files in :meth:`folder`.
    """

    class Status(models.TextChoices):
        QUEUED = "queued"
        RUNNING = "running"
        DONE = "done"
        FAILED = "failed"

    bundle = models.ForeignKey(Bundle, on_delete=models.CASCADE, related_name="debugging_reports")
    params = models.JSONField(help_text="the arguments of build_debugging_report (budget, runs, seed …)")
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.QUEUED)
    progress = models.FloatField(default=0.0, help_text="0–1")
    stage = models.CharField(max_length=200, blank=True, help_text="what the task is doing now")
    error = models.TextField(blank=True, help_text="why a failed run failed")
    result = models.JSONField(null=True, blank=True, help_text="report.json of a finished run")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True, help_text="the last sign of life of the task")
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["bundle", "-created_at", "-pk"]

    def __str__(self):
        return f"debugging report {self.pk} of {self.bundle.name} ({self.status})"

    @property
    def folder(self):
        from pathlib import Path

        from django.conf import settings

        return Path(settings.DATA_DIR) / "reports" / f"bundle-{self.bundle_id}" / f"run-{self.pk}"


# -- studies ----------------------------------------------------------------------------------
def new_token() -> str:
    """An unguessable token (256 bits) for invite links and enrolments."""
    import secrets

    return secrets.token_urlsafe(32)


STAGE_CHOICES = STAGES  # the built-in stages; stages registered later: studies.stage_views.platform_stage_names()


class Study(models.Model):
    class Task(models.TextChoices):
        """The built-in tasks' names (what each task is: studies.task_registry)."""

        SIMULATION = "simulation", "model simulation"
        CONCEPT = "concept", "concept assignment"
        ERROR = "error", "error categorization"

    class Status(models.TextChoices):
        DRAFT = "draft"
        OPEN = "open"
        PAUSED = "paused"
        CLOSED = "closed"

    class Order(models.TextChoices):
        FIXED = "fixed", "the same order for everyone"
        SHUFFLED = "shuffled", "a seeded shuffle per annotator"

    owner = models.ForeignKey("auth.User", on_delete=models.PROTECT, related_name="studies")
    shared_with = models.ManyToManyField("auth.User", blank=True, related_name="shared_studies",
                                         help_text="other researchers who may read and run this study")
    title = models.CharField(max_length=200)
    task = models.CharField(max_length=20, choices=task_choices, help_text="a registered task (studies.task_registry)")
    bundle = models.ForeignKey(Bundle, on_delete=models.PROTECT, related_name="studies")
    instructions = models.TextField(blank=True)
    consent_text = models.TextField(blank=True)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.DRAFT)
    item_order = models.CharField(max_length=10, choices=Order.choices, default=Order.SHUFFLED)
    invite_token = models.CharField(max_length=64, unique=True, default=new_token, editable=False)
    completion_code = models.CharField(max_length=64, blank=True, help_text="shown at the end (e.g. Prolific's)")
    completion_url = models.URLField(blank=True, help_text="where to send annotators at the end (e.g. Prolific)")
    # Prolific's code per outcome (the completion code above is the one for a finished study)
    returned_code = models.CharField(max_length=64, blank=True,
                                     help_text="for an annotator who declines consent (Prolific: returned)")
    screened_out_code = models.CharField(max_length=64, blank=True,
                                         help_text="for an annotator screened out (Prolific: screened out)")
    # the bonus rule (see annotations.selectors.bonus_rows): per correct counted answer, plus an
    # amount at or above an accuracy threshold; in the study's currency on Prolific
    bonus_per_correct = models.DecimalField(max_digits=8, decimal_places=2, default=0,
                                            help_text="paid per counted answer that matches the model")
    bonus_threshold = models.PositiveSmallIntegerField(null=True, blank=True,
                                                       help_text="accuracy in % from which the threshold amount is paid")
    bonus_threshold_amount = models.DecimalField(max_digits=8, decimal_places=2, default=0,
                                                 help_text="paid once at or above the accuracy threshold")
    # quality controls (see studies.quality): fixed once anyone has enrolled
    attention_min_correct = models.PositiveSmallIntegerField(
        null=True, blank=True, help_text="exclude an annotator who gets fewer attention checks right (empty: no rule)")
    gate_min_correct = models.PositiveSmallIntegerField(
        null=True, blank=True, help_text="comprehension gate: practice items to get right before the counted items "
        "(empty: no gate)")
    gate_attempts = models.PositiveSmallIntegerField(
        default=2, help_text="rounds of practice an annotator may take to pass the gate before being screened out")
    training_cards = models.JSONField(
        default=dict, blank=True, help_text="the study's own texts of the training cards, {stage: {field: text}}; "
        "a text not given is the stage's default (studies.stage_views, written by studies.services)")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name_plural = "studies"
        ordering = ["-created_at"]

    def __str__(self):
        return f"{self.title} ({self.get_task_display()}, {self.status})"

    @property
    def task_spec(self):
        """What this study's task is: its answer form, scoring, agreement, exports (studies.task_registry)."""
        return task_spec(self.task)


class Condition(models.Model):
    """One group of annotators: which stages they see, and its variants."""

    study = models.ForeignKey(Study, on_delete=models.CASCADE, related_name="conditions")
    name = models.CharField(max_length=100)
    stages = models.JSONField(default=list, help_text=f"a subset of {', '.join(STAGE_CHOICES)}; empty = no visualization")
    rg_highlights = models.BooleanField(default=True, help_text="Rg datapoints with the feature's highlights")
    live_sog = models.BooleanField(default=False, help_text="annotators may ask for second-order gradients of words")
    ask_helpful_page = models.BooleanField(default=False, help_text='ask "which page helped more?"')
    global_feature_ids = models.BooleanField(
        default=False, help_text="show features by their global ids (z17) instead of per-item letters; the same ids "
        "on every item of a predicted class let annotators match ids instead of reading the explanations")
    target_size = models.PositiveIntegerField(default=3, help_text="annotators wanted; 0 = no cap")
    paused = models.BooleanField(default=False)

    class Meta:
        ordering = ["study", "pk"]
        constraints = [models.UniqueConstraint(fields=["study", "name"], name="unique_condition_name_per_study")]

    def __str__(self):
        return f"{self.study.title} · {self.name}"

    def allows(self, stage: str) -> bool:
        return stage in self.stages


class StudyItem(models.Model):
    """A bundle item as a study shows it."""

    study = models.ForeignKey(Study, on_delete=models.CASCADE, related_name="items")
    bundle_item = models.ForeignKey(BundleItem, on_delete=models.PROTECT, related_name="study_items")
    choices = models.JSONField(default=list, help_text="answer choices (simulation): class names")
    is_practice = models.BooleanField(default=False)
    attention_check = models.BooleanField(
        default=False, help_text="an attention check: placed among the counted items, never counted, scored against "
        "its expected answer")
    expected_answer = models.CharField(
        max_length=200, blank=True, help_text="the known correct answer of an attention check or a practice item "
        "(a choice, an error category, or a concept word); simulation practice defaults to the model's answer")
    instruction = models.CharField(max_length=300, blank=True,
                                   help_text="shown above the answer form (e.g. an attention check's request)")
    order = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["study", "-is_practice", "order", "pk"]
        constraints = [models.UniqueConstraint(fields=["study", "bundle_item"], name="unique_bundle_item_per_study")]

    def __str__(self):
        return f"{self.study.title} · {self.bundle_item.item_id}{' (practice)' if self.is_practice else ''}"


CLOSING_QUESTIONS = ("clarity", "comments")  # the closing page's fields, as stored in Enrolment.closing_answers


class ErrorCategory(models.TextChoices):
    """What an error-categorization study asks (paper D.3): part of the study's design, as
    the builder's preview shows it; the annotator's answer (``annotations.Response``) takes
    one of these."""

    NONE = "", "not asked"
    UNIMODAL = "unimodal", "unimodal perception error"
    CROSS_MODAL = "cross_modal", "cross-modal interaction error"
    PREDICTION = "prediction", "prediction error"


class Enrolment(models.Model):
    """One pseudonymous annotator in one study: their condition (permanent) and progress."""

    class Step(models.TextChoices):
        CONSENT = "consent"
        INSTRUCTIONS = "instructions"
        ITEMS = "items"
        CLOSING = "closing"
        DONE = "done"
        DECLINED = "declined"  # said no on the consent page: nothing more is asked or counted
        SCREENED_OUT = "screened_out"  # did not pass the comprehension gate: sent on with its code

    study = models.ForeignKey(Study, on_delete=models.PROTECT, related_name="enrolments")
    condition = models.ForeignKey(Condition, on_delete=models.PROTECT, related_name="enrolments")
    token = models.CharField(max_length=64, unique=True, default=new_token, editable=False)
    pseudonym = models.CharField(max_length=100, help_text="Prolific PID or a generated id; nothing personal")
    prolific_study_id = models.CharField(max_length=100, blank=True)
    prolific_session_id = models.CharField(max_length=100, blank=True)
    item_order = models.JSONField(default=list, help_text="StudyItem ids: practice first, then counted items")
    position = models.PositiveIntegerField(default=0, help_text="index into item_order of the next item")
    step = models.CharField(max_length=20, choices=Step.choices, default=Step.CONSENT)
    closing_answers = models.JSONField(default=dict, blank=True)
    practice_rounds = models.JSONField(default=list, blank=True, help_text="each finished round of practice: "
                                       "{round, right, of, passed, answers}, oldest first (the comprehension gate)")
    assignment = models.JSONField(default=dict, blank=True, help_text="how the condition was drawn: seed, fill, "
                                  "tied conditions (equally least-filled, by id), the one drawn (names)")
    started_at = models.DateTimeField(auto_now_add=True)
    last_seen_at = models.DateTimeField(auto_now_add=True)
    completed_at = models.DateTimeField(null=True, blank=True)
    # the researcher's exclusion from the metrics (reversible: the answers stay, uncounted)
    excluded = models.BooleanField(default=False, help_text="left out of every metric by the researcher")
    exclusion_reason = models.TextField(blank=True, help_text="why the annotator was last excluded or included again")
    exclusion_changed_by = models.ForeignKey("auth.User", null=True, blank=True, on_delete=models.SET_NULL,
                                             related_name="+", help_text="who last excluded or included them")
    exclusion_changed_at = models.DateTimeField(null=True, blank=True)
    exclusion_history = models.JSONField(default=list, blank=True,
                                         help_text="every change: {excluded, reason, by, at}, oldest first")

    class Meta:
        ordering = ["study", "started_at"]
        constraints = [models.UniqueConstraint(fields=["study", "pseudonym"], name="one_enrolment_per_pseudonym")]

    def __str__(self):
        return f"{self.pseudonym} in {self.study.title} ({self.condition.name}, {self.step})"
