"""Pages. For now: the engine demo (the MultiViz stages of the built-in model on a few
shapes-VQA questions); the study pages come with the study platform."""

from django.shortcuts import render

from .demo import load_engine_demo


def engine_demo(request):
    demo = load_engine_demo()
    return render(request, "studies/engine_demo.html", {"demo": demo}, status=200 if demo else 503)
