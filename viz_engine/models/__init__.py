"""Built-in reference models, trained by our own code; weights in viz_engine/weights/."""
