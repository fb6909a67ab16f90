"""From a stereo prompt to a continued stereo dialogue (model files: :mod:`dgslm.models`)."""
