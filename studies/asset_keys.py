"""Keys of an annotator's asset URLs: proof that the item page gave this enrolment this asset
(it signs only what :func:`~studies.selectors.annotator_view` let through), so the asset view
serves a keyed URL without asking the database.

A key expires ``MULTIVIZ_ASSET_KEY_SECONDS`` after it was made (default 6 h: longer than an
annotator's session; after that the URL still works through the full permission check).
Deleting an enrolment, or changing what its condition shows (stages, Rg highlights), revokes
its keys: a marker in the shared cache changes the value every key signs, so an older key
no longer matches and the request goes through the full check (which refuses what is no
longer allowed). The marker lives as long as a key can, so a key is never trusted past a
revocation unless the cache lost the marker; then expiry still bounds it.
"""

import hashlib
import logging
import time

from django.conf import settings
from django.core.cache import cache
from django.core.signing import BadSignature, TimestampSigner, b62_encode
from django.db.models.signals import post_delete, pre_save
from django.dispatch import receiver

from .models import Condition, Enrolment

log = logging.getLogger(__name__)
REVOKED = "studies.asset-keys-revoked:{}"


def _step() -> int:
    """Keys are stamped with the start of the current step (a sixth of their lifetime), so an
    image keeps one URL, and the browser its cached copy, across reloads for a while."""
    return max(1, settings.MULTIVIZ_ASSET_KEY_SECONDS // 6)


class _AssetSigner(TimestampSigner):
    def timestamp(self):
        return b62_encode(int(time.time()) // _step() * _step())


def _marker(token: str) -> str:
    return REVOKED.format(hashlib.sha256(token.encode()).hexdigest()[:32])  # no tokens in the cache's keys


def key_version(token: str) -> str | None:
    """What keys of this enrolment sign besides the URL: its latest revocation ("" for none),
    or None when the cache cannot say (then no key is trusted)."""
    try:
        return str(cache.get(_marker(token), ""))
    except Exception as exc:  # the cache backend's own connection errors (Redis down, …)
        log.warning("asset keys not trusted, the cache is unavailable: %s", exc)
        return None


def _signer():
    return _AssetSigner(salt="studies.asset", algorithm="sha256")


def asset_signature(token: str, item_pk: int, path: str, version: str | None = None) -> str:
    """The ``key`` of one asset URL (``version``: :func:`key_version`, read once per page):
    the signature and its time stamp, without the signed value the URL already holds."""
    value = f"{token}/{item_pk}/{path}/{key_version(token) if version is None else version}"
    return _signer().sign(value)[len(value) + 1:]


def asset_key_opens(key: str, token: str, item_pk: int, path: str) -> bool:
    """Whether ``key`` was made for this URL, is unexpired and not revoked."""
    version = key_version(token)
    if version is None:
        return False
    try:
        _signer().unsign(f"{token}/{item_pk}/{path}/{version}:{key}", max_age=settings.MULTIVIZ_ASSET_KEY_SECONDS)
    except BadSignature:  # also an expired one
        return False
    return True


def revoke_asset_keys(tokens) -> None:
    """No key made so far for these enrolments opens anything by itself any more."""
    now = time.time_ns()
    try:
        cache.set_many({_marker(t): now for t in tokens}, timeout=settings.MULTIVIZ_ASSET_KEY_SECONDS + _step())
    except Exception as exc:
        log.warning("asset keys not revoked, the cache is unavailable (they expire on their own): %s", exc)


@receiver(post_delete, sender=Enrolment)
def _enrolment_deleted(sender, instance, **kwargs):
    revoke_asset_keys([instance.token])


@receiver(pre_save, sender=Condition)
def _condition_changing(sender, instance, raw=False, **kwargs):
    """What annotator_view shows of a condition changed: its annotators' keys are revoked."""
    if raw or instance.pk is None:
        return
    before = Condition.objects.filter(pk=instance.pk).values("stages", "rg_highlights").first()
    if before and (before["stages"] != instance.stages or before["rg_highlights"] != instance.rg_highlights):
        revoke_asset_keys(Enrolment.objects.filter(condition=instance).values_list("token", flat=True))
