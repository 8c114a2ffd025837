"""What annotators answer. One response per (enrolment, item); practice answers are kept
but never counted."""

from django.db import models

from studies.models import ErrorCategory
from studies.stage_views import PAGES

# "Which page helped you more?": one of the pages of the item (studies.stage_views.PAGES), or
# "" where it was not asked; which pages an item offers: studies.selectors.helpful_page_choices
HELPFUL_PAGES = [("", "not asked"), *PAGES.items()]


class Response(models.Model):
    Category = ErrorCategory  # the error-categorization task's answers (study design: studies.models)

    enrolment = models.ForeignKey("studies.Enrolment", on_delete=models.PROTECT, related_name="responses")
    item = models.ForeignKey("studies.StudyItem", on_delete=models.PROTECT, related_name="responses")
    is_practice = models.BooleanField(default=False)
    choice = models.CharField(max_length=200, blank=True, help_text="simulation: the class the annotator picked")
    free_text = models.TextField(blank=True, help_text="concept assignment: the concept in the annotator's words")
    category = models.CharField(max_length=20, choices=Category.choices, blank=True)
    confidence = models.PositiveSmallIntegerField(null=True, blank=True, help_text="1–5")
    helpful_page = models.CharField(max_length=20, choices=HELPFUL_PAGES, blank=True)
    seconds_on_item = models.FloatField(null=True, blank=True)
    concept_cluster = models.CharField(max_length=200, blank=True,
                                       help_text="concept assignment: the researcher's cluster for this free text")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["enrolment", "created_at"]
        constraints = [models.UniqueConstraint(fields=["enrolment", "item"], name="one_response_per_item")]

    def __str__(self):
        return f"{self.enrolment.pseudonym} · {self.item.bundle_item.item_id}: {self.choice or self.category or self.free_text[:30]}"
