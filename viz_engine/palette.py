"""The colours every drawing of an attribution uses, on the engine's pictures and the
platform's viewers alike: a colour-blind-safe diverging pair (orange for, blue against),
distinguishable under the common colour-vision deficiencies. No imports: the web process
reads it without loading any model code."""

ORANGE = (230, 97, 1)  # pushes toward the model's answer (or a higher value of the feature)
BLUE = (33, 102, 172)  # pushes against it
