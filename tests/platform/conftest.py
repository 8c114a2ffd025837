import shutil

import pytest

from config.celery import app as celery_app


@pytest.fixture
def eager_tasks():
    """Run Celery tasks in this process even when CI configured a broker."""
    before = celery_app.conf.task_always_eager
    celery_app.conf.task_always_eager = True
    yield
    celery_app.conf.task_always_eager = before


@pytest.fixture(scope="session")
def built_bundle(tmp_path_factory):
    """A finished two-item bundle of the early-fusion model (computed once per session)."""
    from viz_engine.bundles.precompute import build_bundle

    out = tmp_path_factory.mktemp("platform-bundles") / "shapes-early"
    build_bundle(out, dataset="shapes_vqa", model="shapes_vqa_early", n_items=2, seed=5)
    return out


@pytest.fixture
def bundle_copy(built_bundle, tmp_path):
    copy = tmp_path / built_bundle.name
    shutil.copytree(built_bundle, copy)
    return copy


@pytest.fixture(autouse=True)
def fresh_cache():
    """Each test starts with an empty cache (the join rate limit counts there) and with no
    asset permissions remembered in-process (a rolled-back test's ids come again)."""
    from django.core.cache import cache

    from annotations.annotate import forget_asset_permissions

    cache.clear()
    forget_asset_permissions()
    yield
