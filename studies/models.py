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
