"""Bundles of precomputed visualizations as the platform knows them.

A :class:`Bundle` is a validated, finished bundle folder (``viz_engine.bundles``); its
:class:`BundleItem` rows carry each item's record and its stage sections, so the platform
can hand out exactly the sections a condition allows. Assets stay on disk in the folder.
"""

from django.db import models


class Bundle(models.Model):
    name = models.CharField(max_length=200, unique=True)
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
    """A second-order gradient an annotator asked for: cached per (item, words)."""

    item = models.ForeignKey(BundleItem, on_delete=models.CASCADE, related_name="live_sog")
    positions = models.CharField(max_length=200, help_text="sorted word positions, comma-separated")
    result = models.JSONField()
    heatmap_png = models.BinaryField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["item", "positions"], name="one_live_sog_per_words")]


# -- studies ----------------------------------------------------------------------------------
def new_token() -> str:
    """An unguessable token (256 bits) for invite links and enrolments."""
    import secrets

    return secrets.token_urlsafe(32)


STAGE_CHOICES = ("U", "C", "Rl", "Rg", "P", "T")  # T: transformer views


class Study(models.Model):
    class Task(models.TextChoices):
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
    task = models.CharField(max_length=20, choices=Task.choices)
    bundle = models.ForeignKey(Bundle, on_delete=models.PROTECT, related_name="studies")
    instructions = models.TextField(blank=True)
    consent_text = models.TextField(blank=True)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.DRAFT)
    item_order = models.CharField(max_length=10, choices=Order.choices, default=Order.SHUFFLED)
    invite_token = models.CharField(max_length=64, unique=True, default=new_token, editable=False)
    completion_code = models.CharField(max_length=64, blank=True, help_text="shown at the end (e.g. Prolific's)")
    completion_url = models.URLField(blank=True, help_text="where to send annotators at the end (e.g. Prolific)")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name_plural = "studies"
        ordering = ["-created_at"]

    def __str__(self):
        return f"{self.title} ({self.get_task_display()}, {self.status})"


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
    order = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["study", "-is_practice", "order", "pk"]
        constraints = [models.UniqueConstraint(fields=["study", "bundle_item"], name="unique_bundle_item_per_study")]

    def __str__(self):
        return f"{self.study.title} · {self.bundle_item.item_id}{' (practice)' if self.is_practice else ''}"


class Enrolment(models.Model):
    """One pseudonymous annotator in one study: their condition (permanent) and progress."""

    class Step(models.TextChoices):
        CONSENT = "consent"
        INSTRUCTIONS = "instructions"
        ITEMS = "items"
        CLOSING = "closing"
        DONE = "done"

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
    assignment = models.JSONField(default=dict, blank=True, help_text="how the condition was drawn: seed, fill, "
                                  "tied conditions (equally least-filled, by id), the one drawn (names)")
    started_at = models.DateTimeField(auto_now_add=True)
    last_seen_at = models.DateTimeField(auto_now_add=True)
    completed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["study", "started_at"]
        constraints = [models.UniqueConstraint(fields=["study", "pseudonym"], name="one_enrolment_per_pseudonym")]

    def __str__(self):
        return f"{self.pseudonym} in {self.study.title} ({self.condition.name}, {self.step})"
